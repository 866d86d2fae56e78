package sharedcache

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout         = 50 * time.Millisecond
	DefaultKeyPrefix       = "tokengate:v1:"
	DefaultChannelSuffix   = "revocations" // the channel is KeyPrefix + this
	DefaultLeaseTTL        = 2 * time.Second
	DefaultLeaseWait       = 250 * time.Millisecond
	DefaultPoolSize        = 32
	DefaultConnMaxIdleTime = 5 * time.Minute

	// MinSigningKeyLen is the shortest accepted Config.SigningKey, in bytes.
	MinSigningKeyLen = 32
)

// Config configures a Cache. New copies the struct (and the signing key);
// later changes to the caller's copy have no effect. Every field but URL and
// SigningKey has a usable zero value, named in its comment.
type Config struct {
	// URL says where Redis is, as go-redis's ParseURL reads it:
	// redis://[user:password@]host[:port][/db] for TCP,
	// rediss://… for TLS (certificate checked against host, TLS 1.2 or
	// later), unix://[user:password@]/path/to/socket for a socket. Query
	// parameters are refused: the timeouts and pool bounds are this
	// struct's fields, not the URL's. Only a single Redis node (or a proxy
	// in front of several) is supported; Sentinel and Cluster are not.
	// Required. The URL may carry a password: it never appears in errors
	// or logs.
	URL string

	// SigningKey authenticates every entry and every revocation message
	// with HMAC-SHA-256, so that whoever can write to Redis cannot forge a
	// verdict or move one token's entry to another token. At least
	// MinSigningKeyLen (32) random bytes, used as given (no derivation); all
	// replicas sharing a Redis share it. Required.
	SigningKey []byte

	// Timeout bounds every call to Redis, from taking a pooled connection
	// (or dialling one) to reading the reply: Get, Set, Lease and Revoke
	// each return within about Timeout whatever Redis does. It is also
	// go-redis's DialTimeout, ReadTimeout, WriteTimeout and PoolTimeout. 0
	// means DefaultTimeout (50ms); negative is an error. A second level is
	// only worth asking when it answers faster than the validator behind
	// it: keep this well under the introspection round trip.
	Timeout time.Duration

	// KeyPrefix starts every key this package writes: entries are
	// KeyPrefix + hex(SHA-256(token)), leases KeyPrefix + "lease:" + the
	// same hex, revocation markers KeyPrefix + "revoked:" + the same hex. Change it to share one Redis database between deployments
	// that must not see each other's entries. "" means DefaultKeyPrefix.
	KeyPrefix string

	// Channel is the Pub/Sub channel on which revocations are broadcast. ""
	// means KeyPrefix + DefaultChannelSuffix.
	Channel string

	// LeaseTTL is how long a lease taken by Lease keeps other callers (on
	// every replica) waiting for its holder's result instead of validating
	// the same token themselves. Size it to one validation (the
	// introspection timeout); a holder that dies only costs the others
	// their wait (see LeaseWait). 0 means DefaultLeaseTTL (2s); negative is
	// an error.
	LeaseTTL time.Duration

	// LeaseWait is how long Await waits for another caller's result when
	// it is given no wait of its own. 0 means DefaultLeaseWait (250ms);
	// negative is an error.
	LeaseWait time.Duration

	// PoolSize is the most connections to Redis open at once (go-redis's
	// PoolSize, MaxActiveConns and MaxIdleConns). A call that finds them
	// all busy waits at most Timeout, then misses. The subscriber holds one
	// more connection of its own. 0 means DefaultPoolSize (32); negative is
	// an error.
	PoolSize int

	// MinIdleConns is how many idle connections to keep open, so that a
	// burst after a quiet spell does not pay for dialling. 0 (the default)
	// keeps none; it must not exceed PoolSize.
	MinIdleConns int

	// ConnMaxIdleTime closes connections idle for longer (keep it below the
	// server's timeout setting). 0 means DefaultConnMaxIdleTime (5m);
	// negative is an error.
	ConnMaxIdleTime time.Duration

	// Now is the clock that stamps and checks entry deadlines and rate-limits
	// log lines; nil means time.Now. Replicas' clocks are assumed to agree
	// within a small fraction of the shortest TTL.
	Now func() time.Time

	// Logger receives rate-limited reports of Redis trouble and of entries
	// that fail authentication (a token appears only as the first 8 hex
	// characters of its digest). nil means zap.NewNop().
	Logger *zap.Logger
}

// withDefaults validates c and returns a copy with every zero field set to
// its default and the signing key copied.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		return c, errors.New("sharedcache: Config.URL is required")
	}
	if len(c.SigningKey) < MinSigningKeyLen {
		return c, fmt.Errorf("sharedcache: Config.SigningKey has %d bytes, want at least %d", len(c.SigningKey), MinSigningKeyLen)
	}
	c.SigningKey = append([]byte(nil), c.SigningKey...)
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &c.Timeout, DefaultTimeout},
		{"LeaseTTL", &c.LeaseTTL, DefaultLeaseTTL},
		{"LeaseWait", &c.LeaseWait, DefaultLeaseWait},
		{"ConnMaxIdleTime", &c.ConnMaxIdleTime, DefaultConnMaxIdleTime},
	} {
		switch {
		case *d.v < 0:
			return c, fmt.Errorf("sharedcache: Config.%s is negative (%s)", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if c.LeaseTTL < time.Millisecond {
		return c, fmt.Errorf("sharedcache: Config.LeaseTTL %s is under Redis's 1ms resolution", c.LeaseTTL)
	}
	switch {
	case c.PoolSize < 0:
		return c, fmt.Errorf("sharedcache: Config.PoolSize is negative (%d)", c.PoolSize)
	case c.PoolSize == 0:
		c.PoolSize = DefaultPoolSize
	}
	if c.MinIdleConns < 0 || c.MinIdleConns > c.PoolSize {
		return c, fmt.Errorf("sharedcache: Config.MinIdleConns %d is outside [0, PoolSize %d]", c.MinIdleConns, c.PoolSize)
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.Channel == "" {
		c.Channel = c.KeyPrefix + DefaultChannelSuffix
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// redisOptions turns c (already through withDefaults) into go-redis options
// with every timeout and pool bound set explicitly, so that no go-redis
// default (5s timeouts, 3 retries, 5 dial attempts) can make a call slow.
func (c *Config) redisOptions() (*redis.Options, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		// url.Error repeats the URL, password included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("sharedcache: Config.URL does not parse: %w", err)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, errors.New("sharedcache: Config.URL must not carry query parameters; timeouts and pool bounds are Config fields")
	}
	o, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("sharedcache: Config.URL: %w", err)
	}

	o.ClientName = "tokengate"
	o.DisableIdentity = true // no CLIENT SETINFO round trip per connection
	o.Protocol = 2           // RESP2: every server and proxy speaks it; no push notifications needed
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	// One bound for every step of a call; the per-call context (Timeout)
	// bounds them together.
	o.ContextTimeoutEnabled = true
	o.DialTimeout = c.Timeout
	o.ReadTimeout = c.Timeout
	o.WriteTimeout = c.Timeout
	o.PoolTimeout = c.Timeout
	o.DialerRetries = 1 // one dial attempt per call; go-redis's default is 5 with 100ms pauses
	o.DialerRetryTimeout = c.Timeout

	// One immediate retry, so that the first call on a connection that a
	// Redis restart broke succeeds on a fresh one.
	o.MaxRetries = 1
	o.MinRetryBackoff = -1 // none
	o.MaxRetryBackoff = -1

	o.PoolFIFO = false
	o.PoolSize = c.PoolSize
	o.MaxActiveConns = c.PoolSize
	o.MaxIdleConns = c.PoolSize
	o.MinIdleConns = c.MinIdleConns
	o.MaxConcurrentDials = c.PoolSize
	o.PipelinePoolSize = -1 // Revoke's two-command pipeline runs on the main pool
	o.ConnMaxIdleTime = c.ConnMaxIdleTime
	o.ConnMaxLifetime = 0 // connections are not recycled by age
	o.ConnMaxLifetimeJitter = 0
	o.ReadBufferSize = maxValueSize + 1024
	o.WriteBufferSize = maxValueSize + 1024
	// Every connection, the subscriber's included, refuses a reply that
	// announces more than this package ever reads (see boundConn).
	o.Dialer = boundDialer(redis.NewDialer(o))
	return o, nil
}
