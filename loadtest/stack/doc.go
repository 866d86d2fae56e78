// Package stack runs a complete tokengate in-process for benchmarks, load
// tests and the k6 shim's tests: cmd/server/app, the same wiring as the
// binary, in front of a devissuer.Issuer the caller owns (so that it can
// mint tokens, inject latency and read counters).
//
// What it adds to app is the configuration: tokengate's own flags only
// (config.Load, no environment, no .env), so the defaults are the
// server's, on a free loopback port or on any listener the caller passes
// (fasthttputil.NewInmemoryListener in benchmarks). Stack is test tooling:
// production code never imports it.
package stack
