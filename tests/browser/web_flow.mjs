// Headless Chromium walks the main admin flows against the real `switchboard serve` binary: a
// fresh SQLite file in a temp directory, HTTP and SIP on ephemeral loopback ports, and the
// first-run setup link from its log. A small SIP phone (sip_register.mjs) registers with the
// credentials the UI showed, so the registrations page must pick it up by itself.
// Screenshots of every page, and the server's log, go to $ARTIFACTS
// (default ../../test-artifacts/browser).
//
//   SWITCHBOARD_BIN=/path/to/switchboard node web_flow.mjs
//
// Fails on any page error or console error (a CSP violation shows up as one).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strict as assert } from 'node:assert';
import { chromium } from 'playwright-core';
import { register } from './sip_register.mjs';

const bin = process.env.SWITCHBOARD_BIN;
if (!bin) throw new Error('set SWITCHBOARD_BIN to the switchboard binary');
const artifacts = process.env.ARTIFACTS ?? new URL('../../test-artifacts/browser/', import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });
const started = Date.now();

const dataDir = mkdtempSync(join(tmpdir(), 'sb-browser-'));
let serverLog = '';

function startServer() {
  const child = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      SWITCHBOARD_DATABASE_URL: `sqlite://${join(dataDir, 'switchboard.db')}`,
      SWITCHBOARD_HTTP_ADDR: '127.0.0.1:0',
      SWITCHBOARD_SIP_ADDR: '127.0.0.1:0',
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
let shot = 0;

async function newPage() {
  const context = await browser.newContext({ baseURL: base });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
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
  await op.selectOption('#f-tenant', { label: 'Acme Plumbing' });
  await op.click('button:has-text("Add")');
  await op.getByText('Added 10 numbers.').waitFor();
  await op.fill('#f-first', '020 7946 0000');
  await op.fill('#f-last', '020 7946 0099');
  await op.click('button:has-text("Add")');
  await op.getByText('Added 100 numbers.').waitFor();
  await op.goto('/operator/numbers?unassigned=1');
  const firstRow = op.locator('tbody tr').first();
  const assigned = (await firstRow.locator('td').first().textContent()).trim();
  await firstRow.locator('input[name=tenant]').fill('acme.pbx.test');
  await firstRow.locator('button:has-text("Assign")').click();
  await op.waitForURL('**/operator/numbers**');
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
  await signIn(adm, 'ann@acme.test', adminPassword, `**/t/${tenantId}/extensions`);
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

  await adm.goto(`/t/${tenantId}/numbers`);
  assert.equal(await adm.locator('tbody tr').count(), 11, 'the business sees its eleven numbers');
  assert.ok((await adm.textContent('tbody')).includes(assigned), 'the number assigned from its row');
  await adm.locator('tbody tr').first().locator('input[name=extension]').fill('201');
  await adm.locator('tbody tr').first().locator('button:has-text("Route")').click();
  await adm.getByText('extension 201 (Reception)').waitFor();
  await snap(adm, 'number-routed');

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
  await adm.goto(`/t/${tenantId}/calls`);
  await snap(adm, 'call-history');

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
  await adm.getByText('Delete extension 201 (Reception)?').waitFor();
  await snap(adm, 'confirm-delete');
  await adm.click('text=Cancel');
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
    await signIn(page, 'olga@example.test', 'a strong passphrase', '**/operator/tenants');
    await page.goto(path);
    if (name === 'all-registrations') await page.getByText('BrowserWalkPhone/1.0').waitFor();
    await snap(page, name);
    await page.context().close();
  }
} catch (e) {
  failed = 1;
  console.error(e);
} finally {
  await browser.close();
  server.child.kill('SIGTERM');
  const { code } = await server.exited;
  if (code !== 0) {
    failed = 1;
    console.error(`switchboard exited with ${code} after SIGTERM`);
  }
  writeFileSync(join(artifacts, 'server.log'), serverLog);
  rmSync(dataDir, { recursive: true, force: true });
}
if (problems.length) {
  failed = 1;
  console.error(problems.join('\n'));
}
console.log(`browser walk: ${shot} screenshots, ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`browser: ${1 - failed} passed, ${failed} failed`);
process.exit(failed);
