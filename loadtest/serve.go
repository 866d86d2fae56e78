package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/config"
)

// The server under test runs in a child process: the loadtest binary
// re-executes itself with serveRoleEnv set, so that the server's CPU time
// is an account of its own (getrusage RUSAGE_SELF in the child) and the
// load generator's never mixes in. The child speaks a line protocol on its
// standard streams: it writes "ready <host:port>" once it serves; for each
// "usage" line it reads it answers one line of JSON (childUsage); when its
// standard input ends it shuts down and exits.
const serveRoleEnv = "TOKENGATE_LOADTEST_SERVE"

// serveUncachedEnv, set to "1" in a tokengate child, is
// app.Options.MeasureUncachedValid (the local-unique scenario).
const serveUncachedEnv = "TOKENGATE_LOADTEST_UNCACHED"

// The roles of a server child.
const (
	// roleTokengate runs cmd/server/app with tokengate flags (config.Load
	// syntax) from the arguments and OKTA_CLIENT_SECRET from the
	// environment, as the tokengate binary would.
	roleTokengate = "tokengate"
	// roleFasthttp runs a bare fasthttp.Server with its defaults (what
	// fasthttp.ListenAndServe builds) that answers every request with the
	// body of GET /items: the cost of serving HTTP with no tokengate at
	// all, the reference the fasthttp scenario measures.
	roleFasthttp = "fasthttp"
)

// childUsage is a server child's answer to "usage": its CPU time so far
// and, for tokengate, its cache counters.
type childUsage struct {
	CPUNanos      int64  `json:"cpu_ns"` // user + system; -1 where getrusage is not available
	Hits          uint64 `json:"hits"`
	Misses        uint64 `json:"misses"`
	Validations   uint64 `json:"validations"`
	Revalidations uint64 `json:"revalidations"`
}

// bareItemsBody is what the fasthttp child answers: tokengate's GET /items
// body, byte for byte.
var bareItemsBody = []byte(`[{"id":1,"name":"red ball"},{"id":2,"name":"blue square"},{"id":3,"name":"purple ellipse"}]`)

// serveChild is the whole child process for role: it serves on a free
// loopback port until stdin ends and returns the exit code.
func serveChild(role string, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "loadtest server (%s): %v\n", role, err)
		return exitFail
	}
	var (
		addr  string
		stats func() childUsage
		stop  func()
	)
	switch role {
	case roleTokengate:
		a, err := startTokengate(args, getenv)
		if err != nil {
			return fail(err)
		}
		addr, stop = a.Addr(), a.Close
		stats = func() childUsage {
			s := a.Cache().Stats()
			return childUsage{Hits: s.Hits, Misses: s.Misses, Validations: s.Validations, Revalidations: s.Revalidations}
		}
	case roleFasthttp:
		if len(args) > 0 {
			return fail(fmt.Errorf("unexpected argument %q", args[0]))
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(bareItemsBody)
		}}
		served := make(chan struct{})
		go func() { defer close(served); _ = s.Serve(ln) }()
		addr = ln.Addr().String()
		stop = func() {
			_ = s.Shutdown()
			// Shutdown closes only the listeners Serve has registered;
			// closing ln too ends a Serve that had not got that far.
			_ = ln.Close()
			<-served
		}
		stats = func() childUsage { return childUsage{} }
	default:
		return fail(fmt.Errorf("unknown role %q", role))
	}
	defer stop()

	if _, err := fmt.Fprintf(stdout, "ready %s\n", addr); err != nil {
		return fail(err)
	}
	in := bufio.NewScanner(stdin)
	enc := json.NewEncoder(stdout)
	for in.Scan() {
		if in.Text() != "usage" {
			return fail(fmt.Errorf("unknown request %q", in.Text()))
		}
		u := stats()
		u.CPUNanos = processCPU()
		if err := enc.Encode(u); err != nil {
			return fail(err)
		}
	}
	return exitOK
}

// startTokengate starts tokengate from args and getenv, as cmd/server
// does, and waits until it is ready.
func startTokengate(args []string, getenv func(string) string) (*app.App, error) {
	cfg, err := config.Load(args, getenv, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{MeasureUncachedValid: getenv(serveUncachedEnv) == "1"})
	if err != nil {
		return nil, err
	}
	if err := a.WaitReady(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// childMain runs a server child when this process is one, and reports
// whether it was.
func childMain() (code int, isChild bool) {
	role := os.Getenv(serveRoleEnv)
	if role == "" {
		return 0, false
	}
	return serveChild(role, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr), true
}
