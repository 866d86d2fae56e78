// Shared state of one shim run: the metrics that checks and requests
// record, and the per-iteration context. k6.mjs, http.mjs and run.mjs all
// import this one module instance.

export const state = {
  // checks: name -> { passes, fails }
  checks: new Map(),
  // One sample per HTTP request: { duration (ms), failed (bool), tags }.
  requests: [],
  // Messages of failed checks, for the report (first few only).
  checkFailures: [],
  // The response callback set by http.setResponseCallback; null means the
  // k6 default (200..399 expected).
  responseCallback: null,
  // The current group/phase, used as the "group" tag ("::setup", "" ...).
  phase: '',
  // Verbose logging of each request (--verbose).
  verbose: false,
};

export function recordCheck(name, ok, detail) {
  let c = state.checks.get(name);
  if (!c) {
    c = { passes: 0, fails: 0 };
    state.checks.set(name, c);
  }
  if (ok) {
    c.passes++;
  } else {
    c.fails++;
    if (state.checkFailures.length < 20) {
      state.checkFailures.push(`${name}${detail ? ` (${detail})` : ''}`);
    }
  }
}
