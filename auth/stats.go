package auth

import "time"

// KeySetStats is a snapshot of a KeySet's counters, for metrics. Counters
// only grow.
type KeySetStats struct {
	Fetches             uint64    // JWKS fetches attempted (background, Refresh and unknown kid), discovery included
	FetchFailures       uint64    // fetches that failed; the previous keys stayed in use
	UnknownKIDRefreshes uint64    // fetches started because a token named a key the set did not hold
	KeysLoaded          int       // usable keys in the set now; 0 until the first success
	LastSuccess         time.Time // when the last fetch succeeded, on KeySetConfig.Now; zero before the first
}

// RemoteFailureKind classifies an introspection that gave no verdict
// (an *UnavailableError from Remote, whose *IntrospectionError carries
// it), for metrics and log rate limits.
type RemoteFailureKind int

// The kinds of introspection failure. Their String values are the metric
// label values.
const (
	// RemoteUnreachable: the connection was refused, failed, or was closed
	// before an answer.
	RemoteUnreachable RemoteFailureKind = iota
	// RemoteTimeout: connecting or waiting for the answer timed out.
	RemoteTimeout
	// RemoteStatus5xx: the server answered with a 5xx status.
	RemoteStatus5xx
	// RemoteStatus429: the server is rate limiting us.
	RemoteStatus429
	// RemoteCredentialsRejected: the server answered 401 or 403 to our own
	// client credentials (a configuration problem).
	RemoteCredentialsRejected
	// RemoteBadResponse: any other status, or a body that is not JSON or
	// is malformed.
	RemoteBadResponse
	// RemoteOverflow: refused without a call because MaxConcurrent
	// introspections were already in flight.
	RemoteOverflow
	// RemoteNoEndpoint: the introspection endpoint could not be found
	// (discovery failed, or the metadata names no usable endpoint).
	RemoteNoEndpoint
	// RemoteCancelled: the caller's context had ended before the call.
	RemoteCancelled
	// RemoteOversize: the response body was larger than
	// RemoteConfig.MaxResponseSize or the client's own limit.
	RemoteOversize
	// RemoteClientOverflow: refused without a call because the client the
	// validation ran for (WithClient) already had
	// RemoteConfig.MaxPerClient introspections in flight.
	RemoteClientOverflow

	// remoteFailureKinds is the number of kinds.
	remoteFailureKinds
)

var remoteFailureNames = [remoteFailureKinds]string{
	RemoteUnreachable:         "unreachable",
	RemoteTimeout:             "timeout",
	RemoteStatus5xx:           "status_5xx",
	RemoteStatus429:           "status_429",
	RemoteCredentialsRejected: "credentials_rejected",
	RemoteBadResponse:         "bad_response",
	RemoteOverflow:            "overflow",
	RemoteNoEndpoint:          "no_endpoint",
	RemoteCancelled:           "cancelled",
	RemoteOversize:            "oversize",
	RemoteClientOverflow:      "client_overflow",
}

// String returns the kind's name in snake_case ("status_5xx"), or
// "unknown" for a value that names no kind.
func (k RemoteFailureKind) String() string {
	if k < 0 || k >= remoteFailureKinds {
		return "unknown"
	}
	return remoteFailureNames[k]
}

// RemoteStats is a snapshot of a Remote's counters, for metrics. Counters
// only grow.
type RemoteStats struct {
	// Introspections counts requests sent to the introspection endpoint,
	// whatever came of them.
	Introspections uint64
	// Active counts 200 answers that accepted the token.
	Active uint64
	// Inactive counts 200 answers saying the token is not active.
	Inactive uint64
	// Rejected counts 200 answers saying the token is active, but whose
	// response failed Remote's own checks (expired, wrong issuer or
	// audience, token type, client not allowed).
	Rejected uint64
	// Failures counts validations that gave no verdict, indexed by
	// RemoteFailureKind. Overflow, NoEndpoint and Cancelled failures make
	// no request.
	Failures [remoteFailureKinds]uint64
}
