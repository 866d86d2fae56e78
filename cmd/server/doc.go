// Command tokengate serves the items API behind OAuth 2.0 bearer-token
// checks.
//
// It owns the process: it loads the configuration (flags, environment,
// .env), builds the logger, and hands both to cmd/server/app, which wires
// and serves tokengate (discovery, the key set, the local, remote or hybrid
// validator, the token cache, the handlers, and under --dev the
// development authorization server, on loopback only). Under --dev it
// prints the curl lines that get a token and call /items. On SIGINT or
// SIGTERM it stops the app in order: listener and in-flight requests
// (bounded by SHUTDOWN_TIMEOUT), key refresher, cache, development issuer;
// then the logger.
//
// Exit codes: 0 after a clean stop (or -h), 1 when serving fails, 2 for a
// configuration error (one line on stderr naming the variable).
package main
