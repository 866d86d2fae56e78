package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/devissuer"
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

// upstreamBody is what the gateway scenarios' upstream answers.
const upstreamBody = `{"upstream":"ok"}`

func gatewayScenarios() []scenario {
	return []scenario{
		{name: "gateway-direct", path: "/items", gateway: viaDirect},
		{name: "gateway-nginx", path: "/items", gateway: viaNginx},
		{name: "gateway-tokengate", path: "/items", gateway: viaTokengate},
	}
}

// startUpstream serves upstreamBody on a loopback port until stop.
func startUpstream() (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	body := []byte(upstreamBody)
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		},
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           30 * time.Second,
		NoDefaultServerHeader: true,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return ln.Addr().String(), func() { _ = srv.Shutdown(); <-done }, nil
}

// runGateway runs one gateway scenario.
func runGateway(ctx context.Context, o *options, iss *devissuer.Issuer, sc scenario, model harness.Model, authz [][]byte, stderr io.Writer) (*harness.Result, error) {
	upAddr, stopUp, err := startUpstream()
	if err != nil {
		return nil, err
	}
	defer stopUp()

	addr := upAddr
	switch sc.gateway {
	case viaNginx:
		n, err := startNginx(upAddr)
		if err != nil {
			return nil, err
		}
		defer n.stop()
		addr = n.addr
	case viaTokengate:
		// tokengate runs in a child process of its own, as nginx does, so
		// that it does not share the load generator's Go runtime.
		args, env, err := tokengateArgs(iss, scenario{args: []string{"--upstream-url=http://" + upAddr}})
		if err != nil {
			return nil, err
		}
		srv, err := startServerProcess(ctx, roleTokengate, args, env, stderr)
		if err != nil {
			return nil, err
		}
		defer srv.close()
		addr = srv.addr
	}
	tgt := newTarget(addr, workersFor(o, model), o.timeout)
	defer tgt.close()
	if err := tgt.preflight(sc.path, authz[0], upstreamBody); err != nil {
		return nil, err
	}
	res, err := harness.Run(ctx, harnessConfig(o, sc.name, model, stderr), tgt.requests(sc.path, authz))
	if res != nil {
		logDone(stderr, res)
	}
	return res, err
}

// nginxProc is a running nginx.
type nginxProc struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
}

// startNginx runs Debian's nginx on a free loopback port as a plain
// reverse proxy to upstream (keepalive to it, no auth), with as many
// workers as cores, in a temporary directory that stop removes.
func startNginx(upstream string) (*nginxProc, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, serr := os.Stat(bin); serr != nil {
			return nil, errors.New("gateway-nginx needs nginx: apt-get install nginx")
		}
	}
	dir, err := os.MkdirTemp("", "tokengate-loadtest-nginx-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream app { server %[2]s; keepalive 256; }
    server {
        listen %[3]s;
        keepalive_requests 1000000;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
}
`, dir, upstream, addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n := &nginxProc{addr: addr, cmd: cmd, done: make(chan struct{}), dir: dir}
	go func() { _ = cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return n, nil
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("nginx exited before listening: %s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("nginx did not listen on %s within 10s", addr)
		}
	}
}

// stop ends nginx's process group, by its pid, and removes its directory.
func (n *nginxProc) stop() {
	pgid := -n.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-n.done
	}
	os.RemoveAll(n.dir)
}
