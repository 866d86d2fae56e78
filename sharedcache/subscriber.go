package sharedcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Subscriber timing.
const (
	// subHealthEvery is how long the subscriber waits for a message before
	// it pings; a ping unanswered for as long again means a dead
	// connection, which it replaces.
	subHealthEvery = 3 * time.Second
	// subRetryMin and subRetryMax bound the pause between attempts to
	// reach a Redis that is down (doubling from min to max).
	subRetryMin = 50 * time.Millisecond
	subRetryMax = time.Second
)

// Start starts the cache's subscriber: a goroutine, owned by the Cache and
// stopped by Close, that listens on Config.Channel and calls onRevoked with
// the digest of every revocation broadcast by Revoke, on any replica (this
// one included). Messages that fail authentication are dropped and counted
// in Stats.MACFailures.
//
// onRevoked runs on the subscriber goroutine, one call at a time: it must
// return quickly (drop the token from memory, nothing more). It is never
// called after Close returns.
//
// The subscriber survives Redis going away: it reconnects and resubscribes
// by itself (pausing 50ms, doubling up to 1s, between attempts) and replaces
// a connection that stops answering pings. Revocations published while it
// was disconnected are not delivered; every disconnection, a replaced
// silent connection included, is counted in Stats.Errors and logged
// (rate-limited). Start may be called once, before
// Close.
func (c *Cache) Start(onRevoked func(digest [sha256.Size]byte)) error {
	if onRevoked == nil {
		return errors.New("sharedcache: Start needs a callback")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errors.New("sharedcache: Start after Close")
	case c.sub != nil:
		return errors.New("sharedcache: Start called twice")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{c: c, onRevoked: onRevoked, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	c.sub = s
	go s.run()
	return nil
}

// subscriber is the goroutine behind Start.
type subscriber struct {
	c         *Cache
	onRevoked func([sha256.Size]byte)
	ctx       context.Context // cancelled by stop
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns

	mu      sync.Mutex // guards ps and stopped
	ps      *redis.PubSub
	stopped bool
}

// stop ends run and waits for it. Closing the PubSub interrupts a receive
// blocked on the network.
func (s *subscriber) stop() {
	s.cancel()
	s.mu.Lock()
	s.stopped = true
	if s.ps != nil {
		_ = s.ps.Close()
		s.ps = nil
	}
	s.mu.Unlock()
	<-s.done
}

// pubSub returns the current PubSub, subscribing a new one if there is
// none, or nil once stopped.
func (s *subscriber) pubSub() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	if s.ps == nil {
		// Subscribe records the channel even when it cannot reach Redis
		// now; the PubSub subscribes again on every reconnection.
		ctx, cancel := context.WithTimeout(s.ctx, s.c.cfg.Timeout)
		s.ps = s.c.rdb.Subscribe(ctx, s.c.cfg.Channel)
		cancel()
	}
	return s.ps
}

// drop closes the current PubSub (its connection stopped answering), so
// that the next pubSub call starts afresh.
func (s *subscriber) drop(ps *redis.PubSub) {
	s.mu.Lock()
	if s.ps == ps {
		_ = ps.Close()
		s.ps = nil
	}
	s.mu.Unlock()
}

func (s *subscriber) run() {
	defer close(s.done)
	retry := subRetryMin
	pinged := false // a ping is out and nothing has arrived since
	for {
		ps := s.pubSub()
		if ps == nil {
			return
		}
		msg, err := ps.ReceiveTimeout(s.ctx, subHealthEvery)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) && pinged {
				// Dead for a while already: revocations published
				// meanwhile are lost, which must not go unnoticed.
				s.c.redisFailed(s.ctx, "subscribe", errPingUnanswered)
				s.drop(ps)
				pinged = false
				continue
			}
			if isTimeout(err) {
				ctx, cancel := context.WithTimeout(s.ctx, s.c.cfg.Timeout)
				err = ps.Ping(ctx)
				cancel()
				if err == nil {
					pinged = true
					continue
				}
			}
			s.c.redisFailed(s.ctx, "subscribe", err)
			if !s.pause(retry) {
				return
			}
			retry = min(2*retry, subRetryMax)
			continue
		}
		retry, pinged = subRetryMin, false
		if m, ok := msg.(*redis.Message); ok {
			s.deliver(m.Payload)
		}
	}
}

// deliver authenticates one message and hands its digest to the callback.
func (s *subscriber) deliver(payload string) {
	digest, ok := s.c.signer.decodeRevocation(payload)
	if !ok {
		s.c.stats.macFailures.Add(1)
		if ok, suppressed := s.c.macLog.allow(s.c.cfg.Now()); ok {
			s.c.cfg.Logger.Warn("sharedcache: revocation message failed authentication; ignored",
				zap.Int("bytes", len(payload)), zap.Uint64("suppressed", suppressed))
		}
		return
	}
	s.c.stats.revocationsReceived.Add(1)
	s.onRevoked(digest)
}

// pause waits d, or until stop; it reports whether to go on.
func (s *subscriber) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errPingUnanswered is the subscriber's report of a connection it replaced.
var errPingUnanswered = fmt.Errorf("sharedcache: subscription connection answered no ping for %s; replaced (revocations published meanwhile were missed)", subHealthEvery)

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
