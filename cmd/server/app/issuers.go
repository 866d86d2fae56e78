package app

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/authcache"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/policy"
)

// Several issuers: the policy file's issuers: list replaces the one-issuer
// shorthand (OKTA_ISSUER, OKTA_AUDIENCE). Each entry gets its own
// issuerParts, built exactly as the one issuer's would be from a copy of
// the configuration with the entry's issuer, audience, endpoints, mode,
// client credentials (from the variables it names, in the environment or
// the .env file, as config.Config.Getenv reads them) and client
// allow-list; one auth.Multi picks among them by the token's iss, under
// the one cache. The global settings (timeouts, key refresh, leeway,
// algorithms, cache sizes, introspection bounds) apply to every issuer;
// the cache's TTL rules follow the strictest mode present (a remote
// issuer caps every entry at INTROSPECTION_CACHE_TTL; a hybrid one turns
// on revalidation, which for a local issuer's token re-verifies it).

// buildIssuers builds every issuer of the list into v.issuers, v.multi and
// v.issuerParts (the first, for /token), sets cacheCfg's rules, and
// returns the validator for the cache.
func (v *validation) buildIssuers(cfg config.Config, list []policy.Issuer, getenv func(string) string, now func() time.Time, log *zap.Logger, cacheCfg *authcache.Config) (auth.Validator, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	getenv = cfg.Getenv(getenv) // then the .env file config.Load read
	var entries, revalidators, verifiers []auth.MultiIssuer
	var remote, hybrid, local bool // local: some issuer verifies JWTs here
	for _, iss := range list {
		ic, err := issuerConfig(cfg, iss, getenv)
		if err != nil {
			return nil, err
		}
		p, err := buildIssuer(ic, now, log.With(zap.String("issuer", iss.Name)))
		if err != nil {
			return nil, fmt.Errorf("app: issuer %s: %w", iss.Name, err)
		}
		p.name = iss.Name
		v.issuers = append(v.issuers, p)
		opaque := ic.Mode == config.ModeRemote
		remote = remote || opaque
		hybrid = hybrid || ic.Mode == config.ModeHybrid
		entries = append(entries, auth.MultiIssuer{Name: iss.Name, Issuer: iss.Issuer, Validator: p.validator, Opaque: opaque, Ready: p.ready, Keys: p.keys, Remote: p.remote})
		revalidators = append(revalidators, auth.MultiIssuer{Name: iss.Name, Issuer: iss.Issuer, Validator: p.revalidator, Opaque: opaque, Keys: p.keys})
		if p.local != nil {
			verifiers = append(verifiers, auth.MultiIssuer{Name: iss.Name, Issuer: iss.Issuer, Validator: p.local, Keys: p.keys})
			local = true
		} else {
			verifiers = append(verifiers, auth.MultiIssuer{Name: iss.Name, Issuer: iss.Issuer, Validator: unverifiable{}, Opaque: opaque})
		}
	}
	var err error
	if v.multi, err = auth.NewMulti(auth.MultiConfig{Issuers: entries, MaxTokenSize: cfg.MaxTokenSize}); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	v.issuerParts = v.issuers[0]
	v.ready = v.multi.Ready
	cacheCfg.SigningKeys = v.multi
	if remote {
		cacheCfg.MaxTTL = min(cacheCfg.MaxTTL, cfg.IntrospectionCacheTTL)
		cacheCfg.NoPositiveCaching = cfg.IntrospectionCacheTTL == 0
	}
	if local {
		// As with one hybrid issuer, a valid verdict from the second
		// level is served only for a token its issuer's JWT validator
		// accepts here too. A remote issuer's tokens (opaque, or JWTs it
		// leaves to introspection) have nothing to check here: its
		// stand-in answers authcache.ErrUnverifiable, and the second
		// level's verdict on them stands, as in remote mode.
		// addSecondLevel drops the verifier without REDIS_URL.
		vf, err := auth.NewMulti(auth.MultiConfig{Issuers: verifiers, MaxTokenSize: cfg.MaxTokenSize})
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		cacheCfg.SecondLevelVerifier = vf
	}
	if hybrid {
		re, err := auth.NewMulti(auth.MultiConfig{Issuers: revalidators, MaxTokenSize: cfg.MaxTokenSize})
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		cacheCfg.Revalidator = re
		cacheCfg.RevalidateAfter = cfg.RevalidateAfter
		cacheCfg.MaxStaleness = cfg.MaxStaleness
	}
	return v.multi, nil
}

// issuerConfig is cfg as one issuer of the list sees it.
func issuerConfig(cfg config.Config, iss policy.Issuer, getenv func(string) string) (config.Config, error) {
	// The policy file takes any http(s) URL; tokengate holds an issuer's
	// URLs to OKTA_ISSUER's rule, so that keys and client secrets never
	// travel in clear over a network.
	for _, u := range []struct {
		key, value string
		issuer     bool
	}{{"issuer", iss.Issuer, true}, {"jwks_uri", iss.JWKSURI, false}, {"introspection_endpoint", iss.IntrospectionEndpoint, false}} {
		if u.value == "" {
			continue
		}
		if err := config.CheckURL(u.value, u.issuer); err != nil {
			return cfg, &config.Error{Var: "POLICY_FILE", Msg: fmt.Sprintf("%s: issuer %s (line %d): %s %q: %s", cfg.PolicyFile, iss.Name, iss.Line, u.key, u.value, err)}
		}
	}
	ic := cfg
	ic.Issuer = iss.Issuer
	if iss.Audience != "" {
		ic.Audience = iss.Audience
	}
	ic.JWKSURI, ic.IntrospectionEndpoint, ic.TokenEndpoint = iss.JWKSURI, iss.IntrospectionEndpoint, ""
	ic.Mode = config.Mode(iss.Mode)
	ic.AllowedClientIDs = iss.AllowedClientIDs
	ic.ClientID, ic.ClientSecret = "", ""
	if iss.ClientIDEnv != "" {
		ic.ClientID = getenv(iss.ClientIDEnv)
	}
	if iss.ClientSecretEnv != "" {
		ic.ClientSecret = getenv(iss.ClientSecretEnv)
	}
	for _, name := range []string{iss.ClientIDEnv, iss.ClientSecretEnv} {
		if v := getenv(name); v != strings.TrimSpace(v) {
			return ic, &config.Error{Var: name, Msg: fmt.Sprintf("has white space (a space, tab or line break) before or after it, which would be part of issuer %s's credential (policy line %d); remove it", iss.Name, iss.Line)}
		}
	}
	if ic.Mode != config.ModeLocal {
		switch {
		case ic.ClientID == "":
			return ic, missingCredential(iss, iss.ClientIDEnv)
		case ic.ClientSecret == "":
			return ic, missingCredential(iss, iss.ClientSecretEnv)
		}
	}
	return ic, nil
}

// missingCredential is the configuration error for an issuer's credential
// variable that is not set: it names the variable, as config.Load does a
// setting of its own.
func missingCredential(iss policy.Issuer, env string) error {
	return &config.Error{Var: env, Msg: fmt.Sprintf("not set: issuer %s (policy line %d) is in mode %s and introspects with it; set it in the environment or in .env", iss.Name, iss.Line, iss.Mode)}
}

// unverifiable stands in the second-level verifier for an issuer whose
// tokens are checked by introspection only.
type unverifiable struct{}

func (unverifiable) Validate(context.Context, []byte) (*auth.Principal, error) {
	return nil, authcache.ErrUnverifiable
}
