package devissuer_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/tokengate/tokengate/devissuer"
	"github.com/valyala/fasthttp"
)

// Start an issuer on a free loopback port, get a client-credentials token
// from its token endpoint as any OAuth client would, and look inside.
func Example() {
	iss, err := devissuer.Start(devissuer.Config{
		Algorithm: "ES256",
		Now:       func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()

	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(iss.TokenURL())
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("dev-client:dev-secret")))
	req.SetBodyString("grant_type=client_credentials&scope=items")
	client := &fasthttp.Client{MaxResponseBodySize: 1 << 20}
	if err := client.DoTimeout(req, resp, 5*time.Second); err != nil {
		log.Fatal(err)
	}

	var answer struct {
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(resp.Body(), &answer); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode(), answer.TokenType, answer.ExpiresIn, answer.Scope)

	// The claims, decoded without verification for display.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(answer.AccessToken, ".")[1])
	var claims struct {
		Ver int      `json:"ver"`
		Iss string   `json:"iss"`
		Aud string   `json:"aud"`
		Iat int64    `json:"iat"`
		Exp int64    `json:"exp"`
		Cid string   `json:"cid"`
		Scp []string `json:"scp"`
		Sub string   `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ver:", claims.Ver, "iss is the issuer:", claims.Iss == iss.Issuer())
	fmt.Println("aud:", claims.Aud, "cid:", claims.Cid, "sub:", claims.Sub, "scp:", claims.Scp)
	fmt.Println("lifetime:", time.Duration(claims.Exp-claims.Iat)*time.Second)
	fmt.Println("token endpoint calls:", iss.Counts().Token)
	// Output:
	// 200 Bearer 3600 items
	// ver: 1 iss is the issuer: true
	// aud: api://default cid: dev-client sub: dev-client scp: [items]
	// lifetime: 1h0m0s
	// token endpoint calls: 1
}

// Make the introspection endpoint fail and then slow, as a resilience test
// or a load test would.
func ExampleIssuer_SetFault() {
	iss, err := devissuer.Start(devissuer.Config{Algorithm: "EdDSA"})
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	tok, err := iss.Mint(devissuer.MintOptions{})
	if err != nil {
		log.Fatal(err)
	}

	client := &fasthttp.Client{MaxResponseBodySize: 1 << 20}
	introspect := func() {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(iss.IntrospectionURL())
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.SetBodyString("client_id=dev-client&client_secret=dev-secret&token=" + tok)
		if err := client.DoTimeout(req, resp, 5*time.Second); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d Retry-After=%q %s\n", resp.StatusCode(), resp.Header.Peek("Retry-After"), resp.Body()[:15])
	}

	// The next two introspections are rate limited, Okta style.
	iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Status: 429, RetryAfter: "5", Times: 2})
	introspect()
	introspect()
	introspect()

	// From now on every introspection takes a 20 ms round trip more.
	iss.SetFault(devissuer.EndpointIntrospect, devissuer.Fault{Latency: 20 * time.Millisecond})
	introspect()
	fmt.Println("introspections:", iss.Counts().Introspect)
	// Output:
	// 429 Retry-After="5" {"errorCode":"E
	// 429 Retry-After="5" {"errorCode":"E
	// 200 Retry-After="" {"active":true,
	// 200 Retry-After="" {"active":true,
	// introspections: 4
}
