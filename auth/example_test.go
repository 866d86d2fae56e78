package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tokengate/tokengate/auth"
)

// ExampleNewLocal validates an access token against the issuer's JWKS. A
// small loopback server stands in for the authorization server (Okta in
// production: issuer https://{domain}/oauth2/default).
func ExampleNewLocal() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	issuer := srv.URL + "/oauth2/default"
	mux.HandleFunc("/oauth2/default/.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(auth.Metadata{Issuer: issuer, JWKSURI: issuer + "/v1/keys"})
	})
	mux.HandleFunc("/oauth2/default/v1/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: pub, KeyID: "k1", Algorithm: "EdDSA", Use: "sig"},
		}})
	})

	// Wiring: discovery, then the key set (refreshed in the background
	// until Close), then the validator.
	disc, err := auth.NewDiscovery(auth.DiscoveryConfig{Issuer: issuer})
	if err != nil {
		panic(err)
	}
	defer disc.Close()
	keys, err := auth.NewKeySet(auth.KeySetConfig{Discovery: disc})
	if err != nil {
		panic(err)
	}
	keys.Start()
	defer keys.Close()
	validator, err := auth.NewLocal(auth.LocalConfig{Issuer: issuer, Audience: "api://default", Keys: keys})
	if err != nil {
		panic(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := keys.Refresh(ctx); err != nil { // or wait for keys.Ready() == nil
		panic(err)
	}

	// A token as the authorization server would issue it.
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	now := time.Now()
	token, _ := jwt.Signed(signer).Claims(map[string]any{
		"iss": issuer, "aud": "api://default", "sub": "dev-client", "cid": "dev-client",
		"scp": []string{"items"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).Serialize()

	header := []byte("Bearer " + token) // the Authorization header
	raw, err := auth.ParseBearer(header)
	if err != nil {
		panic(err)
	}
	p, err := validator.Validate(ctx, raw)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Subject, p.HasScope("items"))

	_, err = validator.Validate(ctx, []byte("not.a.token"))
	fmt.Println(errors.Is(err, auth.ErrInvalidToken), errors.Is(err, auth.ErrMalformed))
	reason, _ := auth.ReasonOf(err) // for a metric label and the client's error_description
	fmt.Println(reason, "/", reason.Description())

	// Output:
	// dev-client true
	// true true
	// malformed / malformed token
}
