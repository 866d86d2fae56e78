// Package testpki makes throw-away certificate authorities and TLS server
// certificates for tests: a CA, leaf certificates it signs for loopback
// hosts, their PEM encodings and files. Keys are ECDSA P-256, generated per
// call, valid for a day; nothing here is fit for production, and only
// tests import it.
package testpki
