package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const testIssuer = "https://example.okta.com/oauth2/default"

// getenv returns a getenv func over a fixed map.
func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeDotenv writes content to a fresh .env file and returns its path.
func writeDotenv(tb testing.TB, content string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), ".env")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c, err := Load([]string{"--okta-issuer", testIssuer}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Issuer:                     testIssuer,
		Audience:                   "api://default",
		ListenAddr:                 "127.0.0.1:8000",
		RequiredScope:              "items",
		TokenScope:                 "items",
		TokenMaxConcurrent:         32,
		Mode:                       ModeLocal,
		ClockLeeway:                60 * time.Second,
		MaxTokenSize:               8192,
		RSAFastVerify:              true,
		CacheMaxCost:               64 << 20,
		CacheMaxTTL:                5 * time.Minute,
		NegativeCacheTTL:           5 * time.Second,
		IntrospectionCacheTTL:      30 * time.Second,
		RevalidateAfter:            30 * time.Second,
		MaxStaleness:               60 * time.Second,
		RedisTimeout:               50 * time.Millisecond,
		IntrospectionAuthMethod:    AuthClientSecretBasic,
		IntrospectionMaxConcurrent: 64,
		IntrospectionMaxPerClient:  8,
		IntrospectionTimeout:       5 * time.Second,
		JWKSRefreshInterval:        5 * time.Minute,
		JWKSRefreshCooldown:        30 * time.Second,
		LogFormat:                  LogJSON,
		LogLevel:                   "info",
		ShutdownTimeout:            10 * time.Second,
		TrustedProxies:             []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		UpstreamTimeout:            30 * time.Second,
		DevClientID:                "dev-client",
		DevClientSecret:            "dev-secret",
		DevIssuerAddr:              "127.0.0.1:0",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

// loadCase is one precedence / parsing case that must succeed.
type loadCase struct {
	name   string
	args   []string
	env    map[string]string
	dotenv string // written to a temp .env when not empty
	check  func(tb testing.TB, c Config)
}

func (tc loadCase) run(t *testing.T) {
	path := ""
	if tc.dotenv != "" {
		path = writeDotenv(t, tc.dotenv)
	}
	c, err := Load(tc.args, getenv(tc.env), path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tc.check(t, c)
}

func TestPrecedence(t *testing.T) {
	issuer := func(want string) func(testing.TB, Config) {
		return func(tb testing.TB, c Config) {
			tb.Helper()
			if c.Issuer != want {
				tb.Errorf("Issuer = %q, want %q", c.Issuer, want)
			}
		}
	}
	const (
		fromFlag   = "https://flag.example.com/oauth2/default"
		fromEnv    = "https://env.example.com/oauth2/default"
		fromDotenv = "https://dotenv.example.com/oauth2/default"
	)
	cases := []loadCase{
		{name: "dotenv only", dotenv: "OKTA_ISSUER=" + fromDotenv + "\n", check: issuer(fromDotenv)},
		{name: "env beats dotenv", env: map[string]string{"OKTA_ISSUER": fromEnv}, dotenv: "OKTA_ISSUER=" + fromDotenv + "\n", check: issuer(fromEnv)},
		{name: "flag beats env and dotenv", args: []string{"--okta-issuer=" + fromFlag}, env: map[string]string{"OKTA_ISSUER": fromEnv}, dotenv: "OKTA_ISSUER=" + fromDotenv + "\n", check: issuer(fromFlag)},
		{name: "single-dash flag", args: []string{"-okta-issuer", fromFlag}, env: map[string]string{"OKTA_ISSUER": fromEnv}, check: issuer(fromFlag)},
		{name: "empty env counts as unset", env: map[string]string{"OKTA_ISSUER": ""}, dotenv: "OKTA_ISSUER=" + fromDotenv + "\n", check: issuer(fromDotenv)},
		{name: "dotenv quoting, export and comments", dotenv: "# comment\nexport OKTA_ISSUER=\"" + fromDotenv + "\" # trailing\n", check: issuer(fromDotenv)},
		{name: "dotenv CRLF", dotenv: "OKTA_ISSUER=" + fromDotenv + "\r\nLOG_LEVEL=debug\r\n", check: func(tb testing.TB, c Config) {
			issuer(fromDotenv)(tb, c)
			if c.LogLevel != "debug" {
				tb.Errorf("LogLevel = %q", c.LogLevel)
			}
		}},
		{name: "dotenv unknown keys ignored", dotenv: "OKTA_ISSUER=" + fromDotenv + "\nSOMETHING_ELSE=1\n", check: issuer(fromDotenv)},
		{name: "max staleness defaults to twice revalidate after", args: []string{"--okta-issuer", fromFlag, "--revalidate-after=45s"}, check: func(tb testing.TB, c Config) {
			if c.MaxStaleness != 90*time.Second {
				tb.Errorf("MaxStaleness = %v, want 90s", c.MaxStaleness)
			}
		}},
		{name: "trusted proxies: prefixes and bare addresses", args: []string{"--okta-issuer", fromFlag}, env: map[string]string{"TRUSTED_PROXIES": " 10.1.2.3/8,192.0.2.7 , 2001:db8::/32,::1"}, check: func(tb testing.TB, c Config) {
			want := []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
				netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::1/128"),
			}
			if !slices.Equal(c.TrustedProxies, want) {
				tb.Errorf("TrustedProxies = %v, want %v", c.TrustedProxies, want)
			}
		}},
		{name: "max staleness set", args: []string{"--okta-issuer", fromFlag, "--max-staleness=5m"}, check: func(tb testing.TB, c Config) {
			if c.MaxStaleness != 5*time.Minute || c.RevalidateAfter != 30*time.Second {
				tb.Errorf("MaxStaleness = %v, RevalidateAfter = %v; want 5m, 30s", c.MaxStaleness, c.RevalidateAfter)
			}
		}},
		{name: "per variable precedence", args: []string{"--okta-issuer", fromFlag}, env: map[string]string{"LOG_LEVEL": "warn", "CLOCK_LEEWAY": "5s"}, dotenv: "LOG_LEVEL=debug\nCLOCK_LEEWAY=1s\nMAX_TOKEN_SIZE=4096\n", check: func(tb testing.TB, c Config) {
			if c.LogLevel != "warn" || c.ClockLeeway != 5*time.Second || c.MaxTokenSize != 4096 {
				tb.Errorf("got level %q leeway %v size %d", c.LogLevel, c.ClockLeeway, c.MaxTokenSize)
			}
		}},
		{name: "listen alias", args: []string{"--okta-issuer", fromFlag, "--listen", "127.0.0.1:0"}, check: func(tb testing.TB, c Config) {
			if c.ListenAddr != "127.0.0.1:0" {
				tb.Errorf("ListenAddr = %q", c.ListenAddr)
			}
		}},
		{name: "listen on all interfaces outside dev", env: map[string]string{"OKTA_ISSUER": fromEnv, "LISTEN_ADDR": ":8080"}, check: func(tb testing.TB, c Config) {
			if c.ListenAddr != ":8080" {
				tb.Errorf("ListenAddr = %q", c.ListenAddr)
			}
		}},
		{name: "admin listener off by default", env: map[string]string{"OKTA_ISSUER": fromEnv}, check: func(tb testing.TB, c Config) {
			if c.AdminAddr != "" || c.AdminAllowNonLoopback {
				tb.Errorf("AdminAddr %q, AdminAllowNonLoopback %v", c.AdminAddr, c.AdminAllowNonLoopback)
			}
		}},
		{name: "admin listener on loopback", args: []string{"--admin-addr", "127.0.0.1:6060"}, env: map[string]string{"OKTA_ISSUER": fromEnv}, check: func(tb testing.TB, c Config) {
			if c.AdminAddr != "127.0.0.1:6060" {
				tb.Errorf("AdminAddr = %q", c.AdminAddr)
			}
		}},
		{name: "admin listener on localhost under dev", args: []string{"--dev", "--admin-addr", "localhost:0"}, check: func(tb testing.TB, c Config) {
			if c.AdminAddr != "localhost:0" {
				tb.Errorf("AdminAddr = %q", c.AdminAddr)
			}
		}},
		{name: "admin listener off loopback when allowed", env: map[string]string{"OKTA_ISSUER": fromEnv, "ADMIN_ADDR": ":6060", "ADMIN_ALLOW_NON_LOOPBACK": "true"}, check: func(tb testing.TB, c Config) {
			if c.AdminAddr != ":6060" || !c.AdminAllowNonLoopback {
				tb.Errorf("AdminAddr %q, AdminAllowNonLoopback %v", c.AdminAddr, c.AdminAllowNonLoopback)
			}
		}},
		{name: "token scope follows required scope", env: map[string]string{"OKTA_ISSUER": fromEnv, "REQUIRED_SCOPE": "api:read"}, check: func(tb testing.TB, c Config) {
			if c.RequiredScope != "api:read" || c.TokenScope != "api:read" {
				tb.Errorf("scopes %q %q", c.RequiredScope, c.TokenScope)
			}
		}},
		{name: "token scope list", env: map[string]string{"OKTA_ISSUER": fromEnv, "TOKEN_SCOPE": "items  openid"}, check: func(tb testing.TB, c Config) {
			if c.TokenScope != "items  openid" || c.RequiredScope != "items" {
				tb.Errorf("scopes %q %q", c.RequiredScope, c.TokenScope)
			}
		}},
		{name: "remote with credentials", env: map[string]string{"OKTA_ISSUER": fromEnv, "VALIDATION_MODE": "remote", "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "s3cret", "INTROSPECTION_CACHE_TTL": "0"}, check: func(tb testing.TB, c Config) {
			if c.Mode != ModeRemote || c.ClientID != "id" || c.ClientSecret != "s3cret" || c.IntrospectionCacheTTL != 0 {
				tb.Errorf("got %+v", c)
			}
		}},
		{name: "mode is case-insensitive", env: map[string]string{"OKTA_ISSUER": fromEnv, "VALIDATION_MODE": "Hybrid", "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "s"}, check: func(tb testing.TB, c Config) {
			if c.Mode != ModeHybrid {
				tb.Errorf("Mode = %q", c.Mode)
			}
		}},
		{name: "lists and booleans", args: []string{"--require-at-jwt"}, env: map[string]string{"OKTA_ISSUER": fromEnv, "ALLOWED_ALGORITHMS": "RS256, ES256", "ALLOWED_CLIENT_IDS": "a,,b ,"}, check: func(tb testing.TB, c Config) {
			if !c.RequireATJWT || !reflect.DeepEqual(c.AllowedAlgorithms, []string{"RS256", "ES256"}) || !reflect.DeepEqual(c.AllowedClientIDs, []string{"a", "b"}) {
				tb.Errorf("got %v %v %v", c.RequireATJWT, c.AllowedAlgorithms, c.AllowedClientIDs)
			}
		}},
		{name: "introspection require audience from env", env: map[string]string{"OKTA_ISSUER": fromEnv, "INTROSPECTION_REQUIRE_AUDIENCE": "true"}, check: func(tb testing.TB, c Config) {
			if !c.IntrospectionRequireAudience {
				tb.Error("INTROSPECTION_REQUIRE_AUDIENCE=true not applied")
			}
		}},
		{name: "introspection require audience flag", args: []string{"--introspection-require-audience"}, env: map[string]string{"OKTA_ISSUER": fromEnv}, check: func(tb testing.TB, c Config) {
			if !c.IntrospectionRequireAudience {
				tb.Error("--introspection-require-audience not applied")
			}
		}},
		{name: "introspection require audience flag false", args: []string{"--introspection-require-audience=false"}, env: map[string]string{"OKTA_ISSUER": fromEnv, "INTROSPECTION_REQUIRE_AUDIENCE": "1"}, check: func(tb testing.TB, c Config) {
			if c.IntrospectionRequireAudience {
				tb.Error("flag false did not win over env true")
			}
		}},
		{name: "rsa fast verify off from env", env: map[string]string{"OKTA_ISSUER": fromEnv, "RSA_FAST_VERIFY": "false"}, check: func(tb testing.TB, c Config) {
			if c.RSAFastVerify {
				tb.Error("RSA_FAST_VERIFY=false not applied")
			}
		}},
		{name: "rsa fast verify off by flag", args: []string{"--rsa-fast-verify=false"}, env: map[string]string{"OKTA_ISSUER": fromEnv, "RSA_FAST_VERIFY": "true"}, check: func(tb testing.TB, c Config) {
			if c.RSAFastVerify {
				tb.Error("--rsa-fast-verify=false did not win over env true")
			}
		}},
		{name: "bool flag false", args: []string{"--require-at-jwt=false"}, env: map[string]string{"OKTA_ISSUER": fromEnv, "REQUIRE_AT_JWT": "true"}, check: func(tb testing.TB, c Config) {
			if c.RequireATJWT {
				tb.Error("flag false did not win over env true")
			}
		}},
		{name: "overrides and loopback http", env: map[string]string{"OKTA_ISSUER": "http://127.0.0.1:9000/oauth2/default", "JWKS_URI": "http://localhost:9000/keys", "TOKEN_ENDPOINT": "https://as.example.com/token", "INTROSPECTION_ENDPOINT": "http://[::1]:4445/admin/oauth2/introspect"}, check: func(tb testing.TB, c Config) {
			if c.JWKSURI == "" || c.TokenEndpoint == "" || c.IntrospectionEndpoint == "" {
				tb.Errorf("got %+v", c)
			}
		}},
		{name: "cache sizes", env: map[string]string{"OKTA_ISSUER": fromEnv, "CACHE_MAX_COST": "128 mib", "NEGATIVE_CACHE_TTL": "0s"}, check: func(tb testing.TB, c Config) {
			if c.CacheMaxCost != 128<<20 || c.NegativeCacheTTL != Disabled {
				tb.Errorf("got %d %v", c.CacheMaxCost, c.NegativeCacheTTL)
			}
		}},
		{name: "no leeway", env: map[string]string{"OKTA_ISSUER": fromEnv, "CLOCK_LEEWAY": "0"}, check: func(tb testing.TB, c Config) {
			if c.ClockLeeway != Disabled {
				tb.Errorf("ClockLeeway = %v, want Disabled", c.ClockLeeway)
			}
		}},
		{name: "dev defaults", args: []string{"--dev"}, check: func(tb testing.TB, c Config) {
			if !c.Dev || c.Issuer != "" || c.LogFormat != LogConsole || c.DevClientID != "dev-client" || c.DevClientSecret != "dev-secret" || c.DevIssuerAddr != "127.0.0.1:0" || len(c.DevIgnored) != 0 {
				tb.Errorf("got %+v", c)
			}
		}},
		{name: "dev keeps explicit json logs", args: []string{"--dev", "--log-format", "json"}, check: func(tb testing.TB, c Config) {
			if c.LogFormat != LogJSON {
				tb.Errorf("LogFormat = %q", c.LogFormat)
			}
		}},
		{name: "dev ignores issuer settings", args: []string{"--dev", "--dev-client-id", "me", "--dev-client-secret", "pw", "--dev-issuer-addr", "localhost:8001"}, env: map[string]string{"OKTA_CLIENT_SECRET": "x", "JWKS_URI": "https://as.example.com/keys"}, dotenv: "OKTA_ISSUER=" + fromDotenv + "\n", check: func(tb testing.TB, c Config) {
			if c.Issuer != "" || c.ClientSecret != "" || c.JWKSURI != "" {
				tb.Errorf("dev kept issuer settings: %+v", c)
			}
			if want := []string{"OKTA_ISSUER", "OKTA_CLIENT_SECRET", "JWKS_URI"}; !reflect.DeepEqual(c.DevIgnored, want) {
				tb.Errorf("DevIgnored = %v, want %v", c.DevIgnored, want)
			}
			if c.DevClientID != "me" || c.DevClientSecret != "pw" || c.DevIssuerAddr != "localhost:8001" {
				tb.Errorf("dev client %q %q %q", c.DevClientID, c.DevClientSecret, c.DevIssuerAddr)
			}
		}},
		{name: "dev remote needs no okta credentials", args: []string{"--dev", "--validation-mode", "remote"}, check: func(tb testing.TB, c Config) {
			if c.Mode != ModeRemote {
				tb.Errorf("Mode = %q", c.Mode)
			}
		}},
		{name: "missing dotenv file is fine", args: []string{"--dev"}, check: func(testing.TB, Config) {}},
		{name: "tls pair and drain delay", env: map[string]string{"OKTA_ISSUER": fromEnv, "TLS_CERT_FILE": "/tls/tls.crt", "TLS_KEY_FILE": "/tls/tls.key", "SHUTDOWN_DRAIN_DELAY": "5s"}, check: func(tb testing.TB, c Config) {
			if c.TLSCertFile != "/tls/tls.crt" || c.TLSKeyFile != "/tls/tls.key" || c.ShutdownDrainDelay != 5*time.Second {
				tb.Errorf("TLS %q %q, drain %v", c.TLSCertFile, c.TLSKeyFile, c.ShutdownDrainDelay)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

func TestMissingDotenvFile(t *testing.T) {
	if _, err := Load([]string{"--dev"}, nil, filepath.Join(t.TempDir(), "nope", ".env")); err != nil {
		t.Fatalf("missing .env: %v", err)
	}
}

// TestGetenvReadsDotenv: the variables that the policy file's issuers name
// for their credentials are read as a setting is, flags aside: the
// environment when not empty, else the .env file Load read. Printing the
// Config never shows a .env value that no setting holds.
func TestGetenvReadsDotenv(t *testing.T) {
	const secret = "s3cr3t-from-dotenv"
	path := writeDotenv(t, "PARTNER_ID=from-dotenv\nPARTNER_SECRET="+secret+"\nEMPTY_IN_ENV=dotenv\nBLANK=\n")
	env := map[string]string{"PARTNER_ID": "from-env", "EMPTY_IN_ENV": ""}
	c, err := Load([]string{"--okta-issuer", testIssuer, "--okta-client-id", "from-flag"}, getenv(env), path)
	if err != nil {
		t.Fatal(err)
	}
	lookup := c.Getenv(getenv(env))
	for name, want := range map[string]string{
		"PARTNER_ID":     "from-env", // the environment wins over .env
		"PARTNER_SECRET": secret,     // only in .env
		"EMPTY_IN_ENV":   "dotenv",   // an empty variable counts as unset
		"BLANK":          "",
		"NOWHERE":        "",
		"OKTA_CLIENT_ID": "", // never a flag
	} {
		if got := lookup(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := c.Getenv(nil)("PARTNER_ID"); got != "from-dotenv" {
		t.Errorf("without an environment: PARTNER_ID = %q, want .env's", got)
	}
	for _, v := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(v, secret) {
			t.Errorf("printing the Config shows a .env value: %s", v)
		}
	}

	// No .env file: the environment alone.
	c, err = Load([]string{"--okta-issuer", testIssuer}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Getenv(getenv(env))("PARTNER_ID"); got != "from-env" {
		t.Errorf("no .env: PARTNER_ID = %q", got)
	}
	if got := new(Config).Getenv(getenv(env))("PARTNER_SECRET"); got != "" {
		t.Errorf("zero Config: PARTNER_SECRET = %q", got)
	}
}

// errCase is one configuration that must fail.
type errCase struct {
	name    string
	args    []string
	env     map[string]string
	dotenv  string
	varName string   // Error.Var
	want    []string // substrings of the message
	source  string   // Error.Source, when checked
}

func (tc errCase) run(t *testing.T) {
	path := ""
	if tc.dotenv != "" {
		path = writeDotenv(t, tc.dotenv)
	}
	env := map[string]string{"OKTA_ISSUER": testIssuer}
	for k, v := range tc.env {
		env[k] = v
	}
	_, err := Load(tc.args, getenv(env), path)
	if err == nil {
		t.Fatal("Load succeeded, want an error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("message has several lines: %q", msg)
	}
	if !strings.HasPrefix(msg, "config: ") {
		t.Errorf("message %q lacks the package prefix", msg)
	}
	if tc.varName != "" {
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error %T is not a *config.Error: %v", err, err)
		}
		if ce.Var != tc.varName {
			t.Errorf("Var = %q, want %q (%v)", ce.Var, tc.varName, err)
		}
		if !strings.HasPrefix(msg, "config: "+tc.varName+": ") {
			t.Errorf("message %q does not start by naming %s", msg, tc.varName)
		}
		if tc.source != "" && ce.Source != tc.source {
			t.Errorf("Source = %q, want %q", ce.Source, tc.source)
		}
	}
	for _, w := range tc.want {
		if !strings.Contains(msg, w) {
			t.Errorf("message %q does not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "topsecret") {
		t.Errorf("message %q leaks a secret", msg)
	}
}

func TestValidationErrors(t *testing.T) {
	noIssuer := map[string]string{"OKTA_ISSUER": ""}
	cases := []errCase{
		{name: "no issuer suggests dev", env: noIssuer, varName: "OKTA_ISSUER", want: []string{"not set", "--dev"}},
		{name: "issuer plain http", env: map[string]string{"OKTA_ISSUER": "http://example.okta.com/oauth2/default"}, varName: "OKTA_ISSUER", want: []string{"absolute https URL", "--dev"}, source: "environment"},
		{name: "issuer relative", args: []string{"--okta-issuer", "example.okta.com"}, varName: "OKTA_ISSUER", want: []string{"absolute https URL"}, source: "flag --okta-issuer"},
		{name: "issuer ftp", env: map[string]string{"OKTA_ISSUER": "ftp://example.com/x"}, varName: "OKTA_ISSUER", want: []string{"https"}},
		{name: "issuer query", env: map[string]string{"OKTA_ISSUER": "https://example.com/x?a=b"}, varName: "OKTA_ISSUER", want: []string{"query"}},
		{name: "issuer fragment", env: map[string]string{"OKTA_ISSUER": "https://example.com/x#a"}, varName: "OKTA_ISSUER", want: []string{"fragment"}},
		{name: "issuer credentials", env: map[string]string{"OKTA_ISSUER": "https://u:p@example.com/x"}, varName: "OKTA_ISSUER", want: []string{"credentials"}},
		{name: "issuer placeholder", env: map[string]string{"OKTA_ISSUER": "https://{yourOktaDomain}/oauth2/default"}, varName: "OKTA_ISSUER", want: []string{"placeholder"}},
		{name: "issuer from dotenv", env: noIssuer, dotenv: "OKTA_ISSUER=nonsense\n", varName: "OKTA_ISSUER", source: ".env file", want: []string{"(from .env file)"}},
		{name: "empty audience flag", args: []string{"--okta-audience="}, varName: "OKTA_AUDIENCE", want: []string{"must not be empty"}},
		{name: "listen without port", env: map[string]string{"LISTEN_ADDR": "8000"}, varName: "LISTEN_ADDR", want: []string{"host:port"}},
		{name: "issuer port out of range", env: map[string]string{"OKTA_ISSUER": "https://example.okta.com:99999/oauth2/default"}, varName: "OKTA_ISSUER", want: []string{"1 to 65535"}},
		{name: "issuer port zero", env: map[string]string{"OKTA_ISSUER": "http://127.0.0.1:0/oauth2/default"}, varName: "OKTA_ISSUER", want: []string{"1 to 65535"}},
		{name: "jwks uri port out of range", env: map[string]string{"JWKS_URI": "https://example.okta.com:65536/keys"}, varName: "JWKS_URI", want: []string{"1 to 65535"}},
		{name: "upstream port zero", env: map[string]string{"UPSTREAM_URL": "http://orders:0"}, varName: "UPSTREAM_URL", want: []string{"1 to 65535"}},
		{name: "upstream port out of range", env: map[string]string{"UPSTREAM_URL": "https://orders:99999"}, varName: "UPSTREAM_URL", want: []string{"1 to 65535"}},
		{name: "redis port out of range", env: map[string]string{"VALIDATION_MODE": "remote", "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "s", "REDIS_URL": "redis://default:topsecret@redis:99999/0", "REDIS_SIGNING_KEY": strings.Repeat("k", 32)}, varName: "REDIS_URL", want: []string{"1 to 65535", "REDACTED"}},
		{name: "listen port out of range", args: []string{"--listen", "127.0.0.1:70000"}, varName: "LISTEN_ADDR", want: []string{"0 to 65535"}, source: "flag --listen-addr"},
		{name: "dev refuses non-loopback listen", args: []string{"--dev", "--listen", "0.0.0.0:8000"}, varName: "LISTEN_ADDR", want: []string{"loopback"}},
		{name: "dev refuses all interfaces", args: []string{"--dev"}, env: map[string]string{"LISTEN_ADDR": ":8000"}, varName: "LISTEN_ADDR", want: []string{"loopback"}},
		{name: "admin refuses all interfaces", env: map[string]string{"ADMIN_ADDR": ":6060"}, varName: "ADMIN_ADDR", want: []string{"loopback", "ADMIN_ALLOW_NON_LOOPBACK"}, source: "environment"},
		{name: "admin refuses a public address under dev", args: []string{"--dev", "--admin-addr", "192.0.2.1:6060"}, varName: "ADMIN_ADDR", want: []string{"loopback"}, source: "flag --admin-addr"},
		{name: "admin refuses a host name", env: map[string]string{"OKTA_ISSUER": "https://example.com/x", "ADMIN_ADDR": "admin.example.com:6060"}, varName: "ADMIN_ADDR", want: []string{"loopback"}},
		{name: "admin address without port", env: map[string]string{"ADMIN_ADDR": "6060"}, varName: "ADMIN_ADDR", want: []string{"host:port"}},
		{name: "admin allow not a bool", env: map[string]string{"ADMIN_ALLOW_NON_LOOPBACK": "sure"}, varName: "ADMIN_ALLOW_NON_LOOPBACK", want: []string{"true or false"}},
		{name: "required scope with space", env: map[string]string{"REQUIRED_SCOPE": "a b"}, varName: "REQUIRED_SCOPE", want: []string{"scope"}},
		{name: "token scope with quote", env: map[string]string{"TOKEN_SCOPE": `items "x`}, varName: "TOKEN_SCOPE", want: []string{"scope"}},
		{name: "bad mode", env: map[string]string{"VALIDATION_MODE": "magic"}, varName: "VALIDATION_MODE", want: []string{`"magic"`, "local, remote or hybrid"}},
		{name: "bad duration", env: map[string]string{"CLOCK_LEEWAY": "abc"}, varName: "CLOCK_LEEWAY", want: []string{`"abc"`, "not a duration", "30s"}},
		{name: "duration without unit", env: map[string]string{"CLOCK_LEEWAY": "60"}, varName: "CLOCK_LEEWAY", want: []string{"not a duration"}},
		{name: "negative leeway", env: map[string]string{"CLOCK_LEEWAY": "-1s"}, varName: "CLOCK_LEEWAY", want: []string{"between 0s and 10m"}},
		{name: "huge leeway", env: map[string]string{"CLOCK_LEEWAY": "1h"}, varName: "CLOCK_LEEWAY", want: []string{"between"}},
		{name: "token size not a number", env: map[string]string{"MAX_TOKEN_SIZE": "8k"}, varName: "MAX_TOKEN_SIZE", want: []string{"whole number"}},
		{name: "token size too small", env: map[string]string{"MAX_TOKEN_SIZE": "10"}, varName: "MAX_TOKEN_SIZE", want: []string{"between 256 and 65536"}},
		{name: "HS256 refused", env: map[string]string{"ALLOWED_ALGORITHMS": "RS256,HS256"}, varName: "ALLOWED_ALGORITHMS", want: []string{"HS256 is never allowed"}},
		{name: "none refused", env: map[string]string{"ALLOWED_ALGORITHMS": "none"}, varName: "ALLOWED_ALGORITHMS", want: []string{"never allowed"}},
		{name: "unknown algorithm", env: map[string]string{"ALLOWED_ALGORITHMS": "RS1"}, varName: "ALLOWED_ALGORITHMS", want: []string{"unknown algorithm RS1"}},
		{name: "empty client id list", env: map[string]string{"ALLOWED_CLIENT_IDS": " , "}, varName: "ALLOWED_CLIENT_IDS", want: []string{"must not be empty"}},
		{name: "empty client id list flag", args: []string{"--allowed-client-ids=, ,"}, varName: "ALLOWED_CLIENT_IDS", want: []string{"must not be empty"}},
		{name: "empty algorithm list", env: map[string]string{"ALLOWED_ALGORITHMS": " , "}, varName: "ALLOWED_ALGORITHMS", want: []string{"must not be empty"}},
		{name: "bad bool", env: map[string]string{"REQUIRE_AT_JWT": "maybe"}, varName: "REQUIRE_AT_JWT", want: []string{"true or false"}},
		{name: "bad introspection require audience", env: map[string]string{"INTROSPECTION_REQUIRE_AUDIENCE": "yes"}, varName: "INTROSPECTION_REQUIRE_AUDIENCE", want: []string{"true or false"}},
		{name: "bad byte size", env: map[string]string{"CACHE_MAX_COST": "lots"}, varName: "CACHE_MAX_COST", want: []string{"64MiB"}},
		{name: "bad byte unit", env: map[string]string{"CACHE_MAX_COST": "64XB"}, varName: "CACHE_MAX_COST", want: []string{"byte count"}},
		{name: "tiny cache", env: map[string]string{"CACHE_MAX_COST": "12"}, varName: "CACHE_MAX_COST", want: []string{"at least 1KiB"}},
		{name: "cache beyond 64GiB", env: map[string]string{"CACHE_MAX_COST": "65GiB"}, varName: "CACHE_MAX_COST", want: []string{"at most 64GiB"}},
		{name: "cache of exabytes", env: map[string]string{"CACHE_MAX_COST": "4294967296GiB"}, varName: "CACHE_MAX_COST", want: []string{"at most 64GiB"}},
		{name: "overflowing cache", env: map[string]string{"CACHE_MAX_COST": "99999999999GiB"}, varName: "CACHE_MAX_COST", want: []string{"too large"}},
		{name: "zero cache ttl", env: map[string]string{"CACHE_MAX_TTL": "0s"}, varName: "CACHE_MAX_TTL", want: []string{"between 1s and 24h"}},
		{name: "negative negative ttl", env: map[string]string{"NEGATIVE_CACHE_TTL": "-1s"}, varName: "NEGATIVE_CACHE_TTL", want: []string{"between"}},
		{name: "trusted proxy not an address", env: map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, varName: "TRUSTED_PROXIES", want: []string{`entry "proxy.internal"`, "CIDR"}},
		{name: "trusted proxy bad prefix length", args: []string{"--trusted-proxies", "10.0.0.0/33"}, varName: "TRUSTED_PROXIES", want: []string{`entry "10.0.0.0/33"`}, source: "flag --trusted-proxies"},
		{name: "trusted proxy with zone", env: map[string]string{"TRUSTED_PROXIES": "fe80::1%eth0"}, varName: "TRUSTED_PROXIES", want: []string{`entry "fe80::1%eth0"`}},
		{name: "trusted proxies empty list", env: map[string]string{"TRUSTED_PROXIES": " , "}, varName: "TRUSTED_PROXIES", want: []string{"must not be empty"}},
		{name: "zero per-client introspections", env: map[string]string{"INTROSPECTION_MAX_PER_CLIENT": "0"}, varName: "INTROSPECTION_MAX_PER_CLIENT", want: []string{"between 1 and"}},
		{name: "zero token concurrency", env: map[string]string{"TOKEN_MAX_CONCURRENT": "0"}, varName: "TOKEN_MAX_CONCURRENT", want: []string{"between 1 and"}},
		{name: "bad introspection ttl", env: map[string]string{"INTROSPECTION_CACHE_TTL": "x"}, varName: "INTROSPECTION_CACHE_TTL", want: []string{"not a duration"}},
		{name: "zero revalidate", env: map[string]string{"REVALIDATE_AFTER": "0s"}, varName: "REVALIDATE_AFTER", want: []string{"between"}},
		{name: "staleness below revalidate", env: map[string]string{"REVALIDATE_AFTER": "1m", "MAX_STALENESS": "30s"}, varName: "MAX_STALENESS", want: []string{"below REVALIDATE_AFTER"}},
		{name: "bad staleness", env: map[string]string{"MAX_STALENESS": "0s"}, varName: "MAX_STALENESS", want: []string{"between 1s"}},
		{name: "redis url scheme", env: map[string]string{"VALIDATION_MODE": "remote", "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "s", "REDIS_URL": "http://localhost:6379"}, varName: "REDIS_URL", want: []string{"redis://, rediss:// or unix://"}},
		{name: "redis url without host", env: map[string]string{"REDIS_URL": "redis:///0"}, varName: "REDIS_URL", want: []string{"needs a host"}},
		{name: "redis url bad db", env: map[string]string{"REDIS_URL": "redis://localhost/cache"}, varName: "REDIS_URL", want: []string{"database number"}},
		{name: "redis url query", env: map[string]string{"REDIS_URL": "redis://localhost/0?dial_timeout=5s"}, varName: "REDIS_URL", want: []string{"query", "REDIS_TIMEOUT"}},
		{name: "redis url without key", env: map[string]string{"VALIDATION_MODE": "remote", "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "s", "REDIS_URL": "redis://localhost:6379/0"}, varName: "REDIS_SIGNING_KEY", want: []string{"required with REDIS_URL"}},
		{name: "redis key without url", env: map[string]string{"REDIS_SIGNING_KEY": strings.Repeat("k", 32)}, varName: "REDIS_SIGNING_KEY", want: []string{"without REDIS_URL"}},
		{name: "redis key too short", env: map[string]string{"REDIS_SIGNING_KEY": "topsecret"}, varName: "REDIS_SIGNING_KEY", want: []string{"at least 32 characters", "got 9"}},
		{name: "redis in local mode", env: map[string]string{"REDIS_URL": "redis://localhost:6379/0", "REDIS_SIGNING_KEY": strings.Repeat("k", 32)}, varName: "REDIS_URL", want: []string{"VALIDATION_MODE=local", "remote and hybrid"}},
		{name: "redis timeout zero", env: map[string]string{"REDIS_TIMEOUT": "0s"}, varName: "REDIS_TIMEOUT", want: []string{"between 1ms and 10s"}},
		{name: "bad auth method", env: map[string]string{"INTROSPECTION_AUTH_METHOD": "private_key_jwt"}, varName: "INTROSPECTION_AUTH_METHOD", want: []string{"client_secret_basic or client_secret_post"}},
		{name: "zero concurrency", env: map[string]string{"INTROSPECTION_MAX_CONCURRENT": "0"}, varName: "INTROSPECTION_MAX_CONCURRENT", want: []string{"between 1"}},
		{name: "zero introspection timeout", env: map[string]string{"INTROSPECTION_TIMEOUT": "0s"}, varName: "INTROSPECTION_TIMEOUT", want: []string{"between"}},
		{name: "zero refresh interval", env: map[string]string{"JWKS_REFRESH_INTERVAL": "0s"}, varName: "JWKS_REFRESH_INTERVAL", want: []string{"between"}},
		{name: "tiny cooldown", env: map[string]string{"JWKS_REFRESH_COOLDOWN": "100ms"}, varName: "JWKS_REFRESH_COOLDOWN", want: []string{"between 1s"}},
		{name: "insecure jwks uri", env: map[string]string{"JWKS_URI": "http://example.com/keys"}, varName: "JWKS_URI", want: []string{"https"}},
		{name: "relative token endpoint", env: map[string]string{"TOKEN_ENDPOINT": "/v1/token"}, varName: "TOKEN_ENDPOINT", want: []string{"absolute"}},
		{name: "bad introspection endpoint", env: map[string]string{"INTROSPECTION_ENDPOINT": "ftp://x/y"}, varName: "INTROSPECTION_ENDPOINT", want: []string{"https"}},
		{name: "bad log format", env: map[string]string{"LOG_FORMAT": "xml"}, varName: "LOG_FORMAT", want: []string{"json or console"}},
		{name: "bad log level", env: map[string]string{"LOG_LEVEL": "trace"}, varName: "LOG_LEVEL", want: []string{"debug, info, warn or error"}},
		{name: "bad shutdown timeout", env: map[string]string{"SHUTDOWN_TIMEOUT": "forever"}, varName: "SHUTDOWN_TIMEOUT", want: []string{"not a duration"}},
		{name: "negative drain delay", env: map[string]string{"SHUTDOWN_DRAIN_DELAY": "-1s"}, varName: "SHUTDOWN_DRAIN_DELAY", want: []string{"between 0s and 10m"}},
		{name: "tls cert without key", env: map[string]string{"TLS_CERT_FILE": "/tls/tls.crt"}, varName: "TLS_KEY_FILE", want: []string{"not set while TLS_CERT_FILE is", "both"}},
		{name: "tls key without cert", args: []string{"--tls-key-file", "/tls/tls.key"}, varName: "TLS_CERT_FILE", want: []string{"not set while TLS_KEY_FILE is"}},
		{name: "tls with dev", args: []string{"--dev", "--tls-cert-file", "a.crt", "--tls-key-file", "a.key"}, varName: "TLS_CERT_FILE", want: []string{"--dev serves plain HTTP"}, source: "flag --tls-cert-file"},
		{name: "remote needs client id", env: map[string]string{"VALIDATION_MODE": "remote", "OKTA_CLIENT_SECRET": "topsecret"}, varName: "OKTA_CLIENT_ID", want: []string{"VALIDATION_MODE=remote"}},
		{name: "hybrid needs client secret", env: map[string]string{"VALIDATION_MODE": "hybrid", "OKTA_CLIENT_ID": "id"}, varName: "OKTA_CLIENT_SECRET", want: []string{"VALIDATION_MODE=hybrid"}},
		{name: "bad dev bool", args: []string{"--dev=maybe"}, varName: "--dev", want: []string{"true or false"}},
		{name: "empty dev client", args: []string{"--dev", "--dev-client-id="}, varName: "--dev-client-id", want: []string{"must not be empty"}},
		{name: "empty dev secret", args: []string{"--dev", "--dev-client-secret="}, varName: "--dev-client-secret", want: []string{"must not be empty"}},
		{name: "dev issuer not loopback", args: []string{"--dev", "--dev-issuer-addr", "0.0.0.0:8001"}, varName: "--dev-issuer-addr", want: []string{"loopback"}},
		{name: "unknown flag", args: []string{"--colour"}, want: []string{"flag provided but not defined", "-h"}},
		{name: "positional argument", args: []string{"serve"}, varName: "arguments", want: []string{`"serve"`}},
		{name: "malformed dotenv", dotenv: "OKTA_CLIENT_SECRET=topsecret\nNOT-A-NAME=1\n", varName: ".env", want: []string{"line 2", "NAME=value"}},
		{name: "unterminated dotenv quote", dotenv: "LOG_LEVEL=info\nOKTA_CLIENT_SECRET=\"topsecret\n", varName: ".env", want: []string{"unterminated", "line 2"}},
		{name: "dotenv line without value", dotenv: "LOG_LEVEL=info\njustaword\n", varName: ".env", want: []string{"NAME=value"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestSurroundingWhiteSpaceRefused: a setting used as given (a URL, an
// address, a path, an identifier, a secret) with white space around it,
// such as the newline that a Kubernetes Secret made with echo brings
// along, would match no token, endpoint or file; Load refuses it naming
// the variable, and never echoes a secret while doing so.
func TestSurroundingWhiteSpaceRefused(t *testing.T) {
	remote := func(m map[string]string) map[string]string {
		out := map[string]string{"VALIDATION_MODE": "remote", "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "topsecret"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	const ws = "white space"
	cases := []errCase{
		{name: "issuer trailing space", env: map[string]string{"OKTA_ISSUER": testIssuer + " "}, varName: "OKTA_ISSUER", want: []string{ws}},
		{name: "issuer trailing newline", env: map[string]string{"OKTA_ISSUER": testIssuer + "\n"}, varName: "OKTA_ISSUER", want: []string{ws}},
		{name: "audience leading space", env: map[string]string{"OKTA_AUDIENCE": " api://default"}, varName: "OKTA_AUDIENCE", want: []string{ws}},
		{name: "audience flag tab", args: []string{"--okta-audience=api://default\t"}, varName: "OKTA_AUDIENCE", want: []string{ws}, source: "flag --okta-audience"},
		{name: "client id newline", env: remote(map[string]string{"OKTA_CLIENT_ID": "id\n"}), varName: "OKTA_CLIENT_ID", want: []string{ws}},
		{name: "client secret newline", env: remote(map[string]string{"OKTA_CLIENT_SECRET": "topsecret\n"}), varName: "OKTA_CLIENT_SECRET", want: []string{ws}},
		{name: "client secret blank", env: remote(map[string]string{"OKTA_CLIENT_SECRET": "   "}), varName: "OKTA_CLIENT_SECRET", want: []string{ws}},
		{name: "listen leading space", env: map[string]string{"LISTEN_ADDR": " 127.0.0.1:8000"}, varName: "LISTEN_ADDR", want: []string{ws}},
		{name: "admin trailing space", env: map[string]string{"ADMIN_ADDR": "127.0.0.1:6060 "}, varName: "ADMIN_ADDR", want: []string{ws}},
		{name: "jwks uri newline", env: map[string]string{"JWKS_URI": "https://example.okta.com/keys\r\n"}, varName: "JWKS_URI", want: []string{ws}},
		{name: "token endpoint space", env: map[string]string{"TOKEN_ENDPOINT": " https://example.okta.com/v1/token"}, varName: "TOKEN_ENDPOINT", want: []string{ws}},
		{name: "introspection endpoint space", env: map[string]string{"INTROSPECTION_ENDPOINT": "https://example.okta.com/v1/introspect "}, varName: "INTROSPECTION_ENDPOINT", want: []string{ws}},
		{name: "redis url newline", env: remote(map[string]string{"REDIS_URL": "redis://default:topsecret@redis:6379/0\n", "REDIS_SIGNING_KEY": strings.Repeat("k", 32)}), varName: "REDIS_URL", want: []string{ws}},
		{name: "redis signing key newline", env: remote(map[string]string{"REDIS_URL": "redis://redis:6379/0", "REDIS_SIGNING_KEY": "topsecret" + strings.Repeat("k", 32) + "\n"}), varName: "REDIS_SIGNING_KEY", want: []string{ws}},
		{name: "policy file space", env: map[string]string{"POLICY_FILE": "/etc/tokengate/policy.yaml "}, varName: "POLICY_FILE", want: []string{ws}},
		{name: "upstream space", env: map[string]string{"UPSTREAM_URL": "http://orders:8080 "}, varName: "UPSTREAM_URL", want: []string{ws}},
		{name: "tls cert space", env: map[string]string{"TLS_CERT_FILE": "/tls/tls.crt ", "TLS_KEY_FILE": "/tls/tls.key"}, varName: "TLS_CERT_FILE", want: []string{ws}},
		{name: "tls key space", env: map[string]string{"TLS_CERT_FILE": "/tls/tls.crt", "TLS_KEY_FILE": "/tls/tls.key\n"}, varName: "TLS_KEY_FILE", want: []string{ws}},
		{name: "dev client secret space", args: []string{"--dev", "--dev-client-secret", "topsecret "}, varName: "--dev-client-secret", want: []string{ws}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
	// A secret's white-space error says what is wrong without the value.
	_, err := Load(nil, getenv(remote(map[string]string{"OKTA_ISSUER": testIssuer, "OKTA_CLIENT_SECRET": "topsecret\n"})), "")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error %v, want one that does not quote the secret", err)
	}
	// Settings parsed as numbers, durations and lists still read past it.
	c, err := Load(nil, getenv(map[string]string{"OKTA_ISSUER": testIssuer, "CLOCK_LEEWAY": " 5s ", "MAX_TOKEN_SIZE": "4096\n"}), "")
	if err != nil || c.ClockLeeway != 5*time.Second || c.MaxTokenSize != 4096 {
		t.Errorf("lenient settings: %+v, %v", c, err)
	}
}

// TestDotenvAmbiguities: what godotenv accepts but resolves silently is
// refused with one line naming the variable and its line, never its
// value: a name set twice (the last would win), and a '$' before a name no
// earlier line sets (godotenv would drop both, so a secret holding "$X"
// would lose part of itself). A byte-order mark is read past, and what
// godotenv resolves unambiguously still loads.
func TestDotenvAmbiguities(t *testing.T) {
	remote := map[string]string{"VALIDATION_MODE": "remote", "OKTA_CLIENT_ID": "id"}
	for _, tc := range []errCase{
		{name: "name set twice", dotenv: "LOG_LEVEL=info\nOKTA_CLIENT_SECRET=topsecret\nLOG_LEVEL=debug\n", varName: "LOG_LEVEL", source: ".env file", want: []string{"set twice", "lines 1 and 3"}},
		{name: "name set twice, once exported", dotenv: "# x\r\nexport OKTA_CLIENT_SECRET='topsecret'\r\n\r\nOKTA_CLIENT_SECRET : topsecret\r\n", varName: "OKTA_CLIENT_SECRET", want: []string{"lines 2 and 4"}},
		{name: "name set twice after a multi-line value", dotenv: "A=\"x\nLOG_LEVEL=info\"\nLOG_LEVEL=debug\nB=1\nLOG_LEVEL=warn\n", varName: "LOG_LEVEL", want: []string{"lines 3 and 5"}},
		{name: "unset reference in a secret", env: remote, dotenv: "OKTA_CLIENT_SECRET=topsecret$X9\n", varName: "OKTA_CLIENT_SECRET", want: []string{"line 1", "single quotes"}},
		{name: "unset braced reference in double quotes", env: remote, dotenv: "LOG_LEVEL=info\nOKTA_CLIENT_SECRET=\"top${SECRET}secret\"\n", varName: "OKTA_CLIENT_SECRET", want: []string{"line 2"}},
		{name: "reference to a later line", dotenv: "OKTA_AUDIENCE=api://$AUD\nAUD=x\n", varName: "OKTA_AUDIENCE", want: []string{"line 1"}},
	} {
		t.Run(tc.name, tc.run)
	}

	const iss = "https://dotenv.example.com/oauth2/default"
	for _, tc := range []loadCase{
		{name: "byte-order mark", dotenv: "\uFEFFOKTA_ISSUER=" + iss + "\n", check: func(tb testing.TB, c Config) {
			if c.Issuer != iss {
				tb.Errorf("Issuer = %q", c.Issuer)
			}
		}},
		{name: "literal dollars", env: remote, dotenv: "OKTA_ISSUER=" + iss + "\nOKTA_CLIENT_SECRET='pa$SW0RD'\nOKTA_AUDIENCE=a\\$B$c$ # comment $X\n", check: func(tb testing.TB, c Config) {
			if c.ClientSecret != "pa$SW0RD" || c.Audience != "a$B$c$" {
				tb.Errorf("ClientSecret %q, Audience %q", c.ClientSecret, c.Audience)
			}
		}},
		{name: "reference to an earlier line", dotenv: "BASE=https://dotenv.example.com\nOKTA_ISSUER=${BASE}/oauth2/default\n", check: func(tb testing.TB, c Config) {
			if c.Issuer != iss {
				tb.Errorf("Issuer = %q", c.Issuer)
			}
		}},
	} {
		t.Run(tc.name, tc.run)
	}
}

func TestDotenvIsADirectory(t *testing.T) {
	_, err := Load([]string{"--dev"}, nil, t.TempDir())
	var ce *Error
	if !errors.As(err, &ce) || ce.Var != ".env" {
		t.Fatalf("got %v, want a .env error", err)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		if _, err := Load([]string{arg}, nil, ""); !errors.Is(err, ErrHelp) {
			t.Errorf("%s: got %v, want ErrHelp", arg, err)
		}
	}
	var b strings.Builder
	Usage(&b)
	for _, v := range append(Variables(), "--dev", "--listen", "--dev-client-id") {
		if !strings.Contains(b.String(), v) {
			t.Errorf("Usage does not mention %s", v)
		}
	}
}

// TestEveryVariableHasAFlag keeps the env/flag naming rule: OKTA_ISSUER is
// --okta-issuer.
func TestEveryVariableHasAFlag(t *testing.T) {
	for _, s := range settings() {
		if s.env == "" {
			continue
		}
		if want := strings.ReplaceAll(strings.ToLower(s.env), "_", "-"); s.flag != want {
			t.Errorf("%s has flag --%s, want --%s", s.env, s.flag, want)
		}
	}
}

// TestREADMEDocumentsEverySetting keeps the README's configuration table in
// step with the code.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables() {
		if !strings.Contains(string(readme), "`"+v+"`") {
			t.Errorf("README.md does not document `%s`", v)
		}
	}
	for _, f := range flags() {
		if !strings.Contains(string(readme), "--"+f) {
			t.Errorf("README.md does not document --%s", f)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"67108864", 64 << 20, true},
		{"64MiB", 64 << 20, true},
		{"64 mib", 64 << 20, true},
		{"1GiB", 1 << 30, true},
		{"512KiB", 512 << 10, true},
		{"10MB", 10_000_000, true},
		{"2kb", 2000, true},
		{"3GB", 3_000_000_000, true},
		{"100B", 100, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"1.5GiB", 0, false},
		{"64 MiBs", 0, false},
		{"9223372036854775807GiB", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tc := range cases {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1", "0", "99999999999GiB", " 5 kb ", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseByteSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseByteSize(%q) = %d", s, n)
		}
	})
}

// FuzzParsePrefixes checks TRUSTED_PROXIES parsing: no panic; an
// accepted list has one valid, masked prefix per entry, and an error names
// an entry of the input.
func FuzzParsePrefixes(f *testing.F) {
	for _, s := range []string{"127.0.0.0/8,::1/128", "10.1.2.3/8", "192.0.2.7", "::ffff:10.0.0.0/104", "fe80::1%eth0", "1.2.3.4/33", " , ", "a,b", "2001:db8::/32 ,, ::1", "none", " NONE ", "none,10.0.0.0/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parsePrefixes(v)
		if err != nil {
			if got != nil && len(got) == len(splitList(v)) {
				t.Fatalf("error %v with a full list %v", err, got)
			}
			if !errors.Is(err, errEmpty) && !strings.Contains(err.Error(), "entry ") {
				t.Fatalf("error %q names no entry", err)
			}
			return
		}
		want := len(splitList(v))
		if strings.EqualFold(strings.TrimSpace(v), "none") {
			want = 0 // "none": no peer is trusted
		}
		if len(got) != want {
			t.Fatalf("%q: %d prefixes, want %d", v, len(got), want)
		}
		for _, p := range got {
			if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" {
				t.Fatalf("%q: prefix %v is not valid, masked and zoneless", v, p)
			}
		}
	})
}

// FuzzDotenv checks that a .env file of any content yields a Config or a
// one-line *Error, never a panic, and never echoes the secret it holds.
func FuzzDotenv(f *testing.F) {
	for _, s := range []string{
		"OKTA_CLIENT_SECRET=topsecret\nNOT-A-NAME=1\n",
		"OKTA_CLIENT_SECRET=\"topsecret\n",
		"=\n",
		"LOG_LEVEL=debug\r\nCLOCK_LEEWAY=1s",
		"export CACHE_MAX_COST='64 MiB'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, content string) {
		p := writeDotenv(t, "OKTA_CLIENT_SECRET=topsecret\n"+content)
		_, err := Load([]string{"--dev"}, nil, p)
		if err == nil {
			return
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "config: ") {
			t.Fatalf("bad message %q", msg)
		}
		// "$NAME" expands inside .env, so only a literal-free file must not leak.
		if strings.Contains(msg, "topsecret") && !strings.Contains(content, "topsecret") && !strings.Contains(content, "$") {
			t.Fatalf("message %q leaks the secret", msg)
		}
	})
}

// TestTrustedProxiesNoneAndMapped covers what parsePrefixes adds for
// TRUSTED_PROXIES beyond CIDRs and addresses.
func TestTrustedProxiesNoneAndMapped(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "none", want: "[]"},
		{in: " NONE ", want: "[]"},
		{in: "10.0.0.0/8, 192.168.1.7", want: "[10.0.0.0/8 192.168.1.7/32]"},
		{in: "::ffff:10.0.0.0/104", err: "IPv4 form"},
		{in: "::ffff:10.0.0.1", err: "IPv4 form"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parsePrefixes(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tc.want || got == nil {
				t.Fatalf("got %#v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

// TestRedisSettings: the second-level settings load as given in remote and
// hybrid mode, under --dev too.
func TestRedisSettings(t *testing.T) {
	key := strings.Repeat("k", 32)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		url  string
		tmo  time.Duration
	}{
		{"remote, credentials and db", nil, map[string]string{"VALIDATION_MODE": "remote", "OKTA_ISSUER": testIssuer, "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "s",
			"REDIS_URL": "redis://default:pw@redis.internal:6379/3", "REDIS_SIGNING_KEY": key}, "redis://default:pw@redis.internal:6379/3", 50 * time.Millisecond},
		{"hybrid over TLS, timeout", nil, map[string]string{"VALIDATION_MODE": "hybrid", "OKTA_ISSUER": testIssuer, "OKTA_CLIENT_ID": "id", "OKTA_CLIENT_SECRET": "s",
			"REDIS_URL": "rediss://redis.internal", "REDIS_SIGNING_KEY": key, "REDIS_TIMEOUT": "20ms"}, "rediss://redis.internal", 20 * time.Millisecond},
		// The policy file's issuers: list may introspect whatever
		// VALIDATION_MODE says; cmd/server/app checks their modes.
		{"local mode with a policy file", nil, map[string]string{"POLICY_FILE": "/etc/tokengate/policy.yaml",
			"REDIS_URL": "redis://redis.internal", "REDIS_SIGNING_KEY": key}, "redis://redis.internal", 50 * time.Millisecond},
		{"dev, unix socket, flags", []string{"--dev", "--validation-mode=remote", "--redis-url=unix:///run/redis.sock", "--redis-signing-key=" + key}, nil, "unix:///run/redis.sock", 50 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.args, getenv(tc.env), "")
			if err != nil {
				t.Fatal(err)
			}
			if c.RedisURL != tc.url || c.RedisSigningKey != key || c.RedisTimeout != tc.tmo {
				t.Errorf("got %q, %q, %v; want %q, the key, %v", c.RedisURL, c.RedisSigningKey, c.RedisTimeout, tc.url, tc.tmo)
			}
		})
	}
}

// TestUpstreamURL checks UPSTREAM_URL's form: a scheme and an authority,
// nothing that the gateway would have to rewrite the request target for.
func TestUpstreamURL(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"http://127.0.0.1:9000", true},
		{"https://svc.internal:8443/", true},
		{"http://svc", true},
		{"ftp://svc:21", false},
		{"127.0.0.1:9000", false},
		{"http://svc:9000/base", false},
		{"http://svc:9000?x=1", false},
		{"http://u:p@svc:9000", false},
	} {
		c, err := Load([]string{"--okta-issuer", testIssuer, "--upstream-url", tc.v}, nil, "")
		if (err == nil) != tc.ok || (tc.ok && c.UpstreamURL != tc.v) {
			t.Errorf("%q: %+v, %v", tc.v, c.UpstreamURL, err)
		}
		if err != nil && !strings.Contains(err.Error(), "UPSTREAM_URL") {
			t.Errorf("%q: the error does not name UPSTREAM_URL: %v", tc.v, err)
		}
	}
}
