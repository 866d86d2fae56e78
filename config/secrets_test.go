package config

import (
	"slices"
	"strings"
	"testing"
)

// TestErrorsNeverEchoURLCredentials: a URL setting refused for carrying
// credentials (or for any other reason while carrying them) is named in
// the error, but its password never reaches the one line printed on
// stderr.
func TestErrorsNeverEchoURLCredentials(t *testing.T) {
	const secret = "s3cr3t-pw"
	cases := []struct {
		name    string
		env     map[string]string
		varName string
		pw      string // the password to look for, when not secret
	}{
		{"issuer with credentials", map[string]string{"OKTA_ISSUER": "https://admin:" + secret + "@example.okta.com/oauth2/default"}, "OKTA_ISSUER", ""},
		{"plain-http issuer with credentials", map[string]string{"OKTA_ISSUER": "http://admin:" + secret + "@example.okta.com/oauth2/default"}, "OKTA_ISSUER", ""},
		{"introspection endpoint with credentials", map[string]string{"INTROSPECTION_ENDPOINT": "https://client:" + secret + "@hydra.example.com/admin/oauth2/introspect"}, "INTROSPECTION_ENDPOINT", ""},
		{"jwks uri with credentials and placeholder", map[string]string{"JWKS_URI": "https://client:" + secret + "@{yourOktaDomain}/v1/keys"}, "JWKS_URI", ""},
		{"token endpoint over http with credentials", map[string]string{"TOKEN_ENDPOINT": "http://client:" + secret + "@example.com/v1/token"}, "TOKEN_ENDPOINT", ""},
		{"redis url with credentials and a query", map[string]string{"REDIS_URL": "redis://default:" + secret + "@redis.internal:6379/0?pool_size=9"}, "REDIS_URL", ""},
		{"redis url with credentials and a bad scheme", map[string]string{"REDIS_URL": "http://default:" + secret + "@redis.internal:6379"}, "REDIS_URL", ""},
		{"redis url with credentials in local mode", map[string]string{"REDIS_URL": "rediss://default:" + secret + "@redis.internal:6379/0", "REDIS_SIGNING_KEY": secret + secret + secret + secret}, "REDIS_URL", ""},
		{"redis signing key too short", map[string]string{"REDIS_SIGNING_KEY": secret}, "REDIS_SIGNING_KEY", ""},
		// Passwords from openssl rand -base64 hold '/' and '+'; unescaped,
		// the URL does not parse, and the password runs past the first '/'.
		{"redis url whose password holds a slash", map[string]string{"REDIS_URL": "redis://default:s3cr/3t+pw@redis.internal:6379/0"}, "REDIS_URL", "s3cr/3t+pw"},
		{"redis url whose password holds a hash", map[string]string{"REDIS_URL": "rediss://default:s3cr#3t@redis.internal:6379"}, "REDIS_URL", "s3cr#3t"},
		{"redis url whose password holds a question mark", map[string]string{"REDIS_URL": "redis://:s3cr?3t@redis.internal:6379"}, "REDIS_URL", "s3cr?3t"},
		{"redis url without its scheme", map[string]string{"REDIS_URL": "default:" + secret + "@redis.internal:6379"}, "REDIS_URL", ""},
		{"redis url with a mangled scheme", map[string]string{"REDIS_URL": "redis:default:" + secret + "@redis.internal:6379"}, "REDIS_URL", ""},
		{"issuer whose password holds a slash", map[string]string{"OKTA_ISSUER": "https://admin:s3cr/3t@example.okta.com/oauth2/default"}, "OKTA_ISSUER", "s3cr/3t"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"OKTA_ISSUER": testIssuer}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := Load(nil, getenv(env), "")
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config: "+tc.varName+": ") {
				t.Errorf("message %q does not name %s", msg, tc.varName)
			}
			pw := tc.pw
			if pw == "" {
				pw = secret
			}
			if strings.Contains(msg, pw) {
				t.Errorf("message echoes the password: %q", msg)
			}
		})
	}
}

// TestStrayArgumentNotEchoed: "--okta-client-secret= s3cret" leaves the
// secret as a stray argument; the error says where it was, not what.
func TestStrayArgumentNotEchoed(t *testing.T) {
	const secret = "s3cr3t-pw"
	_, err := Load([]string{"--okta-issuer", testIssuer, "--okta-client-secret=", secret}, getenv(nil), "")
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "unexpected argument") || !strings.Contains(msg, "--okta-client-secret=") {
		t.Errorf("message %q does not name the stray argument's place", msg)
	}
	if strings.Contains(msg, secret) {
		t.Errorf("message echoes the stray argument: %q", msg)
	}
}

// TestRedactArgs: every secret flag's value is hidden in both forms and
// with one or two dashes, and --redis-url's password; other flags, and
// anything after "--", are kept.
func TestRedactArgs(t *testing.T) {
	const secret = "s3cr3t-pw"
	args := []string{
		"--okta-issuer", testIssuer,
		"--okta-client-secret", secret,
		"-okta-client-secret=" + secret,
		"--redis-signing-key=" + secret + secret,
		"-redis-signing-key", secret,
		"--dev-client-secret", secret,
		"--okta-client-id=id",
		"--redis-url", "redis://default:" + secret + "@redis:6379/0",
		"--redis-url=rediss://" + secret + "@redis:6379",
		"--", "--okta-client-secret", "kept",
	}
	want := []string{
		"--okta-issuer", testIssuer,
		"--okta-client-secret", Redacted,
		"-okta-client-secret=" + Redacted,
		"--redis-signing-key=" + Redacted,
		"-redis-signing-key", Redacted,
		"--dev-client-secret", Redacted,
		"--okta-client-id=id",
		"--redis-url", "redis://REDACTED@redis:6379/0",
		"--redis-url=rediss://REDACTED@redis:6379",
		"--", "--okta-client-secret", "kept",
	}
	orig := slices.Clone(args)
	got := RedactArgs(args)
	if !slices.Equal(got, want) {
		t.Errorf("RedactArgs:\n got %q\nwant %q", got, want)
	}
	if !slices.Equal(args, orig) {
		t.Errorf("RedactArgs changed its argument: %q", args)
	}
	// Every setting marked secret is one RedactArgs hides.
	for _, s := range settings() {
		if s.secret {
			if got := RedactArgs([]string{"--" + s.flag, secret}); got[1] != Redacted {
				t.Errorf("--%s: %q", s.flag, got)
			}
		}
	}
}
