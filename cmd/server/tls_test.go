package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"math/big"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testpki"
	"github.com/tokengate/tokengate/internal/testutil"
)

// servedSerial opens a new TLS connection to addr and returns the serial
// number of the certificate the server presents.
func servedSerial(tb testing.TB, addr string, ca *testpki.CA) *big.Int {
	tb.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestSIGHUPReloadsCertificate: with TLS_CERT_FILE and TLS_KEY_FILE,
// tokengate serves HTTPS, and SIGHUP makes it serve the files' new
// content to new connections.
func TestSIGHUPReloadsCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "tokengate test CA")
	first, second := ca.Issue(t, "127.0.0.1"), ca.Issue(t, "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first.Write(t, certFile, keyFile)

	iss := startIssuer(t)
	s := startServer(t, issuerArgs(iss), map[string]string{"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile}, nil)
	if !strings.HasPrefix(s.base, "https://") {
		t.Fatalf("base URL %s, want https", s.base)
	}
	if got := servedSerial(t, s.Addr(), ca); got.Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatal("not serving the first certificate")
	}
	second.Write(t, certFile, keyFile)
	s.hup <- syscall.SIGHUP
	testutil.WaitFor(t, "the reloaded certificate", func() bool {
		return servedSerial(t, s.Addr(), ca).Cmp(second.Cert.SerialNumber) == 0
	})
	if !strings.Contains(s.stderr.String(), "tokengate: TLS certificate reloaded") {
		t.Error("the reload is not logged")
	}
}

// TestTLSPairUnusableExits1: a certificate that cannot be read stops
// tokengate before serving, with exit code 1 and the reason in the log.
func TestTLSPairUnusableExits1(t *testing.T) {
	iss := startIssuer(t)
	dir := t.TempDir()
	var stderr syncBuffer
	code := runWith(context.Background(), options{
		args:   issuerArgs(iss, "--listen", "127.0.0.1:0", "--tls-cert-file", filepath.Join(dir, "none.crt"), "--tls-key-file", filepath.Join(dir, "none.key")),
		getenv: func(string) string { return "" },
		stderr: &stderr,
	})
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "TLS certificate") || !strings.Contains(stderr.String(), "no such file") {
		t.Errorf("log does not say why:\n%s", stderr.String())
	}
}

// TestVersion: --version needs no configuration and prints the stamped
// build information and the Go version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--dev", "--version"}} {
		var stdout, stderr bytes.Buffer
		if code := runWith(context.Background(), options{args: args, stdout: &stdout, stderr: &stderr}); code != 0 {
			t.Fatalf("%v: exit code %d; stderr %s", args, code, stderr.String())
		}
		want := "tokengate " + version + "\ncommit unknown\nbuilt unknown\n" + runtime.Version() + "\n"
		if stdout.String() != want {
			t.Errorf("%v: stdout %q, want %q", args, stdout.String(), want)
		}
	}
}
