// Package policy decides what a request needs before it may reach a
// service that tokengate guards: the route policy file, request-path
// normalisation, matching a request to a rule, the claim headers for the
// upstream, and hot reload.
//
// It knows no HTTP server and no validator: the decision endpoints and the
// gateway normalise the path (Normalize), pick the rule (Policy.Match),
// validate the token themselves when the rule is not public, ask the rule
// (Rule.Decide) and render claim headers (AppendClaim). Normalize, Match,
// Decide and AppendClaim do not allocate. A Policy never changes once
// built; a Holder swaps whole policies atomically.
//
// # The file
//
// The policy file (POLICY_FILE) is YAML:
//
//	default: deny                  # deny (the default) | authenticated | public: when no route matches
//	case_insensitive_paths: false  # true folds ASCII case in paths, for case-insensitive upstreams
//	routes:                        # first match wins, in file order
//	  - host: api.example.com      # optional; a DNS name or IPv4 address, or "*.example.com" (exactly one more label)
//	    path: /orders/**           # exact, or glob: "*" is one segment, "**" (last) is zero or more
//	    methods: [GET, HEAD]       # optional, default all; GET also matches HEAD
//	    scopes: [orders:read]      # optional; all required (from scp or scope)
//	    issuers: [okta]            # optional; the token's iss must be one of these
//	  - path: /orders/**
//	    methods: [POST, PUT, PATCH, DELETE]
//	    scopes: [orders:write]
//	  - path: /status
//	    public: true               # no token needed; not with scopes or issuers
//	  - path: /internal/**
//	    deny: true                 # nobody, whatever the token
//	headers:                       # header: claim, set on allowed requests
//	  X-Auth-Subject: sub
//	  X-Auth-Client-Id: client_id
//	  X-Auth-Scopes: scope
//	issuers:                       # optional: several trusted authorization servers
//	  - name: okta
//	    issuer: https://example.okta.com/oauth2/default
//	    audience: api://default
//	    mode: hybrid               # local (the default) | remote | hybrid
//	    client_id_env: OKTA_CLIENT_ID          # variables (environment or .env);
//	    client_secret_env: OKTA_CLIENT_SECRET  # secrets are never in the file
//	    allowed_client_ids: [0oa1]
//
// A route without public, deny or scopes needs any valid token. Every key
// is checked: an unknown key, a bad value or a conflict (public with
// scopes, say) fails the whole file with one *Error naming the file and
// line. Without a headers key the three headers above are set; "headers:
// {}" sets none. Header names are RFC 9110 tokens, case-insensitively
// unique, and not hop-by-hop or framing headers (Connection, Host,
// Content-Length, ...). The claims are sub, client_id (or cid), scope (or
// scp; space-separated), iss, aud (space-separated), jti, and exp and iat
// (Unix seconds). A route's issuers entries are names or issuer URLs from
// the issuers list, or issuer URLs when there is no list; the consumer
// answers a valid token from another issuer with 403.
//
// # Paths
//
// Matching is on the normalised path only, so that no spelling of a path
// can be read one way by the policy and another by the upstream: Normalize
// documents every choice, and the caller answers a refused path with 400.
// Path parameters (";") are refused rather than stripped. Paths are
// case-sensitive unless case_insensitive_paths is true, which folds ASCII
// letters only. A path pattern is written without dot segments, empty
// segments or a trailing slash, and is stored in normal form.
package policy
