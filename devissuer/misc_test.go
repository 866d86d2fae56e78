package devissuer

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogsCarryNoSecrets drives every endpoint, successes and failures,
// at debug level and checks that no secret or token reaches the log.
func TestLogsCarryNoSecrets(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	const secret = "s3cret-Value_42"
	iss := start(t, Config{Algorithm: "ES256", Logger: zap.New(core), Clients: []Client{{ID: "app", Secret: secret}}})
	c := newClient()
	tok := getToken(t, c, iss, "app", secret, "")
	post := func(u string, form url.Values, header map[string]string) {
		mustDo(t, c, request{method: "POST", url: u, form: form, header: header})
	}
	good := map[string]string{"Authorization": basic("app", secret)}
	bad := map[string]string{"Authorization": basic("app", secret+"x")}
	post(iss.TokenURL(), url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {secret}}, nil)
	post(iss.TokenURL(), url.Values{"grant_type": {"client_credentials"}}, bad)
	post(iss.IntrospectionURL(), url.Values{"token": {tok}}, good)
	post(iss.IntrospectionURL(), url.Values{"token": {tok}}, bad)
	post(iss.RevocationURL(), url.Values{"token": {tok}}, good)
	mustDo(t, c, request{url: iss.JWKSURL()})
	iss.SetFault(EndpointIntrospect, Fault{Drop: true})
	_, _ = do(c, request{method: "POST", url: iss.IntrospectionURL(), form: url.Values{"token": {tok}}, header: good})
	if _, err := iss.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if err := iss.Close(); err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(tok, ".")
	forbidden := []string{secret, tok, parts[1], parts[2], base64.StdEncoding.EncodeToString([]byte("app:" + secret))}
	entries := logs.All()
	if len(entries) < 8 {
		t.Fatalf("only %d log entries: logging is not exercised", len(entries))
	}
	sawFingerprint := false
	for _, e := range entries {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, f := range forbidden {
			if strings.Contains(line, f) {
				t.Errorf("log line carries a secret or token: %s", line)
			}
		}
		if e.ContextMap()["token"] == fingerprint([]byte(tok)) {
			sawFingerprint = true
		}
	}
	if !sawFingerprint {
		t.Error("no log line identifies the token by its fingerprint")
	}
}

// TestConcurrentUse runs every endpoint and every Go method at once, for
// the race detector.
func TestConcurrentUse(t *testing.T) {
	iss := start(t, Config{Algorithm: "ES256", Logger: zap.NewNop()})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 6 {
		wg.Go(func() {
			c := newClient()
			for n := range 15 {
				tok, err := iss.Mint(MintOptions{})
				if err != nil {
					errs <- err
					return
				}
				reqs := []request{
					{url: iss.JWKSURL()},
					{url: iss.DiscoveryURL()},
					{method: "POST", url: iss.TokenURL(), form: url.Values{"grant_type": {"client_credentials"}, "client_id": {"dev-client"}, "client_secret": {"dev-secret"}}},
					{method: "POST", url: iss.IntrospectionURL(), form: url.Values{"token": {tok}, "client_id": {"dev-client"}, "client_secret": {"dev-secret"}}},
					{method: "POST", url: iss.RevocationURL(), form: url.Values{"token": {tok}, "client_id": {"dev-client"}, "client_secret": {"dev-secret"}}},
				}
				for _, r := range reqs {
					rep, err := do(c, r)
					if err != nil || rep.status != 200 {
						errs <- fmt.Errorf("worker %d round %d %s: %v %d", w, n, r.url, err, rep.status)
						return
					}
				}
				if w == 0 && n%5 == 0 {
					kids := iss.PublishedKIDs()
					if _, err := iss.RotateKey(); err != nil {
						errs <- err
						return
					}
					iss.RemoveKey(kids[0])
				}
				if w == 1 {
					iss.SetFault(EndpointKeys, Fault{Header: map[string]string{"X-Round": fmt.Sprint(n)}})
					_ = iss.Counts()
					iss.Revoke(tok)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := iss.Counts(); got.Token != 90 || got.Introspect != 90 || got.Revoke != 90 {
		t.Errorf("counts %+v", got)
	}
}
