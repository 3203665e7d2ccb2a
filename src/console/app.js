// app.js -- the console's views: sign-in, Buckets (and their event rules),
// Functions (deploy a zip, invoke, metrics), Queues and topics (depth over
// time), SQL, RDS, and the live event panel beside them.
//
// Why: one page over the AWS APIs (aws.js), so what the console shows is
// what the CLI would show. The keys live in sessionStorage only (gone when
// the tab closes); every view loads its data through signed calls.
//
// Invariants:
//   (1) Server data reaches the page as text nodes only (el() never parses
//       markup), so an object key or a message body cannot inject script.
//   (2) Nothing is sent before the sign-in check passed (ListBuckets).

import { s3, lambda, sqs, sns, sql, glue, rds, events, metrics, parseExact, ApiError } from './aws.js';

const KEY = 'tarn.console.credentials';
const ZIP_MAX = 50 * 1024 * 1024;
const HISTORY = 'tarn.console.sqlHistory';
let creds = null;

// ---------------- small DOM helpers ----------------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [n, v] of Object.entries(attrs || {})) {
    if (n.startsWith('on')) e.addEventListener(n.slice(2), v);
    else if (n === 'class') e.className = v;
    else if (v === true) e.setAttribute(n, '');
    else if (v !== false && v != null) e.setAttribute(n, v);
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
const $ = (sel) => document.querySelector(sel);
const svgNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(svgNS, tag);
  for (const [n, v] of Object.entries(attrs || {})) e.setAttribute(n, v);
  for (const c of children.flat()) if (c != null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function human(n) {
  if (n < 1024) return n + ' B';
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return n.toFixed(1) + ' ' + u[i];
}

function showError(where, e) {
  const msg = e instanceof ApiError && e.status ? `${e.status} ${e.message}` : String(e.message || e);
  where.replaceChildren(el('div', { class: 'error', role: 'alert' }, msg));
}

async function guard(where, fn) {
  try {
    return await fn();
  } catch (e) {
    showError(where, e);
    return undefined;
  }
}

function table(columns, rows, attrs) {
  return el('table', attrs || {},
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', {}, c)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((v) => el('td', {}, v instanceof Node ? v : fmt(v)))))));
}

function fmt(v) {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// A bar or line chart of labels/values as SVG; a line chart draws the
// series of `others` too ([{name, values}], classes line-2, line-3...).
function chart(labels, values, kind, title, others) {
  const W = 640;
  const H = 240;
  const pad = 36;
  const more = kind === 'line' ? others || [] : [];
  const max = Math.max(1e-12, ...values.map((v) => Math.abs(v)), ...more.flatMap((o) => o.values.map((v) => Math.abs(v))));
  const n = Math.max(1, values.length);
  const step = (W - 2 * pad) / n;
  const y = (v) => H - pad - (Math.max(0, v) / max) * (H - 2 * pad);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-kind': kind, role: 'img',
    'aria-label': title || 'chart' });
  g.append(svg('line', { x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, class: 'axis' }));
  g.append(svg('text', { x: 4, y: pad - 8, class: 'tick' }, fmt(+max.toPrecision(4))));
  if (kind === 'line') {
    [{ name: title, values }].concat(more).forEach((s, k) => {
      const cls = k === 0 ? '' : ` line-${k + 1}`;
      const pts = s.values.map((v, i) => `${pad + step * i + step / 2},${y(v)}`).join(' ');
      g.append(svg('polyline', { points: pts, class: 'line' + cls, 'data-series': s.name || '' }));
      s.values.forEach((v, i) => g.append(svg('circle', { cx: pad + step * i + step / 2, cy: y(v), r: 3, class: 'dot' + cls },
        svg('title', {}, `${s.name ? s.name + ' ' : ''}${labels[i]}: ${v}`))));
    });
  } else {
    values.forEach((v, i) => g.append(svg('rect', { x: pad + step * i + step * 0.1, y: y(v), width: step * 0.8,
      height: Math.max(0, H - pad - y(v)), class: 'bar' }, svg('title', {}, `${labels[i]}: ${v}`))));
  }
  const every = Math.ceil(n / 16);
  labels.forEach((l, i) => {
    if (i % every === 0) {
      g.append(svg('text', { x: pad + step * i + step / 2, y: H - pad + 14, class: 'label', 'text-anchor': 'middle' },
        String(l).slice(0, 12)));
    }
  });
  return g;
}

// ---------------- sign-in ----------------
function signedIn(c) {
  creds = c;
  sessionStorage.setItem(KEY, JSON.stringify(c));
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#who').textContent = c.accessKeyId;
  show(location.hash.slice(1) || 'buckets');
}

async function signIn(ev) {
  ev.preventDefault();
  const c = { accessKeyId: $('#access-key').value.trim(), secretKey: $('#secret-key').value,
    region: $('#region').value.trim() || 'us-east-1' };
  const status = $('#signin-status');
  status.replaceChildren('Checking…');
  try {
    // a valid key without s3:ListAllMyBuckets still signs in: the views
    // show what its policies allow, and AccessDenied for the rest
    await s3.listBuckets(c).catch((e) => {
      if (!(e instanceof ApiError && e.code === 'AccessDenied')) throw e;
    });
    status.replaceChildren();
    $('#secret-key').value = '';
    signedIn(c);
  } catch (e) {
    let why = `Sign-in failed: ${e.message}`;
    if (e instanceof ApiError && e.code === 'RequestTimeTooSkewed') {
      why = "Sign-in refused (403 RequestTimeTooSkewed): this computer's clock is more than 15 minutes off the server's.";
    } else if (e instanceof ApiError && e.status === 403) {
      why = `Sign-in refused (403 ${e.code || 'Forbidden'}): check the access key id and the secret.`;
    }
    status.replaceChildren(el('div', { class: 'error', role: 'alert', id: 'signin-error' }, why));
  }
}

function signOut() {
  eventsPanel(false);
  sessionStorage.removeItem(KEY);
  creds = null;
  $('#app').hidden = true;
  $('#signin').hidden = false;
}

// ---------------- navigation ----------------
const views = {};
function show(name) {
  if (!views[name]) name = 'buckets';
  for (const b of document.querySelectorAll('nav button[data-view]')) {
    b.classList.toggle('active', b.dataset.view === name);
  }
  const main = $('#main');
  main.replaceChildren();
  location.hash = name;
  views[name](main);
}

// ---------------- Buckets ----------------
views.buckets = async (main) => {
  const list = el('div', { id: 'bucket-list' }, 'Loading…');
  const name = el('input', { id: 'new-bucket', placeholder: 'new bucket name' });
  main.append(el('h2', {}, 'Buckets'),
    el('form', { class: 'row', onsubmit: async (ev) => {
      ev.preventDefault();
      await guard(list, async () => { await s3.createBucket(creds, name.value.trim()); show('buckets'); });
    } }, name, el('button', {}, 'Create bucket')), list);
  const buckets = await guard(list, () => s3.listBuckets(creds));
  if (!buckets) return;
  list.replaceChildren(buckets.length === 0 ? el('p', {}, 'No buckets yet.')
    : table(['Bucket', 'Created'], buckets.map((b) => [
      el('a', { href: '#', class: 'bucket', onclick: (ev) => { ev.preventDefault(); browse(main, b.name, ''); } }, b.name),
      b.created])));
};

async function browse(main, bucket, prefix) {
  main.replaceChildren();
  const crumbs = el('div', { class: 'crumbs' },
    el('a', { href: '#', onclick: (ev) => { ev.preventDefault(); show('buckets'); } }, 'Buckets'), ' / ',
    el('a', { href: '#', onclick: (ev) => { ev.preventDefault(); browse(main, bucket, ''); } }, bucket));
  let acc = '';
  for (const part of prefix.split('/').filter(Boolean)) {
    acc += part + '/';
    const p = acc;
    crumbs.append(' / ', el('a', { href: '#', onclick: (ev) => { ev.preventDefault(); browse(main, bucket, p); } }, part));
  }
  const listing = el('div', { id: 'object-list' }, 'Loading…');
  const detail = el('div', { id: 'object-detail' });
  const file = el('input', { type: 'file', id: 'upload-file' });
  const progress = el('progress', { id: 'upload-progress', max: 1, value: 0, hidden: true });
  const status = el('span', { id: 'upload-status' });
  const doUpload = async () => {
    const f = file.files[0];
    if (!f) return;
    progress.hidden = false;
    progress.max = Math.max(1, f.size);
    status.replaceChildren(`uploading ${f.name}…`);
    try {
      await s3.putFile(creds, bucket, prefix + f.name, f, (n) => { progress.value = n; });
      status.replaceChildren(`uploaded ${f.name} (${human(f.size)})`);
      await refresh();
    } catch (e) {
      showError(status, e);
    }
  };
  const rules = el('div', { id: 'bucket-events' });
  main.append(el('h2', {}, 'Bucket ', bucket), crumbs,
    el('div', { class: 'row' }, file, el('button', { id: 'upload-button', onclick: doUpload }, 'Upload'), progress, status),
    el('div', { class: 'split' }, listing, detail), rules);
  eventRules(rules, bucket);

  async function refresh(token) {
    const page = await guard(listing, () => s3.list(creds, bucket, prefix, token));
    if (!page) return;
    const rows = page.prefixes.map((p) => [
      el('a', { href: '#', class: 'prefix', onclick: (ev) => { ev.preventDefault(); browse(main, bucket, p); } },
        p.slice(prefix.length)), '', '', '']);
    for (const o of page.objects) {
      rows.push([
        el('a', { href: '#', class: 'object', onclick: (ev) => { ev.preventDefault(); details(o.key); } }, o.key.slice(prefix.length)),
        human(o.size), o.modified,
        el('span', {},
          el('button', { class: 'small', onclick: () => download(o.key) }, 'Download'), ' ',
          el('button', { class: 'small danger', onclick: async () => {
            if (!confirm(`Delete s3://${bucket}/${o.key}?`)) return;
            await guard(detail, () => s3.del(creds, bucket, o.key));
            refresh();
          } }, 'Delete'))]);
    }
    listing.replaceChildren(rows.length === 0 ? el('p', {}, 'Empty.') : table(['Name', 'Size', 'Modified', ''], rows),
      page.next ? el('button', { onclick: () => refresh(page.next) }, 'Next page') : '');
  }

  async function download(key) {
    await guard(detail, async () => {
      const a = el('a', { href: await s3.downloadUrl(creds, bucket, key), download: key.split('/').pop() });
      document.body.append(a);
      a.click();
      a.remove();
    });
  }

  async function details(key) {
    detail.replaceChildren('Loading…');
    await guard(detail, async () => {
      const [h, tags] = await Promise.all([s3.head(creds, bucket, key), s3.tags(creds, bucket, key)]);
      const tagText = el('textarea', { id: 'tag-edit', rows: 4 }, tags.map(([k, v]) => `${k}=${v}`).join('\n'));
      const msg = el('div');
      detail.replaceChildren(el('h3', {}, key),
        table(['Header', 'Value'], Object.entries(h).filter(([n]) => n !== 'x-amz-request-id' && n !== 'server')),
        el('h4', {}, 'Tags (key=value per line)'), tagText,
        el('button', { onclick: async () => {
          const t = tagText.value.split('\n').map((l) => l.trim()).filter(Boolean)
            .map((l) => [l.split('=')[0], l.split('=').slice(1).join('=')]);
          await guard(msg, async () => { await s3.putTags(creds, bucket, key, t); msg.replaceChildren('Tags saved.'); });
        } }, 'Save tags'), msg);
    });
  }
  await refresh();
}

// The bucket's notification configuration: its rules, a form adding one
// (ObjectCreated:* with an optional prefix, to a queue or a function) and
// a Remove button per rule. Every change rewrites the whole configuration,
// as PutBucketNotificationConfiguration does.
async function eventRules(box, bucket) {
  const list = el('div', { id: 'rule-list' }, 'Loading…');
  const target = el('select', { id: 'rule-target' });
  const prefix = el('input', { id: 'rule-prefix', placeholder: 'key prefix (optional)' });
  const msg = el('span', { id: 'rule-status' });
  let current = [];
  const save = async (next, done) => {
    await guard(msg, async () => {
      await s3.putNotification(creds, bucket, next);
      msg.replaceChildren(done);
      await load();
    });
  };
  box.replaceChildren(el('h3', {}, 'Event rules'), list,
    el('div', { class: 'row' }, 'On s3:ObjectCreated:* send to ', target, prefix,
      el('button', { id: 'rule-add', onclick: () => {
        if (!target.value) return;
        const kind = target.value.includes(':lambda:') ? 'CloudFunction' : 'Queue';
        const filters = prefix.value ? [['prefix', prefix.value]] : [];
        save(current.concat([{ kind, id: '', arn: target.value, events: ['s3:ObjectCreated:*'], filters }]), 'Rule added.');
      } }, 'Add rule'), msg));
  async function load() {
    const got = await guard(list, () => s3.notification(creds, bucket));
    if (!got) return;
    current = got;
    list.replaceChildren(got.length === 0 ? el('p', { class: 'muted' }, 'No event rules.')
      : table(['Id', 'Target', 'Events', 'Filter', ''], got.map((r, i) => [r.id, r.arn, r.events.join(', '),
        r.filters.map(([n, v]) => `${n}=${v}`).join(', '),
        el('button', { class: 'small danger rule-remove', onclick: () =>
          save(current.filter((_, j) => j !== i), 'Rule removed.') }, 'Remove')]), { id: 'rule-table' }));
  }
  await load();
  // the targets a rule can name: queues (their ARNs) and functions
  const opts = [];
  const urls = await sqs.list(creds).catch(() => []);
  for (const u of urls) {
    const arn = await sqs.arn(creds, u).catch(() => '');
    if (arn) opts.push(el('option', { value: arn }, 'queue ' + u.split('/').pop()));
  }
  for (const f of await lambda.list(creds).catch(() => [])) opts.push(el('option', { value: f.FunctionArn }, 'function ' + f.FunctionName));
  target.replaceChildren(...opts);
}

// ---------------- Functions ----------------
views.functions = async (main) => {
  const list = el('div', { id: 'function-list' }, 'Loading…');
  const detail = el('div', { id: 'function-detail' });
  const stats = el('div', { id: 'function-metrics' });
  let fns = null; // the listed functions (the deploy form picks create or update by them)
  main.append(el('h2', {}, 'Functions'), deployForm(), el('div', { class: 'split' }, list, detail), stats);
  fns = await guard(list, () => lambda.list(creds));
  if (!fns) return;
  const showList = () => list.replaceChildren(fns.length === 0 ? el('p', {}, 'No functions yet.')
    : table(['Function', 'Runtime', 'Memory', 'Modified'], fns.map((f) => [
      el('a', { href: '#', class: 'function', onclick: (ev) => { ev.preventDefault(); open(f.FunctionName); } }, f.FunctionName),
      f.Runtime || '', f.MemorySize || '', f.LastModified || ''])));
  showList();
  metricsPanel(stats);

  // Deploy a .zip (at most Lambda's 50 MiB for a direct upload): CreateFunction for a new name, UpdateFunctionCode for an
  // existing one (then runtime, handler and role are left as they are).
  function deployForm() {
    const name = el('input', { id: 'deploy-name', placeholder: 'function name', required: true });
    const runtime = el('select', { id: 'deploy-runtime' },
      ['python3.11', 'nodejs20.x', 'ruby3.3', 'provided.al2023'].map((r) => el('option', { value: r }, r)));
    const handler = el('input', { id: 'deploy-handler', value: 'lambda_function.handler' });
    const role = el('input', { id: 'deploy-role', size: 40, value: 'arn:aws:iam::000000000000:role/lambda-role' });
    const zip = el('input', { id: 'deploy-zip', type: 'file', accept: '.zip,application/zip' });
    const status = el('span', { id: 'deploy-status' });
    runtime.addEventListener('change', () => {
      handler.value = { 'python3.11': 'lambda_function.handler', 'nodejs20.x': 'index.handler',
        'ruby3.3': 'lambda_function.lambda_handler', 'provided.al2023': 'function.handler' }[runtime.value];
    });
    return el('details', { id: 'deploy', open: true }, el('summary', {}, 'Deploy a .zip'),
      el('form', { class: 'row', onsubmit: async (ev) => {
        ev.preventDefault();
        const f = zip.files[0];
        const fn = name.value.trim();
        if (!f || !fn) { status.replaceChildren('Pick a name and a .zip.'); return; }
        if (f.size > ZIP_MAX) { status.replaceChildren(`${f.name} is over ${ZIP_MAX >> 20} MiB: Lambda takes a larger zip from S3 only.`); return; }
        status.replaceChildren(`deploying ${f.name}…`);
        await guard(status, async () => {
          const body = await f.arrayBuffer();
          const exists = (fns || []).some((x) => x.FunctionName === fn);
          const cfg = exists ? await lambda.updateCode(creds, fn, body)
            : await lambda.create(creds, { name: fn, runtime: runtime.value, handler: handler.value.trim(),
              role: role.value.trim() }, body);
          const again = await lambda.list(creds);
          if (fns) {
            fns.splice(0, fns.length, ...again);
            showList();
          }
          await open(fn);
          status.replaceChildren(el('span', { class: 'ok' }, `${exists ? 'updated' : 'created'} ${fn} (${human(cfg.CodeSize || f.size)})`));
        });
      } }, name, runtime, handler, role, zip, el('button', { id: 'deploy-button' }, 'Deploy'), status));
  }

  async function open(name) {
    detail.replaceChildren('Loading…');
    const cfg = await guard(detail, () => lambda.config(creds, name));
    if (!cfg) return;
    metricsPanel(stats, name);
    const event = el('textarea', { id: 'test-event', rows: 6 }, '{\n  "hello": "world"\n}');
    const result = el('div', { id: 'invoke-result' });
    const vars = (cfg.Environment && cfg.Environment.Variables) || {};
    const env = el('textarea', { id: 'env-edit', rows: 4 }, Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n'));
    const envMsg = el('div');
    detail.replaceChildren(el('h3', {}, name),
      el('p', {}, `${cfg.Runtime || ''} · handler ${cfg.Handler || ''} · ${cfg.MemorySize} MB · timeout ${cfg.Timeout} s`),
      el('h4', {}, 'Test event'), event,
      el('button', { id: 'invoke-button', onclick: async () => {
        result.replaceChildren('Invoking…');
        await guard(result, async () => {
          const r = await lambda.invoke(creds, name, event.value);
          result.replaceChildren(
            el('div', { class: r.error ? 'error' : 'ok' }, `Status ${r.status}${r.error ? ' · ' + r.error : ''}`),
            el('h4', {}, 'Result'), el('pre', { id: 'invoke-payload' }, r.payload),
            el('h4', {}, 'Log tail'), el('pre', { id: 'invoke-log' }, r.log));
          metricsPanel(stats, name);
        });
      } }, 'Invoke'), result,
      el('h4', {}, 'Environment (KEY=value per line)'), env,
      el('button', { id: 'env-save', onclick: async () => {
        const v = {};
        for (const l of env.value.split('\n').map((s) => s.trim()).filter(Boolean)) {
          const i = l.indexOf('=');
          if (i > 0) v[l.slice(0, i)] = l.slice(i + 1);
        }
        await guard(envMsg, async () => { await lambda.setEnv(creds, name, v); envMsg.replaceChildren('Environment saved.'); });
      } }, 'Save environment'), envMsg);
  }
};

// Invocations, errors and durations from /_tarn/metrics: one function's
// (label function="NAME") when name is given, else all functions'.
async function metricsPanel(where, name) {
  const m = await guard(where, () => metrics(creds));
  if (!m) return;
  const one = name != null && m[`tarn_fn_function_invocations_total{function="${name}"}`] !== undefined;
  const prefix = one ? `tarn_fn_function_duration_seconds_bucket{function="${name}",` : 'tarn_fn_duration_seconds_bucket{';
  const buckets = Object.keys(m).filter((k) => k.startsWith(prefix))
    .map((k) => [k.match(/le="([^"]+)"/)[1], m[k]]);
  const labels = [];
  const counts = [];
  let prev = 0;
  for (const [le, cum] of buckets) {
    labels.push(le === '+Inf' ? '>10s' : '≤' + (Number(le) * 1000) + 'ms');
    counts.push(cum - prev);
    prev = cum;
  }
  const line = one
    ? `Invocations ${m[`tarn_fn_function_invocations_total{function="${name}"}`]} · ` +
      `errors ${m[`tarn_fn_function_errors_total{function="${name}"}`] || 0}`
    : `Invocations ${m.tarn_fn_invocations_total || 0} · errors ${m.tarn_fn_errors_total || 0} · ` +
      `throttles ${m.tarn_fn_throttles_total || 0} · cold starts ${m.tarn_fn_cold_starts_total || 0} · ` +
      `running ${m.tarn_fn_concurrent_executions || 0}`;
  where.replaceChildren(el('h3', {}, one ? `Metrics of ${name} (since the server started)` : 'Metrics (all functions, since the server started)'),
    el('p', { id: 'function-metrics-line' }, line),
    counts.length ? el('div', {}, el('h4', {}, 'Durations (invocations per bucket)'), chart(labels, counts, 'bar', 'durations')) : '',
    el('h4', {}, 'Per function: cold starts and duration percentiles'), percentiles(m));
}

// A table of every function's invocations, cold starts and p50/p90/p99
// durations, the percentiles estimated from its histogram's buckets as
// Prometheus' histogram_quantile does (linear inside the bucket).
function percentiles(m) {
  const names = Object.keys(m).map((k) => k.match(/^tarn_fn_function_invocations_total\{function="([^"]+)"\}$/))
    .filter(Boolean).map((x) => x[1]).sort();
  const q = (name, p) => {
    const pre = `tarn_fn_function_duration_seconds_bucket{function="${name}",le="`;
    const bk = Object.keys(m).filter((k) => k.startsWith(pre)).map((k) => [k.slice(pre.length, -2), m[k]]);
    const total = bk.length ? bk[bk.length - 1][1] : 0;
    if (total === 0) return '–';
    const rank = p * total;
    let lo = 0;
    let prev = 0;
    for (const [le, cum] of bk) {
      if (cum >= rank) {
        if (le === '+Inf') return `> ${lo * 1000} ms`;
        const hi = Number(le);
        const at = cum === prev ? hi : lo + (hi - lo) * ((rank - prev) / (cum - prev));
        return `${+(at * 1000).toPrecision(3)} ms`;
      }
      lo = Number(le);
      prev = cum;
    }
    return '–';
  };
  return names.length === 0 ? el('p', { class: 'muted' }, 'No functions.')
    : table(['Function', 'Invocations', 'Cold starts', 'p50', 'p90', 'p99'], names.map((n) => [n,
      m[`tarn_fn_function_invocations_total{function="${n}"}`],
      m[`tarn_fn_function_cold_starts_total{function="${n}"}`] ?? '–', q(n, 0.5), q(n, 0.9), q(n, 0.99)]),
    { id: 'function-percentiles' });
}

// ---------------- Queues and topics ----------------
views.queues = async (main) => {
  const qlist = el('div', { id: 'queue-list' }, 'Loading…');
  const qdetail = el('div', { id: 'queue-detail' });
  const tlist = el('div', { id: 'topic-list' }, 'Loading…');
  const name = el('input', { id: 'new-queue', placeholder: 'new queue name' });
  main.append(el('h2', {}, 'Queues'),
    el('form', { class: 'row', onsubmit: async (ev) => {
      ev.preventDefault();
      await guard(qlist, async () => { await sqs.create(creds, name.value.trim()); loadQueues(); });
    } }, name, el('button', {}, 'Create queue')),
    el('div', { class: 'split' }, qlist, qdetail), el('h2', {}, 'Topics'), tlist);

  async function loadQueues() {
    const urls = await guard(qlist, () => sqs.list(creds));
    if (!urls) return;
    const rows = [];
    for (const u of urls) {
      const d = await sqs.depth(creds, u).catch(() => ({ visible: '?', inflight: '?' }));
      rows.push([el('a', { href: '#', class: 'queue', onclick: (ev) => { ev.preventDefault(); openQueue(u); } },
        u.split('/').pop()), d.visible, d.inflight]);
    }
    qlist.replaceChildren(rows.length === 0 ? el('p', {}, 'No queues yet.') : table(['Queue', 'Messages', 'In flight'], rows));
  }

  function openQueue(url) {
    const body = el('textarea', { id: 'message-body', rows: 3 }, '');
    const out = el('div', { id: 'queue-messages' });
    const depth = el('span', { id: 'queue-depth' });
    const graph = el('div', { id: 'queue-chart' });
    // depth over time: a sample every 2 s while this queue stays open
    const SAMPLES = 90;
    const when = [];
    const visible = [];
    const inflight = [];
    const refreshDepth = async () => {
      const d = await guard(out, () => sqs.depth(creds, url));
      if (!d) return;
      depth.replaceChildren(`${d.visible} messages, ${d.inflight} in flight`);
      when.push(new Date().toTimeString().slice(0, 8));
      visible.push(d.visible);
      inflight.push(d.inflight);
      if (when.length > SAMPLES) [when, visible, inflight].forEach((a) => a.shift());
      graph.replaceChildren(el('p', { class: 'muted' }, 'Depth over time: visible (blue), in flight (orange)'),
        chart(when, visible, 'line', 'visible', [{ name: 'in flight', values: inflight }]));
    };
    const timer = setInterval(() => {
      if (!graph.isConnected) clearInterval(timer);
      else refreshDepth();
    }, 2000);
    qdetail.replaceChildren(el('h3', {}, url.split('/').pop()), el('p', {}, depth), graph,
      el('h4', {}, 'Message'), body,
      el('div', { class: 'row' },
        el('button', { id: 'send-button', onclick: async () => {
          await guard(out, async () => {
            const r = await sqs.send(creds, url, body.value);
            out.replaceChildren(el('div', { class: 'ok' }, `Sent ${r.MessageId}`));
            refreshDepth();
            loadQueues();
          });
        } }, 'Send'),
        el('button', { id: 'receive-button', onclick: async () => {
          out.replaceChildren('Receiving…');
          await guard(out, async () => {
            const msgs = await sqs.receive(creds, url);
            out.replaceChildren(msgs.length === 0 ? el('p', {}, 'No message.')
              : table(['Message', 'Body', ''], msgs.map((m) => [m.MessageId, el('pre', { class: 'message' }, m.Body),
                el('button', { class: 'small', onclick: async (ev) => {
                  await guard(out, () => sqs.remove(creds, url, m.ReceiptHandle));
                  ev.target.replaceWith('deleted');
                  refreshDepth();
                } }, 'Delete')]), { id: 'received' }));
            refreshDepth();
            loadQueues();
          });
        } }, 'Receive'),
        el('button', { class: 'danger', onclick: async () => {
          if (!confirm('Purge every message?')) return;
          await guard(out, async () => { await sqs.purge(creds, url); out.replaceChildren('Purged.'); refreshDepth(); });
        } }, 'Purge')),
      out);
    refreshDepth();
  }

  async function loadTopics() {
    const arns = await guard(tlist, () => sns.list(creds));
    if (!arns) return;
    tlist.replaceChildren(arns.length === 0 ? el('p', {}, 'No topics yet.') : table(['Topic', 'Publish'], arns.map((a) => {
      const msg = el('input', { placeholder: 'message', class: 'publish-message' });
      const res = el('span', { class: 'publish-result' });
      return [a, el('span', {}, msg, el('button', { class: 'small publish', onclick: async () => {
        await guard(res, async () => { res.replaceChildren(`published ${await sns.publish(creds, a, msg.value)}`); });
      } }, 'Publish'), ' ', res)];
    })));
  }
  loadQueues();
  loadTopics();
};

// ---------------- SQL ----------------
function history() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY) || '[]'); } catch (_) { return []; }
}

views.sql = async (main) => {
  const editor = el('textarea', { id: 'sql-editor', rows: 6, spellcheck: 'false' },
    history()[0] || "SELECT * FROM 's3://bucket/path/*.csv' LIMIT 100");
  const db = el('input', { id: 'sql-database', placeholder: 'default database (optional)' });
  const out = el('div', { id: 'sql-result' });
  const side = el('div', { id: 'catalog', class: 'side' }, 'Loading catalog…');
  const hist = el('div', { id: 'sql-history' });
  const run = async () => {
    const text = editor.value.trim();
    if (!text) return;
    const h = [text].concat(history().filter((q) => q !== text)).slice(0, 50);
    sessionStorage.setItem(HISTORY, JSON.stringify(h));
    showHistory();
    out.replaceChildren('Running…');
    await guard(out, async () => {
      const r = await sql.run(creds, text, db.value.trim());
      renderResult(out, r);
    });
  };
  editor.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); run(); }
  });
  function showHistory() {
    hist.replaceChildren(el('h4', {}, 'History'), el('ul', {}, history().map((q) => el('li', {},
      el('a', { href: '#', title: q, onclick: (ev) => { ev.preventDefault(); editor.value = q; } }, q.length > 80 ? q.slice(0, 80) + '…' : q)))));
  }
  main.append(el('h2', {}, 'SQL'),
    el('div', { class: 'split' },
      el('div', {}, editor, el('div', { class: 'row' }, db, el('button', { id: 'sql-run', onclick: run }, 'Run (Ctrl+Enter)')), out, hist),
      side));
  showHistory();
  const dbs = await guard(side, () => glue.databases(creds));
  if (!dbs) return;
  side.replaceChildren(el('h3', {}, 'Catalog'), dbs.length === 0 ? el('p', {}, 'No databases.') : '');
  for (const d of dbs) {
    const tl = el('ul');
    side.append(el('details', {}, el('summary', { class: 'database' }, d.Name), tl));
    glue.tables(creds, d.Name).then((ts) => {
      tl.replaceChildren(...ts.map((t) => el('li', {},
        el('a', { href: '#', class: 'table', onclick: (ev) => {
          ev.preventDefault();
          editor.value = `SELECT * FROM ${d.Name}.${t.Name} LIMIT 100`;
        } }, t.Name),
        el('ul', { class: 'columns' }, ((t.StorageDescriptor && t.StorageDescriptor.Columns) || [])
          .concat(t.PartitionKeys || []).map((c) => el('li', {}, `${c.Name} ${c.Type || ''}`))))));
    }).catch((e) => showError(tl, e));
  }
};

function renderResult(out, r) {
  const cols = (r.columns || []).map((c) => c.name);
  const rows = r.rows || [];
  const st = r.stats || {};
  const numeric = (r.columns || []).map((c, i) => /INT|DOUBLE|DECIMAL|REAL|FLOAT|BIGINT/i.test(c.type || '') ||
    (rows.length > 0 && rows.every((row) => row[i] === null || typeof row[i] === 'number')));
  const valueCol = numeric.findIndex((x) => x);
  let labelCol = numeric.findIndex((x) => !x);
  const chartBox = el('div', { id: 'sql-chart' });
  const kind = el('select', { id: 'chart-kind' }, el('option', { value: 'bar' }, 'bar'), el('option', { value: 'line' }, 'line'));
  const drawChart = () => {
    if (valueCol < 0 || rows.length === 0) {
      chartBox.replaceChildren(el('p', { class: 'muted' }, 'No numeric column to chart.'));
      return;
    }
    const shown = rows.slice(0, 200);
    const labels = shown.map((row, i) => (labelCol >= 0 ? fmt(row[labelCol]) : String(i + 1)));
    chartBox.replaceChildren(el('p', { class: 'muted' }, `${cols[valueCol]}${labelCol >= 0 ? ' by ' + cols[labelCol] : ''}`),
      chart(labels, shown.map((row) => Number(row[valueCol]) || 0), kind.value, cols[valueCol]));
  };
  kind.addEventListener('change', drawChart);
  out.replaceChildren(
    el('p', { id: 'sql-stats' }, `${st.rows ?? rows.length} rows · ${human(Number(st.bytes_scanned || 0))} scanned · ` +
      `${st.objects_scanned || 0} objects · ${st.elapsed_ms || 0} ms · cost $${st.cost_usd ?? 0}`),
    el('div', { class: 'scroll' }, table(cols, rows.slice(0, 1000), { id: 'sql-table' })),
    rows.length > 1000 ? el('p', { class: 'muted' }, `showing 1000 of ${rows.length} rows`) : '',
    el('div', { class: 'row' }, 'Chart: ', kind), chartBox);
  drawChart();
}

// ---------------- RDS ----------------
views.rds = async (main) => {
  const cluster = el('select', { id: 'rds-cluster' });
  const secret = el('select', { id: 'rds-secret' });
  const database = el('input', { id: 'rds-database', placeholder: 'database' });
  const editor = el('textarea', { id: 'rds-editor', rows: 5, spellcheck: 'false' }, 'SELECT now()');
  const out = el('div', { id: 'rds-result' });
  main.append(el('h2', {}, 'RDS query editor'),
    el('div', { class: 'row' }, 'Cluster ', cluster, ' Secret ', secret, ' ', database), editor,
    el('button', { id: 'rds-run', onclick: async () => {
      out.replaceChildren('Running…');
      await guard(out, async () => {
        const c = clusters.find((x) => x.arn === cluster.value);
        const r = await rds.execute(creds, cluster.value, secret.value, database.value.trim() || (c && c.database), editor.value);
        const recs = r.formattedRecords ? parseExact(r.formattedRecords) : [];
        const cols = (r.columnMetadata || []).map((m) => m.name || m.label);
        const names = cols.length ? cols : Object.keys(recs[0] || {});
        out.replaceChildren(
          el('p', { id: 'rds-stats' }, recs.length ? `${recs.length} rows` : `${r.numberOfRecordsUpdated || 0} rows updated`),
          recs.length ? el('div', { class: 'scroll' }, table(names, recs.map((x) => names.map((n) => x[n])), { id: 'rds-table' })) : '');
      });
    } }, 'Run'), out);
  let clusters = [];
  await guard(out, async () => {
    clusters = await rds.clusters(creds);
    const secrets = await rds.secrets(creds);
    cluster.replaceChildren(...clusters.map((c) => el('option', { value: c.arn }, `${c.id} (${c.status})`)));
    const opts = secrets.map((s) => el('option', { value: s.ARN }, s.Name));
    secret.replaceChildren(...opts);
    const pick = () => {
      const c = clusters.find((x) => x.arn === cluster.value);
      if (c && c.secret) secret.value = c.secret;
      database.placeholder = (c && c.database) || 'database';
    };
    cluster.addEventListener('change', pick);
    pick();
    if (clusters.length === 0) out.replaceChildren(el('p', {}, 'No clusters (aws rds create-db-cluster ...).'));
  });
};

// ---------------- live events ----------------
// A panel beside every view following GET /_tarn/events?follow=1: the last
// lines kept, then each new one as it comes (newest first, 200 at most).
// Closing the panel or signing out aborts the stream.
let eventsFollow = null;

function describe(ev) {
  const what = ev.bucket != null ? `${ev.bucket}/${ev.key || ''}`
    : [ev.queue || ev.stream || ev.source, ev.function].filter(Boolean).join(' → ') || ev.arn || '';
  const result = Array.isArray(ev.deliveries)
    ? ev.deliveries.map((d) => `${d.target} ${d.result}`).join('; ') || 'no rule'
    : ev.result || ev.condition || '';
  return [ev.time || '', ev.type || '', ev.event || (ev.messages != null ? `${ev.messages} messages` : ''), what, result];
}

function eventsPanel(open) {
  const panel = $('#events-panel');
  if (eventsFollow) eventsFollow.abort();
  eventsFollow = null;
  panel.hidden = !open;
  $('#events-toggle').classList.toggle('active', open);
  if (!open) {
    panel.replaceChildren();
    return;
  }
  const status = el('span', { id: 'events-status', class: 'muted' }, 'connecting…');
  const rows = el('tbody');
  panel.replaceChildren(el('h3', {}, 'Live events ', status),
    el('table', { id: 'events-table' },
      el('thead', {}, el('tr', {}, ['Time', 'Type', 'Event', 'Bucket/key or source', 'Result'].map((c) => el('th', {}, c)))),
      rows));
  const ctl = new AbortController();
  eventsFollow = ctl;
  const add = (ev) => {
    rows.prepend(el('tr', { class: 'event' }, describe(ev).map((v) => el('td', {}, v))));
    while (rows.children.length > 200) rows.lastChild.remove();
  };
  (async () => {
    let last = 0;
    const t = await events.tail(creds).catch((e) => { showError(status, e); return null; });
    if (!t) return;
    t.lines.slice(-20).forEach(add);
    last = Number(t.last);
    while (!ctl.signal.aborted) {
      status.replaceChildren('following');
      try {
        await events.follow(creds, last, ctl.signal, (ev) => { last++; add(ev); });
      } catch (e) {
        if (ctl.signal.aborted) return;
        showError(status, e);
        if (e instanceof ApiError && e.status === 403) return; // no tarn:ReadEvents: retrying will not help
      }
      await new Promise((res) => setTimeout(res, 2000)); // the server ended the stream: follow again
    }
  })();
}

// ---------------- start ----------------
document.addEventListener('DOMContentLoaded', () => {
  $('#signin-form').addEventListener('submit', signIn);
  $('#signout').addEventListener('click', signOut);
  $('#events-toggle').addEventListener('click', () => eventsPanel($('#events-panel').hidden));
  for (const b of document.querySelectorAll('nav button[data-view]')) b.addEventListener('click', () => show(b.dataset.view));
  $('#origin').textContent = location.origin;
  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    try { signedIn(JSON.parse(saved)); } catch (_) { signOut(); }
  }
});
