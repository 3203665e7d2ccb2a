// tests/e2e/console/console.mjs -- tarn's web console in headless Chromium,
// clicked through as a user would (playwright-core driving Debian's
// /usr/bin/chromium).
//
// Run by tests/e2e/test_console.py with CONSOLE_TEST set to a JSON object:
// {url, accessKey, secretKey, bucket, function, queue, topic (its ARN),
// eventsQueue (a queue for the bucket's event rule), deploy {name, v1, v2
// (paths of two python .zip files)}, rds (or null), bigFile
// (a file past the page's multipart threshold, named big.bin), bigSize,
// shots, every (a screenshot after every step too)}.
// Each step prints one "ok <step>" line; on the first failure a screenshot
// goes to shots/ and its path is printed, and the process exits 1.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const cfg = JSON.parse(process.env.CONSOLE_TEST);
const WAIT = 60_000; // generous: a loaded 2-core machine runs Chromium slowly

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.setDefaultTimeout(WAIT);
const consoleLines = [];
page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));

let step = 'start';
async function run(name, fn) {
  step = name;
  const t0 = Date.now();
  await fn();
  console.log(`ok ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (cfg.every) await page.screenshot({ path: path.join(cfg.shots, name.replace(/[^a-z0-9]+/gi, '-') + '.png'), fullPage: true });
}

const text = (sel, hasText) => page.locator(sel, hasText ? { hasText } : {}).first().waitFor({ state: 'visible' });

try {
  await run('page served without a signature', async () => {
    const r = await page.goto(cfg.url, { waitUntil: 'domcontentloaded' });
    if (r.status() !== 200) throw new Error(`GET ${cfg.url}: ${r.status()}`);
    const csp = r.headers()['content-security-policy'] || '';
    if (!csp.includes("script-src 'self'")) throw new Error('no Content-Security-Policy: ' + csp);
    await text('#signin-form');
  });

  await run('wrong secret refused', async () => {
    await page.fill('#access-key', cfg.accessKey);
    await page.fill('#secret-key', cfg.secretKey + 'x');
    const answer = page.waitForResponse((r) => r.request().headers()['authorization'] !== undefined);
    await page.click('#signin-button');
    const r = await answer;
    if (r.status() !== 403) throw new Error(`the API answered ${r.status()} to a wrong secret`);
    await text('#signin-error', '403');
    if (await page.locator('#app').isVisible()) throw new Error('the console opened with a wrong secret');
    const stored = await page.evaluate(() => sessionStorage.length);
    if (stored !== 0) throw new Error('a refused sign-in left something in sessionStorage');
  });

  await run('sign in', async () => {
    await page.fill('#access-key', cfg.accessKey);
    await page.fill('#secret-key', cfg.secretKey);
    await page.click('#signin-button');
    await text('#app nav');
    await text('#bucket-list a.bucket', cfg.bucket);
    const kept = await page.evaluate(() => Object.keys(sessionStorage).join(','));
    if (!kept.includes('credentials')) throw new Error('the keys are not in sessionStorage: ' + kept);
    const local = await page.evaluate(() => localStorage.length);
    if (local !== 0) throw new Error('something was written to localStorage');
  });

  await run('upload a file and see it listed', async () => {
    await page.locator('#bucket-list a.bucket', { hasText: cfg.bucket }).click();
    await text('#object-list');
    await page.setInputFiles('#upload-file', {
      name: 'sales.csv', mimeType: 'text/csv',
      buffer: Buffer.from('city,amount\nLyon,12\nNantes,30\nParis,45\n'),
    });
    await page.click('#upload-button');
    await text('#upload-status', 'uploaded sales.csv');
    await text('#object-list a.object', 'sales.csv');
    await page.locator('#object-list a.object', { hasText: 'sales.csv' }).click();
    await text('#object-detail td', 'text/csv');
    await page.fill('#tag-edit', 'team=data\nstage=raw');
    await page.locator('#object-detail button', { hasText: 'Save tags' }).click();
    await text('#object-detail', 'Tags saved.');
    await page.locator('#object-list a.object', { hasText: 'sales.csv' }).click(); // read back
    await page.waitForFunction(() => {
      const t = document.querySelector('#tag-edit');
      return t && t.value.split('\n').sort().join(',') === 'stage=raw,team=data';
    });
    const saved = page.waitForEvent('download');
    await page.locator('#object-list tr', { hasText: 'sales.csv' }).locator('button', { hasText: 'Download' }).click();
    const d = await saved;
    const got = readFileSync(await d.path(), 'utf8');
    if (d.suggestedFilename() !== 'sales.csv' || !got.startsWith('city,amount\nLyon,12')) {
      throw new Error(`downloaded ${d.suggestedFilename()}: ${JSON.stringify(got)}`);
    }
  });

  await run('multipart upload of a large file, with progress', async () => {
    await page.setInputFiles('#upload-file', cfg.bigFile); // a path: no copy through the driver
    await page.click('#upload-button');
    await text('#upload-status', 'uploaded big.bin');
    const [value, max] = await page.locator('#upload-progress').evaluate((p) => [p.value, p.max]);
    if (value !== max || max !== cfg.bigSize) throw new Error(`progress ${value} of ${max}`);
    await text('#object-list a.object', 'big.bin');
  });

  await run('SQL over the uploaded file: rows and chart', async () => {
    await page.click('nav button[data-view=sql]');
    await text('#sql-editor');
    await page.fill('#sql-editor', `SELECT city, amount FROM 's3://${cfg.bucket}/sales.csv' ORDER BY amount`);
    await page.click('#sql-run');
    await text('#sql-table td', 'Nantes');
    const cells = await page.locator('#sql-table tbody tr').evaluateAll((rows) =>
      rows.map((r) => Array.from(r.children, (c) => c.textContent)));
    const want = [['Lyon', '12'], ['Nantes', '30'], ['Paris', '45']];
    if (JSON.stringify(cells) !== JSON.stringify(want)) throw new Error('rows: ' + JSON.stringify(cells));
    const bars = await page.locator('#sql-chart svg rect.bar').count();
    if (bars !== 3) throw new Error(`the chart has ${bars} bars, not 3`);
    await text('#sql-stats', 'scanned');
    const stats = await page.locator('#sql-stats').textContent();
    if (!/\$0\.\d+/.test(stats) || !/3 rows/.test(stats)) throw new Error('stats: ' + stats);
    await page.selectOption('#chart-kind', 'line');
    await page.locator('#sql-chart svg polyline').waitFor();
    await text('#sql-history li', 'sales.csv');
    // numbers a double would change are shown as the server sent them
    await page.fill('#sql-editor', 'SELECT 9007199254740993 AS big');
    await page.click('#sql-run');
    await text('#sql-table td', '9007199254740993');
  });

  await run('catalog panel: a table made in the editor, queried from the panel', async () => {
    const runSql = async (q) => {
      await page.fill('#sql-editor', q);
      await page.locator('#sql-result').evaluate((e) => e.replaceChildren());
      await page.click('#sql-run');
      await page.locator('#sql-result #sql-stats, #sql-result .error').first().waitFor();
      const err = await page.locator('#sql-result .error').count();
      if (err) throw new Error(`${q}: ${await page.locator('#sql-result .error').textContent()}`);
    };
    await runSql('CREATE DATABASE IF NOT EXISTS consoledb');
    await runSql(`CREATE EXTERNAL TABLE consoledb.cities (city string, amount int)
      ROW FORMAT DELIMITED FIELDS TERMINATED BY ','
      LOCATION 's3://${cfg.bucket}/tables/cities/' TBLPROPERTIES ('skip.header.line.count'='1')`);
    await page.click('nav button[data-view=sql]'); // the panel reloads
    await page.locator('#catalog summary.database', { hasText: 'consoledb' }).click();
    await text('#catalog ul.columns li', 'amount int');
    await page.locator('#catalog a.table', { hasText: 'cities' }).click();
    const q = await page.inputValue('#sql-editor');
    if (q !== 'SELECT * FROM consoledb.cities LIMIT 100') throw new Error('the editor got: ' + q);
    await page.click('#sql-run');
    await text('#sql-table td', 'Rennes');
    const n = await page.locator('#sql-table tbody tr').count();
    if (n !== 2) throw new Error(`${n} rows from the table, not 2`);
  });

  await run('invoke a function: result and log tail', async () => {
    await page.click('nav button[data-view=functions]');
    await page.locator('#function-list a.function', { hasText: cfg.function }).click();
    await page.fill('#test-event', '{"from": "console"}');
    await page.click('#invoke-button');
    await text('#invoke-log', 'REPORT');
    const payload = JSON.parse(await page.locator('#invoke-payload').textContent());
    if (!payload.event || payload.event.from !== 'console') throw new Error('payload: ' + JSON.stringify(payload));
    const log = await page.locator('#invoke-log').textContent();
    for (const want of ['START RequestId', 'END RequestId', 'REPORT RequestId', 'echo called with']) {
      if (!log.includes(want)) throw new Error(`no '${want}' in the log tail:\n${log}`);
    }
    // this function's own numbers from /_tarn/metrics
    await text('#function-metrics h3', cfg.function);
    await text('#function-metrics-line', 'Invocations 1 · errors 0');
    await page.fill('#env-edit', 'GREETING=hello from the console\nMODE=test');
    await page.click('#env-save');
    await text('#function-detail', 'Environment saved.');
    const bars = await page.locator('#function-metrics svg rect.bar').count();
    if (bars !== 13) throw new Error(`the durations chart has ${bars} bars, not 13`);
  });

  await run('deploy a .zip: create, invoke, update the code, invoke; cold starts and percentiles', async () => {
    const deploy = async (file, want) => {
      await page.setInputFiles('#deploy-zip', file);
      await page.fill('#deploy-name', cfg.deploy.name);
      await page.click('#deploy-button');
      await text('#deploy-status .ok', `${want} ${cfg.deploy.name}`);
      await text('#function-detail h3', cfg.deploy.name);
    };
    const invoke = async (version) => {
      await page.locator('#invoke-result').evaluate((e) => e.replaceChildren());
      await page.fill('#test-event', '{"n": 41}');
      await page.click('#invoke-button');
      await text('#invoke-log', 'REPORT');
      const payload = JSON.parse(await page.locator('#invoke-payload').textContent());
      if (payload.version !== version || payload.answer !== 42) throw new Error('payload: ' + JSON.stringify(payload));
    };
    await page.selectOption('#deploy-runtime', 'python3.11');
    if (await page.inputValue('#deploy-handler') !== 'lambda_function.handler') throw new Error('default handler');
    await deploy(cfg.deploy.v1, 'created');
    await text('#function-list a.function', cfg.deploy.name);
    await invoke(1);
    await deploy(cfg.deploy.v2, 'updated');
    await invoke(2);
    // the per-function table: cold starts and p50/p90/p99 from the histogram
    // the table of the first invoke stays until the panel's new fetch replaces it
    const row = page.locator('#function-percentiles tr', { hasText: cfg.deploy.name });
    let cells = [];
    for (const until = Date.now() + 20000; Date.now() < until;) {
      await row.waitFor();
      cells = await row.locator('td').allTextContents();
      if (cells[1] === '2') break;
      await page.waitForTimeout(200);
    }
    if (cells[1] !== '2' || !(Number(cells[2]) >= 1) || !cells.slice(3).every((c) => / ms$/.test(c))) {
      throw new Error('percentiles row: ' + JSON.stringify(cells));
    }
  });

  await run('send and receive a queue message, publish to a topic', async () => {
    await page.click('nav button[data-view=queues]');
    await page.locator('#queue-list a.queue', { hasText: cfg.queue }).click();
    await page.fill('#message-body', 'hello from the console');
    await page.click('#send-button');
    await text('#queue-messages', 'Sent');
    await text('#queue-depth', '1 messages');
    await page.click('#receive-button');
    await text('#received pre.message', 'hello from the console');
    // the depth chart samples every 2 s (and after each action): the visible
    // and in-flight series
    await page.waitForFunction(() => document.querySelectorAll('#queue-chart svg circle.dot:not(.line-2)').length >= 5);
    await page.locator('#queue-chart svg polyline.line-2').waitFor({ state: 'attached' });
    const series = await page.locator('#queue-chart svg polyline').evaluateAll((ls) => ls.map((l) => l.dataset.series));
    if (series.join(',') !== 'visible,in flight') throw new Error('depth series: ' + series);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#queue-chart svg circle.line-2 title'))
      .some((t) => / 1$/.test(t.textContent)));
    const topic = page.locator('#topic-list tr', { hasText: cfg.topic });
    await topic.locator('input.publish-message').fill('to the topic');
    await topic.locator('button.publish').click();
    await topic.locator('.publish-result', { hasText: 'published' }).waitFor();
  });

  await run('event rule to a queue, an upload, its event in the live panel', async () => {
    await page.click('#events-toggle');
    await text('#events-status', 'following');
    await page.click('nav button[data-view=buckets]');
    await page.locator('#bucket-list a.bucket', { hasText: cfg.bucket }).click();
    await text('#rule-list p', 'No event rules.');
    await page.locator('#rule-target option', { hasText: 'queue ' + cfg.eventsQueue }).waitFor({ state: 'attached' });
    const queueArn = await page.locator('#rule-target option', { hasText: 'queue ' + cfg.eventsQueue }).getAttribute('value');
    await page.selectOption('#rule-target', queueArn);
    await page.fill('#rule-prefix', 'events');
    await page.click('#rule-add');
    await text('#rule-status', 'Rule added.');
    await text('#rule-table td', queueArn);
    // a second rule, to a function, then removed
    const fnArn = await page.locator('#rule-target option', { hasText: 'function ' + cfg.function }).getAttribute('value');
    await page.selectOption('#rule-target', fnArn);
    await page.fill('#rule-prefix', 'nothing/');
    await page.click('#rule-add');
    await text('#rule-table td', fnArn);
    await page.locator('#rule-table tr', { hasText: fnArn }).locator('button.rule-remove').click();
    await text('#rule-status', 'Rule removed.');
    await page.locator('#rule-table td', { hasText: fnArn }).waitFor({ state: 'detached' });
    await text('#rule-table td', 'prefix=events');
    await page.setInputFiles('#upload-file', { name: 'events.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2\n') });
    await page.click('#upload-button');
    await text('#upload-status', 'uploaded events.csv');
    const ev = page.locator('#events-table tr.event', { hasText: `${cfg.bucket}/events.csv` });
    await ev.waitFor();
    const cells = await ev.locator('td').allTextContents();
    if (cells[1] !== 's3' || !cells[2].startsWith('ObjectCreated:')) throw new Error('event row: ' + JSON.stringify(cells));
    await page.waitForFunction((k) => Array.from(document.querySelectorAll('#events-table tr.event'))
      .some((r) => r.textContent.includes(k) && r.textContent.includes('queue delivered')), `${cfg.bucket}/events.csv`);
  });

  if (cfg.rds) {
    await run('RDS statement through the Data API', async () => {
      await page.click('nav button[data-view=rds]');
      await page.locator('#rds-cluster option').first().waitFor({ state: 'attached' });
      await page.selectOption('#rds-cluster', cfg.rds.arn);
      await page.selectOption('#rds-secret', cfg.rds.secret);
      await page.fill('#rds-editor', "SELECT 41 + 1 AS answer, 'tarn' AS name");
      await page.click('#rds-run');
      await text('#rds-table td', '42');
      await text('#rds-table th', 'answer');
    });
  }

  await run('delete an object', async () => {
    await page.click('#events-toggle'); // closing the event panel ends its stream
    if (await page.locator('#events-panel').isVisible()) throw new Error('the event panel did not close');
    page.once('dialog', (d) => d.accept());
    await page.click('nav button[data-view=buckets]');
    await page.locator('#bucket-list a.bucket', { hasText: cfg.bucket }).click();
    const row = page.locator('#object-list tr', { hasText: 'sales.csv' });
    await row.locator('button', { hasText: 'Delete' }).click();
    await row.waitFor({ state: 'detached' });
    await text('#object-list a.object', 'big.bin');
  });

  await run('browse by prefix', async () => {
    await page.locator('#object-list a.prefix', { hasText: 'tables/' }).click();
    await page.locator('#object-list a.prefix', { hasText: 'cities/' }).click();
    await text('#object-list a.object', 'part-0.csv');
    await text('.crumbs a', 'cities');
    await page.locator('.crumbs a', { hasText: cfg.bucket }).click();
    await text('#object-list a.object', 'big.bin');
  });

  await run('sign out clears the keys', async () => {
    await page.click('#signout');
    await text('#signin-form');
    const stored = await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.includes('credentials')));
    if (stored.length !== 0) throw new Error('keys left in sessionStorage after sign-out');
  });
  await browser.close();
} catch (e) {
  const file = path.join(cfg.shots, step.replace(/[^a-z0-9]+/gi, '-') + '.png');
  await page.screenshot({ path: file, fullPage: true }).catch(() => {});
  console.log(`FAILED at '${step}': ${e.message}`);
  console.log(`screenshot: ${file}`);
  console.log('browser console:\n' + consoleLines.slice(-30).join('\n'));
  await browser.close().catch(() => {});
  process.exit(1);
}
