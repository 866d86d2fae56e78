// Shared settings and helpers of the tokengate k6 scripts.
//
// Environment (k6 run -e KEY=VALUE, or the process environment):
//   BASE_URL       tokengate's base URL       (http://127.0.0.1:8000, as `make run`)
//   CLIENT_ID      client for POST /token     (dev-client)
//   CLIENT_SECRET  its secret                 (dev-secret)
//   VUS, DURATION  load shape                 (10, 30s)
//   P95_MS, P99_MS latency thresholds in ms   (per script)

import http from 'k6/http';
import encoding from 'k6/encoding';
import { check } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
export const CLIENT_ID = __ENV.CLIENT_ID || 'dev-client';
export const CLIENT_SECRET = __ENV.CLIENT_SECRET || 'dev-secret';

// options builds a script's options: VUS virtual users for DURATION, and
// thresholds on the latency of the requests tagged `name` (p95 and p99, in
// milliseconds, overridable with P95_MS and P99_MS) and on failed requests
// (under 1%).
export function options(name, p95, p99) {
  const thresholds = {
    http_req_failed: ['rate<0.01'],
    checks: ['rate==1'],
  };
  thresholds[`http_req_duration{name:${name}}`] = [
    `p(95)<${Number(__ENV.P95_MS || p95)}`,
    `p(99)<${Number(__ENV.P99_MS || p99)}`,
  ];
  return {
    vus: Number(__ENV.VUS || 10),
    duration: __ENV.DURATION || '30s',
    thresholds,
  };
}

// waitReady fails the test unless GET /readyz answers 200: no point
// measuring a server that cannot validate tokens yet.
export function waitReady() {
  const res = http.get(`${BASE_URL}/readyz`, { tags: { name: 'readyz' } });
  if (!check(res, { 'readyz: status is 200': (r) => r.status === 200 })) {
    throw new Error(`GET /readyz: ${res.status} ${res.body}`);
  }
}

// formEncode is application/x-www-form-urlencoded encoding as Go's
// url.QueryEscape does it: only A-Z a-z 0-9 - _ . ~ stay, a space becomes
// '+', every other byte of the UTF-8 is %XX.
function formEncode(s) {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

// getToken gets an access token from POST /token with client_secret_basic,
// the way a client of tokengate does, and fails the test if it cannot. The
// id and secret are form-encoded before base64 (RFC 6749 2.3.1), so that
// one with ':' or '%' still authenticates.
export function getToken() {
  const basic = encoding.b64encode(`${formEncode(CLIENT_ID)}:${formEncode(CLIENT_SECRET)}`);
  const res = http.post(
    `${BASE_URL}/token`,
    { grant_type: 'client_credentials' },
    {
      headers: { Authorization: `Basic ${basic}` },
      tags: { name: 'token' },
    },
  );
  const ok = check(res, {
    'token: status is 200': (r) => r.status === 200,
    'token: is a bearer access token': (r) =>
      typeof r.json('access_token') === 'string' && String(r.json('token_type')).toLowerCase() === 'bearer',
  });
  if (!ok) {
    throw new Error(`POST /token: ${res.status} ${res.body}`);
  }
  return res.json('access_token');
}

// The items every /items answer lists.
export const ITEMS = [
  { id: 1, name: 'red ball' },
  { id: 2, name: 'blue square' },
  { id: 3, name: 'purple ellipse' },
];

// checkItems checks a GET /items answer: 200 and exactly ITEMS.
export function checkItems(res) {
  return check(res, {
    'items: status is 200': (r) => r.status === 200,
    'items: lists the three items': (r) => r.json('#') === ITEMS.length && ITEMS.every((it, i) => r.json(`${i}.id`) === it.id && r.json(`${i}.name`) === it.name),
  });
}
