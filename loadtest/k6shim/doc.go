// Package k6shim holds a Node.js stand-in for k6 (run.mjs and its modules)
// that runs the k6 scripts of loadtest/k6 for a few real iterations against
// a running tokengate, so CI proves them without k6 installed; ci.sh does
// that against `tokengate --dev`. The package's Go tests run the shim on
// the real scripts and on deliberately broken copies (wrong path, no token,
// wrong expected status, wrong secret, crossed threshold) and require the
// first to pass and the others to fail. There is no Go API.
package k6shim
