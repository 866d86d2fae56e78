package testpki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// TestIssue: a leaf verifies against its CA for each host it names, and
// only against its own CA; Write puts a pair on disk that crypto/tls loads.
func TestIssue(t *testing.T) {
	ca, stranger := NewCA(t, "test CA"), NewCA(t, "another CA")
	leaf := ca.Issue(t, "127.0.0.1", "localhost")
	cases := []struct {
		name  string
		roots *x509.CertPool
		host  string
		ok    bool
	}{
		{"IP address", ca.Pool(), "127.0.0.1", true},
		{"DNS name", ca.Pool(), "localhost", true},
		{"host not named", ca.Pool(), "example.com", false},
		{"another CA", stranger.Pool(), "127.0.0.1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: tc.roots, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if (err == nil) != tc.ok {
				t.Errorf("Verify: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	leaf.Write(t, cert, key)
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("key file: %v %v", fi, err)
	}
	if c := leaf.TLS(t); c.Leaf == nil || !c.Leaf.Equal(leaf.Cert) {
		t.Error("TLS() does not hold the leaf")
	}
}
