// items: GET /items and GET /items/{id} with one token from POST /token,
// reused by every request — tokengate's cached path. Whether that means
// local, remote or hybrid validation is the server's VALIDATION_MODE; with
// VALIDATION_MODE=remote and INTROSPECTION_CACHE_TTL=0 every request is
// introspected.
//
//   k6 run loadtest/k6/items.js
//   k6 run -e BASE_URL=http://127.0.0.1:8000 -e CLIENT_ID=... -e CLIENT_SECRET=... loadtest/k6/items.js

import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, ITEMS, checkItems, getToken, options as makeOptions, waitReady } from './lib/common.js';

export const options = makeOptions('items', 50, 100);

export function setup() {
  waitReady();
  return { token: getToken() };
}

export default function (data) {
  const params = { headers: { Authorization: `Bearer ${data.token}` }, tags: { name: 'items' } };
  checkItems(http.get(`${BASE_URL}/items`, params));

  const item = ITEMS[__ITER % ITEMS.length];
  const res = http.get(`${BASE_URL}/items/${item.id}`, { headers: params.headers, tags: { name: 'item' } });
  check(res, {
    'item: status is 200': (r) => r.status === 200,
    'item: is the item asked for': (r) => r.json('id') === item.id && r.json('name') === item.name,
  });
}
