package handlers_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/tokengate/tokengate/auth"
	"github.com/tokengate/tokengate/handlers"
	"github.com/tokengate/tokengate/internal/testutil"
)

// TestTokenUpstreamParseErrorLogKeepsToken: when the token endpoint's
// answer cannot be parsed, fasthttp's error quotes the raw bytes it read —
// which hold the access token the server issued. The 502 is logged, the
// token is not.
func TestTokenUpstreamParseErrorLogKeepsToken(t *testing.T) {
	const issued = "eyJhbGciOiJSUzI1NiJ9.issued-access-token.c2ln"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { // one connection: read the request, answer garbage
		defer close(served)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if req, err := http.ReadRequest(bufio.NewReader(conn)); err == nil {
			req.Body.Close()
		}
		_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nBroken header line\r\nContent-Length: 48\r\n\r\n" +
			`{"access_token":"` + issued + `"}`))
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
	})
	endpoint := "http://" + ln.Addr().String() + "/v1/token"
	g := newGate(t, handlers.Config{
		TokenEndpoint: func(context.Context) (string, error) { return endpoint, nil },
		TokenClient:   auth.NewHTTPClient(auth.HTTPClientConfig{}),
	})
	resp := g.do(t, call{method: "POST", path: "/token", header: basicHeader("client-a", secretPrefix+"x")})
	if resp.StatusCode() != 502 {
		t.Fatalf("status %d, want 502 (body %s)", resp.StatusCode(), resp.Body())
	}
	if n := g.logs.FilterMessage("handlers: token endpoint call failed").Len(); n != 1 {
		t.Fatalf("%d failure logs, want 1", n)
	}
	noLogContains(t, g.logs, issued, secretPrefix)
}

// TestTokenFailureLogRedactsEndpoint: the token endpoint URL is logged as
// auth.RedactURL shows it, without the user info or query that may carry
// a secret.
func TestTokenFailureLogRedactsEndpoint(t *testing.T) {
	host := testutil.ClosedAddr(t)
	endpoint := "http://operator:" + secretPrefix + "pw@" + host + "/v1/token?api_key=" + secretPrefix + "q#" + secretPrefix + "f"
	g := newGate(t, handlers.Config{
		TokenEndpoint: func(context.Context) (string, error) { return endpoint, nil },
		TokenClient:   auth.NewHTTPClient(auth.HTTPClientConfig{}),
	})
	resp := g.do(t, call{method: "POST", path: "/token", header: basicHeader("client-a", "pw")})
	if resp.StatusCode() != 502 {
		t.Fatalf("status %d, want 502 (body %s)", resp.StatusCode(), resp.Body())
	}
	logged := g.logs.FilterMessage("handlers: token endpoint call failed").All()
	if len(logged) != 1 {
		t.Fatalf("%d failure logs, want 1", len(logged))
	}
	if got, want := logged[0].ContextMap()["endpoint"], "http://"+host+"/v1/token?REDACTED"; got != want {
		t.Errorf("endpoint logged as %q, want %q", got, want)
	}
	noLogContains(t, g.logs, secretPrefix)
}
