// Command tokengate serves the items API behind OAuth 2.0 bearer-token
// checks.
//
// It owns the process: it loads the configuration (flags, environment,
// .env), builds the logger, and hands both to cmd/server/app, which wires
// and serves tokengate (discovery, the key set, the local, remote or hybrid
// validator, the token cache, the handlers, and under --dev the
// development authorization server, on loopback only). Under --dev it
// prints the curl lines that get a token and call /items.
//
// Signals: on SIGINT or SIGTERM it drains and stops the app in order:
// /readyz turns 503 at once and responses carry Connection: close for
// SHUTDOWN_DRAIN_DELAY; then the listener closes and in-flight requests get
// SHUTDOWN_TIMEOUT, after which what still runs is cut off; then the key
// refresher, cache and development issuer stop; then the logger, and the
// process exits even if a call that cannot be cancelled is still in flight.
// On SIGHUP it re-reads TLS_CERT_FILE and TLS_KEY_FILE (App.Reload),
// keeping the current pair if the new one is unusable.
//
// Trust: outbound HTTPS (discovery, JWKS, introspection, /token) verifies
// the authorization server against the system's roots, as crypto/x509 finds
// them: SSL_CERT_FILE and SSL_CERT_DIR when set, else the distribution's
// bundle. Only when that yields no roots at all (a scratch container) does
// the Mozilla bundle compiled in from golang.org/x/crypto/x509roots/fallback
// apply; so a private CA is trusted by pointing SSL_CERT_FILE at a file that
// holds it (and the public roots too, if they are needed).
//
// --version prints the version, commit and build date stamped at link time
// (-ldflags "-X main.version=… -X main.commit=… -X main.date=…"), and the Go
// version.
//
// Exit codes: 0 after a stop by signal (or -h, --version), even when
// SHUTDOWN_TIMEOUT cut requests off (the log says so); 1 when tokengate
// cannot start or serving fails; 2 for a configuration error (one line on
// stderr naming the variable).
package main
