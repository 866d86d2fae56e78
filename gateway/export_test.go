package gateway

import "crypto/tls"

// SetUpstreamTLS makes g's client trust what cfg trusts, so that tests can
// put an upstream with a certificate of their own behind https://.
func SetUpstreamTLS(g *Gateway, cfg *tls.Config) { g.client.TLSConfig = cfg }
