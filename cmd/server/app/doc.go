// Package app assembles a running tokengate from a config.Config: the
// development issuer under Dev, discovery, the key set, the local, remote
// or hybrid validator, the token cache, the handlers and the fasthttp
// server. Start builds and starts them; Shutdown stops them in DESIGN.md's
// order (listener and in-flight requests, key refresher, cache, discovery,
// development issuer) and waits for every goroutine it started.
//
// It is the wiring of cmd/server, importable so that benchmarks, load
// tests and tests run the same tokengate the binary does (the pattern of
// Kubernetes' cmd/kube-apiserver/app). Flags, exit codes and signals stay
// in cmd/server; configuration parsing stays in config.
package app
