// The worker thread that performs the shim's HTTP requests with fetch, so
// that http.get and friends can be synchronous on the main thread (k6's API
// is synchronous). The main thread posts a request on the port and blocks
// on the shared flag; the worker answers on the port, then stores the
// request's id in the flag.

import { workerData } from 'node:worker_threads';

const { port, flag } = workerData;
const signal = new Int32Array(flag);

port.on('message', async (req) => {
  const started = performance.now();
  let answer;
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body ?? undefined,
      redirect: 'follow',
      signal: AbortSignal.timeout(req.timeoutMs),
    });
    const body = await res.text();
    const headers = {};
    for (const [k, v] of res.headers) {
      headers[k] = v;
    }
    answer = {
      status: res.status,
      statusText: res.statusText,
      url: res.url || req.url,
      headers,
      body,
      duration: performance.now() - started,
      error: '',
    };
  } catch (err) {
    const cause = err.cause?.code || err.cause?.message || '';
    answer = {
      status: 0,
      statusText: '',
      url: req.url,
      headers: {},
      body: null,
      duration: performance.now() - started,
      error: `${err.name}: ${err.message}${cause ? ` (${cause})` : ''}`,
    };
  }
  answer.id = req.id;
  port.postMessage(answer);
  // The flag holds the id of the latest answer; ids only grow.
  if (Atomics.load(signal, 0) < req.id) Atomics.store(signal, 0, req.id);
  Atomics.notify(signal, 0);
});
