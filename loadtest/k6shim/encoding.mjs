// The shim's "k6/encoding" module: b64encode and b64decode.

const variants = {
  std: 'base64',
  rawstd: 'base64',
  url: 'base64url',
  rawurl: 'base64url',
};

export function b64encode(input, encoding = 'std') {
  const kind = variants[encoding];
  if (!kind) throw new Error(`k6 shim: b64encode: unknown encoding "${encoding}"`);
  const buf = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  let out = buf.toString(kind);
  if (encoding === 'rawstd') out = out.replace(/=+$/, '');
  if (encoding === 'url') out = out.padEnd(Math.ceil(out.length / 4) * 4, '=');
  return out;
}

export function b64decode(input, encoding = 'std', format) {
  const kind = variants[encoding];
  if (!kind) throw new Error(`k6 shim: b64decode: unknown encoding "${encoding}"`);
  const buf = Buffer.from(input, kind);
  if (format === 's') return buf.toString('utf8');
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

export default { b64encode, b64decode };
