package authcache

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/internal/testutil"
)

// clientRecorder is an auth.Validator that records the client each call's
// ctx names (auth.ClientFrom) and whether that ctx was still alive.
type clientRecorder struct {
	mu      sync.Mutex // guards seen
	seen    []netip.Addr
	expires time.Time
}

func (v *clientRecorder) Validate(ctx context.Context, token []byte) (*auth.Principal, error) {
	addr, _ := auth.ClientFrom(ctx)
	v.mu.Lock()
	v.seen = append(v.seen, addr)
	v.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, &auth.UnavailableError{Reason: "ctx ended", Err: err}
	}
	return principalFor(string(token), v.expires), nil
}

// TestMissCarriesClient: the validation a miss runs names the caller's
// client (auth.WithClient), so that the validator can bound work per
// client; a caller naming none gets a validation naming none. A hit runs
// nothing.
func TestMissCarriesClient(t *testing.T) {
	v := &clientRecorder{expires: t0.Add(time.Hour)}
	clk := testutil.NewClock(t0)
	c := newTestCache(t, v, Config{Now: clk.Now})
	a := netip.MustParseAddr("203.0.113.7")

	if _, err := c.Validate(auth.WithClient(context.Background(), a), []byte("tok-a")); err != nil {
		t.Fatal(err)
	}
	mustValid(t, c, "tok-b") // no client named
	c.Wait()
	mustValid(t, c, "tok-a") // a hit: no validation

	v.mu.Lock()
	defer v.mu.Unlock()
	want := []netip.Addr{a, {}}
	if len(v.seen) != len(want) || v.seen[0] != want[0] || v.seen[1] != want[1] {
		t.Fatalf("validations saw clients %v, want %v", v.seen, want)
	}
}
