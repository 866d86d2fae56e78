// Package stack runs a complete tokengate in-process for benchmarks, load
// tests and the k6 shim's tests: discovery, key set, the local, remote or
// hybrid validator, the authcache and the handlers, wired the way
// cmd/server wires them, in front of a devissuer.Issuer the caller owns
// (so that it can mint tokens, inject latency and read counters).
//
// Settings come from config.Load with tokengate's own flags, so the
// defaults are the server's. It serves on a loopback port or on any
// listener the caller passes (fasthttputil.NewInmemoryListener in
// benchmarks). Stack is test tooling: production code never imports it.
package stack
