package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/auth"
)

// benchPolicy has 40 routes: for v in 0..19, a GET route with a host and a
// write route without one, so that /api/v19/... is matched by route 38 after
// 38 misses.
func benchPolicy(t testing.TB) *Policy {
	t.Helper()
	var b strings.Builder
	b.WriteString("default: deny\nroutes:\n")
	for v := range 20 {
		fmt.Fprintf(&b, "  - host: api.example.com\n    path: /api/v%d/items/*\n    methods: [GET]\n    scopes: [r%d]\n", v, v)
		fmt.Fprintf(&b, "  - path: /api/v%d/**\n    methods: [POST, PUT, DELETE]\n    scopes: [w%d]\n", v, v)
	}
	return mustParse(t, b.String())
}

// benchPolicy20 has the brief's 20 rules: mixed hosts, methods and globs,
// with the request matched by the last one.
func benchPolicy20(t testing.TB) *Policy {
	t.Helper()
	var b strings.Builder
	b.WriteString("default: deny\nroutes:\n")
	for i := range 19 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "  - host: \"*.svc%d.example\"\n    path: /s%d/**\n", i, i)
		case 1:
			fmt.Fprintf(&b, "  - path: /s%d/*/detail\n    methods: [GET]\n    scopes: [s%d]\n", i, i)
		default:
			fmt.Fprintf(&b, "  - path: /s%d/exact\n    public: true\n", i)
		}
	}
	b.WriteString("  - host: api.example.com\n    path: /orders/*/items/**\n    methods: [GET, POST]\n    scopes: [orders:read]\n")
	return mustParse(t, b.String())
}

func BenchmarkMatch(b *testing.B) {
	p := benchPolicy20(b)
	if p.Len() != 20 {
		b.Fatalf("%d rules", p.Len())
	}
	cases := []struct{ name, host, method, path string }{
		{name: "last of 20", host: "api.example.com:443", method: "GET", path: "/orders/17/items/3"},
		{name: "default after 20", host: "api.example.com", method: "GET", path: "/nowhere/at/all"},
		{name: "first", host: "a.svc0.example", method: "GET", path: "/s0/x"},
	}
	for _, tc := range cases {
		host, method, path := []byte(tc.host), []byte(tc.method), []byte(tc.path)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Match(host, method, path)
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	cases := []struct{ name, raw string }{
		{name: "clean", raw: "/api/v1/orders/1234/items"},
		{name: "dirty", raw: "//api/v1/./orders/%2e%2e/orders/1234/%69tems?x=1"},
	}
	for _, tc := range cases {
		raw := []byte(tc.raw)
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				buf, _ = Normalize(buf[:0], raw)
			}
		})
	}
}

// BenchmarkDecision is what a decision endpoint does for an allowed request
// once it has a principal: normalise, match, decide, render three headers.
func BenchmarkDecision(b *testing.B) {
	p := benchPolicy20(b)
	pr := &auth.Principal{Subject: "alice", ClientID: "0oa1", Scopes: []string{"orders:read", "orders:write"}}
	host, method, raw := []byte("api.example.com"), []byte("GET"), []byte("/orders/17/items/3?x=1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		path := make([]byte, 0, 256)
		val := make([]byte, 0, 256)
		for pb.Next() {
			path, _ = Normalize(path[:0], raw)
			r := p.Match(host, method, path)
			if o, _ := r.Decide(pr); o != Allowed {
				panic(o)
			}
			for _, h := range p.Headers() {
				val, _ = AppendClaim(val[:0], h.Claim, pr)
			}
		}
	})
}
