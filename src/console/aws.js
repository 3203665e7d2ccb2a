// aws.js -- the AWS APIs the console calls, over this server's own origin.
//
// Why: the console speaks the same wire formats as the CLI and the SDKs
// (S3 REST-XML, Lambda REST-JSON, SQS JSON, SNS and RDS query, Glue and
// Secrets Manager JSON 1.1, the RDS Data API, POST /_tarn/sql, GET
// /_tarn/events), each request
// signed by sigv4.js. An error becomes an ApiError carrying the HTTP status
// and the AWS error code, whatever the wire format.

import { sign, presign, sha256Hex, uriEncode, hasSubtle } from './sigv4.js';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(code ? `${code}: ${message || ''}` : message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// JSON.parse that keeps a number's text when a double would change it
// (BIGINT past 2^53, long decimals): the console shows values as stored.
export function parseExact(text) {
  return JSON.parse(text, (k, v, ctx) =>
    typeof v === 'number' && ctx && typeof ctx.source === 'string' && String(v) !== ctx.source ? ctx.source : v);
}

const EMPTY_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function parseError(status, text) {
  let code = '';
  let msg = '';
  try {
    const j = JSON.parse(text);
    code = j.__type || j.code || j.Code || j.error || '';
    if (code.includes('#')) code = code.split('#').pop();
    msg = j.message || j.Message || '';
  } catch (_) {
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    const c = doc.getElementsByTagName('Code')[0];
    const m = doc.getElementsByTagName('Message')[0];
    code = c ? c.textContent : '';
    msg = m ? m.textContent : text.slice(0, 300);
  }
  return new ApiError(status, code, msg);
}

// One signed request. opts: {method, service, path (encoded), query,
// headers, body (string | ArrayBuffer | Uint8Array | Blob)}.
export async function call(creds, opts) {
  const method = opts.method || 'GET';
  let body = opts.body;
  if (body instanceof Blob) body = await body.arrayBuffer();
  const payloadHash = body == null || (body.length === 0 || body.byteLength === 0)
    ? EMPTY_HASH
    : (!hasSubtle && opts.service === 's3' && typeof body !== 'string' ? 'UNSIGNED-PAYLOAD' : await sha256Hex(body));
  const s = await sign(creds, { method, service: opts.service, path: opts.path, query: opts.query,
    headers: opts.headers, payloadHash });
  const url = opts.path + (s.query ? '?' + s.query : '');
  const resp = await fetch(url, { method, headers: s.headers, body: body == null ? undefined : body,
    cache: 'no-store', credentials: 'omit', signal: opts.signal });
  if (!resp.ok && !(opts.okStatus || []).includes(resp.status)) {
    throw parseError(resp.status, await resp.text());
  }
  return resp;
}

// A signed upload with progress (fetch cannot report upload progress).
export async function upload(creds, opts, onProgress) {
  const body = opts.body instanceof Blob ? await opts.body.arrayBuffer() : opts.body;
  const payloadHash = hasSubtle ? await sha256Hex(body) : 'UNSIGNED-PAYLOAD';
  const s = await sign(creds, { method: 'PUT', service: 's3', path: opts.path, query: opts.query,
    headers: opts.headers, payloadHash });
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', opts.path + (s.query ? '?' + s.query : ''));
    for (const [n, v] of Object.entries(s.headers)) x.setRequestHeader(n, v);
    x.upload.onprogress = (ev) => onProgress && onProgress(ev.loaded);
    x.onload = () => {
      if (x.status >= 200 && x.status < 300) resolve(x);
      else reject(parseError(x.status, x.responseText));
    };
    x.onerror = () => reject(new ApiError(0, 'NetworkError', 'the upload failed'));
    x.send(body);
  });
}

const xmlDoc = async (resp) => new DOMParser().parseFromString(await resp.text(), 'application/xml');
const kids = (el, name) => Array.from(el.getElementsByTagName(name));
const text = (el, name) => {
  const e = el.getElementsByTagName(name)[0];
  return e ? e.textContent : '';
};

export function s3Path(bucket, key) {
  return '/' + uriEncode(bucket, false) + (key != null ? '/' + uriEncode(key, true) : '');
}

// ---------------- S3 ----------------
export const s3 = {
  async listBuckets(c) {
    const d = await xmlDoc(await call(c, { service: 's3', path: '/' }));
    return kids(d, 'Bucket').map((b) => ({ name: text(b, 'Name'), created: text(b, 'CreationDate') }));
  },
  async createBucket(c, bucket) {
    await call(c, { service: 's3', method: 'PUT', path: s3Path(bucket) });
  },
  async list(c, bucket, prefix, token) {
    const q = [['list-type', '2'], ['delimiter', '/'], ['prefix', prefix || '']];
    if (token) q.push(['continuation-token', token]);
    const d = await xmlDoc(await call(c, { service: 's3', path: s3Path(bucket), query: q }));
    return {
      prefixes: kids(d, 'CommonPrefixes').map((p) => text(p, 'Prefix')),
      objects: kids(d, 'Contents').map((o) => ({ key: text(o, 'Key'), size: Number(text(o, 'Size')),
        modified: text(o, 'LastModified'), etag: text(o, 'ETag') })),
      next: text(d, 'NextContinuationToken'),
    };
  },
  async head(c, bucket, key) {
    const r = await call(c, { service: 's3', method: 'HEAD', path: s3Path(bucket, key) });
    const h = {};
    r.headers.forEach((v, n) => { h[n] = v; });
    return h;
  },
  // A short-lived presigned URL that downloads the object as a file.
  async downloadUrl(c, bucket, key) {
    const name = key.split('/').pop() || 'download';
    return presign(c, { service: 's3', path: s3Path(bucket, key), expires: 300,
      query: [['response-content-disposition', `attachment; filename*=UTF-8''${uriEncode(name)}`]] });
  },
  async del(c, bucket, key) {
    await call(c, { service: 's3', method: 'DELETE', path: s3Path(bucket, key) });
  },
  async tags(c, bucket, key) {
    const d = await xmlDoc(await call(c, { service: 's3', path: s3Path(bucket, key), query: [['tagging', '']] }));
    return kids(d, 'Tag').map((t) => [text(t, 'Key'), text(t, 'Value')]);
  },
  async putTags(c, bucket, key, tags) {
    const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const body = '<Tagging><TagSet>' + tags.map(([k, v]) =>
      `<Tag><Key>${esc(k)}</Key><Value>${esc(v)}</Value></Tag>`).join('') + '</TagSet></Tagging>';
    await call(c, { service: 's3', method: 'PUT', path: s3Path(bucket, key), query: [['tagging', '']], body });
  },
  // The bucket's event rules: [{kind: Queue|Topic|CloudFunction, id, arn,
  // events: [...], filters: [[name, value]]}] (GetBucketNotificationConfiguration).
  async notification(c, bucket) {
    const d = await xmlDoc(await call(c, { service: 's3', path: s3Path(bucket), query: [['notification', '']] }));
    const out = [];
    for (const kind of ['Queue', 'Topic', 'CloudFunction']) {
      for (const n of kids(d, kind + 'Configuration')) {
        out.push({ kind, id: text(n, 'Id'), arn: text(n, kind), events: kids(n, 'Event').map((e) => e.textContent),
          filters: kids(n, 'FilterRule').map((f) => [text(f, 'Name'), text(f, 'Value')]) });
      }
    }
    return out;
  },
  async putNotification(c, bucket, rules) {
    const esc = (v) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const body = '<NotificationConfiguration>' + rules.map((r) => `<${r.kind}Configuration>` +
      (r.id ? `<Id>${esc(r.id)}</Id>` : '') + `<${r.kind}>${esc(r.arn)}</${r.kind}>` +
      r.events.map((e) => `<Event>${esc(e)}</Event>`).join('') +
      (r.filters.length ? '<Filter><S3Key>' + r.filters.map(([n, v]) =>
        `<FilterRule><Name>${esc(n)}</Name><Value>${esc(v)}</Value></FilterRule>`).join('') + '</S3Key></Filter>' : '') +
      `</${r.kind}Configuration>`).join('') + '</NotificationConfiguration>';
    await call(c, { service: 's3', method: 'PUT', path: s3Path(bucket), query: [['notification', '']], body });
  },
  // Uploads a File: one PUT up to PART bytes, multipart above, with progress
  // (bytes sent so far) reported through onProgress.
  async putFile(c, bucket, key, file, onProgress) {
    const PART = 8 * 1024 * 1024;
    const type = file.type || 'application/octet-stream';
    if (file.size <= PART) {
      await upload(c, { path: s3Path(bucket, key), body: file, headers: { 'Content-Type': type } }, onProgress);
      onProgress && onProgress(file.size);
      return;
    }
    const start = await xmlDoc(await call(c, { service: 's3', method: 'POST', path: s3Path(bucket, key),
      query: [['uploads', '']], headers: { 'Content-Type': type } }));
    const id = text(start, 'UploadId');
    const parts = [];
    try {
      for (let n = 1, at = 0; at < file.size; n++, at += PART) {
        const x = await upload(c, { path: s3Path(bucket, key), body: file.slice(at, at + PART),
          query: [['partNumber', String(n)], ['uploadId', id]] }, (sent) => onProgress && onProgress(at + sent));
        parts.push(`<Part><PartNumber>${n}</PartNumber><ETag>${x.getResponseHeader('ETag')}</ETag></Part>`);
      }
      await call(c, { service: 's3', method: 'POST', path: s3Path(bucket, key), query: [['uploadId', id]],
        body: '<CompleteMultipartUpload>' + parts.join('') + '</CompleteMultipartUpload>' });
    } catch (e) {
      await call(c, { service: 's3', method: 'DELETE', path: s3Path(bucket, key), query: [['uploadId', id]] })
        .catch(() => {});
      throw e;
    }
    onProgress && onProgress(file.size);
  },
};

// ---------------- Lambda ----------------
const L = '/2015-03-31/functions';
const jsonOf = async (r) => JSON.parse((await r.text()) || '{}');

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

export const lambda = {
  async list(c) {
    let out = [];
    let marker = '';
    do {
      const q = marker ? [['Marker', marker]] : [];
      const j = await jsonOf(await call(c, { service: 'lambda', path: L + '/', query: q }));
      out = out.concat(j.Functions || []);
      marker = j.NextMarker || '';
    } while (marker);
    return out;
  },
  async config(c, name) {
    return jsonOf(await call(c, { service: 'lambda', path: `${L}/${uriEncode(name)}/configuration` }));
  },
  async setEnv(c, name, vars) {
    return jsonOf(await call(c, { service: 'lambda', method: 'PUT', path: `${L}/${uriEncode(name)}/configuration`,
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ Environment: { Variables: vars } }) }));
  },
  // CreateFunction from a .zip (an ArrayBuffer), sent as ZipFile base64.
  async create(c, fn, zip) {
    return jsonOf(await call(c, { service: 'lambda', method: 'POST', path: L,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ FunctionName: fn.name, Runtime: fn.runtime, Handler: fn.handler, Role: fn.role,
        Code: { ZipFile: base64(zip) } }) }));
  },
  // UpdateFunctionCode of an existing function from a .zip.
  async updateCode(c, name, zip) {
    return jsonOf(await call(c, { service: 'lambda', method: 'PUT', path: `${L}/${uriEncode(name)}/code`,
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ZipFile: base64(zip) }) }));
  },
  // Invokes synchronously with the log tail; returns {status, payload, log, error}.
  async invoke(c, name, payload) {
    const r = await call(c, { service: 'lambda', method: 'POST', path: `${L}/${uriEncode(name)}/invocations`,
      headers: { 'X-Amz-Invocation-Type': 'RequestResponse', 'X-Amz-Log-Type': 'Tail',
        'Content-Type': 'application/json' }, body: payload });
    const log64 = r.headers.get('X-Amz-Log-Result') || '';
    const raw = log64 ? Uint8Array.from(atob(log64), (ch) => ch.charCodeAt(0)) : new Uint8Array(0);
    return { status: r.status, payload: await r.text(), log: new TextDecoder().decode(raw),
      error: r.headers.get('X-Amz-Function-Error') || '' };
  },
};

// ---------------- SQS (JSON 1.0) and SNS (query) ----------------
async function jsonRpc(c, service, target, version, body) {
  const r = await call(c, { service, method: 'POST', path: '/',
    headers: { 'X-Amz-Target': target, 'Content-Type': `application/x-amz-json-${version}` },
    body: JSON.stringify(body || {}) });
  return jsonOf(r);
}

async function query(c, service, params) {
  const body = Object.entries(params).map(([n, v]) => uriEncode(n) + '=' + uriEncode(String(v))).join('&');
  return xmlDoc(await call(c, { service, method: 'POST', path: '/',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' }, body }));
}

export const sqs = {
  async list(c) {
    return (await jsonRpc(c, 'sqs', 'AmazonSQS.ListQueues', '1.0', { MaxResults: 1000 })).QueueUrls || [];
  },
  async create(c, name) {
    return (await jsonRpc(c, 'sqs', 'AmazonSQS.CreateQueue', '1.0', { QueueName: name })).QueueUrl;
  },
  async arn(c, url) {
    return ((await jsonRpc(c, 'sqs', 'AmazonSQS.GetQueueAttributes', '1.0', { QueueUrl: url,
      AttributeNames: ['QueueArn'] })).Attributes || {}).QueueArn;
  },
  async depth(c, url) {
    const a = (await jsonRpc(c, 'sqs', 'AmazonSQS.GetQueueAttributes', '1.0', { QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] })).Attributes || {};
    return { visible: Number(a.ApproximateNumberOfMessages || 0),
      inflight: Number(a.ApproximateNumberOfMessagesNotVisible || 0) };
  },
  async send(c, url, body) {
    return jsonRpc(c, 'sqs', 'AmazonSQS.SendMessage', '1.0', { QueueUrl: url, MessageBody: body });
  },
  async receive(c, url) {
    return (await jsonRpc(c, 'sqs', 'AmazonSQS.ReceiveMessage', '1.0', { QueueUrl: url,
      MaxNumberOfMessages: 10, WaitTimeSeconds: 1, AttributeNames: ['All'] })).Messages || [];
  },
  async remove(c, url, handle) {
    return jsonRpc(c, 'sqs', 'AmazonSQS.DeleteMessage', '1.0', { QueueUrl: url, ReceiptHandle: handle });
  },
  async purge(c, url) {
    return jsonRpc(c, 'sqs', 'AmazonSQS.PurgeQueue', '1.0', { QueueUrl: url });
  },
};

export const sns = {
  async list(c) {
    const d = await query(c, 'sns', { Action: 'ListTopics', Version: '2010-03-31' });
    return kids(d, 'TopicArn').map((e) => e.textContent);
  },
  async publish(c, arn, message) {
    const d = await query(c, 'sns', { Action: 'Publish', Version: '2010-03-31', TopicArn: arn, Message: message });
    return text(d, 'MessageId');
  },
  async subscriptions(c, arn) {
    const d = await query(c, 'sns', { Action: 'ListSubscriptionsByTopic', Version: '2010-03-31', TopicArn: arn });
    return kids(d, 'member').map((m) => ({ protocol: text(m, 'Protocol'), endpoint: text(m, 'Endpoint') }));
  },
};

// ---------------- SQL, Glue, metrics ----------------
// A result the page holds at most (a larger one is cancelled: closing the
// stream cancels the query on the server).
const SQL_RESULT_MAX = 32 * 1024 * 1024;

async function textUpTo(resp, max) {
  const reader = resp.body.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await reader.cancel();
      throw new ApiError(0, 'ResultTooLarge', `the result is larger than ${max >> 20} MiB: ` +
        'add a LIMIT, or write it to a bucket with COPY ... TO');
    }
    parts.push(value);
  }
  const all = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new TextDecoder().decode(all);
}

export const sql = {
  // POST /_tarn/sql (signed for s3, as the CLI signs it): {columns, rows, stats}.
  async run(c, statement, database) {
    const q = [['format', 'json']];
    if (database) q.push(['database', database]);
    const r = await call(c, { service: 's3', method: 'POST', path: '/_tarn/sql', query: q,
      headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: statement });
    const j = parseExact(await textUpTo(r, SQL_RESULT_MAX));
    if (j.error && j.error.message) throw new ApiError(200, j.error.error, j.error.message);
    return j;
  },
};

export const glue = {
  async databases(c) {
    return (await jsonRpc(c, 'glue', 'AWSGlue.GetDatabases', '1.1', {})).DatabaseList || [];
  },
  async tables(c, db) {
    return (await jsonRpc(c, 'glue', 'AWSGlue.GetTables', '1.1', { DatabaseName: db })).TableList || [];
  },
};

export async function metrics(c) {
  const r = await call(c, { service: 's3', path: '/_tarn/metrics' });
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    if (!line || line[0] === '#') continue;
    const sp = line.lastIndexOf(' ');
    out[line.slice(0, sp)] = Number(line.slice(sp + 1));
  }
  return out;
}

// The events part's live log (GET /_tarn/events, tarn:ReadEvents), signed
// for s3 as the CLI signs it. tail: {lines, last} of what is kept now;
// follow: calls onLine(object) for each new line after `after` until
// signal aborts or the server ends the stream.
const EVENTS_TAIL_MAX = 8 * 1024 * 1024;
export const events = {
  async tail(c) {
    const r = await call(c, { service: 's3', path: '/_tarn/events' });
    const lines = (await textUpTo(r, EVENTS_TAIL_MAX)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return { lines, last: r.headers.get('x-tarn-events-last') || '0' };
  },
  async follow(c, after, signal, onLine) {
    const r = await call(c, { service: 's3', path: '/_tarn/events',
      query: [['after', String(after)], ['follow', '1']], signal });
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let pending = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      pending += dec.decode(value, { stream: true });
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.trim()) onLine(JSON.parse(line));
      }
      if (pending.length > EVENTS_TAIL_MAX) throw new ApiError(0, 'LineTooLong', 'an event line is too long');
    }
  },
};

// ---------------- RDS, Secrets Manager, the Data API ----------------
export const rds = {
  async clusters(c) {
    const d = await query(c, 'rds', { Action: 'DescribeDBClusters', Version: '2014-10-31' });
    return kids(d, 'DBCluster').map((e) => ({ id: text(e, 'DBClusterIdentifier'), arn: text(e, 'DBClusterArn'),
      status: text(e, 'Status'), database: text(e, 'DatabaseName'), secret: text(e, 'SecretArn') }));
  },
  async secrets(c) {
    return (await jsonRpc(c, 'secretsmanager', 'secretsmanager.ListSecrets', '1.1', {})).SecretList || [];
  },
  async execute(c, arn, secret, database, statement) {
    const body = { resourceArn: arn, secretArn: secret, sql: statement, formatRecordsAs: 'JSON',
      includeResultMetadata: true };
    if (database) body.database = database;
    return jsonOf(await call(c, { service: 'rds-data', method: 'POST', path: '/Execute',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }));
  },
};
