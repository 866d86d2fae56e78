package app

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/tokengate/config"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testpki"
)

// tlsFixture is a tokengate serving HTTPS with a certificate from a test
// CA, in front of a development issuer it does not own.
type tlsFixture struct {
	app               *App
	iss               *devissuer.Issuer
	ca                *testpki.CA
	certFile, keyFile string
	logs              *observer.ObservedLogs
}

// startTLS starts the fixture with leaf as the server's certificate and
// args as further flags.
func startTLS(t *testing.T, leaf testpki.Leaf, ca *testpki.CA, args ...string) *tlsFixture {
	t.Helper()
	return startTLSWith(t, Options{}, leaf, ca, args...)
}

// startTLSWith is startTLS with opts (whose Logger it sets).
func startTLSWith(t *testing.T, opts Options, leaf testpki.Leaf, ca *testpki.CA, args ...string) *tlsFixture {
	t.Helper()
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	dir := t.TempDir()
	f := &tlsFixture{iss: iss, ca: ca, certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	leaf.Write(t, f.certFile, f.keyFile)
	cfg, err := config.Load(append([]string{"--okta-issuer=" + iss.Issuer(), "--listen=127.0.0.1:0",
		"--tls-cert-file=" + f.certFile, "--tls-key-file=" + f.keyFile}, args...), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	f.logs = logs
	opts.Logger = zap.New(core)
	f.app = start(t, cfg, opts)
	waitReady(t, f.app)
	return f
}

// httpConn is one client connection on which requests are sent by hand, so
// that a test knows which connection each request used.
type httpConn struct {
	net.Conn
	r *bufio.Reader
}

// dialTLS opens a TLS connection to f's server trusting f's CA, with cfg's
// version limits.
func (f *tlsFixture) dialTLS(t *testing.T, cfg *tls.Config) (*httpConn, error) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.RootCAs == nil {
		cfg.RootCAs = f.ca.Pool()
	}
	cfg.ServerName = "127.0.0.1"
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", f.app.Addr(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &httpConn{Conn: c, r: bufio.NewReader(c)}, nil
}

// mustDial is dialTLS that fails the test on error.
func (f *tlsFixture) mustDial(t *testing.T) *httpConn {
	t.Helper()
	c, err := f.dialTLS(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serial is the serial number of the certificate the server presented.
func (c *httpConn) serial() *big.Int {
	return c.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
}

// get sends GET path on the connection and reads the answer.
func (c *httpConn) get(t *testing.T, path string) (int, error) {
	t.Helper()
	resp, _, err := c.do(t, path)
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// do sends GET path with the header pairs on the connection and returns
// the response and its body.
func (c *httpConn) do(t *testing.T, path string, header ...string) (*http.Response, []byte, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	b.WriteString("GET " + path + " HTTP/1.1\r\nHost: tokengate\r\n")
	for i := 0; i+1 < len(header); i += 2 {
		b.WriteString(header[i] + ": " + header[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		return nil, nil, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

func TestTLSListener(t *testing.T) {
	ca := testpki.NewCA(t, "tokengate test CA")
	f := startTLS(t, ca.Issue(t, "127.0.0.1"), ca)
	if !strings.HasPrefix(f.app.URL(), "https://127.0.0.1:") {
		t.Errorf("URL() = %q, want https://…", f.app.URL())
	}
	cases := []struct {
		name    string
		cfg     *tls.Config
		refused string // substring of the dial error; "" means served
	}{
		{name: "default client (TLS 1.3)", cfg: &tls.Config{NextProtos: []string{"http/1.1"}}},
		{name: "TLS 1.2", cfg: &tls.Config{MaxVersion: tls.VersionTLS12}},
		{name: "TLS 1.1 refused", cfg: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, refused: "protocol version"},
		{name: "client without the CA", cfg: &tls.Config{RootCAs: x509.NewCertPool()}, refused: "certificate signed by unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.dialTLS(t, tc.cfg)
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("dial: %v, want an error containing %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if code, err := c.get(t, "/readyz"); err != nil || code != 200 {
				t.Fatalf("GET /readyz = %d, %v", code, err)
			}
			if p := c.Conn.(*tls.Conn).ConnectionState().NegotiatedProtocol; len(tc.cfg.NextProtos) > 0 && p != "http/1.1" {
				t.Errorf("ALPN %q, want http/1.1", p)
			}
		})
	}
	t.Run("plain HTTP is not served", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", f.app.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hc := &httpConn{Conn: c, r: bufio.NewReader(c)}
		if code, err := hc.get(t, "/readyz"); err == nil && code == 200 {
			t.Error("plain HTTP request answered 200 on the TLS port")
		}
	})
}

// TestTLSReload: Reload serves a new pair to new connections while a
// keep-alive connection accepted before keeps working, and a pair that
// cannot be used leaves the current one in place and says why.
func TestTLSReload(t *testing.T) {
	ca := testpki.NewCA(t, "tokengate test CA")
	first, second := ca.Issue(t, "127.0.0.1"), ca.Issue(t, "127.0.0.1")
	f := startTLS(t, first, ca)

	old := f.mustDial(t)
	if code, err := old.get(t, "/readyz"); err != nil || code != 200 {
		t.Fatalf("GET /readyz = %d, %v", code, err)
	}
	if old.serial().Cmp(first.Cert.SerialNumber) != 0 {
		t.Fatal("the server does not present the first certificate")
	}

	other := ca.Issue(t, "127.0.0.1")
	bad := []struct {
		name        string
		write       func(t *testing.T)
		wantInError string
	}{
		{name: "key file missing", write: func(t *testing.T) {
			if err := os.Remove(f.keyFile); err != nil {
				t.Fatal(err)
			}
		}, wantInError: "no such file"},
		{name: "certificate not PEM", write: func(t *testing.T) {
			testpki.WriteFile(t, f.certFile, []byte("not a certificate"))
			testpki.WriteFile(t, f.keyFile, second.KeyPEM)
		}, wantInError: "failed to find any PEM data"},
		{name: "key of another certificate", write: func(t *testing.T) {
			testpki.WriteFile(t, f.certFile, second.CertPEM)
			testpki.WriteFile(t, f.keyFile, other.KeyPEM)
		}, wantInError: "private key does not match public key"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			f.logs.TakeAll()
			tc.write(t)
			err := f.app.Reload()
			if err == nil || !strings.HasPrefix(err.Error(), "app: TLS certificate") || !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("Reload = %v, want app: TLS certificate …%s", err, tc.wantInError)
			}
			if n := f.logs.FilterMessageSnippet("not reloaded; still serving the previous one").Len(); n != 1 {
				t.Errorf("%d warnings logged, want 1", n)
			}
			if got := f.mustDial(t).serial(); got.Cmp(first.Cert.SerialNumber) != 0 {
				t.Error("a new connection does not get the first certificate any more")
			}
		})
	}

	second.Write(t, f.certFile, f.keyFile)
	if err := f.app.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	fresh := f.mustDial(t)
	if fresh.serial().Cmp(second.Cert.SerialNumber) != 0 {
		t.Error("a new connection does not get the reloaded certificate")
	}
	if code, err := fresh.get(t, "/readyz"); err != nil || code != 200 {
		t.Errorf("new connection: GET /readyz = %d, %v", code, err)
	}
	if code, err := old.get(t, "/readyz"); err != nil || code != 200 {
		t.Errorf("keep-alive connection from before the reload: GET /readyz = %d, %v", code, err)
	}
	if f.logs.FilterMessage("tokengate: TLS certificate reloaded").Len() != 1 {
		t.Error("the reload is not logged")
	}
}

// TestReloadWithoutTLS: nothing to re-read, no error.
func TestReloadWithoutTLS(t *testing.T) {
	a := start(t, devConfig(t), Options{})
	if err := a.Reload(); err != nil {
		t.Errorf("Reload without TLS: %v", err)
	}
}

// TestTLSStartErrors: an unusable pair stops Start, naming the files.
func TestTLSStartErrors(t *testing.T) {
	iss, err := devissuer.Start(devissuer.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	testpki.WriteFile(t, garbage, []byte("garbage"))
	cases := []struct{ name, cert, key, want string }{
		{name: "missing files", cert: filepath.Join(dir, "none.crt"), key: filepath.Join(dir, "none.key"), want: "no such file"},
		{name: "not PEM", cert: garbage, key: garbage, want: "PEM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load([]string{"--okta-issuer=" + iss.Issuer(), "--listen=127.0.0.1:0",
				"--tls-cert-file=" + tc.cert, "--tls-key-file=" + tc.key}, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			a, err := Start(t.Context(), cfg, Options{})
			if err == nil {
				a.Close()
				t.Fatal("started")
			}
			if !strings.HasPrefix(err.Error(), "app: TLS certificate "+tc.cert) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want app: TLS certificate %s …%s", err, tc.cert, tc.want)
			}
		})
	}
}
