// items_unique: every iteration gets a fresh token from POST /token and
// uses it once on GET /items, so every measured request (tag
// name:items-first-use) is a cache miss: a signature verification in local
// mode, a first introspection in remote and hybrid mode. POST /token
// requests are tagged name:token and excluded from the latency thresholds.
//
// Each iteration asks the authorization server for a token: against a real
// Okta org this spends its rate limit; run it against `make run`.
//
//   k6 run loadtest/k6/items_unique.js

import http from 'k6/http';
import { BASE_URL, checkItems, getToken, options as makeOptions, waitReady } from './lib/common.js';

export const options = makeOptions('items-first-use', 100, 250);

export function setup() {
  waitReady();
  getToken(); // fail fast when the credentials are wrong
}

export default function () {
  const token = getToken();
  checkItems(http.get(`${BASE_URL}/items`, {
    headers: { Authorization: `Bearer ${token}` },
    tags: { name: 'items-first-use' },
  }));
}
