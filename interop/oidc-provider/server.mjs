// A real, third-party authorization server for tokengate's interop tests:
// node oidc-provider (https://github.com/panva/node-oidc-provider), version
// pinned in package.json, configured for the client-credentials grant with
// RFC 8707 resource indicators, RFC 9068 JWT access tokens, RFC 7662
// introspection and RFC 7009 revocation. Nothing here changes how it
// speaks OAuth; the additions are a request counter and one switch (below).
//
//   node server.mjs [port] [--openid-discovery-only]
//
// The port comes from the argument, else INTEROP_PORT, else 0 (any free
// port). It listens on 127.0.0.1 only, with issuer http://127.0.0.1:<port>,
// and prints one line `READY <issuer>` on stdout once it accepts
// connections. SIGTERM or SIGINT stops it (exit 0).
//
// Resources (audiences) and clients, all with client_secret_basic:
//
//   api://default   scope items   the resource tokengate protects; the
//                                 default when a token request names none
//                                 (except for interop-unbound)
//   api://other     scope items   someone else's API
//
//   interop-client / interop-secret    JWT access tokens (RS256, typ at+jwt)
//   interop-other  / other-secret      JWT access tokens, a second client
//   interop-opaque / opaque-secret     opaque access tokens (introspectable)
//   interop-unbound / unbound-secret   no default resource: a token requested
//                                      without one is opaque and bound to no
//                                      API (its introspection has no aud)
//   tokengate      / tokengate-secret  no grant: tokengate's introspection
//                                      client, allowed to introspect any token
//
// The signing key is a fresh 2048-bit RSA key per start: nothing secret is
// committed, and no test can depend on a fixed key.
//
// oidc-provider publishes its metadata at both /.well-known/openid-configuration
// and /.well-known/oauth-authorization-server. --openid-discovery-only answers
// 404 at the second, as a server that publishes only OpenID Connect
// discovery does, so that a client's fallback can be tested against the
// real document.
//
// GET /interop/counts answers a JSON object counting the requests served so
// far by "METHOD path status" (paths only: no query, no body, no token). A
// request is counted before its response is written, so a client that has
// its answer reads a count that includes it.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const RESOURCES = new Set(['api://default', 'api://other']);
const DEFAULT_RESOURCE = 'api://default';
const ACCESS_TOKEN_TTL = 300; // seconds
const INTROSPECTORS = new Set(['tokengate']);
const UNBOUND = 'interop-unbound'; // gets no default resource

const args = process.argv.slice(2);
const openidDiscoveryOnly = args.includes('--openid-discovery-only');
const portArg = args.find((a) => !a.startsWith('--')) ?? process.env.INTEROP_PORT ?? '0';
const port = Number(portArg);
if (!/^[0-9]+$/.test(portArg) || port > 65535) {
  console.error(`server.mjs: invalid port ${JSON.stringify(portArg)}`);
  process.exit(2);
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function client(id, secret, grantTypes, scope) {
  return {
    client_id: id,
    client_secret: secret,
    grant_types: grantTypes,
    response_types: [],
    redirect_uris: [],
    ...(scope ? { scope } : {}),
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

function configuration() {
  return {
    clients: [
      client('interop-client', 'interop-secret', ['client_credentials'], 'items'),
      client('interop-other', 'other-secret', ['client_credentials'], 'items'),
      client('interop-opaque', 'opaque-secret', ['client_credentials'], 'items'),
      client(UNBOUND, 'unbound-secret', ['client_credentials'], 'items'),
      client('tokengate', 'tokengate-secret', []),
    ],
    jwks: { keys: [signingKey()] },
    scopes: ['items'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A resource server may introspect any token; a client only its own.
        allowedPolicy: async (ctx, caller, token) => (
          INTROSPECTORS.has(caller.clientId) || caller.clientId === token.clientId
        ),
      },
      revocation: {
        enabled: true,
        // A client revokes only its own tokens.
        allowedPolicy: async (ctx, caller, token) => caller.clientId === token.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, caller, oneOf) => (
          oneOf ?? (caller.clientId === UNBOUND ? undefined : DEFAULT_RESOURCE)
        ),
        getResourceServerInfo: async (ctx, resource, caller) => {
          if (!RESOURCES.has(resource)) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: 'items',
            audience: resource,
            accessTokenTTL: ACCESS_TOKEN_TTL,
            accessTokenFormat: caller.clientId === 'interop-opaque' ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: {
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? ACCESS_TOKEN_TTL,
    },
  };
}

const counts = {};

function start(iss) {
  const provider = new Provider(iss, configuration());
  provider.on('server_error', (ctx, err) => console.error('server.mjs: server_error:', err));
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/interop/counts') {
      ctx.body = counts;
      return;
    }
    if (openidDiscoveryOnly && ctx.path === '/.well-known/oauth-authorization-server') {
      ctx.status = 404;
    } else {
      await next();
    }
    const key = `${ctx.method} ${ctx.path} ${ctx.status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  });
  return provider;
}

// Port 0 needs the port before the issuer can be known: listen first on a
// plain server, then give oidc-provider its issuer and its request handler.
let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = createServer((req, res) => handler(req, res));
server.listen(port, '127.0.0.1', () => {
  const provider = start(`http://127.0.0.1:${server.address().port}`);
  handler = provider.callback();
  console.log(`READY ${provider.issuer}`);
});

function stop(signal) {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => {
    console.error(`server.mjs: ${signal}: connections still open after 5s; exiting`);
    process.exit(1);
  }, 5000).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
