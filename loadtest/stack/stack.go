package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
)

// Options configures Start. Issuer is required.
type Options struct {
	// Issuer is the authorization server tokengate trusts; the caller
	// starts and closes it. tokengate uses its first client for
	// introspection.
	Issuer *devissuer.Issuer

	// Args are tokengate flags in config.Load syntax, e.g.
	// "--validation-mode=remote", "--introspection-cache-ttl=0". The
	// issuer, client credentials and listen address come from the other
	// fields; the environment and .env files are not read.
	Args []string

	// UncachedValid makes the cache forget valid tokens in every mode, so
	// that each request with a good token runs the validator
	// (app.Options.MeasureUncachedValid).
	UncachedValid bool

	// Listener, when set, is served instead of a new loopback listener
	// (e.g. fasthttputil.NewInmemoryListener). Close closes it.
	Listener net.Listener

	// Policy, when set, is the YAML route policy of the decision
	// endpoints (POLICY_FILE). Start writes it to a temporary file and
	// removes the file once the server has loaded it, so App.Reload has
	// nothing to re-read.
	Policy string

	// Logger receives tokengate's logs (nil: none).
	Logger *zap.Logger
}

// Start builds and serves a tokengate and waits until it is ready (ctx
// bounds start-up and the wait). The App's Close leaves Options.Issuer
// running. On error Start has stopped whatever it had started.
func Start(ctx context.Context, o Options) (*app.App, error) {
	if o.Issuer == nil {
		return nil, errors.New("stack: no issuer")
	}
	// --dev with Options.Issuer: tokengate trusts the caller's issuer as
	// it would its own development issuer.
	// Every load-test client shares one loopback address, so the
	// per-client introspection bound, a defence against abuse, would cap
	// the measurement; o.Args may set it back.
	args := append([]string{"--dev", "--listen-addr=127.0.0.1:0", "--introspection-max-per-client=100000"}, o.Args...)
	if o.Policy != "" {
		dir, err := os.MkdirTemp("", "tokengate-stack-")
		if err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(path, []byte(o.Policy), 0o600); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
		args = append(args, "--policy-file="+path)
	}
	cfg, err := config.Load(args, nil, "")
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	a, err := app.Start(ctx, cfg, app.Options{
		Logger:               o.Logger,
		Listener:             o.Listener,
		Issuer:               o.Issuer,
		MeasureUncachedValid: o.UncachedValid,
	})
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	if err := a.WaitReady(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("stack: %w", err)
	}
	return a, nil
}

// DecisionPolicy is the route policy the forward-auth benchmarks and load
// tests serve (Options.Policy): GET /orders/** needs the items scope that
// the development issuer grants by default, /status is public, anything
// else is refused, and an allowed decision carries three claim headers.
const DecisionPolicy = `default: deny
routes:
  - path: /orders/**
    methods: [GET]
    scopes: [items]
  - path: /status
    public: true
headers:
  X-Auth-Subject: sub
  X-Auth-Client-Id: client_id
  X-Auth-Scopes: scope
`
