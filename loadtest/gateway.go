package main

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/proxyrun"
	"github.com/tokengate/tokengate/loadtest/harness"
)

// The gateway scenario: one small upstream, loaded three ways side by
// side in one run, each with the same cached-token pool:
//
//	gateway-direct     client → upstream
//	gateway-nginx      client → nginx (proxy_pass, upstream keepalive, no auth) → upstream
//	gateway-tokengate  client → tokengate gateway mode (auth on, tokens cached) → upstream
//
// nginx is Debian's; without it gateway-nginx fails with a message that
// says what to install.

// gatewayVia says which way a gateway scenario reaches the upstream.
type gatewayVia uint8

const (
	viaNone gatewayVia = iota // not a gateway scenario
	viaDirect
	viaNginx
	viaTokengate
)

func gatewayScenarios() []scenario {
	return []scenario{
		{name: "gateway-direct", path: "/items", gateway: viaDirect},
		{name: "gateway-nginx", path: "/items", gateway: viaNginx},
		{name: "gateway-tokengate", path: "/items", gateway: viaTokengate},
	}
}

// runGateway runs one gateway scenario.
func runGateway(ctx context.Context, o *options, iss *devissuer.Issuer, sc scenario, model harness.Model, authz [][]byte, stderr io.Writer) (*harness.Result, error) {
	up, err := startUpstream()
	if err != nil {
		return nil, err
	}
	defer up.close()
	upAddr := up.addr

	addr := upAddr
	// serverCPU reads the CPU time the proxy in front of the upstream has
	// used so far; nil for gateway-direct, whose upstream shares this
	// process.
	var serverCPU func() (time.Duration, error)
	switch sc.gateway {
	case viaNginx:
		bin, err := proxyrun.Lookup("nginx")
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "tokengate-loadtest-nginx-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		px, err := proxyrun.Nginx(startCtx, proxyrun.NginxConfig{Bin: bin, Dir: dir, HTTP: gatewayNginxConfig(upAddr), Workers: o.nginxWorkers})
		if err != nil {
			return nil, err
		}
		defer px.Stop()
		addr = px.Addr
		serverCPU = func() (time.Duration, error) { return groupCPU(px.Pid()) }
	case viaTokengate:
		// tokengate runs in a child process of its own, as nginx does, so
		// that it does not share the load generator's Go runtime.
		args, env, err := tokengateArgs(iss, scenario{args: []string{"--upstream-url=http://" + upAddr}}, "")
		if err != nil {
			return nil, err
		}
		srv, err := startServerProcess(ctx, roleTokengate, args, env, stderr)
		if err != nil {
			return nil, err
		}
		defer srv.close()
		addr = srv.addr
		serverCPU = func() (time.Duration, error) {
			u, err := srv.usage()
			if err != nil || u.CPUNanos < 0 {
				return 0, errors.Join(err, errors.New("loadtest: no CPU time from the server process"))
			}
			return time.Duration(u.CPUNanos), nil
		}
	}
	tgt := newTarget(addr, workersFor(o, model), o.timeout)
	defer tgt.close()
	if err := tgt.preflight(sc.path, authz[0], upstreamBody); err != nil {
		return nil, err
	}
	cfg := harnessConfig(o, sc.name, model, stderr)
	var before time.Duration
	beforeErr := errors.New("loadtest: not measured")
	if serverCPU != nil {
		cfg.BeforeMeasure = func() { before, beforeErr = serverCPU() }
	}
	res, err := harness.Run(ctx, cfg, tgt.requests(sc.path, authz))
	if res != nil {
		// The proxy's CPU time per request (the cpu/req column): where the
		// cores are shared with the load generator, this moves far less
		// than throughput does. Left out where it cannot be read.
		if beforeErr == nil {
			if after, afterErr := serverCPU(); afterErr == nil {
				res.SetServerCPU(after - before)
			}
		}
		logDone(stderr, res)
	}
	return res, err
}

// gatewayNginxConfig is nginx as a plain reverse proxy to upstream, with
// upstream keepalive and no auth: the reference the gateway is held to.
func gatewayNginxConfig(upstream string) string {
	return `
    upstream app { server ` + upstream + `; keepalive 256; }
    server {
        listen {{LISTEN}};
        keepalive_requests 1000000;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }`
}
