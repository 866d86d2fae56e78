package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/tokengate/internal/testutil"
)

// TestMalformedRequestLogKeepsCredentials: fasthttp reports a request it
// cannot parse with a snippet of the raw bytes, which hold the
// Authorization header. At LOG_LEVEL=debug that snippet must not carry a
// bearer token or a Basic client secret into the log.
func TestMalformedRequestLogKeepsCredentials(t *testing.T) {
	s := startServer(t, []string{"--dev"}, nil, nil) // startServer logs at debug
	const (
		token = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2VuLWJ5dGVz.c2lnbmF0dXJlLWJ5dGVz"
		basic = "ZGV2LWNsaWVudDpzM2NyM3QtZGV2LXNlY3JldA==" // dev-client:s3cr3t-dev-secret
	)
	requests := []string{
		"GET /items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token + "\r\nBroken header line\r\n\r\n",
		"GET /items HTTP/1.1\r\nHost: x\r\nAuthorization Bearer " + token + "\r\n\r\n", // the broken line is the credential
		"POST /token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + basic + "\r\nBroken header line\r\n\r\n",
	}
	for _, raw := range requests {
		conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		conn.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("malformed request: status %d, want 400", resp.StatusCode)
		}
	}
	// fasthttp logs once the connection is done with.
	testutil.WaitFor(t, "fasthttp to log both parse errors", func() bool {
		return strings.Count(s.stderr.String(), "error when serving connection") >= len(requests)
	})
	log := s.stderr.String()
	for _, secret := range []string{token, basic, "c2VjcmV0LXRva2VuLWJ5dGVz"} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains credential bytes %q:\n%s", secret, log)
		}
	}
}
