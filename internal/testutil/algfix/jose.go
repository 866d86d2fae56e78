package algfix

import (
	"crypto"
	"errors"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// joseClaims is what a plain go-jose user decodes: the registered claims
// plus Okta's scp and cid.
type joseClaims struct {
	jwt.Claims
	Scp []string `json:"scp"`
	Cid string   `json:"cid"`
}

// VerifyWithJose is the library floor under a local validation, for
// benchmarks to compare against: parse with the algorithm allow-list
// algs, verify the signature with pub (a key already in hand), decode the
// claims, require exp, and check iss, aud and the time claims against the
// wall clock with a minute's leeway.
func VerifyWithJose(token string, algs []jose.SignatureAlgorithm, pub crypto.PublicKey, issuer, audience string) error {
	tok, err := jwt.ParseSigned(token, algs)
	if err != nil {
		return err
	}
	var c joseClaims
	if err := tok.Claims(pub, &c); err != nil {
		return err
	}
	if c.Expiry == nil {
		return errors.New("algfix: no exp")
	}
	return c.ValidateWithLeeway(jwt.Expected{
		Issuer:      issuer,
		AnyAudience: jwt.Audience{audience},
		Time:        time.Now(),
	}, time.Minute)
}
