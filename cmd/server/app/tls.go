package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"
)

// certificate serves the listener's certificate pair from TLS_CERT_FILE
// and TLS_KEY_FILE through tls.Config.GetCertificate, so that Reload can
// swap it under connections being accepted: a handshake takes whichever
// pair is current, and connections already open keep theirs.
type certificate struct {
	certFile, keyFile string
	log               *zap.Logger
	current           atomic.Pointer[tls.Certificate] // never nil after newCertificate
}

// newCertificate reads the pair once; an unreadable or mismatched pair is
// an error.
func newCertificate(certFile, keyFile string, log *zap.Logger) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile, log: log}
	pair, err := c.load()
	if err != nil {
		return nil, err
	}
	c.current.Store(pair)
	c.logLoaded("tokengate: TLS certificate loaded", pair)
	return c, nil
}

// load reads and checks the pair: the key must match the leaf, which must
// parse.
func (c *certificate) load() (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("app: TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("app: TLS certificate %s: %w", c.certFile, err)
		}
	}
	return &pair, nil
}

// reload re-reads the pair. On failure the current pair stays in use and
// the error says why.
func (c *certificate) reload() error {
	pair, err := c.load()
	if err != nil {
		c.log.Warn("tokengate: TLS certificate not reloaded; still serving the previous one", zap.Error(err))
		return err
	}
	c.current.Store(pair)
	c.logLoaded("tokengate: TLS certificate reloaded", pair)
	return nil
}

func (c *certificate) logLoaded(msg string, pair *tls.Certificate) {
	leaf := pair.Leaf
	c.log.Info(msg,
		zap.String("subject", leaf.Subject.String()),
		zap.Strings("dns_names", leaf.DNSNames),
		zap.String("serial", leaf.SerialNumber.Text(16)),
		zap.Time("not_after", leaf.NotAfter))
}

// getCertificate is tls.Config.GetCertificate.
func (c *certificate) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current.Load(), nil
}

// tlsConfig is the listener's TLS configuration: TLS 1.2 or later, Go's
// default cipher suites and curves, HTTP/1.1 only (fasthttp speaks no
// HTTP/2), the certificate from c.
func (c *certificate) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: c.getCertificate,
	}
}

// reloadCertificate re-reads the TLS certificate and key (TLS_CERT_FILE,
// TLS_KEY_FILE). New connections get the new pair; connections already
// open keep the one they were accepted with. A pair that cannot be used
// (unreadable, not PEM, a key that does not match) leaves the current one
// in place, is logged and returned. Without TLS there is nothing to
// re-read and it returns nil.
func (a *App) reloadCertificate() error {
	if a.cert == nil {
		return nil
	}
	return a.cert.reload()
}
