package auth

import "context"

// Hybrid validates a token locally first and then asks the authorization
// server once whether it is still active: bad tokens (forged, expired,
// foreign) never reach the authorization server, and revoked ones are still
// caught.
//
// Validate returns the local validator's error unchanged when it fails (a
// *TokenError for a bad token, an *UnavailableError when no keys are
// loaded), without calling the remote validator. Otherwise it returns the
// remote validator's error unchanged when that fails (a *TokenError when
// the token is no longer active, an *UnavailableError when introspection
// failed). When both pass it returns the local Principal, which carries
// every claim of the JWT; the remote one is discarded.
//
// A cache in front of a Hybrid should re-check its entries in the
// background with Revalidator, so that after a token's first use no request
// waits on the authorization server. A Hybrid is safe for concurrent use if
// both validators are.
type Hybrid struct {
	local, remote Validator
}

var _ Validator = (*Hybrid)(nil)

// NewHybrid returns a Hybrid over local (usually a *Local) and remote
// (usually a *Remote). It panics if either is nil: that is a wiring bug,
// not a runtime condition.
func NewHybrid(local, remote Validator) *Hybrid {
	if local == nil || remote == nil {
		panic("auth: NewHybrid: local and remote validators are both required")
	}
	return &Hybrid{local: local, remote: remote}
}

// Validate checks token locally, then remotely; see Hybrid.
func (h *Hybrid) Validate(ctx context.Context, token []byte) (*Principal, error) {
	p, err := h.local.Validate(ctx, token)
	if err != nil {
		return nil, err
	}
	if _, err := h.remote.Validate(ctx, token); err != nil {
		return nil, err
	}
	return p, nil
}

// Revalidator returns the remote validator, for a cache's background
// re-checks of tokens that already passed Validate: the local checks need
// not be repeated, only the question whether the token is still active.
func (h *Hybrid) Revalidator() Validator { return h.remote }
