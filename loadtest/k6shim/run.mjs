#!/usr/bin/env node
// k6 shim: runs a k6 script under Node.js for a few real iterations, so CI
// can prove the scripts work without k6 installed.
//
//   node loadtest/k6shim/run.mjs [--iterations N] [--timeout 60s] [--verbose]
//                                [-e KEY=VALUE]... script.js
//
// It provides the parts of the k6 API the scripts use: "k6" (check, sleep,
// group, fail), "k6/http" (get, post, put, patch, del, head, options,
// request, expectedStatuses, setResponseCallback; params.headers, tags,
// timeout, responseCallback; responses with status, body, headers, json(),
// timings), "k6/encoding" (b64encode, b64decode), the globals __ENV, __VU
// and __ITER, and the exports options, setup, default and teardown. It runs
// setup once, default for --iterations iterations (default 3) in one VU,
// then teardown, and evaluates options.thresholds on http_req_duration,
// http_req_failed, http_reqs, checks and iterations (with {tag:value}
// filters).
//
// Exit status: 0 when setup, every iteration and teardown ran without
// throwing, every check passed and every threshold held; 1 otherwise; 2 for
// bad usage. It measures nothing worth reporting: one VU on Node's fetch is
// not k6. Use k6 itself for load.

import { register } from 'node:module';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';

const usage = 'usage: node run.mjs [--iterations N] [--timeout 60s] [--verbose] [-e KEY=VALUE]... script.js';

function parseArgs(argv) {
  const o = { iterations: 3, timeoutMs: 60_000, verbose: false, env: {}, script: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--iterations' || a === '-i') {
      o.iterations = Number(value());
      if (!Number.isInteger(o.iterations) || o.iterations < 1 || o.iterations > 10000) {
        throw new Error('--iterations must be an integer between 1 and 10000');
      }
    } else if (a === '--timeout') {
      const m = /^(\d+)(ms|s|m)$/.exec(value());
      if (!m) throw new Error('--timeout must look like 60s');
      o.timeoutMs = Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2]];
    } else if (a === '--verbose' || a === '-v') {
      o.verbose = true;
    } else if (a === '-e' || a === '--env') {
      const kv = value();
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`-e ${kv}: want KEY=VALUE`);
      o.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else if (a === '-h' || a === '--help') {
      o.help = true;
    } else if (a.startsWith('-')) {
      throw new Error(`unknown flag ${a}`);
    } else if (!o.script) {
      o.script = a;
    } else {
      throw new Error(`unexpected argument ${a}`);
    }
  }
  if (!o.script && !o.help) throw new Error('no script given');
  return o;
}

// --- metrics and thresholds -------------------------------------------------

// percentile is k6's: linear interpolation between closest ranks.
function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  if (sorted.length === 1) return sorted[0];
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

function trend(values) {
  const s = [...values].sort((a, b) => a - b);
  const sum = s.reduce((a, b) => a + b, 0);
  return {
    count: s.length,
    avg: s.length ? sum / s.length : 0,
    min: s.length ? s[0] : 0,
    max: s.length ? s[s.length - 1] : 0,
    med: percentile(s, 50),
    p: (n) => percentile(s, n),
  };
}

// parseMetric splits "http_req_duration{name:items,method:GET}".
function parseMetric(key) {
  const m = /^([a-z_][a-z0-9_]*)(?:\{([^}]*)\})?$/i.exec(key.trim());
  if (!m) throw new Error(`threshold metric "${key}" is malformed`);
  const filters = {};
  if (m[2]) {
    for (const part of m[2].split(',')) {
      const c = part.indexOf(':');
      if (c <= 0) throw new Error(`threshold metric "${key}": bad tag filter "${part}"`);
      filters[part.slice(0, c).trim()] = part.slice(c + 1).trim();
    }
  }
  return { name: m[1], filters };
}

const ops = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
  '==': (a, b) => a === b,
  '===': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

// aggregate returns the value of agg ("p(95)", "avg", "rate", "count", ...)
// for metric over the samples, or throws for something the shim does not
// know: better a failed run than a threshold silently ignored.
function aggregate(metric, agg, state, iterations, elapsedS) {
  const match = (tags) => Object.entries(metric.filters).every(([k, v]) => tags[k] === v);
  const reqs = state.requests.filter((r) => match(r.tags));
  switch (metric.name) {
    case 'http_req_duration': {
      const t = trend(reqs.map((r) => r.duration));
      const pm = /^p\((\d+(?:\.\d+)?)\)$/.exec(agg);
      if (pm) return t.p(Number(pm[1]));
      if (['avg', 'min', 'max', 'med', 'count'].includes(agg)) return t[agg];
      break;
    }
    case 'http_req_failed':
      if (agg === 'rate') return reqs.length ? reqs.filter((r) => r.failed).length / reqs.length : 0;
      break;
    case 'http_reqs':
      if (agg === 'count') return reqs.length;
      if (agg === 'rate') return elapsedS > 0 ? reqs.length / elapsedS : 0;
      break;
    case 'checks': {
      if (Object.keys(metric.filters).length > 0) break;
      let pass = 0;
      let all = 0;
      for (const c of state.checks.values()) {
        pass += c.passes;
        all += c.passes + c.fails;
      }
      if (agg === 'rate') return all ? pass / all : 0;
      break;
    }
    case 'iterations':
      if (agg === 'count') return iterations;
      break;
    default:
  }
  throw new Error(`threshold "${metric.name}" with "${agg}" is not supported by the k6 shim`);
}

function evaluateThresholds(thresholds, state, iterations, elapsedS) {
  const out = [];
  for (const [key, list] of Object.entries(thresholds ?? {})) {
    const metric = parseMetric(key);
    for (const t of Array.isArray(list) ? list : [list]) {
      const expr = typeof t === 'string' ? t : t.threshold;
      const m = /^\s*([a-z]+(?:\(\d+(?:\.\d+)?\))?)\s*(<=|>=|===|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(expr);
      if (!m) throw new Error(`threshold "${key}: ${expr}" is malformed`);
      const value = aggregate(metric, m[1], state, iterations, elapsedS);
      out.push({ key, expr, value, ok: ops[m[2]](value, Number(m[3])) });
    }
  }
  return out;
}

// --- run ---------------------------------------------------------------------

function fmtMs(ms) {
  return ms < 1 ? `${(ms * 1000).toFixed(0)}µs` : `${ms.toFixed(2)}ms`;
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`k6 shim: ${err.message}\n${usage}`);
    return 2;
  }
  if (o.help) {
    console.log(usage);
    return 0;
  }
  const timer = setTimeout(() => {
    console.error(`k6 shim: FAIL: run exceeded ${o.timeoutMs} ms`);
    process.exit(1);
  }, o.timeoutMs);
  timer.unref();

  register('./loader.mjs', import.meta.url);
  const { state } = await import('./state.mjs');
  const http = await import('./http.mjs');
  state.verbose = o.verbose;

  globalThis.__ENV = { ...process.env, ...o.env };
  globalThis.__VU = 0;
  globalThis.__ITER = 0;

  const scriptPath = resolvePath(o.script);
  console.log(`k6 shim: ${o.script} (${o.iterations} iteration${o.iterations === 1 ? '' : 's'}, 1 VU)`);
  const errors = [];
  let mod;
  try {
    mod = await import(pathToFileURL(scriptPath).href);
  } catch (err) {
    console.error(`k6 shim: FAIL: cannot load ${o.script}: ${err.message}`);
    return 1;
  }
  if (typeof mod.default !== 'function') {
    console.error(`k6 shim: FAIL: ${o.script} has no default export function`);
    return 1;
  }
  const began = performance.now();
  let data;
  let iterations = 0;
  let setupOK = true;
  if (typeof mod.setup === 'function') {
    state.phase = '::setup';
    try {
      data = mod.setup();
    } catch (err) {
      setupOK = false;
      errors.push(`setup: ${err.message}`);
    }
    state.phase = '';
  }
  if (setupOK) {
    globalThis.__VU = 1;
    for (let i = 0; i < o.iterations; i++) {
      globalThis.__ITER = i;
      try {
        mod.default(data);
      } catch (err) {
        errors.push(`iteration ${i}: ${err.message}`);
      }
      iterations++;
    }
    if (typeof mod.teardown === 'function') {
      state.phase = '::teardown';
      try {
        mod.teardown(data);
      } catch (err) {
        errors.push(`teardown: ${err.message}`);
      }
      state.phase = '';
    }
  }
  const elapsedS = (performance.now() - began) / 1000;
  await http.closeHTTP();

  let thresholds = [];
  try {
    thresholds = evaluateThresholds(mod.options?.thresholds, state, iterations, elapsedS);
  } catch (err) {
    errors.push(err.message);
  }

  // Report, k6-style.
  let failedChecks = 0;
  for (const [name, c] of state.checks) {
    const ok = c.fails === 0;
    if (!ok) failedChecks++;
    console.log(`  ${ok ? '✓' : '✗'} ${name}  ${c.passes}/${c.passes + c.fails}`);
  }
  for (const f of state.checkFailures) {
    console.log(`    failed: ${f}`);
  }
  const t = trend(state.requests.map((r) => r.duration));
  const failedReqs = state.requests.filter((r) => r.failed).length;
  console.log(`  http_reqs ${state.requests.length}  http_req_failed ${failedReqs}  iterations ${iterations}` +
    `  http_req_duration avg=${fmtMs(t.avg)} p(95)=${fmtMs(t.p(95))} max=${fmtMs(t.max)}`);
  for (const th of thresholds) {
    console.log(`  ${th.ok ? '✓' : '✗'} threshold ${th.key}: ${th.expr} (got ${Number(th.value.toFixed(4))})`);
  }
  for (const e of errors) {
    console.log(`  ✗ error: ${e}`);
  }
  if (state.checks.size === 0) {
    errors.push('the script made no checks');
    console.log('  ✗ error: the script made no checks');
  }
  const ok = errors.length === 0 && failedChecks === 0 && thresholds.every((x) => x.ok);
  console.log(ok ? 'k6 shim: PASS' : 'k6 shim: FAIL');
  return ok ? 0 : 1;
}

process.exitCode = await main();
