// ESM loader hooks for the k6 shim (registered by run.mjs with
// module.register). They map the k6 modules the scripts import onto the
// shim's own files, refuse the k6 modules the shim does not implement, and
// load every .js file as an ES module, as k6 does (Node would otherwise
// treat a .js file outside a "type": "module" package as CommonJS).

const modules = {
  'k6': 'k6.mjs',
  'k6/http': 'http.mjs',
  'k6/encoding': 'encoding.mjs',
};

export async function resolve(specifier, context, nextResolve) {
  if (Object.hasOwn(modules, specifier)) {
    return { url: new URL(modules[specifier], import.meta.url).href, shortCircuit: true };
  }
  if (specifier === 'k6' || specifier.startsWith('k6/')) {
    throw new Error(`k6 shim: module "${specifier}" is not implemented (only ${Object.keys(modules).join(', ')})`);
  }
  if (/^https?:\/\//.test(specifier)) {
    throw new Error(`k6 shim: remote module "${specifier}" is not supported`);
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.js')) {
    return nextLoad(url, { ...context, format: 'module' });
  }
  return nextLoad(url, context);
}
