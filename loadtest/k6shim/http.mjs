// The shim's "k6/http" module: get, post, put, patch, del, head, options,
// request, expectedStatuses, setResponseCallback. Requests are synchronous,
// as in k6: a worker thread runs fetch while the calling thread waits.

import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { state } from './state.mjs';

const DEFAULT_TIMEOUT_MS = 60_000;

let channel = null;

function connection() {
  if (channel) return channel;
  const { port1, port2 } = new MessageChannel();
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(new URL('./fetch-worker.mjs', import.meta.url), {
    workerData: { port: port2, flag },
    transferList: [port2],
  });
  worker.unref();
  port1.unref();
  channel = { port: port1, signal: new Int32Array(flag), worker };
  return channel;
}

// close stops the worker thread (run.mjs calls it at the end).
export async function closeHTTP() {
  if (channel) {
    const w = channel.worker;
    channel = null;
    await w.terminate();
  }
}

// parseTimeout accepts k6's forms: a number of milliseconds or a duration
// string such as "10s", "500ms", "1m".
function parseTimeout(t) {
  if (t === undefined || t === null) return DEFAULT_TIMEOUT_MS;
  if (typeof t === 'number') return t;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(String(t).trim());
  if (!m) throw new Error(`k6 shim: bad timeout "${t}"`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2]];
}

// canonical turns "content-type" into "Content-Type", as k6 reports
// response header names.
function canonical(name) {
  return name.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase()).join('-');
}

// encodeBody follows k6: an object is sent as a form, a string as is.
function encodeBody(body, headers) {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return body;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return Buffer.from(body);
  if (typeof body === 'object') {
    const has = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
    if (!has) headers['Content-Type'] = 'application/x-www-form-urlencoded';
    return new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString();
  }
  return String(body);
}

// selectJSON implements the part of k6's GJSON selectors the scripts use:
// dotted paths with numeric indexes ("0.name") and "#" for an array's
// length ("#", "items.#").
function selectJSON(value, selector) {
  if (selector === undefined || selector === null || selector === '') return value;
  let cur = value;
  for (const part of String(selector).split('.')) {
    if (cur === undefined || cur === null) return undefined;
    if (part === '#' && Array.isArray(cur)) {
      cur = cur.length;
    } else if (Array.isArray(cur) && /^\d+$/.test(part)) {
      cur = cur[Number(part)];
    } else if (typeof cur === 'object' && Object.hasOwn(cur, part)) {
      cur = cur[part];
    } else {
      return undefined;
    }
  }
  return cur;
}

class Response {
  constructor(answer, req) {
    this.status = answer.status;
    this.status_text = answer.statusText;
    this.url = answer.url;
    this.body = answer.body;
    this.error = answer.error;
    this.error_code = answer.error ? 1000 : 0;
    this.headers = {};
    for (const [k, v] of Object.entries(answer.headers)) {
      this.headers[canonical(k)] = v;
    }
    this.timings = { duration: answer.duration, waiting: answer.duration, sending: 0, receiving: 0, blocked: 0, connecting: 0 };
    this.request = { method: req.method, url: req.url, headers: req.headers, body: req.body };
  }

  // json parses the body (throwing on invalid JSON, as k6 does) and
  // returns the value at selector, or the whole document.
  json(selector) {
    if (this.body === null || this.body === undefined) {
      throw new Error(`k6 shim: response of ${this.request.method} ${this.url} has no body`);
    }
    return selectJSON(JSON.parse(this.body), selector);
  }
}

// A response callback is a function from status to "expected?".
export function expectedStatuses(...specs) {
  const ok = (status) => specs.some((s) => (typeof s === 'number' ? status === s : status >= s.min && status <= s.max));
  ok.k6shimExpected = true;
  return ok;
}

export function setResponseCallback(cb) {
  state.responseCallback = cb ?? null;
}

const defaultExpected = expectedStatuses({ min: 200, max: 399 });

let lastID = 0;

// roundTrip hands req to the worker and blocks until its answer arrives or
// the timeout (plus a margin: the worker aborts the fetch itself at the
// timeout) passes. Answers to earlier, abandoned requests are discarded.
function roundTrip(req) {
  const ch = connection();
  req.id = ++lastID;
  ch.port.postMessage(req);
  const deadline = performance.now() + req.timeoutMs + 5000;
  for (;;) {
    let msg;
    while ((msg = receiveMessageOnPort(ch.port))) {
      if (msg.message.id === req.id) return msg.message;
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      return {
        status: 0, statusText: '', url: req.url, headers: {}, body: null, duration: req.timeoutMs,
        error: 'k6 shim: no answer from the fetch worker',
      };
    }
    const seen = Atomics.load(ch.signal, 0);
    if (seen < req.id) Atomics.wait(ch.signal, 0, seen, left);
  }
}

export function request(method, url, body, params = {}) {
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
    throw new Error(`k6 shim: ${method}: URL must be an absolute http(s) URL, got ${JSON.stringify(url)}`);
  }
  params = params ?? {};
  const headers = { ...(params.headers ?? {}) };
  const req = { method: method.toUpperCase(), url, headers, timeoutMs: parseTimeout(params.timeout) };
  req.body = encodeBody(body, headers);
  const answer = roundTrip(req);
  const res = new Response(answer, req);

  const cb = params.responseCallback !== undefined ? params.responseCallback : (state.responseCallback ?? defaultExpected);
  const expected = cb ? Boolean(cb(res.status)) : true;
  const tags = {
    name: params.tags?.name ?? url,
    method: req.method,
    status: String(res.status),
    url,
    group: state.phase,
    expected_response: String(expected),
    ...(params.tags ?? {}),
  };
  state.requests.push({ duration: res.timings.duration, failed: !expected, tags });
  if (state.verbose) {
    console.error(`  ${req.method} ${url} -> ${res.status} ${res.timings.duration.toFixed(2)}ms${res.error ? ` ${res.error}` : ''}`);
  }
  return res;
}

export const get = (url, params) => request('GET', url, null, params);
export const head = (url, params) => request('HEAD', url, null, params);
export const del = (url, body, params) => request('DELETE', url, body, params);
export const options = (url, body, params) => request('OPTIONS', url, body, params);
export const post = (url, body, params) => request('POST', url, body, params);
export const put = (url, body, params) => request('PUT', url, body, params);
export const patch = (url, body, params) => request('PATCH', url, body, params);

export default { get, head, del, options, post, put, patch, request, expectedStatuses, setResponseCallback };
