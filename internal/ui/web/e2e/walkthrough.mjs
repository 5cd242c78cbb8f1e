// The walkthrough of WALKTHROUGH.md (shared/), steps 1-6 as issue 7 lists
// them, step 7 through the Investigate button, and the check that markup in
// telemetry is shown as text; driven in Debian's Chromium through
// playwright-core against a running `trenchcoat demo --sim`.
//
//   node walkthrough.mjs <baseURL> <screenshotDir> [otlpHTTPBaseURL]
//
// Exits non-zero on the first failed assertion; prints one line per step
// and the page timings (server HTML and slowest API call), not asserted.
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [, , base, shots, otlp] = process.argv;
if (!base || !shots) { console.error('usage: walkthrough.mjs <baseURL> <screenshotDir> [otlpHTTPBaseURL]'); process.exit(2); }
mkdirSync(shots, { recursive: true });
const T = 30000;
const profile = mkdtempSync(join(tmpdir(), 'trenchcoat-chromium-'));
// A fresh profile (--user-data-dir) per run: playwright passes it through.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1440, height: 1000 },
});
const page = browser.pages()[0] || await browser.newPage();
page.setDefaultTimeout(T);
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('dialog', (d) => { problems.push(`dialog opened: ${d.message()}`); d.dismiss(); });
page.on('console', (m) => { if (m.type() === 'error' && !/favicon/.test(m.text())) console.log(`  console.error: ${m.text()}`); });

let stepNo = 0;
function fail(msg) { throw new Error(msg); }
function check(cond, msg) { if (!cond) fail(msg); }
async function shot(name) { await page.screenshot({ path: join(shots, `${String(++stepNo).padStart(2, '0')}-${name}.png`), fullPage: true }); }
async function noPageError() {
  const err = (await page.locator('#page-error').textContent()) || '';
  check(!(await page.locator('#page-error').isVisible()), `page shows an error: ${err}`);
  check(problems.length === 0, problems.join('; '));
}
async function timings(name) {
  const t = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const apis = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/'));
    return { html: nav ? nav.responseEnd - nav.requestStart : 0, n: apis.length, max: Math.max(0, ...apis.map((e) => e.duration)) };
  });
  console.log(`timing ${name}: server html ${t.html.toFixed(1)} ms, ${t.n} API calls, slowest ${t.max.toFixed(0)} ms`);
}
async function step(title, fn) {
  const t0 = Date.now();
  try { await fn(); } catch (e) {
    await page.screenshot({ path: join(shots, `FAILED-${title.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
    console.error(`FAIL ${title}: ${e.message}\n  at ${page.url()}`);
    await browser.close(); rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  }
  console.log(`ok   ${title} (${Date.now() - t0} ms)`);
}
const textOf = async (sel) => (await page.locator(sel).allTextContents()).join('\n');
const param = (k) => new URL(page.url()).searchParams.get(k);

const CONN_ERRORS = [
  'remaining connection slots are reserved for non-replication superuser and rds_reserved connections',
  'sorry, too many clients already',
  'timeout exceeded when trying to connect',
];

// ---- 1. Respond to the alert ------------------------------------------------
await step('1a SLO list shows tickets-server-success-rate, firing', async () => {
  await page.goto(`${base}/`);
  await page.waitForSelector('#slo-table a.slo-link');
  const rows = await page.locator('#slo-table tbody tr').count();
  check(rows === 1, `want one SLO, got ${rows}`);
  check((await textOf('#slo-table a.slo-link')) === 'tickets-server-success-rate', 'SLO name');
  check((await textOf('#slo-table .alert-state')).includes('firing'), 'alert not firing in the list');
  check((await textOf('#slo-table tbody')).includes('99.00%'), 'objective 99% not shown');
  await noPageError(); await timings('slos'); await shot('slo-list');
});
await step('1b SLO page: SLI vs target, budget, burn, event rate, firing alert', async () => {
  await page.click('#slo-table a.slo-link');
  await page.waitForURL(/\/slos\/tickets-server-success-rate/);
  await page.waitForSelector('#slo-cards .card');
  await page.waitForSelector('#chart-sli canvas');
  await page.waitForSelector('#chart-budget canvas');
  await page.waitForSelector('#chart-events canvas');
  const cards = await textOf('#slo-cards');
  for (const w of ['SLI', 'Objective', 'Error budget remaining', 'Burn rate', 'Budget runs out', 'Events']) check(cards.includes(w), `card ${w} missing`);
  check((await textOf('#slo-alert')).includes('firing'), 'alert state not firing');
  check((await textOf('#budget-projection')).length > 10, 'no budget projection');
  check((await textOf('#alert-table')).includes('firing'), 'alert rules not firing');
  await page.waitForSelector('#breakdown-table tbody tr');
  await noPageError(); await timings('slo'); await shot('slo-page');
});
await step('1c breakdown by region, then by span name: POST /:endpoint stands out', async () => {
  await page.selectOption('#breakdown', 'cloud_region');
  await page.waitForURL(/breakdown=cloud_region/);
  await page.waitForFunction(() => document.querySelector('#breakdown-table tbody')?.textContent.includes('us-east-1'));
  await shot('slo-breakdown-region');
  await page.selectOption('#breakdown', 'span_name');
  await page.waitForURL(/breakdown=span_name/);
  await page.waitForFunction(() => document.querySelector('#breakdown-table tbody tr'));
  const first = await page.locator('#breakdown-table tbody tr').first().locator('td').first().textContent();
  check(first === 'POST /:endpoint', `worst span name is ${first}, want POST /:endpoint`);
  await page.waitForSelector('#chart-breakdown canvas');
  await noPageError(); await shot('slo-breakdown-span-name');
});

// ---- 2. The big picture -------------------------------------------------------
await step('2a service inventory: every service, platform, errors stand out', async () => {
  await page.click('nav a:has-text("Services")');
  await page.waitForSelector('#svc-table a.svc-link');
  const names = await page.locator('#svc-table a.svc-link').allTextContents();
  for (const s of ['tickets-server', 'tickets-api', 'tickets-orders', 'tickets-payments', 'tickets-notify']) check(names.includes(s), `service ${s} missing: ${names}`);
  const ts = page.locator('#svc-table tr[data-service="tickets-server"]');
  check((await ts.getAttribute('class')).includes('bad'), 'tickets-server not highlighted as erroring');
  check((await ts.textContent()).includes('ECS'), 'tickets-server platform badge not ECS');
  check((await page.locator('#svc-table tr[data-service="tickets-api"]').textContent()).includes('Lambda'), 'tickets-api not Lambda');
  check(await ts.locator('svg.spark').count() === 1, 'no sparkline');
  await noPageError(); await timings('services'); await shot('services');
});
await step('2b service map: tickets-server has a red ring, database node', async () => {
  await page.click('nav a:has-text("Service map")');
  await page.waitForSelector('#service-map g.node[data-service="tickets-server"]');
  check(await page.locator('#service-map g.node[data-service="tickets-server"] circle.error-ring').count() === 1, 'tickets-server has no red ring');
  check(await page.locator('#service-map g.node.db').count() >= 1, 'no database node');
  await noPageError(); await timings('service-map'); await shot('service-map');
  await page.click('#service-map g.node[data-service="tickets-server"]');
  await page.waitForSelector('#node-menu a:has-text("Overview")');
  await shot('service-map-menu');
  await page.click('#node-menu a:has-text("Overview")');
});
await step('2c service overview: duration up to seconds, operations, Cloud panel', async () => {
  await page.waitForURL(/\/services\/tickets-server/);
  await page.waitForSelector('#ops-table tbody tr');
  await page.waitForSelector('#chart-duration canvas');
  const ops = await textOf('#ops-table tbody');
  for (const o of ['POST /:endpoint', 'pg-pool.connect', 'pg.connect']) check(ops.includes(o), `operation ${o} missing`);
  await page.waitForSelector('#cloud-table tr[data-key="cloud.availability_zone"]');
  const cloud = await textOf('#cloud-table');
  for (const w of ['cloud.availability_zone', 'us-east-1a', 'cloud.platform', 'aws_ecs', 'cloud.region', 'cloud.account.id', 'aws.ecs.task.arn', 'arn:aws:ecs:']) check(cloud.includes(w), `Cloud panel lacks ${w}`);
  await noPageError(); await timings('service'); await shot('service-overview');
});
await step('2d group the overview by cloud.availability_zone', async () => {
  await page.selectOption('#groupBy', 'cloud.availability_zone');
  await page.waitForURL(/groupBy=cloud.availability_zone/);
  await page.waitForSelector('#chart-duration canvas');
  await page.waitForFunction(() => document.querySelector('#chart-rate')?.textContent.includes('us-east-1'));
  await noPageError(); await shot('service-by-az');
});

// ---- 3. Drill into traces ------------------------------------------------------
await step('3a traces drilldown: span rate, error rate, duration', async () => {
  await page.click('nav a:has-text("Traces")');
  await page.waitForSelector('#groups .group');
  check(param('metric') === null || param('metric') === 'rate', 'default metric');
  check((await page.locator('#tgroupBy').inputValue()) === 'resource.service.name', 'default group-by is not resource.service.name');
  await page.click('#metric-switch button[data-metric="duration"]');
  await page.waitForURL(/metric=duration/);
  await page.waitForSelector('#groups .group canvas');
  await page.click('#metric-switch button[data-metric="errors"]');
  await page.waitForURL(/metric=errors/);
  await page.waitForSelector('#groups .group[data-group="tickets-server"] canvas');
  await noPageError(); await timings('traces'); await shot('traces-errors-by-service');
});
await step('3b group by aws.ecs.task.family, add tickets-server to the filter', async () => {
  await page.selectOption('#tgroupBy', 'resource.aws.ecs.task.family');
  await page.waitForURL(/groupBy=resource.aws.ecs.task.family/);
  await page.waitForSelector('#groups .group[data-group="tickets-server"]');
  await shot('traces-by-task-family');
  await page.click('#groups .group[data-group="tickets-server"] button.add-filter');
  await page.waitForURL(/q=/);
  const q = await page.locator('#tq').inputValue();
  check(q.includes('resource.aws.ecs.task.family="tickets-server"'), `filter is ${q}`);
  await page.waitForSelector('#trace-table tbody tr[data-trace-id]');
  await noPageError(); await shot('traces-filtered');
});

// ---- 4. Errored traces ------------------------------------------------------------
await step('4 an errored trace: waterfall to pg-pool.connect, error icon, status message, db attributes, 30 s', async () => {
  const rows = page.locator('#trace-table tbody tr[data-trace-id]');
  const n = await rows.count();
  check(n > 0, 'no errored traces');
  // Prefer a trace that hit the pool's 30 s acquire timeout.
  let pick = null;
  for (let i = 0; i < n && !pick; i++) { const t = await rows.nth(i).locator('td').nth(3).textContent(); if (/^30\.\d\d s$/.test(t)) pick = rows.nth(i); }
  check(pick, 'no errored trace of 30 s (the pool acquire timeout) in the list');
  await pick.locator('a.trace-link').click();
  await page.waitForURL(/\/traces\/[0-9a-f]{32}/);
  await page.waitForSelector('.wf-row');
  const names = await page.locator('.wf-row .span-name').allTextContents();
  check(names.includes('POST /:endpoint') || names.includes('GET /:endpoint'), `waterfall lacks the tickets-server request span: ${names}`);
  for (const w of ['request handler', 'pg-pool.connect']) check(names.includes(w), `waterfall lacks ${w}: ${names}`);
  check(await page.locator('.wf-row .error-icon').count() > 0, 'no error icon');
  const services = await page.locator('.wf-row').evaluateAll((rs) => rs.map((r) => r.dataset.service));
  check(services.includes('tickets-server'), 'no tickets-server spans');
  // The detail panel opens on the deepest errored span.
  const msg = await page.locator('#status-message').textContent();
  check(CONN_ERRORS.includes(msg.trim()), `status message ${msg}`);
  const detail = await textOf('#span-detail');
  for (const w of ['db.system', 'postgresql', 'server.address', 'rds.amazonaws.com', 'db.namespace', 'ticketsdb']) check(detail.includes(w), `span detail lacks ${w}`);
  check(await page.locator('#db-metrics-link').count() === 1, 'no link to the database metrics');
  const durs = await page.locator('.wf-row .dur').allTextContents();
  check(durs.includes('30.00 s'), `no span of exactly 30 s: ${durs}`);
  check((await textOf('#trace-summary .timeout-note')).includes('exactly 30 s'), 'the 30 s timeout signature is not called out');
  await noPageError(); await timings('trace'); await shot('trace-waterfall');
  // Collapse and expand the tree.
  const before = await page.locator('.wf-row').count();
  await page.locator('.wf-row .toggle').first().click();
  check(await page.locator('.wf-row').count() < before || before === 1, 'collapsing did not hide children');
  await page.locator('.wf-row .toggle').first().click();
  check(await page.locator('.wf-row').count() === before, 'expanding did not restore children');
});

// ---- 5. The managed service's logs -----------------------------------------------
await step('5a log groups list the RDS group', async () => {
  await page.click('nav a:has-text("Logs")');
  await page.waitForSelector('#group-table a.group-link');
  const groups = await page.locator('#group-table a.group-link').allTextContents();
  check(groups.some((g) => /^\/aws\/rds\/instance\/tickets-database-[0-9a-f]{6}\/postgresql$/.test(g)), `no RDS log group: ${groups}`);
  await noPageError(); await timings('logs'); await shot('log-groups');
});
await step('5b the database log group shows FATAL/PANIC; filter FATAL', async () => {
  await page.click('#group-table a.group-link:has-text("/aws/rds/instance/")');
  await page.waitForSelector('#log-lines .logline');
  await page.waitForSelector('#chart-volume canvas');
  const levels = await page.locator('#log-lines .logline').evaluateAll((ls) => ls.map((l) => l.dataset.level));
  check(levels.includes('fatal'), `no FATAL lines among ${new Set(levels).size} levels`);
  check((await textOf('#chart-volume')).match(/fatal/i), 'volume chart has no fatal series');
  await shot('log-group');
  await page.fill('#lg-filter', 'FATAL');
  await page.click('#lg-form button[type=submit]');
  await page.waitForURL(/filter=FATAL/);
  await page.waitForSelector('#log-lines .logline');
  const lines = await page.locator('#log-lines .logline .body').allTextContents();
  check(lines.length > 0 && lines.every((l) => l.includes('FATAL')), 'filtered lines without FATAL');
  check(lines.some((l) => /too many clients already|remaining connection slots are reserved/.test(l)), 'no connection-slot FATAL lines');
  await page.locator('#log-lines .logline').first().click();
  check(await page.locator('#log-lines .logline.open .labels').isVisible(), 'line does not expand');
  await noPageError(); await timings('log-group'); await shot('log-group-fatal');
});
await step('5c open in Explore', async () => {
  await page.click('#open-explore');
  await page.waitForURL(/\/explore/);
  check(param('leftLang') === 'logql', 'left pane is not LogQL');
  check((param('left') || '').includes('|= "FATAL"'), `left query ${param('left')}`);
  await page.waitForSelector('.pane[data-pane="left"] .logline');
  await noPageError(); await shot('explore-logs');
});

// ---- 6. Correlate with metrics ---------------------------------------------------------
await step('6 split, complete aws_rds_, pick a label value in the metrics browser, run', async () => {
  await page.click('#split-toggle');
  await page.waitForSelector('.pane[data-pane="right"] textarea');
  const right = page.locator('.pane[data-pane="right"]');
  await right.locator('textarea').click();
  await right.locator('textarea').pressSequentially('aws_rds_');
  await right.locator('.completions div[data-value="aws_rds_database_connections_sum"]').waitFor();
  await right.locator('.completions div[data-value="aws_rds_database_connections_sum"]').click();
  check((await right.locator('textarea').inputValue()) === 'aws_rds_database_connections_sum', 'completion not applied');
  await right.locator('button.run').click();
  await right.locator('.result-chart canvas').waitFor();
  check(param('right') === 'aws_rds_database_connections_sum' && param('split') === '1', `URL does not hold the right pane: ${page.url()}`);
  await shot('explore-split-completion');
  // The metrics browser: metric, label, value -> query.
  await right.locator('button.browser-toggle').click();
  await right.locator('.mb-filter').fill('aws_rds_');
  await right.locator('.mb-metrics option[value="aws_rds_database_connections_sum"]').waitFor({ state: 'attached' });
  await right.locator('.mb-metrics').selectOption('aws_rds_database_connections_sum');
  await right.locator('.mb-labels option[value="dimension_DBInstanceIdentifier"]').waitFor({ state: 'attached' });
  await right.locator('.mb-labels').selectOption('dimension_DBInstanceIdentifier');
  await right.locator('.mb-values option').first().waitFor({ state: 'attached' });
  const v = await right.locator('.mb-values option').first().getAttribute('value');
  check(/^tickets-database-[0-9a-f]{6}$/.test(v), `instance value ${v}`);
  await right.locator('.mb-values').selectOption(v);
  await right.locator('.mb-use').click();
  const q = await right.locator('textarea').inputValue();
  check(q === `aws_rds_database_connections_sum{dimension_DBInstanceIdentifier="${v}"}`, `built query ${q}`);
  await right.locator('button.run').click();
  await page.waitForFunction(() => new URL(location.href).searchParams.get('right')?.includes('dimension_DBInstanceIdentifier'));
  await right.locator('.result-chart canvas').waitFor();
  // The connection count rises with the errors: its maximum is well above its minimum.
  const res = await page.evaluate(async (query) => {
    const now = Date.now() / 1000;
    const r = await fetch(`/api/v1/query_range?query=${encodeURIComponent(query)}&start=${now - 3600}&end=${now}&step=60`).then((x) => x.json());
    const vs = r.data.result[0].values.map((p) => parseFloat(p[1]));
    return { min: Math.min(...vs), max: Math.max(...vs) };
  }, q);
  check(res.max >= 2 * Math.max(1, res.min), `connections do not rise: ${JSON.stringify(res)}`);
  check(await page.locator('.pane[data-pane="left"] .logline').count() > 0, 'left pane lost its logs');
  await noPageError(); await timings('explore'); await shot('explore-split-metrics');
});
await step('6b drag across a chart zooms both panes to that range', async () => {
  const box = await page.locator('.pane[data-pane="right"] .result-chart .u-over').boundingBox();
  await page.mouse.move(box.x + box.width * 0.55, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.75, box.y + box.height / 2, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.95, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForURL(/from=\d+/);
  check(/^\d+$/.test(param('to') || ''), `to is ${param('to')}`);
  check(param('right')?.startsWith('aws_rds_database_connections_sum') && param('left')?.includes('FATAL'), 'zoom lost the panes');
  await page.waitForSelector('#tp-abs:not([hidden])');
  await page.locator('.pane[data-pane="right"] .result-chart canvas').waitFor();
  await page.locator('.pane[data-pane="left"] .logline').first().waitFor();
  await noPageError(); await shot('explore-zoomed');
});

// ---- 7. Conclude: the detective, from the SLO page ----------------------------------------
await step('7 Investigate from the SLO page: progress, then the report', async () => {
  await page.goto(`${base}/slos/tickets-server-success-rate`);
  await page.waitForSelector('#slo-cards .card');
  await page.click('#investigate');
  await page.waitForFunction(() => /Investigating/.test(document.querySelector('#investigate-status')?.textContent || '') || document.querySelector('#investigation-link'));
  await page.waitForSelector('#investigation-link', { timeout: 90000 });
  await page.click('#investigation-link');
  await page.waitForURL(/\/investigations\/[^/]+$/);
  await page.waitForSelector('#diagnosis');
  const diag = await page.locator('#diagnosis').textContent();
  console.log(`     diagnosis: ${diag}`);
  check(/connection/i.test(diag), `diagnosis does not name connection exhaustion: ${diag}`);
  check(await page.locator('section.finding').count() > 0, 'no findings');
  await noPageError(); await timings('investigation'); await shot('investigation');
});

// ---- untrusted strings are shown as text -----------------------------------------------
if (otlp) {
  await step('xss: a span name and attribute with markup are shown as text', async () => {
    const xss = '<img src=x onerror=alert(1)>';
    const traceId = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
    const now = BigInt(Date.now()) * 1000000n;
    const body = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'xss-probe' } }] },
      scopeSpans: [{ scope: { name: 'e2e' }, spans: [{ traceId, spanId: '0102030405060708', name: xss, kind: 2,
        startTimeUnixNano: String(now - 5000000n), endTimeUnixNano: String(now), attributes: [{ key: 'evil', value: { stringValue: xss } }],
        status: { code: 2, message: xss } }] }] }] };
    const res = await fetch(`${otlp}/v1/traces`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    check(res.ok, `OTLP export: ${res.status}`);
    let found = false;
    for (let i = 0; i < 40 && !found; i++) {
      found = (await fetch(`${base}/api/v1/traces/${traceId}`)).ok;
      if (!found) await new Promise((r) => setTimeout(r, 250));
    }
    check(found, 'probe trace not stored');
    await page.goto(`${base}/traces/${traceId}`);
    await page.waitForSelector('.wf-row .span-name');
    check((await page.locator('.wf-row .span-name').first().textContent()) === xss, 'span name not shown as text');
    check((await page.locator('#status-message').textContent()) === xss, 'status message not shown as text');
    check((await textOf('#span-detail')).includes(xss), 'attribute not shown as text');
    check(await page.locator('main img').count() === 0, 'markup became an element');
    await page.goto(`${base}/traces?q=${encodeURIComponent(`{resource.service.name="xss-probe"}`)}&groupBy=name`);
    await page.waitForSelector('#groups .group');
    check((await textOf('#groups .gname')).includes(xss), 'group name not shown as text');
    check(await page.locator('main img').count() === 0, 'markup became an element in the drilldown');
    await page.waitForTimeout(300);
    await noPageError(); await shot('xss-as-text');
  });
}

await browser.close();
rmSync(profile, { recursive: true, force: true });
console.log('walkthrough: all steps passed');
