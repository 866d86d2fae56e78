package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokengate/tokengate/devissuer"
)

// TestDrainUnderLoad is SIGTERM under load as an orchestrator sees it:
// keep-alive clients loop on GET /items; the process is signalled; a
// prober, standing for the load balancer, polls /readyz and removes the
// endpoint (the clients stop sending) once it has answered 503 three times
// in a row, as a Kubernetes readiness probe with failureThreshold 3 does. With
// SHUTDOWN_DRAIN_DELAY longer than that removal takes, no request fails:
// requests that arrive after the signal are served with Connection: close
// (their clients reconnect, to the same server while it drains), and the
// listener closes only after the traffic has gone. Clients never retry
// (MaxIdemponentCallAttempts 1), so a request on a connection the server
// closed would count as failed.
func TestDrainUnderLoad(t *testing.T) {
	const (
		clients     = 8
		maxRequests = 20000 // per client: the loop is bounded even if removal never came
		warmup      = 200   // requests served before the signal
	)
	s := startServer(t, []string{"--dev"}, map[string]string{"SHUTDOWN_DRAIN_DELAY": "2s"}, nil)
	s.keysReady(t)
	tok, err := s.Dev().Mint(devissuer.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	authz := "Bearer " + tok

	var (
		served, failed, afterSignal, closes atomic.Int64
		signalled                           atomic.Bool
		firstFailure                        atomic.Pointer[string]
		warm                                = make(chan struct{})
		warmOnce                            sync.Once
		removed                             = make(chan struct{})
		wg                                  sync.WaitGroup
	)
	fail := func(what string) {
		failed.Add(1)
		firstFailure.CompareAndSwap(nil, &what)
	}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &fasthttp.HostClient{
				Addr:                      s.Addr(),
				MaxConns:                  1,
				MaxIdemponentCallAttempts: 1,
				ReadTimeout:               10 * time.Second,
				WriteTimeout:              10 * time.Second,
			}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + s.Addr() + "/items")
			req.Header.Set("Authorization", authz)
			for range maxRequests {
				select {
				case <-removed:
					return
				default:
				}
				after := signalled.Load()
				if err := c.Do(req, resp); err != nil {
					fail(err.Error())
					continue
				}
				if resp.StatusCode() != 200 || string(resp.Body()) != itemsJSON {
					fail(string(resp.Body()))
					continue
				}
				if after {
					afterSignal.Add(1)
				}
				if resp.ConnectionClose() {
					closes.Add(1)
				}
				if served.Add(1) == warmup {
					warmOnce.Do(func() { close(warm) })
				}
			}
		}()
	}
	select {
	case <-warm:
	case <-time.After(30 * time.Second):
		t.Fatalf("no load: %d served, %d failed (%v)", served.Load(), failed.Load(), firstFailure.Load())
	}

	signalled.Store(true)
	s.cancel() // SIGTERM

	prober := &fasthttp.HostClient{Addr: s.Addr(), MaxIdemponentCallAttempts: 1, ReadTimeout: 10 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond) // the probe period
	defer tick.Stop()
	for probes, notReady := 0, 0; notReady < 3; probes++ {
		code, body, err := prober.Get(nil, "http://"+s.Addr()+"/readyz")
		if err != nil {
			t.Fatalf("/readyz failed during the drain (probe %d): %v", probes, err)
		}
		if code == 503 {
			notReady++
			if !strings.Contains(string(body), "shutting down") {
				t.Errorf("/readyz 503 says %s, want shutting down", body)
			}
		}
		if probes > 300 {
			t.Fatal("/readyz never turned 503")
		}
		<-tick.C
	}
	close(removed)
	wg.Wait()

	if code := s.stop(t); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	t.Logf("%d requests served, %d after the signal, %d with Connection: close", served.Load(), afterSignal.Load(), closes.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed; first: %s", n, *firstFailure.Load())
	}
	if closes.Load() == 0 {
		t.Error("no response carried Connection: close during the drain")
	}
}
