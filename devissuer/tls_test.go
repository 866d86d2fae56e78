package devissuer

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testpki"
)

// TestTLS: with Config.TLS the issuer is an https URL, every endpoint is
// served over TLS (across Stop and Restart too), and a client that does
// not trust the CA is refused by certificate verification.
func TestTLS(t *testing.T) {
	ca := testpki.NewCA(t, "devissuer test CA")
	leaf := ca.Issue(t, "127.0.0.1")
	iss, err := Start(Config{TLS: &tls.Config{Certificates: []tls.Certificate{leaf.TLS(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	if !strings.HasPrefix(iss.Issuer(), "https://127.0.0.1:") {
		t.Fatalf("Issuer() = %q, want https://127.0.0.1:…", iss.Issuer())
	}
	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	distrusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}

	discovery := func(t *testing.T) {
		resp, err := trusting.Get(iss.DiscoveryURL())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md struct {
			Issuer        string `json:"issuer"`
			JWKSURI       string `json:"jwks_uri"`
			TokenEndpoint string `json:"token_endpoint"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&md); err != nil {
			t.Fatal(err)
		}
		if md.Issuer != iss.Issuer() || md.JWKSURI != iss.JWKSURL() || !strings.HasPrefix(md.TokenEndpoint, "https://") {
			t.Errorf("metadata %+v does not name the https issuer %s", md, iss.Issuer())
		}
		req, _ := http.NewRequest(http.MethodPost, iss.TokenURL(), strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
		tok, err := trusting.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		tok.Body.Close()
		if tok.StatusCode != http.StatusOK {
			t.Errorf("token endpoint over TLS: %d", tok.StatusCode)
		}
	}
	t.Run("trusted", discovery)
	t.Run("untrusted", func(t *testing.T) {
		_, err := distrusting.Get(iss.DiscoveryURL())
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("GET without the CA: %v, want an unknown-authority error", err)
		}
	})
	if err := iss.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := iss.Restart(); err != nil {
		t.Fatal(err)
	}
	trusting.CloseIdleConnections()
	t.Run("trusted after restart", discovery)
}
