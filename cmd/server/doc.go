// Command tokengate serves the items API behind OAuth 2.0 bearer-token
// checks.
//
// It owns the process: it loads the configuration (flags, environment,
// .env), builds the logger, wires discovery, the key set, the local,
// remote or hybrid validator, the token cache and the handlers, serves on
// fasthttp, and on SIGINT or SIGTERM stops in order: listener and
// in-flight requests (bounded by SHUTDOWN_TIMEOUT), key refresher, cache,
// development issuer, logger. Under --dev it also runs the development
// authorization server in-process, on loopback only, and prints the curl
// lines that get a token and call /items.
//
// Exit codes: 0 after a clean stop (or -h), 1 when serving fails, 2 for a
// configuration error (one line on stderr naming the variable).
package main
