// Headless Chromium walks the main admin flows against the real `switchboard serve` binary: a
// fresh SQLite file in a temp directory, HTTP and SIP on ephemeral loopback ports, and the
// first-run setup link from its log. A small SIP phone (sip_register.mjs) registers with the
// credentials the UI showed, so the registrations page must pick it up by itself. Then two
// baresip phones (baresip.mjs) call each other, by extension and by the business's own +44
// number routed in the UI: the active-calls pages must list the call while it is up, and the
// call history and its CSV export must hold it afterwards.
// Screenshots of every page, and the server's log, go to $ARTIFACTS
// (default ../../test-artifacts/browser).
//
//   SWITCHBOARD_BIN=/path/to/switchboard node web_flow.mjs
//
// Fails on any page error or console error (a CSP violation shows up as one).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { chromium } from 'playwright-core';
import { register } from './sip_register.mjs';
import { REGISTERED, phoneLogs, requireBaresip, startPhone, stopAll } from './baresip.mjs';

const bin = process.env.SWITCHBOARD_BIN;
if (!bin) throw new Error('set SWITCHBOARD_BIN to the switchboard binary');
const artifacts = process.env.ARTIFACTS ?? new URL('../../test-artifacts/browser/', import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });
const started = Date.now();
// Fail at once, not half-way through, when the phones cannot be run.
requireBaresip();

const dataDir = mkdtempSync(join(tmpdir(), 'sb-browser-'));
let serverLog = '';

function startServer() {
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      SWITCHBOARD_DATABASE_URL: `sqlite://${join(dataDir, 'switchboard.db')}`,
      SWITCHBOARD_HTTP_ADDR: '127.0.0.1:0',
      SWITCHBOARD_SIP_ADDR: '127.0.0.1:0',
      // Relay ports of its own: the Rust e2e tests use 30000-31999, possibly at the same time.
      SWITCHBOARD_RTP_PORTS: '30800-30999',
      RUST_LOG: 'info',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${serverLog}`)), 30000);
    child.stderr.on('data', (d) => {
      serverLog += d;
      const http = serverLog.match(/http listening addr=(\S+)/);
      const sip = serverLog.match(/sip listening on udp addr=(\S+)/);
      const link = serverLog.match(/link=(http\S+)/);
      if (http && sip && link) {
        clearTimeout(timer);
        resolve({ base: `http://${http[1]}`, sip: sip[1], link: link[1] });
      }
    });
    exited.then(({ code }) => reject(new Error(`server exited with ${code}:\n${serverLog}`)));
  });
  return { child, exited, ready };
}

const server = startServer();
const { base, sip, link } = await server.ready;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  // No network but loopback here: keep Chromium from reaching out at all.
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync',
  ],
});
const problems = [];
// Requests that got no answer (aborted polls included): printed only when the walk fails.
const failedRequests = [];
let shot = 0;

async function newPage() {
  const context = await browser.newContext({ baseURL: base });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  return page;
}

async function snap(page, name) {
  shot += 1;
  await page.screenshot({ path: `${artifacts}/${String(shot).padStart(2, '0')}-${name}.png`, fullPage: true });
}

async function signIn(page, email, password, landing) {
  await page.goto('/login');
  await page.fill('#f-email', email);
  await page.fill('#f-password', password);
  await page.click('button[type=submit]');
  await page.waitForURL(landing);
}

/** The page's live list polls `path` by itself (htmx, `HX-Request`) and stays a list. */
async function polls(page, path) {
  const req = await page.waitForRequest(
    (r) => new URL(r.url()).pathname === path && r.headers()['hx-request'] === 'true',
    { timeout: 5000 },
  );
  assert.equal((await req.response()).status(), 200);
  await page.locator('#live-calls').waitFor();
}

let failed = 0;
try {
  // ---------------------------------------------------------------- operator
  const op = await newPage();
  await op.goto(link);
  await snap(op, 'setup');
  await op.fill('#f-email', 'olga@example.test');
  await op.fill('#f-display_name', 'Olga');
  await op.fill('#f-password', 'a strong passphrase');
  await op.click('button[type=submit]');
  await op.getByText('Your operator account is ready').waitFor();
  await op.fill('#f-password', 'a strong passphrase');
  await op.click('button[type=submit]');
  await op.waitForURL('**/operator');
  await op.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await snap(op, 'operator-dashboard');
  await op.click('nav >> text=Businesses');
  await op.waitForURL('**/operator/tenants');
  await snap(op, 'businesses-empty');

  await op.click('text=Create a business');
  await op.fill('#f-slug', 'acme');
  await op.fill('#f-sip_domain', 'acme.pbx.test');
  await op.fill('#f-name', 'Acme Plumbing');
  await op.check('#f-allow_international');
  await snap(op, 'business-new');
  await op.click('button:has-text("Create business")');
  await op.waitForURL(/\/operator\/tenants\/[0-9a-f-]+$/);
  const tenantId = op.url().split('/').pop();
  await op.fill('form[action$="/admins"] #f-email', 'ann@acme.test');
  await op.fill('form[action$="/admins"] #f-display_name', 'Ann');
  await op.click('button:has-text("Create admin")');
  const adminPassword = (await op.textContent('#pw')).trim();
  assert.ok(adminPassword.length >= 20, 'one-time password shown');
  await snap(op, 'admin-created');

  // A range of +44 numbers given to the business in one go, then a range into the inventory
  // and one of those assigned from its row.
  await op.goto('/operator/numbers');
  await op.fill('#f-first', '+44 113 496 0000');
  await op.fill('#f-last', '+44 113 496 0009');
  await op.selectOption('#f-tenant', { label: 'Acme Plumbing · acme.pbx.test' });
  await op.click('button:has-text("Add")');
  await op.getByText('Added 10 numbers.').waitFor();
  await op.fill('#f-first', '020 7946 0000');
  await op.fill('#f-last', '020 7946 0099');
  await op.click('button:has-text("Add")');
  await op.getByText('Added 100 numbers.').waitFor();
  await op.goto('/operator/numbers?unassigned=1');
  const firstRow = op.locator('tbody tr').first();
  const assigned = (await firstRow.locator('td').nth(1).textContent()).trim();
  // Picked, not typed: tick the number, choose the business by name (its SIP domain beside it).
  await firstRow.locator('input[name=number]').check();
  await op.selectOption('#assign-tenant', { label: 'Acme Plumbing · acme.pbx.test' });
  await op.click('button:has-text("Assign")');
  await op.getByRole('status').filter({ hasText: `${assigned} belongs to Acme Plumbing.` }).waitFor();
  await op.goto(`/operator/numbers?find=${encodeURIComponent(assigned)}`);
  assert.ok((await op.textContent('tbody')).includes('Acme Plumbing'));
  await snap(op, 'numbers-assigned');

  await op.goto('/operator/active-calls');
  await op.getByText('No calls in progress.').waitFor();
  await polls(op, '/operator/active-calls');
  await snap(op, 'operator-active-calls');
  await op.click('button:has-text("Sign out")');
  await op.waitForURL('**/login');

  // ---------------------------------------------------------------- business admin
  const adm = await newPage();
  await signIn(adm, 'ann@acme.test', adminPassword, `**/t/${tenantId}`);
  await adm.getByRole('heading', { name: 'Dashboard' }).waitFor();
  await snap(adm, 'dashboard-empty');
  await adm.click('nav >> text=Extensions');
  await adm.waitForURL(`**/t/${tenantId}/extensions`);
  await snap(adm, 'extensions-empty');

  await adm.click('text=Create an extension');
  await adm.fill('#f-number', '201');
  await adm.fill('#f-display_name', 'Reception');
  await adm.click('button:has-text("Create extension")');
  const sipPassword = (await adm.textContent('#sip-password')).trim();
  assert.equal(sipPassword.length, 20);
  const copy = adm.locator('button[data-copy="sip-password"]');
  assert.equal(await copy.isVisible(), true, 'copy button shown when the clipboard is available');
  await copy.click();
  await adm.getByText('Copied').waitFor();
  assert.equal(await adm.evaluate(() => navigator.clipboard.readText()), sipPassword);
  assert.ok((await adm.textContent('#sip-config')).includes('sip:201@acme.pbx.test'));
  await snap(adm, 'credentials-once');

  // A second extension, then the htmx search narrows the list without a page load.
  await adm.goto(`/t/${tenantId}/extensions/new`);
  await adm.fill('#f-number', '202');
  await adm.fill('#f-display_name', 'Workshop');
  await adm.click('button:has-text("Create extension")');
  const workshopPassword = (await adm.textContent('#sip-password')).trim();
  await adm.goto(`/t/${tenantId}/extensions`);
  await adm.fill('#q', 'recep');
  await adm.waitForFunction(() => !document.querySelector('#ext-list').textContent.includes('Workshop'));
  assert.ok((await adm.textContent('#ext-list')).includes('Reception'));
  assert.ok(adm.url().includes('q=recep'), 'the search is in the address bar');
  await snap(adm, 'extensions-search');
  // The inline DND switch swaps its row in place.
  await adm.click('#ext-list tbody tr button[aria-label^="Do not disturb for 201"]');
  await adm.locator('#ext-list tbody tr .badge.bad').waitFor();
  assert.ok(adm.url().includes('q=recep'), 'no page load for the DND switch');
  // And off again: 201 takes the calls below.
  await adm.click('#ext-list tbody tr button[aria-label="Do not disturb for 201: on, turn off"]');
  await adm.locator('#ext-list tbody tr .badge.bad').waitFor({ state: 'detached' });

  await adm.goto(`/t/${tenantId}/numbers`);
  assert.equal(await adm.locator('tbody tr').count(), 11, 'the business sees its eleven numbers');
  assert.ok((await adm.textContent('tbody')).includes(assigned), 'the number assigned from its row');
  // The first number (national form, "0113 496 0000") rings Reception.
  const routed = (await adm.locator('tbody tr').first().locator('td').first().textContent()).trim();
  assert.match(routed, /^0113 496 00\d\d$/);
  await adm.locator('tbody tr').first().locator('input[name=extension]').fill('201');
  await adm.locator('tbody tr').first().locator('button:has-text("Route")').click();
  await adm.getByRole('status').filter({ hasText: `Calls to ${routed} now go to extension 201 (Reception).` }).waitFor();
  assert.equal((await adm.locator('tbody tr', { hasText: 'extension 201' }).locator('td').first().textContent()).trim(), routed);
  // The route box shows where the number goes; emptying it asks first, and Cancel keeps it.
  const routeBox = adm.locator('tbody tr').first().locator('input[name=extension]');
  assert.equal(await routeBox.inputValue(), '201');
  await snap(adm, 'number-routed');
  await routeBox.fill('');
  await adm.locator('tbody tr').first().locator('button:has-text("Route")').click();
  await adm.getByText(`Stop routing ${routed}?`).waitFor();
  await snap(adm, 'number-unroute-confirm');
  await adm.click('a:has-text("Cancel")');
  await adm.locator('tbody td', { hasText: 'extension 201 (Reception)' }).waitFor();

  // A phone registers with the credentials shown; the open page lists it by itself.
  await adm.goto(`/t/${tenantId}/registrations`);
  await adm.getByText('Nothing is registered.').waitFor();
  await adm.evaluate(() => { window.sbNoReload = true; });
  const code = await register({
    server: sip, user: '201', domain: 'acme.pbx.test', password: sipPassword, userAgent: 'BrowserWalkPhone/1.0',
  });
  assert.equal(code, 200, 'REGISTER accepted');
  await adm.locator('#regs', { hasText: 'BrowserWalkPhone/1.0' }).waitFor({ timeout: 8000 });
  assert.equal(await adm.evaluate(() => window.sbNoReload), true, 'updated without a page load');
  await snap(adm, 'registrations-live');

  await adm.click('nav a:has-text("Active calls")');
  await adm.waitForURL(`**/t/${tenantId}/active-calls`);
  await adm.getByText('No calls in progress.').waitFor();
  await polls(adm, `/t/${tenantId}/active-calls`);
  await snap(adm, 'active-calls');

  // ---------------------------------------------------------------- a call between two phones
  // Two baresip softphones with the credentials the UI showed, each from a loopback address of
  // its own: Reception (201) answers by itself; Workshop (202) dials 201 and hangs up when its
  // -t runs out, 9 s after it started. Both open active-calls pages (the business's, and an
  // operator's across the platform) must list the call by themselves while it is up.
  const phone = (name, ip, user, password, opts) =>
    startPhone({ name, ip, user, password, domain: 'acme.pbx.test', registrar: sip, ...opts });
  const reception = phone('reception', '127.0.0.2', '201', sipPassword, { tone: 880, autoAnswer: true, quitAfter: 45 });
  const opLive = await newPage();
  await signIn(opLive, 'olga@example.test', 'a strong passphrase', '**/operator');
  await opLive.goto('/operator/active-calls');
  await opLive.getByText('No calls in progress.').waitFor();
  await reception.waitFor(REGISTERED, 10000, 'registration');
  for (const page of [adm, opLive]) await page.evaluate(() => { window.sbNoReload = true; });

  const callStart = Date.now();
  const workshop = phone('workshop', '127.0.0.3', '202', workshopPassword, { tone: 440, dial: '201', quitAfter: 9 });
  const connected = (page) => page.locator('#live-calls tbody tr', { hasText: 'Connected' });
  const cells = async (row) => (await row.locator('td').allTextContents()).map((t) => t.trim());
  await Promise.all([
    connected(adm).waitFor({ timeout: 10000 }),
    connected(opLive).waitFor({ timeout: 10000 }),
  ]);
  // Started, From, Dialled, To, State, Duration (the operator's list adds the business first).
  const live = await cells(connected(adm));
  assert.deepEqual(live.slice(1, 5), ['202', '201', '201', 'Connected'], `business list: ${live}`);
  assert.match(live[5], /^\d+:\d\d$/, 'talk time');
  assert.equal((await adm.textContent('#live-calls caption')).trim(), '1 call in progress, 1 connected');
  const opRow = await cells(connected(opLive));
  assert.deepEqual(
    [opRow[0], ...opRow.slice(2, 6)], ['Acme Plumbing', '202', '201', '201', 'Connected'], `operator list: ${opRow}`,
  );
  for (const page of [adm, opLive]) {
    assert.equal(await page.evaluate(() => window.sbNoReload), true, 'the call appeared without a page load');
  }
  // The list keeps refreshing while the call is up: the talk time moves on.
  await adm.waitForFunction((before) => {
    const td = document.querySelector('#live-calls tbody tr td:last-child');
    return td && /^\d+:\d\d$/.test(td.textContent.trim()) && td.textContent.trim() !== before;
  }, live[5], { timeout: 5000 });
  await snap(adm, 'active-call');
  await snap(opLive, 'operator-active-call');
  await opLive.context().close();

  // The caller hangs up; the list empties by itself.
  await workshop.waitExit(15000);
  assert.match(workshop.log(), /Call established/, 'the caller saw the answer');
  await adm.getByText('No calls in progress.').waitFor({ timeout: 5000 });
  assert.equal(await adm.evaluate(() => window.sbNoReload), true);
  const talked = (Date.now() - callStart) / 1000;

  // Call history: the record is written at the hang-up, so reload (bounded) until it shows.
  await adm.click('main a:has-text("Call history")');
  await adm.waitForURL(`**/t/${tenantId}/calls`);
  const historyRows = async (n) => {
    const deadline = Date.now() + 5000;
    for (;;) {
      const rows = adm.locator('tbody tr', { hasNotText: 'No calls.' });
      if ((await rows.count()) >= n || Date.now() > deadline) {
        assert.equal(await rows.count(), n, `history rows: ${await adm.textContent('tbody')}`);
        return Promise.all(Array.from({ length: n }, (_, i) => cells(rows.nth(i))));
      }
      await adm.waitForTimeout(250);
      await adm.reload();
    }
  };
  const [call] = await historyRows(1);
  // Started, Direction (its icon, then its word), From, To (extensions named), Result, Duration.
  assert.deepEqual(call.slice(1, 5), ['↔ internal', 'Workshop 202', 'Reception 201', 'answered'], `history row: ${call}`);
  const secs = (d) => { const [m, s] = d.split(':').map(Number); return m * 60 + s; };
  assert.ok(secs(call[5]) >= 4 && secs(call[5]) <= Math.ceil(talked), `talk time ${call[5]} (the call lasted ${talked} s at most)`);

  // The same record in the CSV export the page links to.
  const csvRows = async () => {
    const [download] = await Promise.all([adm.waitForEvent('download'), adm.click('text=Download as CSV')]);
    assert.match(download.suggestedFilename(), /^calls-acme\.csv$/);
    const [head, ...lines] = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
    const keys = head.split(',');
    return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i], v])));
  };
  let csv = await csvRows();
  assert.equal(csv.length, 1, `CSV: ${JSON.stringify(csv)}`);
  assert.deepEqual(
    [csv[0].direction, csv[0].caller, csv[0].callee, csv[0].dialled, csv[0].disposition, csv[0].hangup_by],
    ['internal', '202', '201', '201', 'answered', 'caller'],
  );
  assert.equal(Number(csv[0].duration_secs), secs(call[5]));
  assert.ok(csv[0].answered_at && csv[0].call_id, 'answered_at and call_id filled in');

  // The business's own +44 number dialled in national form rings its route target directly.
  const national = routed.replace(/\s/g, '');
  const again = phone('workshop-national', '127.0.0.3', '202', workshopPassword, { dial: national, quitAfter: 4 });
  await again.waitFor(/Call established/, 8000, 'answer to the national dial');
  await again.waitExit(10000);
  await adm.reload();
  const [latest, first] = await historyRows(2);
  assert.deepEqual(first, call, 'the first call is unchanged');
  assert.deepEqual(latest.slice(1, 5), ['↔ internal', 'Workshop 202', 'Reception 201', 'answered'], `history row: ${latest}`);
  assert.ok(secs(latest[5]) >= 2, `talk time ${latest[5]}`);
  await snap(adm, 'call-history');
  csv = await csvRows();
  assert.equal(csv.length, 2);
  assert.deepEqual(
    [csv[0].caller, csv[0].callee, csv[0].dialled, csv[0].disposition],
    ['202', '201', national, 'answered'],
  );
  assert.equal((reception.log().match(/Call established/g) ?? []).length, 2, 'Reception answered twice');

  // Every other page renders without console errors.
  for (const [path, name] of [
    [`/t/${tenantId}/users`, 'users'],
    [`/t/${tenantId}/settings`, 'settings'],
    [`/t/${tenantId}/tokens`, 'tokens'],
    ['/account/password', 'account'],
  ]) {
    await adm.goto(path);
    await snap(adm, name);
  }
  await adm.goto(`/t/${tenantId}/extensions?q=201`);
  await adm.click('#ext-list a:has-text("201")');
  await adm.getByRole('heading', { name: 'SIP credentials' }).waitFor();
  await snap(adm, 'extension');
  await adm.fill('#f-forward_busy', '07400 123456');
  await adm.click('button:has-text("Save")');
  await adm.getByText('Saved.').waitFor();
  await adm.click('text=Delete extension…');
  // A number still rings 201: the page says it cannot be deleted yet and links that number.
  await adm.getByText('Extension 201 (Reception) cannot be deleted yet').waitFor();
  await adm.locator('section.confirm a', { hasText: routed }).waitFor();
  await snap(adm, 'confirm-delete');
  await adm.click('text=Back to the extension');
  await adm.getByRole('heading', { name: 'SIP credentials' }).waitFor();

  await adm.goto(`/t/${tenantId}/tokens`);
  await adm.fill('#f-name', 'CRM');
  await adm.click('button:has-text("Create token")');
  const apiToken = (await adm.textContent('#api-token')).trim();
  assert.ok(apiToken.startsWith('sbt_'));
  const auth = { headers: { Authorization: `Bearer ${apiToken}` } };
  let res = await adm.request.get(`/api/v1/tenants/${tenantId}/extensions`, auth);
  assert.equal(res.status(), 200);
  assert.equal((await res.json()).total, 2);
  res = await adm.request.get(`/api/v1/tenants/${tenantId}/registrations`, auth);
  assert.equal((await res.json()).items[0].user_agent, 'BrowserWalkPhone/1.0');
  res = await adm.request.get('/api/v1/calls', auth);
  assert.equal(res.status(), 200);
  assert.deepEqual(await res.json(), { items: [] });
  await snap(adm, 'token-created');

  for (const [path, name] of [
    ['/operator/trunks/new', 'trunk-new'],
    ['/operator/registrations', 'all-registrations'],
    ['/operator/users', 'operators'],
    ['/operator/tokens', 'operator-tokens'],
  ]) {
    const page = await newPage();
    await signIn(page, 'olga@example.test', 'a strong passphrase', '**/operator');
    await page.goto(path);
    if (name === 'all-registrations') await page.getByText('BrowserWalkPhone/1.0').waitFor();
    await snap(page, name);
    await page.context().close();
  }
} catch (e) {
  failed = 1;
  console.error(e);
  if (failedRequests.length) console.error(`requests that failed:\n${failedRequests.join('\n')}`);
} finally {
  await stopAll();
  await browser.close();
  server.child.kill('SIGTERM');
  let stopTimer;
  const { code } = await Promise.race([
    server.exited,
    new Promise((resolve) => { stopTimer = setTimeout(() => resolve({ code: 'nothing within 10 s' }), 10000); }),
  ]);
  clearTimeout(stopTimer);
  if (code !== 0) {
    failed = 1;
    console.error(`switchboard exited with ${code} after SIGTERM`);
    server.child.kill('SIGKILL');
  }
  writeFileSync(join(artifacts, 'server.log'), serverLog);
  for (const { name, log } of phoneLogs()) writeFileSync(join(artifacts, `baresip-${name}.log`), log);
  rmSync(dataDir, { recursive: true, force: true });
}
if (problems.length) {
  failed = 1;
  console.error(problems.join('\n'));
}
console.log(`browser walk: ${shot} screenshots, ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`browser: ${1 - failed} passed, ${failed} failed`);
process.exit(failed);
