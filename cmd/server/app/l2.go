package app

import (
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/sharedcache"
)

// addSecondLevel builds the Redis second level when REDIS_URL is set (into
// v.l2) and plugs it into the cache's configuration; without REDIS_URL it
// does nothing. It does not contact Redis: a Redis that is down only makes
// lookups miss, and readiness never waits for it.
func (v *validation) addSecondLevel(cfg config.Config, now func() time.Time, log *zap.Logger, cc *authcache.Config) error {
	if cfg.RedisURL == "" {
		cc.SecondLevelVerifier = nil
		return nil
	}
	l2, err := sharedcache.New(sharedcache.Config{
		URL:        cfg.RedisURL,
		SigningKey: []byte(cfg.RedisSigningKey),
		Timeout:    cfg.RedisTimeout,
		Now:        now,
		Logger:     log,
	})
	if err != nil {
		return fmt.Errorf("app: REDIS_URL: %w", err)
	}
	v.l2 = l2
	cc.SecondLevel = l2
	log.Info("tokengate: Redis second-level cache on",
		zap.String("redis", redactedURL(cfg.RedisURL)),
		zap.Duration("timeout", cfg.RedisTimeout),
		zap.Bool("verify_shared_verdicts_locally", cc.SecondLevelVerifier != nil))
	return nil
}

// startSecondLevel starts the second level's subscriber, which hands every
// revocation a replica publishes to the cache's Forget.
func (v *validation) startSecondLevel() {
	if v.l2 == nil {
		return
	}
	// Start fails only when called twice or after Close, neither of which
	// can happen here.
	_ = v.l2.Start(v.cache.Forget)
}

// redactedURL is u without its password, for the log.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable)"
	}
	return p.Redacted()
}

// SecondLevel is the Redis second level, or nil without REDIS_URL.
func (a *App) SecondLevel() *sharedcache.Cache { return a.l2 }
