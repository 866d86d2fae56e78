package app

import (
	"strings"
	"testing"
)

// TestOversizeToken holds README's failure table to the served limits: a
// token over MAX_TOKEN_SIZE whose request still fits the read buffer
// (MAX_TOKEN_SIZE + 8 KiB, at least 16 KiB) is a 401 "token too large";
// a header beyond the buffer is never read as a request, and is 431 with
// a JSON detail and the connection closed.
func TestOversizeToken(t *testing.T) {
	a := start(t, devConfig(t, "--max-token-size=8192"), Options{})
	waitReady(t, a)
	for _, tc := range []struct {
		n         int
		status    int
		body      string
		challenge string
		close     bool
	}{
		{9000, 401, `{"detail":"token too large"}`, `Bearer realm="tokengate", error="invalid_token", error_description="token too large"`, false},
		{15000, 401, `{"detail":"token too large"}`, `Bearer realm="tokengate", error="invalid_token", error_description="token too large"`, false},
		{17000, 431, `{"detail":"request header too large"}`, "", true},
	} {
		resp, body := rawRequest(t, a.Addr(), "GET", "/items", "Authorization", "Bearer "+strings.Repeat("a", tc.n))
		if resp.StatusCode != tc.status || body != tc.body || resp.Header.Get("WWW-Authenticate") != tc.challenge || resp.Close != tc.close {
			t.Errorf("a %d-byte token: %d %s, WWW-Authenticate %q, close %v; want %d %s, %q, close %v",
				tc.n, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"), resp.Close, tc.status, tc.body, tc.challenge, tc.close)
		}
	}
}
