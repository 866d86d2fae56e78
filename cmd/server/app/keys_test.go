package app

import (
	"testing"

	"github.com/tokengate/tokengate/devissuer"
)

// TestRetiredKeyStopsCachedTokens: once the issuer retires a key and the
// key set has refreshed, a cached token it signed is refused (401), while a
// cached token of a key that stayed keeps being served from the cache.
func TestRetiredKeyStopsCachedTokens(t *testing.T) {
	for _, mode := range []string{"local", "hybrid"} {
		t.Run(mode, func(t *testing.T) {
			a := start(t, devConfig(t, "--validation-mode="+mode), Options{})
			waitReady(t, a)
			dev := a.Dev()
			oldKID := dev.SigningKID()
			oldTok, err := dev.Mint(devissuer.MintOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dev.RotateKey(); err != nil {
				t.Fatal(err)
			}
			newTok, err := dev.Mint(devissuer.MintOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := client(a, nil)
			for _, tok := range []string{oldTok, newTok} {
				if code, body := get(t, c, "/items", tok); code != 200 {
					t.Fatalf("GET /items = %d %s", code, body)
				}
				a.Cache().Wait()
			}
			validations := a.Cache().Stats().Validations

			// Retire the old key; the key set picks it up on a refresh.
			if !dev.RemoveKey(oldKID) {
				t.Fatalf("RemoveKey(%s) = false", oldKID)
			}
			if err := a.KeySet().Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			if code, body := get(t, c, "/items", oldTok); code != 401 {
				t.Fatalf("token of the retired key: GET /items = %d %s, want 401", code, body)
			}
			a.Cache().Wait()
			before := a.Cache().Stats()
			for range 3 {
				if code, body := get(t, c, "/items", newTok); code != 200 {
					t.Fatalf("token of the remaining key: GET /items = %d %s", code, body)
				}
			}
			after := a.Cache().Stats()
			if got := after.Validations - before.Validations; got != 0 {
				t.Errorf("the remaining key's token was validated %d more times, want 0 (cache hits)", got)
			}
			if got := after.Hits - before.Hits; got != 3 {
				t.Errorf("%d hits for 3 requests with the remaining key's token, want 3", got)
			}
			if before.Validations <= validations {
				t.Errorf("validations %d → %d: the retired key's token was not re-validated", validations, before.Validations)
			}
		})
	}
}
