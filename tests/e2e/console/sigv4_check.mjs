// tests/e2e/console/sigv4_check.mjs -- the console's SigV4 code (src/console/
// sigv4.js) run under node, for tests/e2e/test_console.py to compare with
// botocore's signatures. With NO_SUBTLE=1 SubtleCrypto is hidden first, so
// the pure-JS SHA-256 / HMAC path (pages on plain-http LAN addresses) signs.
//
// stdin: a JSON list of requests ({method, service, path, query, headers,
// body}) and presign (a list of {path, query, expires}); stdout: a JSON list
// of {authorization, query}, then of {url}.
import { readFileSync } from 'node:fs';

if (process.env.NO_SUBTLE === '1') Object.defineProperty(globalThis, 'crypto', { value: undefined });
const { sign, presign, sha256Hex, hasSubtle } = await import('../../../src/console/sigv4.js');
if ((process.env.NO_SUBTLE === '1') === hasSubtle) throw new Error('the SubtleCrypto switch did not take');
const input = JSON.parse(readFileSync(0, 'utf8'));
const creds = { accessKeyId: input.accessKey, secretKey: input.secretKey, region: input.region };
const date = new Date(input.date);
const out = [];
for (const r of input.requests) {
  const s = await sign(creds, { method: r.method, service: r.service, path: r.path, query: r.query,
    headers: r.headers, payloadHash: await sha256Hex(r.body), host: input.host, date });
  out.push({ authorization: s.headers.Authorization, query: s.query });
}
for (const r of input.presign || []) {
  out.push({ url: await presign(creds, { service: 's3', path: r.path, query: r.query, expires: r.expires,
    host: input.host, date }) });
}
console.log(JSON.stringify(out));
