package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
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

// TestAdminCmdlineHidesSecretFlags: the real process, started with a
// client secret on its command line and the admin listener on, serves
// /debug/pprof/cmdline without the secret (net/http/pprof would serve
// os.Args as given, to anyone who reaches a listener that has no
// authentication).
func TestAdminCmdlineHidesSecretFlags(t *testing.T) {
	const secret = "s3cr3t-client-pw"
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	var stderr syncBuffer
	startMain(t, &stderr, "--dev", "--listen-addr="+addr, "--admin-addr="+admin, "--okta-client-secret", secret)

	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	testutil.WaitFor(t, "the admin listener to serve", func() bool {
		resp, err := client.Get("http://" + admin + "/debug/pprof/cmdline")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK
	})
	if strings.Contains(body, secret) {
		t.Errorf("/debug/pprof/cmdline shows the secret: %q", body)
	}
	if !strings.Contains(body, "--okta-client-secret\x00REDACTED") || !strings.Contains(body, "--admin-addr="+admin) {
		t.Errorf("/debug/pprof/cmdline = %q, want the command line with the secret redacted", body)
	}
	if strings.Contains(stderr.String(), secret) {
		t.Errorf("the log shows the secret:\n%s", stderr.String())
	}
}
