package testutil

import (
	"sync"
	"sync/atomic"
)

// Keys is a fake of authcache.SigningKeys (and of what *auth.KeySet offers
// it): a set of key thumbprints that a test drops, bumping the generation
// as a key-set refresh that drops a key does. Safe for concurrent use.
type Keys struct {
	gen   atomic.Uint64
	calls atomic.Int64 // HoldsKey calls
	mu    sync.Mutex   // guards held
	held  map[string]bool
}

// NewKeys returns a set holding the given thumbprints, at generation 0.
func NewKeys(held ...string) *Keys {
	k := &Keys{held: make(map[string]bool, len(held))}
	for _, tp := range held {
		k.held[tp] = true
	}
	return k
}

// KeyGeneration returns the number of Drop calls so far.
func (k *Keys) KeyGeneration() uint64 { return k.gen.Load() }

// HoldsKey reports whether the thumbprint tp is held, and counts the call.
func (k *Keys) HoldsKey(tp string) bool {
	k.calls.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held[tp]
}

// Drop removes the thumbprint tp and bumps the generation.
func (k *Keys) Drop(tp string) {
	k.mu.Lock()
	delete(k.held, tp)
	k.mu.Unlock()
	k.gen.Add(1)
}

// HoldsKeyCalls returns how many times HoldsKey was called.
func (k *Keys) HoldsKeyCalls() int64 { return k.calls.Load() }
