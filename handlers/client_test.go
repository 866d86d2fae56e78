package handlers

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/auth"
	"github.com/valyala/fasthttp"
)

var testTrusted = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"),
}

// clientCase is one request: its TCP peer and X-Forwarded-For lines.
type clientCase struct {
	name string
	peer net.Addr
	xff  []string
	want string // "" for the zero Addr
}

func (tc clientCase) run(t *testing.T) {
	var req fasthttp.Request
	for _, v := range tc.xff {
		req.Header.Add(headerXForwardedFor, v)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, tc.peer, nil)
	got := clientAddr(&ctx, testTrusted)
	var want netip.Addr
	if tc.want != "" {
		want = netip.MustParseAddr(tc.want)
	}
	if got != want {
		t.Errorf("client %v, want %v", got, want)
	}
}

func tcp(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }

// TestClientAddr: the peer, unless it is a trusted proxy; then the
// rightmost X-Forwarded-For entry that is not trusted.
func TestClientAddr(t *testing.T) {
	cases := []clientCase{
		{name: "untrusted peer", peer: tcp("198.51.100.7"), want: "198.51.100.7"},
		{name: "untrusted peer's forwarded header is ignored", peer: tcp("198.51.100.7"), xff: []string{"203.0.113.1"}, want: "198.51.100.7"},
		{name: "trusted peer without header", peer: tcp("127.0.0.1"), want: "127.0.0.1"},
		{name: "trusted peer, one entry", peer: tcp("127.0.0.1"), xff: []string{"203.0.113.1"}, want: "203.0.113.1"},
		{name: "client-written entries left of the real one", peer: tcp("10.0.0.2"), xff: []string{"1.1.1.1, 2.2.2.2, 203.0.113.1"}, want: "203.0.113.1"},
		{name: "trusted hops skipped", peer: tcp("10.0.0.2"), xff: []string{"1.1.1.1, 203.0.113.1, 10.0.0.9 ,10.1.1.1"}, want: "203.0.113.1"},
		{name: "several header lines are one list", peer: tcp("10.0.0.2"), xff: []string{"1.1.1.1, 203.0.113.1", "10.0.0.9"}, want: "203.0.113.1"},
		{name: "every entry trusted: the leftmost", peer: tcp("10.0.0.2"), xff: []string{"10.0.0.5, 10.0.0.9"}, want: "10.0.0.5"},
		{name: "garbage ends the walk at the last trusted hop", peer: tcp("10.0.0.2"), xff: []string{"203.0.113.1, bogus, 10.0.0.9"}, want: "10.0.0.9"},
		{name: "garbage rightmost: the peer", peer: tcp("10.0.0.2"), xff: []string{"203.0.113.1, unknown"}, want: "10.0.0.2"},
		{name: "empty entries skipped", peer: tcp("127.0.0.1"), xff: []string{" , 203.0.113.1, ,", ""}, want: "203.0.113.1"},
		{name: "ports and brackets", peer: tcp("127.0.0.1"), xff: []string{"[2001:db8::1]:443"}, want: "2001:db8::1"},
		{name: "bracketed v6", peer: tcp("127.0.0.1"), xff: []string{"[2001:db8::2]"}, want: "2001:db8::2"},
		{name: "v4 with port", peer: tcp("127.0.0.1"), xff: []string{"203.0.113.1:5555"}, want: "203.0.113.1"},
		{name: "mapped v4 unmapped", peer: tcp("127.0.0.1"), xff: []string{"::ffff:203.0.113.1"}, want: "203.0.113.1"},
		{name: "zone dropped", peer: tcp("127.0.0.1"), xff: []string{"fe80::1%eth0"}, want: "fe80::1"},
		{name: "mapped trusted peer", peer: tcp("::ffff:127.0.0.1"), xff: []string{"203.0.113.1"}, want: "203.0.113.1"},
		{name: "v6 loopback peer", peer: tcp("::1"), xff: []string{"2001:db8::3"}, want: "2001:db8::3"},
		{name: "no IP peer: no client", peer: &net.UnixAddr{Name: "/tmp/s", Net: "unix"}},
		{name: "unspecified peer: no client", peer: tcp("0.0.0.0")},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestValidateNamesClient: the middleware's ctx names the request's
// client to a validator that asks, and still carries the server's base
// context.
func TestValidateNamesClient(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	var seen netip.Addr
	var asked bool
	s, err := New(Config{
		TrustedProxies: testTrusted,
		BaseContext:    base,
		Validator: validatorOf(func(ctx context.Context) {
			seen, asked = auth.ClientFrom(ctx)
			cancel()
			if ctx.Err() == nil {
				t.Error("the validator's ctx is not the base context")
			}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var req fasthttp.Request
	req.SetRequestURI("/items")
	req.Header.Set(fasthttp.HeaderAuthorization, "Bearer x")
	req.Header.Set(headerXForwardedFor, "203.0.113.1")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, tcp("127.0.0.1"), nil)
	s.Handler()(&ctx)
	if !asked || seen != netip.MustParseAddr("203.0.113.1") {
		t.Errorf("validator saw client %v (%v), want 203.0.113.1", seen, asked)
	}
	if got := ctx.Response.StatusCode(); got != fasthttp.StatusOK {
		t.Errorf("status %d", got)
	}
}

// validatorOf is a Validator that calls f and accepts every token.
type validatorOf func(ctx context.Context)

func (f validatorOf) Validate(ctx context.Context, _ []byte) (*auth.Principal, error) {
	f(ctx)
	return &auth.Principal{Scopes: []string{"items"}}, nil
}

// FuzzForwardedFor feeds untrusted X-Forwarded-For lines to the client
// walk: it must not panic, and the client it names is the peer, an entry
// of the header, or an address parsed from one, and never a trusted
// address when the header holds a usable untrusted one to its right.
func FuzzForwardedFor(f *testing.F) {
	for _, seed := range []string{
		"", "203.0.113.1", "1.1.1.1, 2.2.2.2, 10.0.0.1", "10.0.0.1,10.0.0.2", "bogus, 10.0.0.1",
		"[2001:db8::1]:443, ::ffff:10.0.0.1", "fe80::1%eth0", ",,, ,", "unknown", "1.2.3.4:99999",
		"[::1]", "[", "]", "\x00\xff, 10.0.0.3",
	} {
		f.Add(seed, "10.0.0.2")
	}
	f.Fuzz(func(t *testing.T, xff, peerText string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			return
		}
		peer = peer.WithZone("").Unmap()
		var values [][]byte
		for line := range strings.SplitSeq(xff, "\n") {
			values = append(values, []byte(line))
		}
		got := forwardedClient(values, testTrusted, peer)
		if !got.IsValid() {
			t.Fatalf("no client for %q from %v", xff, peer)
		}
		if got != peer && !forwardedEntry(xff, got) {
			t.Fatalf("client %v is neither the peer %v nor an entry of %q", got, peer, xff)
		}
		if inPrefixes(testTrusted, got) {
			// Then every parsable entry right of the first unparsable one
			// from the right is trusted.
			for i := len(values) - 1; i >= 0; i-- {
				entries := strings.Split(string(values[i]), ",")
				for j := len(entries) - 1; j >= 0; j-- {
					e := strings.TrimSpace(entries[j])
					if e == "" {
						continue
					}
					a, ok := parseForwardedAddr([]byte(e))
					if !ok {
						return
					}
					if !inPrefixes(testTrusted, a) {
						t.Fatalf("client %v is trusted, but %q names untrusted %v", got, xff, a)
					}
				}
			}
		}
	})
}

// forwardedEntry reports whether some entry of xff parses as want.
func forwardedEntry(xff string, want netip.Addr) bool {
	for _, e := range strings.FieldsFunc(xff, func(r rune) bool { return r == ',' || r == '\n' }) {
		if a, ok := parseForwardedAddr([]byte(strings.TrimSpace(e))); ok && a == want {
			return true
		}
	}
	return false
}
