package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/joho/godotenv"
)

// Mode selects how tokens are validated.
type Mode string

// The validation modes (VALIDATION_MODE).
const (
	// ModeLocal verifies the JWT signature against the issuer's JWKS and
	// checks its claims. No call to the authorization server per token;
	// blind to revocation until the token expires.
	ModeLocal Mode = "local"
	// ModeRemote asks the RFC 7662 introspection endpoint about every token
	// not in the cache. Sees revocation within INTROSPECTION_CACHE_TTL.
	ModeRemote Mode = "remote"
	// ModeHybrid verifies locally first, introspects each valid token once
	// and then re-checks it in the background every REVALIDATE_AFTER.
	ModeHybrid Mode = "hybrid"
)

// Log formats (LOG_FORMAT).
const (
	LogJSON    = "json"
	LogConsole = "console"
)

// Client authentication methods at the introspection endpoint
// (INTROSPECTION_AUTH_METHOD). They are auth.AuthMethodClientSecretBasic
// and auth.AuthMethodClientSecretPost, which config may not import; a test
// fails if the two pairs differ.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
)

// Disabled is the value Load gives a duration setting that 0 turns off
// (CLOCK_LEEWAY, NEGATIVE_CACHE_TTL). Such a field means what the field it
// is passed to means (auth.LocalConfig.Leeway, authcache.Config.NegativeTTL):
// a negative value is "off" and 0 the package's default, so the value goes
// through unchanged. Load never leaves such a field 0.
const Disabled time.Duration = -1

// defaultAlgorithms is the JWS algorithm allow-list that applies when
// ALLOWED_ALGORITHMS is not set, and the only algorithms it may name:
// auth.DefaultAlgorithms, which config may not import, in the same order
// (a test fails if they differ). Usage and the check of ALLOWED_ALGORITHMS
// read it; an unset ALLOWED_ALGORITHMS stays empty and the validator
// applies its own default.
const defaultAlgorithms = "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA"

// DefaultDotenvPath is the .env file cmd/server reads: the one in the
// working directory.
const DefaultDotenvPath = ".env"

// ErrHelp is returned by Load when the arguments ask for help (-h, --help).
// The caller prints Usage and exits 0.
var ErrHelp = flag.ErrHelp

// Config is tokengate's whole configuration. Load fills every field,
// applying the defaults documented beside each one, and validates it; the
// zero Config is not usable.
//
// Every setting but the --dev ones can be given as an environment
// variable, a line in .env, or a flag (the variable's name in lower kebab
// case: OKTA_ISSUER is --okta-issuer; LISTEN_ADDR is also --listen).
type Config struct {
	// Issuer is the authorization server's issuer URL (OKTA_ISSUER), e.g.
	// https://{yourOktaDomain}/oauth2/default. It must equal the tokens'
	// iss claim exactly. https, or http on a loopback host. Required unless
	// Dev; under Dev it is empty and the in-process issuer supplies it.
	Issuer string
	// Audience is the audience tokens must carry (OKTA_AUDIENCE,
	// api://default). Under Dev the development issuer uses it too.
	Audience string
	// ClientID and ClientSecret (OKTA_CLIENT_ID, OKTA_CLIENT_SECRET) are
	// tokengate's own credentials for the introspection endpoint. Required
	// in remote and hybrid mode, unused in local mode. Never logged.
	ClientID, ClientSecret string

	// ListenAddr is the host:port to serve on (LISTEN_ADDR or --listen,
	// 127.0.0.1:8000). Port 0 picks a free port. Under Dev it must be a
	// loopback address.
	ListenAddr string
	// AdminAddr, when set, opens a second listener on this host:port that
	// serves the Go runtime profiles under /debug/pprof/ (ADMIN_ADDR,
	// empty = no admin listener). It must be a loopback address unless
	// AdminAllowNonLoopback: profiles show code paths, memory and command
	// lines, so they are for the operator on the machine, not the network.
	AdminAddr string
	// AdminAllowNonLoopback lets AdminAddr be a non-loopback address
	// (ADMIN_ALLOW_NON_LOOPBACK, false). Only behind a firewall or an
	// authenticating proxy: the admin listener has no authentication.
	AdminAllowNonLoopback bool
	// RequiredScope is the scope /items requires (REQUIRED_SCOPE, items).
	RequiredScope string
	// TokenScope is the scope /token requests when the caller names none
	// (TOKEN_SCOPE; defaults to RequiredScope).
	TokenScope string
	// TokenMaxConcurrent bounds the /token relays in flight at once
	// (TOKEN_MAX_CONCURRENT, 32); beyond it /token answers 503 with
	// Retry-After at once.
	TokenMaxConcurrent int
	// TrustedProxies are the peers whose X-Forwarded-For tokengate
	// believes (TRUSTED_PROXIES, comma-separated CIDRs; a bare address is
	// one host: /32 or /128; default 127.0.0.0/8,::1/128): the client of a
	// request from such a peer is the rightmost X-Forwarded-For entry
	// outside them. The decision endpoints answer only these peers.
	// "none" trusts nobody (an empty, non-nil list).
	TrustedProxies []netip.Prefix

	// Mode is the validation mode (VALIDATION_MODE, local).
	Mode Mode
	// ClockLeeway is the tolerance for exp, nbf and iat (CLOCK_LEEWAY, 60s).
	// As in auth.LocalConfig.Leeway, negative means none: CLOCK_LEEWAY=0
	// loads as Disabled. Load never leaves it 0 (auth's default).
	ClockLeeway time.Duration
	// MaxTokenSize is the largest token accepted, in bytes, checked before
	// parsing (MAX_TOKEN_SIZE, 8192).
	MaxTokenSize int
	// AllowedAlgorithms is the JWS algorithm allow-list
	// (ALLOWED_ALGORITHMS, comma-separated). Empty means the validator's
	// default, auth.DefaultAlgorithms; only algorithms of that list are
	// accepted, and none and HS* are refused with their own message.
	AllowedAlgorithms []string
	// AllowedClientIDs, when not empty, is the list of client ids (cid or
	// client_id) whose tokens are accepted (ALLOWED_CLIENT_IDS).
	AllowedClientIDs []string
	// RequireATJWT requires the RFC 9068 header typ "at+jwt"
	// (REQUIRE_AT_JWT, false). Okta does not send it.
	RequireATJWT bool
	// RSAFastVerify verifies RS256, RS384 and RS512 signatures of RSA
	// keys over 2048 bits with tokengate's variable-time public operation
	// instead of crypto/rsa (RSA_FAST_VERIFY, true): about six times
	// faster for the 4096-bit keys ORY Hydra uses. False uses crypto/rsa
	// for every key (auth.KeySetConfig.DisableFastRSA).
	RSAFastVerify bool

	// CacheMaxCost bounds the token cache, in bytes (CACHE_MAX_COST, 64MiB).
	CacheMaxCost int64
	// CacheMaxTTL caps how long a valid token stays cached in local and
	// hybrid mode (CACHE_MAX_TTL, 5m); never past the token's exp.
	CacheMaxTTL time.Duration
	// NegativeCacheTTL is how long a rejected token stays cached
	// (NEGATIVE_CACHE_TTL, 5s). As in authcache.Config.NegativeTTL,
	// negative disables negative caching: NEGATIVE_CACHE_TTL=0 loads as
	// Disabled. Load never leaves it 0 (authcache's default).
	NegativeCacheTTL time.Duration
	// IntrospectionCacheTTL caps how long an introspection result is
	// cached in remote mode (INTROSPECTION_CACHE_TTL, 30s). 0 means no
	// caching: every request is introspected. (It becomes the cache's
	// MaxTTL in remote mode only, and 0 its NoPositiveCaching switch: a
	// choice of the mode, not a second meaning of 0.)
	IntrospectionCacheTTL time.Duration
	// RevalidateAfter is the age after which hybrid mode re-introspects a
	// cached token in the background (REVALIDATE_AFTER, 30s).
	RevalidateAfter time.Duration
	// MaxStaleness is the age, since its last successful introspection,
	// past which hybrid mode no longer serves a cached token: the request
	// waits for a re-introspection and gets 503 if none can be had
	// (MAX_STALENESS, 2 × RevalidateAfter; at least RevalidateAfter).
	MaxStaleness time.Duration

	// RedisURL, when set, turns on the Redis second-level cache shared by
	// the replicas of a deployment (REDIS_URL: redis://[user:password@]
	// host[:port][/db], rediss:// for TLS, or unix://[user:password@]/path;
	// no query parameters). Remote and hybrid mode only (with PolicyFile,
	// whose issuers: list has modes of its own, cmd/server/app checks this
	// once it has read the file). It may carry a
	// password: errors print it redacted, and it is never logged. Empty
	// (the default) means no second level.
	RedisURL string
	// RedisSigningKey authenticates every entry and revocation message in
	// Redis with HMAC-SHA-256 (REDIS_SIGNING_KEY): at least 32 characters,
	// used as given, the same on every replica. Required with RedisURL.
	// Secret: never logged or echoed.
	RedisSigningKey string
	// RedisTimeout bounds every call to Redis (REDIS_TIMEOUT, 50ms): past
	// it the call is a miss.
	RedisTimeout time.Duration

	// IntrospectionAuthMethod is how tokengate authenticates at the
	// introspection endpoint (INTROSPECTION_AUTH_METHOD,
	// client_secret_basic; or client_secret_post).
	IntrospectionAuthMethod string
	// IntrospectionMaxConcurrent bounds in-flight introspections; beyond it
	// requests fail fast with 503 (INTROSPECTION_MAX_CONCURRENT, 64).
	IntrospectionMaxConcurrent int
	// IntrospectionMaxPerClient bounds the introspections in flight for
	// one client address (INTROSPECTION_MAX_PER_CLIENT, 8), so that one
	// source of unknown tokens cannot take every one of
	// IntrospectionMaxConcurrent. The address is the TCP peer's, or, when
	// the peer is one of TrustedProxies, the rightmost X-Forwarded-For
	// entry that is not.
	IntrospectionMaxPerClient int
	// IntrospectionTimeout bounds one introspection call
	// (INTROSPECTION_TIMEOUT, 5s).
	IntrospectionTimeout time.Duration
	// IntrospectionRequireAudience rejects, in remote and hybrid mode, an
	// active introspection response that carries no aud
	// (INTROSPECTION_REQUIRE_AUDIENCE, false). False checks aud only when
	// present, as RFC 7662 makes it optional.
	IntrospectionRequireAudience bool

	// JWKSRefreshInterval is the background JWKS refresh period
	// (JWKS_REFRESH_INTERVAL, 5m).
	JWKSRefreshInterval time.Duration
	// JWKSRefreshCooldown is the minimum gap between refreshes caused by
	// tokens naming an unknown kid (JWKS_REFRESH_COOLDOWN, 30s).
	JWKSRefreshCooldown time.Duration

	// JWKSURI, TokenEndpoint and IntrospectionEndpoint override what
	// discovery finds (JWKS_URI, TOKEN_ENDPOINT, INTROSPECTION_ENDPOINT;
	// empty = discover). Same URL rule as Issuer. Ignored under Dev.
	JWKSURI, TokenEndpoint, IntrospectionEndpoint string

	// LogFormat is json or console (LOG_FORMAT; json, console under Dev).
	LogFormat string
	// LogLevel is debug, info, warn or error (LOG_LEVEL, info).
	LogLevel string
	// ShutdownTimeout bounds the graceful stop: in-flight requests get this
	// long to finish (SHUTDOWN_TIMEOUT, 10s), counted from the end of the
	// drain delay.
	ShutdownTimeout time.Duration
	// ShutdownDrainDelay is how long tokengate keeps serving after SIGTERM,
	// with /readyz answering 503 and every response carrying Connection:
	// close, before it stops accepting connections
	// (SHUTDOWN_DRAIN_DELAY, 0: stop accepting at once). Set it to the time
	// the load balancer or orchestrator takes to stop sending traffic.
	ShutdownDrainDelay time.Duration

	// TLSCertFile and TLSKeyFile are PEM files of the listener's
	// certificate chain and private key (TLS_CERT_FILE, TLS_KEY_FILE).
	// Both set: tokengate serves HTTPS (TLS 1.2 or later) and re-reads
	// them on SIGHUP. Both empty: plain HTTP. Not with Dev.
	TLSCertFile, TLSKeyFile string

	// PolicyFile is the route policy of the decision endpoints
	// (POLICY_FILE; empty: any valid token with RequiredScope, and the
	// default claim headers). The file is read and checked at start and
	// on SIGHUP by package policy; config only checks that it is named.
	PolicyFile string

	// UpstreamURL turns on gateway mode (UPSTREAM_URL; empty: off): every
	// request but tokengate's own /healthz, /readyz, /metrics and /auth/…
	// is decided by the policy and, when allowed, forwarded to this
	// http(s)://host:port, and the demo routes are not served. It has no
	// path, query or credentials: the request target is forwarded as
	// received.
	UpstreamURL string
	// UpstreamTimeout is how long the upstream may stay silent (UPSTREAM_TIMEOUT,
	// 30s): no response header, or no byte of a streamed body either way,
	// for this long answers 504 or cuts the exchange.
	UpstreamTimeout time.Duration
	// StripAuthorization keeps the client's Authorization header from the
	// upstream in gateway mode (STRIP_AUTHORIZATION, false: forwarded).
	StripAuthorization bool

	// Dev runs the development authorization server in-process and points
	// tokengate at it (--dev). Issuer, ClientID, ClientSecret and the
	// endpoint overrides are then ignored (see DevIgnored).
	Dev bool
	// DevClientID and DevClientSecret are the development issuer's one
	// client (--dev-client-id dev-client, --dev-client-secret dev-secret).
	// tokengate also uses them for introspection under Dev.
	DevClientID, DevClientSecret string
	// DevIssuerAddr is where the development issuer listens
	// (--dev-issuer-addr, 127.0.0.1:0 = a free loopback port). Loopback only.
	DevIssuerAddr string
	// DevIgnored names the variables that were set but are ignored because
	// Dev supplies them (for a warning in the log).
	DevIgnored []string

	// dotenv is what Load read from the .env file, for Getenv (nil: no
	// file, or an empty one). A pointer, so that printing a Config shows
	// an address, not the file's values, which may be secrets.
	dotenv *dotenvVars
}

// dotenvVars holds the variables of a .env file.
type dotenvVars struct{ vars map[string]string }

// Getenv returns a lookup of environment variables that reads them as Load
// reads a setting, flags aside: getenv's value (the process environment;
// nil means none) when not empty, else the value in the .env file Load
// read, else "". cmd/server reads with it the variables that the policy
// file's issuers name for their client credentials. The values may be
// secrets: never log them.
func (c *Config) Getenv(getenv func(string) string) func(string) string {
	var vars map[string]string
	if c.dotenv != nil {
		vars = c.dotenv.vars
	}
	return func(name string) string {
		v, _ := lookupEnv(getenv, vars, name)
		return v
	}
}

// lookupEnv is the one rule for the environment against .env: getenv's
// value when not empty, else dotenv's when not empty. src is
// "environment", ".env file", or "" when neither has a value.
func lookupEnv(getenv func(string) string, dotenv map[string]string, name string) (v, src string) {
	if getenv != nil {
		if v := getenv(name); v != "" {
			return v, "environment"
		}
	}
	if v := dotenv[name]; v != "" {
		return v, ".env file"
	}
	return "", ""
}

// Error is a configuration error. Its message names the variable (or the
// flag, for flag-only settings), says what is wrong, and where the value
// came from.
type Error struct {
	Var    string // e.g. "OKTA_ISSUER", or "--dev-issuer-addr"
	Msg    string // what is wrong, and how to fix it where that helps
	Source string // "flag --x", "environment", ".env file", "default" or ""
	Err    error  // underlying parse error, if any
}

func (e *Error) Error() string {
	s := "config: " + e.Var + ": " + e.Msg
	if e.Source != "" && e.Source != "default" {
		s += " (from " + e.Source + ")"
	}
	return s
}

// Unwrap returns the underlying parse error.
func (e *Error) Unwrap() error { return e.Err }

// setting describes one configurable value.
type setting struct {
	env    string // environment variable; "" for flag-only settings
	flag   string // flag name without dashes
	alias  string // optional second flag name
	def    string // default, in the same syntax as a value
	defDoc string // default as shown in Usage, when def is not enough
	usage  string
	isBool bool
	secret bool // never echo the value
	// verbatim settings are used as given (URLs, addresses, paths,
	// identifiers, secrets): white space around the value is refused
	// rather than kept, since it would never match what it names.
	verbatim bool
	set      func(c *Config, v string) error
}

// name is how errors and Usage refer to the setting.
func (s *setting) name() string {
	if s.env != "" {
		return s.env
	}
	return "--" + s.flag
}

var errEmpty = errors.New("empty")

// errSurroundingSpace refuses white space around a verbatim setting: a
// newline that a Secret or a file brought along, or a space pasted with
// it, would otherwise become part of an issuer, audience, address or
// credential and match nothing. Its message never quotes the value (Load
// quotes it, unless secret).
var errSurroundingSpace = errors.New("has white space (a space, tab or line break) before or after it, which would be part of the value; remove it")

func settings() []setting {
	return []setting{
		{env: "OKTA_ISSUER", verbatim: true, flag: "okta-issuer", usage: "issuer URL of the authorization server, e.g. https://{yourOktaDomain}/oauth2/default (required unless --dev)",
			set: func(c *Config, v string) error { c.Issuer = v; return nil }},
		{env: "OKTA_AUDIENCE", verbatim: true, flag: "okta-audience", def: "api://default", usage: "audience the tokens must carry",
			set: func(c *Config, v string) error { c.Audience = v; return nonEmpty(v) }},
		{env: "OKTA_CLIENT_ID", verbatim: true, flag: "okta-client-id", usage: "tokengate's client id for introspection (remote and hybrid mode)",
			set: func(c *Config, v string) error { c.ClientID = v; return nil }},
		{env: "OKTA_CLIENT_SECRET", verbatim: true, flag: "okta-client-secret", secret: true, usage: "tokengate's client secret for introspection (remote and hybrid mode)",
			set: func(c *Config, v string) error { c.ClientSecret = v; return nil }},
		{env: "LISTEN_ADDR", verbatim: true, flag: "listen-addr", alias: "listen", def: "127.0.0.1:8000", usage: "host:port to serve on (port 0: any free port)",
			set: func(c *Config, v string) error { c.ListenAddr = v; return checkHostPort(v) }},
		{env: "ADMIN_ADDR", verbatim: true, flag: "admin-addr", defDoc: "(off)", usage: "host:port of an opt-in admin listener serving /debug/pprof/ (loopback only unless ADMIN_ALLOW_NON_LOOPBACK)",
			set: func(c *Config, v string) error { c.AdminAddr = v; return checkHostPort(v) }},
		{env: "ADMIN_ALLOW_NON_LOOPBACK", flag: "admin-allow-non-loopback", def: "false", isBool: true, usage: "let ADMIN_ADDR be a non-loopback address (the admin listener has no authentication)",
			set: boolField(func(c *Config) *bool { return &c.AdminAllowNonLoopback })},
		{env: "REQUIRED_SCOPE", flag: "required-scope", def: "items", usage: "scope that /items and /items/{id} require",
			set: func(c *Config, v string) error { c.RequiredScope = v; return checkScope(v, false) }},
		{env: "TOKEN_SCOPE", flag: "token-scope", defDoc: "REQUIRED_SCOPE", usage: "scope /token requests when the caller names none (space-separated)",
			set: func(c *Config, v string) error { c.TokenScope = v; return checkScope(v, true) }},
		{env: "TOKEN_MAX_CONCURRENT", flag: "token-max-concurrent", def: "32", usage: "/token relays in flight at once; beyond it /token gets 503 at once",
			set: intIn(func(c *Config) *int { return &c.TokenMaxConcurrent }, 1, 100000)},
		{env: "TRUSTED_PROXIES", flag: "trusted-proxies", def: "127.0.0.0/8,::1/128", usage: "comma-separated CIDRs (or addresses) of proxies whose X-Forwarded-For is believed",
			set: func(c *Config, v string) error {
				p, err := parsePrefixes(v)
				c.TrustedProxies = p
				return err
			}},
		{env: "VALIDATION_MODE", flag: "validation-mode", def: "local", usage: "local (JWT + JWKS), remote (RFC 7662 introspection) or hybrid",
			set: func(c *Config, v string) error {
				switch m := Mode(strings.ToLower(v)); m {
				case ModeLocal, ModeRemote, ModeHybrid:
					c.Mode = m
					return nil
				}
				return fmt.Errorf("must be local, remote or hybrid")
			}},
		{env: "CLOCK_LEEWAY", flag: "clock-leeway", def: "60s", usage: "tolerance for exp, nbf and iat (0 = none)",
			set: durationOrDisabled(func(c *Config) *time.Duration { return &c.ClockLeeway }, 10*time.Minute)},
		{env: "MAX_TOKEN_SIZE", flag: "max-token-size", def: "8192", usage: "largest token accepted, in bytes",
			set: intIn(func(c *Config) *int { return &c.MaxTokenSize }, 256, 64<<10)},
		{env: "ALLOWED_ALGORITHMS", flag: "allowed-algorithms", defDoc: defaultAlgorithms, usage: "comma-separated JWS algorithm allow-list (none and HS* are never allowed)",
			set: func(c *Config, v string) error {
				algs, err := parseAlgorithms(v)
				c.AllowedAlgorithms = algs
				return err
			}},
		{env: "ALLOWED_CLIENT_IDS", flag: "allowed-client-ids", defDoc: "(any)", usage: "comma-separated client ids whose tokens are accepted",
			set: func(c *Config, v string) error {
				// Only commas and spaces would mean "any client": refused,
				// as an empty ALLOWED_ALGORITHMS or TRUSTED_PROXIES is. An
				// empty flag, like an empty variable, leaves the default.
				if c.AllowedClientIDs = splitList(v); len(c.AllowedClientIDs) == 0 && v != "" {
					return errEmpty
				}
				return nil
			}},
		{env: "REQUIRE_AT_JWT", flag: "require-at-jwt", def: "false", isBool: true, usage: `require the RFC 9068 header typ "at+jwt"`,
			set: boolField(func(c *Config) *bool { return &c.RequireATJWT })},
		{env: "RSA_FAST_VERIFY", flag: "rsa-fast-verify", def: "true", isBool: true, usage: "verify RS256/384/512 with RSA keys over 2048 bits by a faster variable-time public operation (false: crypto/rsa)",
			set: boolField(func(c *Config) *bool { return &c.RSAFastVerify })},
		{env: "CACHE_MAX_COST", flag: "cache-max-cost", def: "64MiB", usage: "token cache bound in bytes (e.g. 67108864, 64MiB, 1GiB)",
			set: func(c *Config, v string) error {
				n, err := parseByteSize(v)
				if err != nil {
					return err
				}
				if n < 1<<10 {
					return fmt.Errorf("must be at least 1KiB")
				}
				if n > maxCacheMaxCost {
					return fmt.Errorf("must be at most 64GiB")
				}
				c.CacheMaxCost = n
				return nil
			}},
		{env: "CACHE_MAX_TTL", flag: "cache-max-ttl", def: "5m", usage: "longest a valid token stays cached (never past its exp)",
			set: durationIn(func(c *Config) *time.Duration { return &c.CacheMaxTTL }, time.Second, 24*time.Hour)},
		{env: "NEGATIVE_CACHE_TTL", flag: "negative-cache-ttl", def: "5s", usage: "how long a rejected token stays cached (0 = not cached)",
			set: durationOrDisabled(func(c *Config) *time.Duration { return &c.NegativeCacheTTL }, time.Hour)},
		{env: "INTROSPECTION_CACHE_TTL", flag: "introspection-cache-ttl", def: "30s", usage: "remote mode: longest an introspection result is cached (0 = every request is introspected)",
			set: durationIn(func(c *Config) *time.Duration { return &c.IntrospectionCacheTTL }, 0, 24*time.Hour)},
		{env: "REVALIDATE_AFTER", flag: "revalidate-after", def: "30s", usage: "hybrid mode: age after which a cached token is re-introspected in the background",
			set: durationIn(func(c *Config) *time.Duration { return &c.RevalidateAfter }, time.Second, 24*time.Hour)},
		{env: "MAX_STALENESS", flag: "max-staleness", defDoc: "2 × REVALIDATE_AFTER", usage: "hybrid mode: age past which a cached token is not served until re-introspected (503 if that fails)",
			set: durationIn(func(c *Config) *time.Duration { return &c.MaxStaleness }, time.Second, 48*time.Hour)},
		{env: "REDIS_URL", verbatim: true, flag: "redis-url", defDoc: "(none)", usage: "remote and hybrid mode: Redis second-level cache shared by the replicas, redis://[user:password@]host[:port][/db] or rediss://",
			set: func(c *Config, v string) error { c.RedisURL = v; return checkRedisURL(v) }},
		{env: "REDIS_SIGNING_KEY", verbatim: true, flag: "redis-signing-key", secret: true, usage: "with REDIS_URL: HMAC key (32+ random characters, the same on every replica) that authenticates what tokengate writes to Redis",
			set: func(c *Config, v string) error {
				c.RedisSigningKey = v
				if len(v) < minRedisSigningKeyLen {
					return fmt.Errorf("must be at least %d characters (random, the same on every replica), got %d", minRedisSigningKeyLen, len(v))
				}
				return nil
			}},
		{env: "REDIS_TIMEOUT", flag: "redis-timeout", def: "50ms", usage: "with REDIS_URL: bound on every Redis call (past it, a miss)",
			set: durationIn(func(c *Config) *time.Duration { return &c.RedisTimeout }, time.Millisecond, 10*time.Second)},
		{env: "INTROSPECTION_AUTH_METHOD", flag: "introspection-auth-method", def: AuthClientSecretBasic, usage: "client_secret_basic or client_secret_post",
			set: func(c *Config, v string) error {
				switch v {
				case AuthClientSecretBasic, AuthClientSecretPost:
					c.IntrospectionAuthMethod = v
					return nil
				}
				return fmt.Errorf("must be %s or %s", AuthClientSecretBasic, AuthClientSecretPost)
			}},
		{env: "INTROSPECTION_MAX_CONCURRENT", flag: "introspection-max-concurrent", def: "64", usage: "in-flight introspections; beyond it requests get 503 at once",
			set: intIn(func(c *Config) *int { return &c.IntrospectionMaxConcurrent }, 1, 100000)},
		{env: "INTROSPECTION_MAX_PER_CLIENT", flag: "introspection-max-per-client", def: "8", usage: "in-flight introspections for one client address; beyond it its requests get 503 at once",
			set: intIn(func(c *Config) *int { return &c.IntrospectionMaxPerClient }, 1, 100000)},
		{env: "INTROSPECTION_TIMEOUT", flag: "introspection-timeout", def: "5s", usage: "bound on one introspection call",
			set: durationIn(func(c *Config) *time.Duration { return &c.IntrospectionTimeout }, time.Millisecond, time.Minute)},
		{env: "INTROSPECTION_REQUIRE_AUDIENCE", flag: "introspection-require-audience", def: "false", isBool: true, usage: "remote and hybrid mode: reject an active introspection response without aud",
			set: boolField(func(c *Config) *bool { return &c.IntrospectionRequireAudience })},
		{env: "JWKS_REFRESH_INTERVAL", flag: "jwks-refresh-interval", def: "5m", usage: "background JWKS refresh period (Cache-Control max-age honoured between 1m and this)",
			set: durationIn(func(c *Config) *time.Duration { return &c.JWKSRefreshInterval }, time.Second, 24*time.Hour)},
		{env: "JWKS_REFRESH_COOLDOWN", flag: "jwks-refresh-cooldown", def: "30s", usage: "minimum gap between JWKS refreshes caused by unknown kids",
			set: durationIn(func(c *Config) *time.Duration { return &c.JWKSRefreshCooldown }, time.Second, time.Hour)},
		{env: "JWKS_URI", verbatim: true, flag: "jwks-uri", defDoc: "(discovered)", usage: "explicit JWKS URL",
			set: func(c *Config, v string) error { c.JWKSURI = v; return checkURL(v, false) }},
		{env: "TOKEN_ENDPOINT", verbatim: true, flag: "token-endpoint", defDoc: "(discovered)", usage: "explicit token endpoint URL for /token",
			set: func(c *Config, v string) error { c.TokenEndpoint = v; return checkURL(v, false) }},
		{env: "INTROSPECTION_ENDPOINT", verbatim: true, flag: "introspection-endpoint", defDoc: "(discovered)", usage: "explicit RFC 7662 introspection endpoint URL",
			set: func(c *Config, v string) error { c.IntrospectionEndpoint = v; return checkURL(v, false) }},
		{env: "LOG_FORMAT", flag: "log-format", defDoc: "json (console under --dev)", usage: "json or console",
			set: func(c *Config, v string) error {
				switch v {
				case LogJSON, LogConsole:
					c.LogFormat = v
					return nil
				}
				return fmt.Errorf("must be json or console")
			}},
		{env: "LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error",
			set: func(c *Config, v string) error {
				switch v = strings.ToLower(v); v {
				case "debug", "info", "warn", "error":
					c.LogLevel = v
					return nil
				}
				return fmt.Errorf("must be debug, info, warn or error")
			}},
		{env: "SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", def: "10s", usage: "how long in-flight requests get to finish on SIGINT/SIGTERM",
			set: durationIn(func(c *Config) *time.Duration { return &c.ShutdownTimeout }, time.Millisecond, 10*time.Minute)},
		{env: "POLICY_FILE", verbatim: true, flag: "policy-file", defDoc: "(none: any valid token with REQUIRED_SCOPE)", usage: "YAML route policy of the decision endpoints /auth/forward, /auth/request, /auth/envoy/ (re-read on SIGHUP)",
			set: func(c *Config, v string) error { c.PolicyFile = v; return nil }},
		{env: "UPSTREAM_URL", verbatim: true, flag: "upstream-url", defDoc: "(off: no gateway mode)", usage: "gateway mode: forward every allowed request (but /healthz, /readyz, /metrics, /auth/…) to this http(s)://host:port; the demo routes are not served",
			set: func(c *Config, v string) error { c.UpstreamURL = v; return checkUpstreamURL(v) }},
		{env: "UPSTREAM_TIMEOUT", flag: "upstream-timeout", def: "30s", usage: "gateway mode: how long the upstream may stay silent (response header, or a body byte either way) before 504 or a cut",
			set: durationIn(func(c *Config) *time.Duration { return &c.UpstreamTimeout }, time.Millisecond, 24*time.Hour)},
		{env: "STRIP_AUTHORIZATION", flag: "strip-authorization", def: "false", isBool: true, usage: "gateway mode: do not forward the client's Authorization header to the upstream",
			set: boolField(func(c *Config) *bool { return &c.StripAuthorization })},
		{env: "SHUTDOWN_DRAIN_DELAY", flag: "shutdown-drain-delay", def: "0s", usage: "on SIGTERM, how long to keep serving (/readyz 503, Connection: close) before refusing connections: the load balancer's endpoint-removal time",
			set: durationIn(func(c *Config) *time.Duration { return &c.ShutdownDrainDelay }, 0, 10*time.Minute)},
		{env: "TLS_CERT_FILE", verbatim: true, flag: "tls-cert-file", defDoc: "(plain HTTP)", usage: "PEM certificate chain of the listener: serve HTTPS (with TLS_KEY_FILE; re-read on SIGHUP)",
			set: func(c *Config, v string) error { c.TLSCertFile = v; return nil }},
		{env: "TLS_KEY_FILE", verbatim: true, flag: "tls-key-file", defDoc: "(plain HTTP)", usage: "PEM private key of the listener's certificate (with TLS_CERT_FILE)",
			set: func(c *Config, v string) error { c.TLSKeyFile = v; return nil }},
		{flag: "dev", def: "false", isBool: true, usage: "run the development authorization server in-process (no Okta account needed); loopback only",
			set: boolField(func(c *Config) *bool { return &c.Dev })},
		{flag: "dev-client-id", verbatim: true, def: "dev-client", usage: "--dev: the development issuer's client id",
			set: func(c *Config, v string) error { c.DevClientID = v; return nonEmpty(v) }},
		{flag: "dev-client-secret", verbatim: true, secret: true, def: "dev-secret", usage: "--dev: the development issuer's client secret",
			set: func(c *Config, v string) error { c.DevClientSecret = v; return nonEmpty(v) }},
		{flag: "dev-issuer-addr", verbatim: true, def: "127.0.0.1:0", usage: "--dev: loopback host:port of the development issuer (port 0: any free port)",
			set: func(c *Config, v string) error {
				c.DevIssuerAddr = v
				if err := checkHostPort(v); err != nil {
					return err
				}
				if !isLoopbackHostPort(v) {
					return fmt.Errorf("must be a loopback address such as 127.0.0.1:0")
				}
				return nil
			}},
	}
}

// rawValue is a flag.Value that only records the string it was given.
type rawValue struct {
	v      string
	set    bool
	isBool bool
}

func (r *rawValue) String() string     { return r.v }
func (r *rawValue) Set(s string) error { r.v, r.set = s, true; return nil }
func (r *rawValue) IsBoolFlag() bool   { return r.isBool }

// Load builds the Config from command-line arguments (without the program
// name), the environment (getenv; nil means no environment) and the .env
// file at dotenvPath ("" means none; a missing file is fine, a malformed one
// is an error). Flags win over the environment, which wins over .env, which
// wins over the defaults; an empty environment variable counts as unset.
//
// The error is ErrHelp when args ask for help, otherwise an *Error (or, for
// an unknown flag, an error from package flag prefixed "config:").
func Load(args []string, getenv func(string) string, dotenvPath string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	table := settings()

	fset := flag.NewFlagSet("tokengate", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	raws := make([]*rawValue, len(table))
	for i := range table {
		s := &table[i]
		raws[i] = &rawValue{isBool: s.isBool}
		fset.Var(raws[i], s.flag, s.usage)
		if s.alias != "" {
			fset.Var(raws[i], s.alias, s.usage)
		}
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, ErrHelp
		}
		return Config{}, fmt.Errorf("config: %w (run with -h for the list of flags)", err)
	}
	if fset.NArg() > 0 {
		// The stray argument is not quoted: it is often a value typed
		// apart from its flag ("--okta-client-secret= s3cret").
		if fset.NArg() == len(args) { // the first argument: no flag's value
			return Config{}, &Error{Var: "arguments", Msg: fmt.Sprintf("unexpected argument %q (every setting is a flag: --name=value)", fset.Arg(0))}
		}
		return Config{}, &Error{Var: "arguments", Msg: fmt.Sprintf("unexpected argument after %s, not shown since it may be a secret (every setting is a flag: --name=value)", strayAfter(args, fset.NArg()))}
	}

	dotenv, err := readDotenv(dotenvPath)
	if err != nil {
		return Config{}, err
	}

	var c Config
	sources := make(map[string]string, len(table))
	for i := range table {
		s := &table[i]
		v, src := s.def, "default"
		if s.env != "" {
			if ev, esrc := lookupEnv(getenv, dotenv, s.env); esrc != "" {
				v, src = ev, esrc
			}
		}
		if raws[i].set {
			v, src = raws[i].v, "flag --"+s.flag
		}
		sources[s.name()] = src
		if v == "" && src == "default" {
			continue // no default: the field stays zero (checked below)
		}
		err := errSurroundingSpace
		if !s.verbatim || v == strings.TrimSpace(v) {
			err = s.set(&c, v)
		}
		if err != nil {
			msg := err.Error()
			if errors.Is(err, errEmpty) {
				msg = "must not be empty"
			} else if !s.secret {
				msg = fmt.Sprintf("%q: %s", redactUserinfo(v), msg)
			}
			return Config{}, &Error{Var: s.name(), Msg: msg, Source: src, Err: err}
		}
	}

	if err := c.finish(sources); err != nil {
		return Config{}, err
	}
	if len(dotenv) > 0 {
		c.dotenv = &dotenvVars{vars: dotenv}
	}
	return c, nil
}

// finish fills the defaults that depend on other settings and checks the
// rules that span several settings.
func (c *Config) finish(sources map[string]string) error {
	fail := func(name, msg string) error {
		return &Error{Var: name, Msg: msg, Source: sources[name]}
	}
	if c.TokenScope == "" {
		c.TokenScope = c.RequiredScope
	}
	if c.MaxStaleness == 0 {
		c.MaxStaleness = 2 * c.RevalidateAfter
	}
	if c.MaxStaleness < c.RevalidateAfter {
		return fail("MAX_STALENESS", fmt.Sprintf("%s is below REVALIDATE_AFTER (%s); a token must be re-checked before it is too stale to serve",
			fmtDuration(c.MaxStaleness), fmtDuration(c.RevalidateAfter)))
	}
	if c.AdminAddr != "" && !c.AdminAllowNonLoopback && !isLoopbackHostPort(c.AdminAddr) {
		return fail("ADMIN_ADDR", fmt.Sprintf("%q: the admin listener (pprof) serves only on loopback, e.g. 127.0.0.1:6060; set ADMIN_ALLOW_NON_LOOPBACK=true to expose it anyway", c.AdminAddr))
	}
	if err := c.checkRedis(fail); err != nil {
		return err
	}
	if c.LogFormat == "" {
		c.LogFormat = LogJSON
		if c.Dev {
			c.LogFormat = LogConsole
		}
	}

	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		set, unset := "TLS_CERT_FILE", "TLS_KEY_FILE"
		if c.TLSCertFile == "" {
			set, unset = unset, set
		}
		return fail(unset, fmt.Sprintf("not set while %s is; set both to serve HTTPS, or neither", set))
	}
	if c.Dev && c.TLSCertFile != "" {
		return fail("TLS_CERT_FILE", "--dev serves plain HTTP on loopback; unset TLS_CERT_FILE and TLS_KEY_FILE, or run without --dev")
	}

	if c.Dev {
		for _, name := range []string{"OKTA_ISSUER", "OKTA_CLIENT_ID", "OKTA_CLIENT_SECRET", "JWKS_URI", "TOKEN_ENDPOINT", "INTROSPECTION_ENDPOINT"} {
			if sources[name] != "default" {
				c.DevIgnored = append(c.DevIgnored, name)
			}
		}
		c.Issuer, c.ClientID, c.ClientSecret = "", "", ""
		c.JWKSURI, c.TokenEndpoint, c.IntrospectionEndpoint = "", "", ""
		if !isLoopbackHostPort(c.ListenAddr) {
			return fail("LISTEN_ADDR", fmt.Sprintf("%q: --dev serves only on loopback; use e.g. 127.0.0.1:8000", c.ListenAddr))
		}
		return nil
	}

	if c.Issuer == "" && c.PolicyFile != "" {
		// The policy file may list the issuers instead; tokengate refuses
		// to start when it does not.
		return nil
	}
	if c.Issuer == "" {
		return fail("OKTA_ISSUER", "not set; set it to your authorization server's issuer (e.g. https://{yourOktaDomain}/oauth2/default) or run with --dev")
	}
	if err := checkURL(c.Issuer, true); err != nil {
		return fail("OKTA_ISSUER", fmt.Sprintf("%q: %s; set it or run with --dev", redactUserinfo(c.Issuer), err))
	}
	if c.Mode == ModeRemote || c.Mode == ModeHybrid {
		if c.ClientID == "" {
			return fail("OKTA_CLIENT_ID", fmt.Sprintf("required when VALIDATION_MODE=%s (tokengate authenticates at the introspection endpoint); set it or use VALIDATION_MODE=local", c.Mode))
		}
		if c.ClientSecret == "" {
			return fail("OKTA_CLIENT_SECRET", fmt.Sprintf("required when VALIDATION_MODE=%s (tokengate authenticates at the introspection endpoint); set it or use VALIDATION_MODE=local", c.Mode))
		}
	}
	return nil
}

// maxCacheMaxCost bounds CACHE_MAX_COST. The cache allocates its
// admission counters at start, in proportion to the bound (about 5 % of
// it, rounded up to a power of two), so a bound of petabytes made
// tokengate die at start, out of memory or with a makeslice panic, instead
// of refusing the setting; 64GiB (some 50 million tokens) keeps that
// allocation to a few GiB.
const maxCacheMaxCost = 64 << 30

// minRedisSigningKeyLen is sharedcache.MinSigningKeyLen, which config may
// not import.
const minRedisSigningKeyLen = 32

// checkRedis checks the rules that tie the second-level settings to each
// other and to the mode.
func (c *Config) checkRedis(fail func(name, msg string) error) error {
	switch {
	case c.RedisURL == "" && c.RedisSigningKey != "":
		return fail("REDIS_SIGNING_KEY", "set without REDIS_URL; set REDIS_URL to use the second-level cache, or unset REDIS_SIGNING_KEY")
	case c.RedisURL == "":
		return nil
	case c.RedisSigningKey == "":
		return fail("REDIS_SIGNING_KEY", "required with REDIS_URL: at least 32 random characters, the same on every replica (e.g. openssl rand -hex 32)")
	case c.Mode == ModeLocal && c.PolicyFile == "":
		// With a policy file, an issuers: list there replaces
		// VALIDATION_MODE with its issuers' own modes: cmd/server/app
		// checks them once it has read the file.
		return fail("REDIS_URL", "VALIDATION_MODE=local checks a token in microseconds without a network call and learns of no revocation, so a Redis round trip gains nothing; the second level serves remote and hybrid mode: unset REDIS_URL or change VALIDATION_MODE")
	}
	return nil
}

// checkRedisURL checks the shape of REDIS_URL; the Redis client parses it
// again when tokengate starts. Messages never quote the value (Load
// prefixes it, redacted).
func checkRedisURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("does not parse as a URL")
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("needs a host: redis://host:6379/0")
		}
		if err := checkURLPort(u); err != nil {
			return err
		}
		if p := strings.TrimPrefix(u.Path, "/"); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 0 {
				return fmt.Errorf("the path must be a database number, e.g. redis://host:6379/0")
			}
		}
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("needs a socket path: unix:///run/redis.sock")
		}
	default:
		return fmt.Errorf("must be a redis://, rediss:// or unix:// URL")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return fmt.Errorf("must not carry query parameters or a fragment: the timeouts are REDIS_TIMEOUT")
	}
	return nil
}

// strayAfter names what precedes the first of the last n arguments (the
// ones flag parsing left over, n < len(args)): a flag, shown without any
// value it carries.
func strayAfter(args []string, n int) string {
	prev := args[len(args)-n-1]
	if prev == "--" {
		return `"--"`
	}
	if name, _, ok := strings.Cut(prev, "="); ok {
		return strconv.Quote(name + "=")
	}
	if strings.HasPrefix(prev, "-") {
		return strconv.Quote(prev)
	}
	return "a flag's value"
}

// readDotenv parses the .env file. A missing file yields an empty map.
// Parse errors never quote the file's contents, which may hold secrets.
func readDotenv(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{Var: ".env", Msg: fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err)), Err: err}
	}
	// A byte-order mark, as some Windows editors write, is not part of the
	// first name.
	src = bytes.TrimPrefix(src, []byte("\uFEFF"))
	m, err := godotenv.UnmarshalBytes(src)
	if err != nil {
		return nil, &Error{Var: ".env", Msg: fmt.Sprintf("%s: %s; lines must read NAME=value", path, describeDotenvError(src, err)), Err: errDotenvSyntax}
	}
	if err := checkDotenv(path, src); err != nil {
		return nil, err
	}
	return m, nil
}

// dotenvReference is how godotenv finds a variable reference ($NAME,
// ${NAME}) in an unquoted or double-quoted value, which it replaces by the
// value an earlier line of the file gave NAME, or by nothing; a reference
// preceded by a backslash is kept, without the backslash.
var dotenvReference = regexp.MustCompile(`(\\)?(\$)(\()?\{?([A-Z0-9_]+)?\}?`)

// checkDotenv refuses what godotenv accepts but silently resolves one way
// or another: a name set on two lines (the last would win), and a value
// whose '$' godotenv would replace by nothing because no earlier line sets
// the name after it (a secret holding "$1" or "$X" would lose part of
// itself). It walks the statements as godotenv's parser does, on a file
// that parser has accepted. Errors name the variable and its line, never
// the value.
func checkDotenv(path string, src []byte) error {
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	seen := make(map[string]int) // name -> line
	rest := src
	for {
		i := bytes.IndexFunc(rest, func(r rune) bool { return !unicode.IsSpace(r) })
		if i < 0 {
			return nil
		}
		rest = rest[i:]
		if rest[0] == '#' {
			j := bytes.IndexByte(rest, '\n')
			if j < 0 {
				return nil
			}
			rest = rest[j:]
			continue
		}
		line := lineAt(src, len(src)-len(rest))
		if t, ok := bytes.CutPrefix(rest, []byte("export")); ok && bytes.IndexFunc(t, isDotenvSpace) == 0 {
			rest = bytes.TrimLeftFunc(t, isDotenvSpace)
		}
		eq := bytes.IndexAny(rest, "=:")
		if eq < 0 {
			return nil // godotenv accepted the file: nothing else can follow
		}
		name := strings.TrimRightFunc(string(rest[:eq]), unicode.IsSpace)
		v := bytes.TrimLeftFunc(rest[eq+1:], isDotenvSpace)
		var value []byte
		expands := true
		if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
			end := -1
			for k := 1; k < len(v); k++ {
				if v[k] == v[0] && v[k-1] != '\\' {
					end = k
					break
				}
			}
			if end < 0 {
				return nil // godotenv would have refused it
			}
			value, rest, expands = v[1:end], v[end+1:], v[0] == '"'
		} else {
			end := bytes.IndexAny(v, "\n\r")
			if end < 0 {
				end = len(v)
			}
			lineRunes := []rune(string(v[:end]))
			cut := len(lineRunes)
			for k := cut - 1; k > 0; k-- { // a comment: " #" (the last one, as godotenv reads it)
				if lineRunes[k] == '#' && isDotenvSpace(lineRunes[k-1]) {
					cut = k
					break
				}
			}
			value, rest = []byte(string(lineRunes[:cut])), v[end:]
		}
		if first, ok := seen[name]; ok {
			return &Error{Var: name, Source: ".env file", Msg: fmt.Sprintf("set twice in %s, on lines %d and %d, and only the last would count; keep one", path, first, line)}
		}
		if expands {
			for _, m := range dotenvReference.FindAllSubmatch(value, -1) {
				if len(m[1]) > 0 || len(m[4]) == 0 {
					continue // escaped, or a '$' without a name: kept as written
				}
				if _, ok := seen[string(m[4])]; !ok {
					return &Error{Var: name, Source: ".env file", Msg: fmt.Sprintf("line %d of %s: the value holds a '$' followed by a name that no earlier line of the file sets, and .env reading would replace both by nothing; put the value in single quotes to keep it as written, or write \\$ for a '$'", line, path)}
				}
			}
		}
		seen[name] = line
	}
}

// isDotenvSpace is godotenv's white space within a line.
func isDotenvSpace(r rune) bool {
	switch r {
	case '\t', '\v', '\f', '\r', ' ', 0x85, 0xA0:
		return true
	}
	return false
}

var errDotenvSyntax = errors.New("config: .env syntax error")

// describeDotenvError turns godotenv's message, which quotes the rest of
// the file, into one that gives a line number instead.
func describeDotenvError(src []byte, err error) string {
	msg := err.Error()
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	switch {
	case strings.HasPrefix(msg, "unexpected character"):
		what := "unexpected character in a variable name"
		if i := strings.LastIndex(msg, " near "); i >= 0 {
			if rest, uerr := strconv.Unquote(msg[i+len(" near "):]); uerr == nil && len(rest) <= len(src) {
				what += fmt.Sprintf(" on line %d", lineAt(src, len(src)-len(rest)))
			}
		}
		return what
	case strings.HasPrefix(msg, "unterminated quoted value"):
		what := "unterminated quoted value"
		if tail := strings.TrimPrefix(msg, "unterminated quoted value "); tail != "" {
			if i := bytes.Index(src, []byte(tail)); i >= 0 {
				what += fmt.Sprintf(" on line %d", lineAt(src, i))
			}
		}
		return what
	case strings.Contains(msg, "zero length string"):
		return "a line has no variable name"
	}
	return "cannot parse"
}

func lineAt(src []byte, offset int) int {
	return bytes.Count(src[:offset], []byte("\n")) + 1
}

// Usage writes the list of settings: flag, environment variable, default
// and meaning.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tokengate [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every setting is a flag, an environment variable or a line in ./.env;")
	fmt.Fprintln(w, "flags win over the environment, which wins over .env.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tVARIABLE\tDEFAULT\tMEANING")
	for _, s := range settings() {
		flagName := "--" + s.flag
		if s.alias != "" {
			flagName += ", --" + s.alias
		}
		env := s.env
		if env == "" {
			env = "-"
		}
		def := s.def
		if s.defDoc != "" {
			def = s.defDoc
		}
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", flagName, env, def, s.usage)
	}
	tw.Flush()
}

// Variables returns the names of all environment variables Load reads, in
// the order of Usage (deployment manifests are checked against it).
func Variables() []string {
	var out []string
	for _, s := range settings() {
		if s.env != "" {
			out = append(out, s.env)
		}
	}
	return out
}

// Redacted replaces a secret's value where RedactArgs shows one.
const Redacted = "REDACTED"

// RedactArgs returns a copy of command-line arguments (without the program
// name) as Load reads them, with the value of every secret flag
// (--okta-client-secret, --redis-signing-key, --dev-client-secret) replaced
// by Redacted, in either form (--name=value, or --name value), and the
// password of --redis-url as errors show it, so that they can be shown:
// the admin listener's /debug/pprof/cmdline serves them. Arguments after
// a "--" are not flags and are kept.
func RedactArgs(args []string) []string {
	secret := make(map[string]func(string) string)
	for _, s := range settings() {
		var redact func(string) string
		switch {
		case s.secret:
			redact = func(string) string { return Redacted }
		case s.env == "REDIS_URL":
			redact = redactUserinfo
		default:
			continue
		}
		secret[s.flag] = redact
		if s.alias != "" {
			secret[s.alias] = redact
		}
	}
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		name, ok := strings.CutPrefix(a, "-")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "-")
		if n, v, hasValue := strings.Cut(name, "="); hasValue {
			if redact := secret[n]; redact != nil {
				out[i] = a[:len(a)-len(name)] + n + "=" + redact(v)
			}
			continue
		}
		if redact := secret[name]; redact != nil && i+1 < len(out) {
			i++
			out[i] = redact(out[i])
		}
	}
	return out
}

// flags returns the names of all flags Load accepts (without dashes).
func flags() []string {
	var out []string
	for _, s := range settings() {
		out = append(out, s.flag)
		if s.alias != "" {
			out = append(out, s.alias)
		}
	}
	return out
}

// parseByteSize parses a byte count: a plain integer, or one followed by
// B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000), with
// optional space and in any letter case ("64MiB", "64 mib", "67108864").
func parseByteSize(s string) (int64, error) {
	bad := fmt.Errorf("must be a byte count such as 67108864, 64MiB or 1GiB")
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, bad
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, bad
	}
	var mult int64
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		mult = 1
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "kb":
		mult = 1000
	case "mb":
		mult = 1000 * 1000
	case "gb":
		mult = 1000 * 1000 * 1000
	default:
		return 0, bad
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errEmpty
	}
	return nil
}

func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("must be a whole number between %d and %d", lo, hi)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("must be between %d and %d", lo, hi)
	}
	return n, nil
}

func durationIn(field func(*Config) *time.Duration, lo, hi time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("not a duration; use Go syntax such as 500ms, 30s or 5m")
		}
		if d < lo || d > hi {
			return fmt.Errorf("must be between %s and %s", fmtDuration(lo), fmtDuration(hi))
		}
		*field(c) = d
		return nil
	}
}

// durationOrDisabled returns a setter for a duration in [0, hi] where 0
// turns the feature off and is stored as Disabled.
func durationOrDisabled(field func(*Config) *time.Duration, hi time.Duration) func(*Config, string) error {
	set := durationIn(field, 0, hi)
	return func(c *Config, v string) error {
		if err := set(c, v); err != nil {
			return err
		}
		if *field(c) == 0 {
			*field(c) = Disabled
		}
		return nil
	}
}

// boolField returns a setter for a boolean field (strconv.ParseBool syntax).
func boolField(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		*field(c) = b
		return nil
	}
}

// intIn returns a setter for an integer field that must lie in [lo, hi].
func intIn(field func(*Config) *int, lo, hi int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v, lo, hi)
		if err != nil {
			return err
		}
		*field(c) = n
		return nil
	}
}

// fmtDuration prints 10m0s as 10m and 1h0m0s as 1h.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// parseAlgorithms reads ALLOWED_ALGORITHMS: names from defaultAlgorithms.
func parseAlgorithms(v string) ([]string, error) {
	algs := splitList(v)
	if len(algs) == 0 {
		return nil, errEmpty
	}
	known := strings.Split(defaultAlgorithms, ",")
	for _, a := range algs {
		if slices.Contains(known, a) {
			continue
		}
		if strings.EqualFold(a, "none") || strings.HasPrefix(strings.ToUpper(a), "HS") {
			return nil, fmt.Errorf("%s is never allowed (unsigned or symmetric: anyone holding the JWKS could forge tokens)", a)
		}
		return nil, fmt.Errorf("unknown algorithm %s; choose from %s", a, defaultAlgorithms)
	}
	return algs, nil
}

// parsePrefixes reads a comma-separated list of CIDR prefixes; a bare
// address stands for itself (/32 or /128). An error names the first bad
// entry.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	if strings.EqualFold(strings.TrimSpace(v), "none") {
		return []netip.Prefix{}, nil
	}
	entries := splitList(v)
	if len(entries) == 0 {
		return nil, errEmpty
	}
	out := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		var p netip.Prefix
		var err error
		if strings.Contains(e, "/") {
			p, err = netip.ParsePrefix(e)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(e); err == nil && a.Zone() == "" {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || !p.IsValid() {
			return nil, fmt.Errorf("entry %q is not a CIDR prefix or an IP address (e.g. 10.0.0.0/8, 192.0.2.7, ::1/128)", e)
		}
		if p.Addr().Is4In6() {
			// Client addresses are unmapped before they are compared.
			return nil, fmt.Errorf("entry %q: write IPv4 addresses and ranges in IPv4 form", e)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// checkScope accepts one scope token (RFC 6749 section 3.3), or with list a
// space-separated list of them.
func checkScope(v string, list bool) error {
	parts := []string{v}
	if list {
		parts = strings.Fields(v)
		if len(parts) == 0 {
			return errEmpty
		}
	}
	for _, p := range parts {
		if p == "" {
			return errEmpty
		}
		if !validScopeToken(p) {
			return fmt.Errorf("a scope is printable ASCII without spaces, quotes or backslashes")
		}
	}
	return nil
}

// validScopeToken is auth.ValidScopeToken, which config may not import: a
// test compares the two on every byte.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("must be host:port, e.g. 127.0.0.1:8000")
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535")
	}
	return nil
}

// checkURLPort refuses a URL's port outside 1 to 65535, which url.Parse
// lets through (it checks only that the port is digits) and which no
// connection could reach. No port is fine: the scheme's applies.
func checkURLPort(u *url.URL) error {
	p := u.Port()
	if p == "" {
		return nil
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port must be a number from 1 to 65535")
	}
	return nil
}

func isLoopbackHostPort(v string) bool {
	host, _, err := net.SplitHostPort(v)
	if err != nil {
		return false
	}
	return isLoopbackHost(host)
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redactUserinfo hides the user-info part (user:password@) of a URL-like
// value before an error message echoes it. It works on the raw text, so
// that values url.Parse refuses are redacted too: everything after the
// scheme's "://" (or from the start, without one) up to the last '@' goes,
// since a password that was not percent-encoded may hold '/', '?' or '#'
// (base64 passwords hold '/') and a value may lack its scheme. A value
// whose path holds an '@' loses more than its user-info: an error message
// can spare it.
func redactUserinfo(v string) string {
	at := strings.LastIndexByte(v, '@')
	if at < 0 {
		return v
	}
	prefix := ""
	if i := strings.Index(v[:at], "://"); i > 0 && isScheme(v[:i]) {
		prefix = v[:i+3]
	}
	return prefix + "REDACTED@" + v[at+1:]
}

// isScheme reports whether s is a URL scheme (RFC 3986 section 3.1).
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// checkUpstreamURL enforces the form of UPSTREAM_URL: http or https, a
// host and optionally a port, nothing else.
func checkUpstreamURL(v string) error {
	const form = "must be http://host:port or https://host:port"
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") {
		return errors.New(form)
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if err := checkURLPort(u); err != nil {
		return err
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(v, "?#") {
		return errors.New(form + ", without path or query: the request target is forwarded as received")
	}
	return nil
}

// CheckURL applies the rule of OKTA_ISSUER (issuer true) or of JWKS_URI,
// TOKEN_ENDPOINT and INTROSPECTION_ENDPOINT (issuer false) to a URL that
// comes from elsewhere, such as an issuer of the policy file: absolute,
// https, or http on a loopback host (keys and client secrets never travel
// in clear over a network); no credentials or fragment; a port, if any,
// from 1 to 65535; for an issuer, no query. The error does not quote the
// URL.
func CheckURL(v string, issuer bool) error { return checkURL(v, issuer) }

// checkURL enforces the rule for the issuer and endpoint URLs: absolute,
// https, or http on a loopback host; no fragment (and, for the issuer, no
// query: RFC 8414 section 2).
func checkURL(v string, issuer bool) error {
	if strings.ContainsAny(v, "{}") {
		return fmt.Errorf("still holds a {placeholder}: put your own value there")
	}
	u, err := url.Parse(v)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("must be an absolute https URL (or http on loopback)")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("must be an absolute https URL (or http on loopback)")
		}
	default:
		return fmt.Errorf("must be an absolute https URL (or http on loopback)")
	}
	if u.User != nil {
		return fmt.Errorf("must not contain credentials")
	}
	if err := checkURLPort(u); err != nil {
		return err
	}
	if u.Fragment != "" || strings.Contains(v, "#") {
		return fmt.Errorf("must not contain a fragment")
	}
	if issuer && (u.RawQuery != "" || strings.Contains(v, "?")) {
		return fmt.Errorf("must not contain a query")
	}
	return nil
}
