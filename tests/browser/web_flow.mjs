// Headless Chromium walks the main admin flows against the real web app (the `dev_server`
// example of the web crate: the real router, a fresh SQLite directory, the first-run setup link
// on stdout). Screenshots of every page go to $ARTIFACTS (default ../../test-artifacts/browser).
//
//   DEV_SERVER=/path/to/dev_server node web_flow.mjs
//
// Fails on any page error or console error (a CSP violation shows up as one).

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { strict as assert } from 'node:assert';
import { chromium } from 'playwright-core';

const server = process.env.DEV_SERVER;
if (!server) throw new Error('set DEV_SERVER to the dev_server example binary');
const artifacts = process.env.ARTIFACTS ?? new URL('../../test-artifacts/browser/', import.meta.url).pathname;
mkdirSync(artifacts, { recursive: true });

function startServer() {
  const child = spawn(server, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const base = out.match(/^LISTENING (\S+)$/m);
      const link = out.match(/^SETUP_LINK (\S+)$/m);
      if (base && link) {
        clearTimeout(timer);
        resolve({ child, base: base[1], link: link[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

const { child, base, link } = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
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

  await op.goto('/operator/numbers');
  await op.fill('#f-first', '0113 496 0000');
  await op.fill('#f-last', '0113 496 0099');
  await op.click('button:has-text("Add")');
  await op.getByText('Added 100 numbers.').waitFor();
  const firstRow = op.locator('tbody tr').first();
  await firstRow.locator('input[name=tenant]').fill('acme.pbx.test');
  await firstRow.locator('button:has-text("Assign")').click();
  await op.waitForURL('**/operator/numbers');
  assert.equal((await op.locator('tbody tr').first().textContent()).includes('Acme Plumbing'), true);
  await snap(op, 'numbers-assigned');
  await op.click('button:has-text("Sign out")');
  await op.waitForURL('**/login');

  // ---------------------------------------------------------------- business admin
  const adm = await newPage();
  await adm.goto('/login');
  await adm.fill('#f-email', 'ann@acme.test');
  await adm.fill('#f-password', adminPassword);
  await adm.click('button[type=submit]');
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
  await adm.locator('tbody tr').first().locator('input[name=extension]').fill('201');
  await adm.locator('tbody tr').first().locator('button:has-text("Route")').click();
  await adm.getByText('extension 201 (Reception)').waitFor();
  await snap(adm, 'number-routed');

  await adm.goto(`/t/${tenantId}/registrations`);
  await adm.getByText('Nothing is registered.').waitFor();
  await adm.waitForTimeout(5500); // one htmx refresh
  await snap(adm, 'registrations');
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
  const res = await adm.request.get(`/api/v1/tenants/${tenantId}/extensions`, {
    headers: { Authorization: `Bearer ${apiToken}` },
  });
  assert.equal(res.status(), 200);
  assert.equal((await res.json()).total, 2);
  await snap(adm, 'token-created');

  for (const [path, name] of [
    ['/operator/trunks/new', 'trunk-new'],
    ['/operator/registrations', 'all-registrations'],
    ['/operator/users', 'operators'],
    ['/operator/tokens', 'operator-tokens'],
  ]) {
    const page = await newPage();
    await page.goto('/login');
    await page.fill('#f-email', 'olga@example.test');
    await page.fill('#f-password', 'a strong passphrase');
    await page.click('button[type=submit]');
    await page.waitForURL('**/operator/tenants');
    await page.goto(path);
    await snap(page, name);
    await page.context().close();
  }
} catch (e) {
  failed = 1;
  console.error(e);
} finally {
  await browser.close();
  child.stdin.end();
  child.kill();
}
if (problems.length) {
  failed = 1;
  console.error(problems.join('\n'));
}
console.log(`browser: ${1 - failed} passed, ${failed} failed`);
process.exit(failed);
