// The shim's "k6" module: check, sleep, group, fail.

import { recordCheck, state } from './state.mjs';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

// check runs each named predicate on val and records pass or fail; it
// returns true when all passed. A predicate that throws fails. Like k6, a
// failed check does not stop the iteration: the run fails at the end.
export function check(val, sets, tags) {
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    let ok = false;
    let detail = '';
    try {
      ok = typeof fn === 'function' ? Boolean(fn(val)) : Boolean(fn);
    } catch (err) {
      detail = `threw: ${err.message}`;
    }
    if (!ok && !detail && val && typeof val === 'object' && 'status' in val) {
      detail = `${val.request?.method ?? ''} ${val.url ?? ''} -> ${val.status}`.trim();
    }
    recordCheck(name, ok, detail);
    all = all && ok;
  }
  return all;
}

// sleep blocks for the given seconds, as k6's does.
export function sleep(seconds) {
  const ms = Math.max(0, Number(seconds) * 1000);
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

// group runs fn; the shim keeps no per-group metrics.
export function group(name, fn) {
  const prev = state.phase;
  state.phase = `${prev}::${name}`;
  try {
    return fn();
  } finally {
    state.phase = prev;
  }
}

// fail aborts the iteration with an error, as k6's does.
export function fail(message) {
  throw new Error(message ?? 'fail() called');
}

export default { check, sleep, group, fail };
