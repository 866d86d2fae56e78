// baseline: GET / with no token — the floor every other script is compared
// with.
//
//   k6 run loadtest/k6/baseline.js
//   k6 run -e BASE_URL=http://127.0.0.1:8000 -e VUS=50 -e DURATION=1m loadtest/k6/baseline.js

import http from 'k6/http';
import { check } from 'k6';
import { BASE_URL, options as makeOptions, waitReady } from './lib/common.js';

export const options = makeOptions('hello', 20, 50);

export function setup() {
  waitReady();
}

export default function () {
  const res = http.get(`${BASE_URL}/`, { tags: { name: 'hello' } });
  check(res, {
    'hello: status is 200': (r) => r.status === 200,
    'hello: body is {"Hello":"World"}': (r) => r.json('Hello') === 'World',
  });
}
