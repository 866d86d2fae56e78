package auth

import (
	"context"
	"net/netip"
)

// clientKey is the context key under which WithClient stores an address.
type clientKey struct{}

// WithClient returns a copy of ctx naming addr as the client on whose
// behalf a validation runs: Remote then counts the introspection against
// that client's share (RemoteConfig.MaxPerClient). It allocates, so call
// it only where a validation will really run (authcache does so on a
// miss), or hand Validate a context whose Value computes it on demand.
func WithClient(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

// ClientFrom returns the client address that WithClient put in ctx, and
// whether there is a valid one.
func ClientFrom(ctx context.Context) (netip.Addr, bool) {
	addr, ok := ctx.Value(clientKey{}).(netip.Addr)
	return addr, ok && addr.IsValid()
}
