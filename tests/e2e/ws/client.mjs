// tests/e2e/ws/client.mjs -- a WebSocket client (the ws package) driven by
// tests/e2e/test_apigw_ws.py: commands as JSON lines on stdin, what
// happens as JSON lines on stdout.
//   node client.mjs URL [HEADERS_JSON [SUBPROTOCOLS_JSON]]
//   {"op":"send","data":"..."}  {"op":"send","data":"<base64>","binary":true}
//   {"op":"fragments","parts":["a","b"]}  {"op":"ping","data":"x"}
//   {"op":"close","code":1000}
import readline from 'node:readline';
import WebSocket from 'ws';

const [url, headers, protocols] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const ws = new WebSocket(url, JSON.parse(protocols || '[]'),
  { headers: JSON.parse(headers || '{}'), maxPayload: 1 << 20 });
ws.on('open', () => out(ws.protocol ? { event: 'open', protocol: ws.protocol } : { event: 'open' }));
ws.on('message', (data, isBinary) =>
  out({ event: 'message', binary: isBinary,
        data: isBinary ? Buffer.from(data).toString('base64') : data.toString() }));
ws.on('pong', (d) => out({ event: 'pong', data: d.toString() }));
ws.on('close', (code, reason) => {
  out({ event: 'close', code, reason: reason.toString() });
  process.exit(0);
});
ws.on('unexpected-response', (req, res) => {
  out({ event: 'rejected', status: res.statusCode });
  process.exit(0);
});
ws.on('error', (e) => out({ event: 'error', message: e.message }));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  if (c.op === 'send')
    ws.send(c.binary ? Buffer.from(c.data, 'base64') : c.data, { binary: !!c.binary });
  else if (c.op === 'fragments')
    c.parts.forEach((p, i) => ws.send(p, { fin: i === c.parts.length - 1 }));
  else if (c.op === 'ping')
    ws.ping(c.data);
  else if (c.op === 'close')
    ws.close(c.code || 1000, c.reason || '');
});
