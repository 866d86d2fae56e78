//go:build !race

package auth

import (
	"encoding/json"
	"testing"
)

// TestFirstSightAllocs guards the allocations of a first-sight
// validation (Local.Validate of a token nobody has seen), per signing
// key, and of the claims decoder inside it. Most of a validation's
// allocations are go-jose's own ParseSignedCompact and Verify (about 59
// for an Ed25519 token, its header and payload JSON and base64); Local
// adds the token's string copy, the Principal, and the decoder's two:
// the kept claim strings in one allocation, the "aud" and "scp" slices
// in another. A go-jose upgrade may move the totals; the decoder's own
// count may not grow.
func TestFirstSightAllocs(t *testing.T) {
	fx := newLocalFixture(t, nil)
	payload, err := json.Marshal(fx.claims(map[string]any{"scp": []string{"openid", "items", "profile"}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("decodeClaims", func(t *testing.T) {
		var c claimSet
		allocs := testing.AllocsPerRun(1000, func() {
			if err := decodeClaims(payload, &c); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("decodeClaims: %v allocations, want at most 2", allocs)
		}
	})
	for _, tc := range []struct {
		name string
		key  signingKey
		max  float64
	}{
		{"EdDSA", fx.keys.ed, 70},
		{"ES256", fx.keys.ec, 93},
		{"RS256-2048", fx.keys.rsa, 81},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := []byte(sign(t, tc.key, payload, nil, false))
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := fx.local.Validate(t.Context(), tok); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > tc.max {
				t.Errorf("Local.Validate: %v allocations, want at most %v", allocs, tc.max)
			}
			t.Logf("%v allocations", allocs)
		})
	}
}
