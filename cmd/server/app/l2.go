package app

import (
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/policy"
	"github.com/tokengate/tokengate/sharedcache"
)

// checkSecondLevelModes refuses REDIS_URL where no issuer introspects, as
// config.Load does for VALIDATION_MODE=local without a policy file: the
// second level shares introspection verdicts and revocations, and a local
// check has neither to share and costs less than a Redis round trip. With
// the policy file's issuers: list, the issuers' own modes decide, not
// VALIDATION_MODE, which the list replaces. The error is a *config.Error,
// a configuration error like config.Load's.
func checkSecondLevelModes(cfg config.Config, issuers []policy.Issuer) error {
	if cfg.RedisURL == "" {
		return nil
	}
	if len(issuers) == 0 {
		if cfg.Mode != config.ModeLocal {
			return nil
		}
		return &config.Error{Var: "REDIS_URL", Msg: "VALIDATION_MODE=local checks a token in microseconds without a network call and learns of no revocation, so a Redis round trip gains nothing; the second level serves remote and hybrid mode: unset REDIS_URL or change VALIDATION_MODE"}
	}
	for _, iss := range issuers {
		if iss.Mode != policy.ModeLocal {
			return nil
		}
	}
	return &config.Error{Var: "REDIS_URL", Msg: "every issuer of the policy file is in mode local, which checks a token without a network call and learns of no revocation, so a Redis round trip gains nothing; unset REDIS_URL, or give an issuer mode remote or hybrid"}
}

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
