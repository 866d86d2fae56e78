package auth

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestRemotePerClientBound: one client (WithClient) gets at most
// MaxPerClient introspections in flight; its next validation is refused at
// once with kind RemoteClientOverflow, while another client, and a
// validation naming no client, still get a slot of MaxConcurrent. A
// client's slots are free again once its calls end.
func TestRemotePerClientBound(t *testing.T) {
	const perClient, limit = 3, 8
	f := newRemoteFake(t, func(string) remoteReply { return remoteReply{hold: true, body: `{"active":true}`} })
	r := newRemoteTest(t, f.url(), func(c *RemoteConfig) {
		c.MaxConcurrent = limit
		c.MaxPerClient = perClient
		c.Timeout = time.Minute // the test releases the server itself
	})
	flooder := WithClient(context.Background(), netip.MustParseAddr("203.0.113.7"))
	other := WithClient(context.Background(), netip.MustParseAddr("2001:db8::1"))

	var wg sync.WaitGroup
	held := make(chan error, perClient+2)
	hold := func(ctx context.Context) {
		wg.Go(func() {
			_, err := r.Validate(ctx, []byte(remoteTestToken))
			held <- err
		})
		<-f.arrived
	}
	for range perClient {
		hold(flooder)
	}
	for range 3 { // refused at once, whatever the free global slots
		_, err := r.Validate(flooder, []byte(remoteTestToken))
		ue := remoteWantUnavailable(t, nil, err, "too many concurrent introspections for this client")
		if ue.RetryAfter != RemoteOverloadRetryAfter {
			t.Errorf("RetryAfter %v, want %v", ue.RetryAfter, RemoteOverloadRetryAfter)
		}
		remoteWantKind(t, err, RemoteClientOverflow)
	}
	hold(other)                // another client
	hold(context.Background()) // no client: the global bound only
	if n := f.inFlight.Load(); n != perClient+2 {
		t.Fatalf("%d in flight at the server, want %d", n, perClient+2)
	}
	if got := r.Stats().Failures[RemoteClientOverflow]; got != 3 {
		t.Errorf("Failures[client_overflow] = %d, want 3", got)
	}

	f.unblock()
	wg.Wait()
	close(held)
	for err := range held {
		if err != nil {
			t.Errorf("held validation failed: %v", err)
		}
	}
	if _, err := r.Validate(flooder, []byte(remoteTestToken)); err != nil {
		t.Fatalf("the flooder's slots after release: %v", err)
	}
	if n := len(r.perClient.inFlight); n != 0 {
		t.Errorf("%d clients still counted with nothing in flight", n)
	}
}

func TestClientFrom(t *testing.T) {
	cases := []struct {
		name string
		ctx  context.Context
		want netip.Addr
		ok   bool
	}{
		{"none", context.Background(), netip.Addr{}, false},
		{"v4", WithClient(context.Background(), netip.MustParseAddr("192.0.2.1")), netip.MustParseAddr("192.0.2.1"), true},
		{"v6", WithClient(context.Background(), netip.MustParseAddr("::1")), netip.MustParseAddr("::1"), true},
		{"invalid address", WithClient(context.Background(), netip.Addr{}), netip.Addr{}, false},
		{"wrapped", context.WithValue(WithClient(context.Background(), netip.MustParseAddr("192.0.2.1")), struct{ k int }{}, 1), netip.MustParseAddr("192.0.2.1"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ClientFrom(tc.ctx)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ClientFrom = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
