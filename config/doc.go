// Package config turns flags, environment variables and a .env file into
// one validated Config for tokengate.
//
// Precedence is flags, then the environment, then the .env file, then the
// defaults. Load validates everything once and fails with an *Error that
// names the variable and says what is wrong, so cmd/server can print one
// line and exit 2. config knows nothing of HTTP, JWTs or logging; it only
// reads and checks settings, and never echoes a secret in an error.
package config
