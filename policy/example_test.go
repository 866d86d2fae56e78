package policy_test

import (
	"fmt"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/policy"
)

// Example shows what a decision endpoint does with a policy: normalise the
// original path, match the rule, decide with the token's principal (nil
// when there is none), and render the claim headers of an allowed request.
func Example() {
	p, err := policy.Parse("policy.yaml", []byte(`
default: deny
routes:
  - path: /orders/**
    methods: [GET]
    scopes: [orders:read]
  - path: /status
    public: true
headers:
  X-Auth-Subject: sub
  X-Auth-Scopes: scp
`))
	if err != nil {
		panic(err)
	}
	alice := &auth.Principal{Subject: "alice", Scopes: []string{"orders:read"}}
	bob := &auth.Principal{Subject: "bob", Scopes: []string{"profile"}}

	requests := []struct {
		method, target string
		principal      *auth.Principal
	}{
		{"GET", "/status?verbose=1", nil},
		{"GET", "/orders/42", nil},
		{"GET", "/orders/42", bob},
		{"GET", "/status/../orders/%34%32", alice},
		{"DELETE", "/orders/42", alice},
		{"GET", "/orders%2F42", alice},
	}
	var path, value []byte // reused buffers: no allocation per request
	for _, r := range requests {
		path, err = policy.Normalize(path[:0], []byte(r.target))
		if err != nil {
			fmt.Printf("%s %s: 400 (%v)\n", r.method, r.target, err)
			continue
		}
		rule := p.Match([]byte("api.example.com"), []byte(r.method), path)
		outcome, scope := rule.Decide(r.principal)
		fmt.Printf("%s %s: %s as %s, route %d", r.method, r.target, outcome, path, rule.Index)
		if scope != "" {
			fmt.Printf(", needs %s", scope)
		}
		if outcome == policy.Allowed && r.principal != nil {
			for _, h := range p.Headers() {
				if value, err = policy.AppendClaim(value[:0], h.Claim, r.principal); err == nil {
					fmt.Printf(", %s: %s", h.Name, value)
				}
			}
		}
		fmt.Println()
	}
	// Output:
	// GET /status?verbose=1: allowed as /status, route 1
	// GET /orders/42: needs token as /orders/42, route 0
	// GET /orders/42: missing scope as /orders/42, route 0, needs orders:read
	// GET /status/../orders/%34%32: allowed as /orders/42, route 0, X-Auth-Subject: alice, X-Auth-Scopes: orders:read
	// DELETE /orders/42: denied as /orders/42, route -1
	// GET /orders%2F42: 400 (policy: bad request path: encoded slash)
}

// ExampleHolder reloads a policy file, keeping the old policy when the new
// file is bad.
func ExampleHolder() {
	h := policy.NewHolder(policy.Default("items:read"), nil)
	err := h.Reload("testdata/bad.yaml")
	fmt.Println(err)
	fmt.Println(h.Load().Name(), h.Rules())
	if err := h.Reload("testdata/good.yaml"); err != nil {
		panic(err)
	}
	fmt.Println(h.Load().Name(), h.Rules())
	// Output:
	// policy: testdata/bad.yaml:4: public: true together with scopes
	// (default policy) 0
	// testdata/good.yaml 2
}
