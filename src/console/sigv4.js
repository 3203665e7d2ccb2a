// sigv4.js -- AWS Signature Version 4 in the browser.
//
// Why: the console holds no private API; every call it makes is an AWS API
// request signed with the user's key, exactly as the CLI signs it, and the
// server checks it the same way. The secret never leaves the page.
//
// Hashing uses SubtleCrypto (HMAC-SHA256, SHA-256). SubtleCrypto exists only
// in secure contexts (https, localhost, 127.0.0.1); on a plain-http address
// elsewhere a small pure-JS SHA-256 takes over, so the console still works
// on a LAN address.
//
// Canonical request rules the server applies (aws/sigv4.c): for S3 the path
// is signed as sent (encoded once); for every other service the path is
// encoded again. Query names and values are RFC 3986 encoded and sorted.

const enc = new TextEncoder();

export function uriEncode(s, keepSlash) {
  let out = '';
  for (const b of enc.encode(s)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

function bytes(data) {
  if (data == null) return new Uint8Array(0);
  if (typeof data === 'string') return enc.encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new Error('cannot hash this body');
}

// ---- pure-JS SHA-256 (FIPS 180-4), for insecure contexts only ----
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

function sha256js(msg) {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const len = msg.length;
  const total = Math.ceil((len + 9) / 64) * 64;
  const m = new Uint8Array(total);
  m.set(msg);
  m[len] = 0x80;
  const dv = new DataView(m.buffer);
  dv.setUint32(total - 8, Math.floor(len / 0x20000000));
  dv.setUint32(total - 4, (len * 8) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, k] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i]);
  return out;
}

function hmacjs(key, msg) {
  let k = key.length > 64 ? sha256js(key) : key;
  const pad = new Uint8Array(64);
  pad.set(k);
  const inner = new Uint8Array(64 + msg.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = pad[i] ^ 0x36;
    outer[i] = pad[i] ^ 0x5c;
  }
  inner.set(msg, 64);
  outer.set(sha256js(inner), 64);
  return sha256js(outer);
}

const subtle = globalThis.crypto && globalThis.crypto.subtle;

export async function sha256Hex(data) {
  const b = bytes(data);
  if (subtle) return hex(await subtle.digest('SHA-256', b));
  return hex(sha256js(b));
}

async function hmac(key, msg) {
  const m = bytes(msg);
  if (subtle) {
    const k = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new Uint8Array(await subtle.sign('HMAC', k, m));
  }
  return hmacjs(key, m);
}

export const hasSubtle = !!subtle;

// The RFC 3986 encoded, sorted query string of [name, value] pairs.
function canonicalQuery(params) {
  const pairs = params.map(([n, v]) => [uriEncode(n, false), uriEncode(v == null ? '' : String(v), false)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => n + '=' + v).join('&');
}

// The signature of a canonical request: the date, the scope, the key chain.
async function signature(creds, amzDate, service, canonical) {
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${creds.region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, await sha256Hex(canonical)].join('\n');
  let key = await hmac(enc.encode('AWS4' + creds.secretKey), day);
  key = await hmac(key, creds.region);
  key = await hmac(key, service);
  key = await hmac(key, 'aws4_request');
  return { scope, signature: hex(await hmac(key, toSign)) };
}

const amzDateOf = (now) => now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

// Signs a request. req: {method, service, path (already encoded),
// query: [[name, value]...] (decoded), headers: {name: value}, payloadHash}.
// Returns the headers to send (with Authorization, x-amz-date,
// x-amz-content-sha256) and the query string to put after '?'.
export async function sign(creds, req) {
  const amzDate = amzDateOf(req.date || new Date());
  const headers = Object.assign({}, req.headers || {});
  headers['x-amz-date'] = amzDate;
  headers['x-amz-content-sha256'] = req.payloadHash;
  const query = canonicalQuery(req.query || []);
  // host is the page's own: the browser sends it and it cannot be changed
  const signed = { host: req.host || location.host };
  for (const [n, v] of Object.entries(headers)) {
    const l = n.toLowerCase();
    if (l.startsWith('x-amz-')) signed[l] = String(v).trim().replace(/\s+/g, ' ');
  }
  const names = Object.keys(signed).sort();
  const canonicalHeaders = names.map((n) => n + ':' + signed[n] + '\n').join('');
  const signedHeaders = names.join(';');
  const path = req.service === 's3' ? req.path : uriEncode(req.path, true);
  const canonical = [req.method, path, query, canonicalHeaders, signedHeaders, req.payloadHash].join('\n');
  const sig = await signature(creds, amzDate, req.service, canonical);
  headers['Authorization'] = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${sig.scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${sig.signature}`;
  return { headers, query };
}

// A presigned URL (query-string SigV4, UNSIGNED-PAYLOAD, host signed): the
// browser fetches it itself, so a download streams to disk instead of
// through the page's memory. req: {service, path (encoded), query (more
// parameters to sign), expires (seconds)}.
export async function presign(creds, req) {
  const amzDate = amzDateOf(req.date || new Date());
  const scope = `${amzDate.slice(0, 8)}/${creds.region}/${req.service}/aws4_request`;
  const query = canonicalQuery((req.query || []).concat([
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'], ['X-Amz-Credential', `${creds.accessKeyId}/${scope}`],
    ['X-Amz-Date', amzDate], ['X-Amz-Expires', String(req.expires || 300)], ['X-Amz-SignedHeaders', 'host']]));
  const host = req.host || location.host;
  const path = req.service === 's3' ? req.path : uriEncode(req.path, true);
  const canonical = [req.method || 'GET', path, query, `host:${host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const sig = await signature(creds, amzDate, req.service, canonical);
  return `${req.path}?${query}&X-Amz-Signature=${sig.signature}`;
}
