package bench

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/tokengate/tokengate/cmd/server/app"
	"github.com/tokengate/tokengate/devissuer"
	"github.com/tokengate/tokengate/internal/testutil/algfix"
	"github.com/tokengate/tokengate/loadtest/stack"
)

// benchAlgs are the signing set-ups of the benchmarks' alg= cases.
func benchAlgs() []algfix.Alg { return algfix.Algs("RS256-2048", "RS256-4096", "ES256", "EdDSA") }

// rs2048 is the set-up of the cases that name no algorithm.
func rs2048() algfix.Alg { return algfix.Algs("RS256-2048")[0] }

// poolSize is how many distinct tokens the miss and unique benchmarks
// cycle through: far more than the goroutines of RunParallel, so that no
// two concurrent operations carry the same token (which would share one
// verification), and cheap enough to mint even with 4096-bit RSA.
const poolSize = 128

// newFixtures returns the issuers of a top-level test or benchmark (tb,
// which owns their cleanup), each with poolSize distinct valid tokens.
func newFixtures(tb testing.TB) *algfix.Set { return algfix.NewSet(tb, poolSize) }

// server is a tokengate served over an in-memory listener (or loopback
// TCP), and a client that dials it.
type server struct {
	*app.App
	client *fasthttp.HostClient
	base   string // scheme and host of request URIs: http://tokengate.bench
}

// startServer starts a tokengate for iss (flags in args) on an in-memory
// listener and waits until it is ready. owner's cleanup stops it.
func startServer(tb, owner testing.TB, iss *devissuer.Issuer, uncachedValid bool, args ...string) *server {
	tb.Helper()
	return startServerWith(tb, owner, stack.Options{Issuer: iss, Args: args, UncachedValid: uncachedValid})
}

// startServerWith starts a tokengate configured by o on a new in-memory
// listener and waits until it is ready. Its client dials from a loopback
// address (127.0.0.1:40000), as a proxy on the same host would, so that
// the decision endpoints trust it under the default TRUSTED_PROXIES.
// owner's cleanup stops it.
func startServerWith(tb, owner testing.TB, o stack.Options) *server {
	tb.Helper()
	ln := fasthttputil.NewInmemoryListener()
	o.Listener = ln
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := stack.Start(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	owner.Cleanup(s.Close)
	peer := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	return &server{
		App: s,
		client: &fasthttp.HostClient{
			Addr:                "tokengate.bench",
			Dial:                func(string) (net.Conn, error) { return ln.DialWithLocalAddr(peer) },
			MaxConns:            1024,
			MaxResponseBodySize: 1 << 20,
			ReadTimeout:         30 * time.Second,
			WriteTimeout:        30 * time.Second,
		},
		base: "http://tokengate.bench",
	}
}

// bearers turns tokens into Authorization header values.
func bearers(tokens []string) [][]byte {
	out := make([][]byte, len(tokens))
	for i, t := range tokens {
		out[i] = []byte("Bearer " + t)
	}
	return out
}

// cycler hands out pool indexes round robin to concurrent goroutines.
type cycler struct{ n atomic.Uint64 }

func (c *cycler) next(size int) int { return int((c.n.Add(1) - 1) % uint64(size)) }
