package app

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/internal/testutil"
)

// ownedGoroutines returns the stacks of the live goroutines that tokengate
// or the libraries it runs for itself (ristretto, go-redis) started or
// are running, but for the tests' own.
func ownedGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 || bytes.Contains(g, []byte("testing.tRunner")) {
			continue // this goroutine, and the tests'
		}
		for _, mark := range []string{"created by github.com/tokengate/", "github.com/tokengate/tokengate/", "github.com/dgraph-io/ristretto", "github.com/redis/go-redis"} {
			if bytes.Contains(g, []byte(mark)) {
				out = append(out, string(g))
				break
			}
		}
	}
	return out
}

// TestCloseStopsEveryGoroutine: every goroutine that Start starts (the
// server, the key refresher, the cache, discovery, introspection
// revalidation, the Redis subscriber, the admin listener, the development
// issuer, the listener's clock) has ended once Close returns, in each
// mode. Goroutines fasthttp keeps for itself (its worker pool's and
// clients' cleaners, which end on their own a few seconds later) are not
// counted.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	if left := ownedGoroutines(); len(left) > 0 {
		t.Fatalf("goroutines running before the test:\n%s", strings.Join(left, "\n\n"))
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"local", nil},
		{"hybrid with admin", []string{"--validation-mode=hybrid", "--admin-addr=127.0.0.1:0"}},
		{"remote", []string{"--validation-mode=remote"}},
		{"hybrid with redis", []string{"--validation-mode=hybrid", "--redis-url=redis://" + testutil.ClosedAddr(t) + "/0", "--redis-signing-key=" + strings.Repeat("k", 32)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := start(t, devConfig(t, tc.args...), Options{})
			waitReady(t, a)
			c := client(a, nil)
			get(t, c, "/readyz", "")
			get(t, c, "/items", "not.a.token")
			c.CloseIdleConnections()
			if len(ownedGoroutines()) == 0 {
				t.Fatal("no goroutine of tokengate's seen while serving: the check sees nothing")
			}
			a.Close()
			var left []string
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("still running:\n%s", strings.Join(left, "\n\n"))
				}
			})
			testutil.WaitFor(t, "the goroutines Start started to end", func() bool {
				left = ownedGoroutines()
				return len(left) == 0
			})
		})
	}
}
