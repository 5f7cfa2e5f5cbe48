// "Sign in with Entra (simulated)" in headless chromium: the demo's fake Entra page
// auto-posts to callverify's External MFA authorization endpoint, callverify's calling page
// appears, # is pressed on the virtual phone, and the form posted back to the redirect URI is
// captured and checked; then the Dutch page, and Cancel. Run by tests/browser/run.sh after
// security-info.test.mjs, which leaves the demo user with a registered phone.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.DEMO_URL ?? 'http://127.0.0.1:8090';
const shots = process.env.SCREENSHOT_DIR;
if (shots) mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const step = (name) => console.log(`browser (Entra): ${name}`);

/** The fields of a captured form post. */
function formFields(request) {
  return Object.fromEntries(new URLSearchParams(request.postData() ?? ''));
}

function claimsOf(idToken) {
  const payload = idToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(Buffer.from(payload, 'base64').toString('utf8'));
}

async function signIn(locale) {
  const context = await browser.newContext({ locale, viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  const phone = await context.newPage();
  for (const p of [page, phone]) {
    p.setDefaultTimeout(15_000);
    p.on('pageerror', (e) => { console.error('page error:', e); process.exitCode = 1; });
  }
  await phone.goto(base + '/entra/phone');
  const postBack = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/entra/federation/externalauthprovider'), { timeout: 60_000 });
  await page.goto(base + '/entra/start');
  return { context, page, phone, postBack };
}

try {
  step('the fake Entra page posts to callverify; the calling page appears');
  const en = await signIn('en-US');
  await en.page.getByRole('heading', { name: 'Verify your sign-in', level: 1 }).waitFor()
    .catch(async (e) => { console.error(en.page.url(), await en.page.locator('body').innerText()); throw e; });
  assert.match(await en.page.locator('#calling').innerText(), /^We're calling \+\d.*Answer and press # to sign in\.$/);
  if (shots) await en.page.screenshot({ path: join(shots, 'entra-1-calling.png') });

  step('# on the virtual phone; the id_token goes to the redirect URI');
  await en.phone.getByText('press the pound key').waitFor({ timeout: 30_000 });
  await en.phone.getByRole('button', { name: '#', exact: true }).click();
  const posted = formFields(await en.postBack);
  assert.equal(posted.state, 'demo-state');
  assert.ok(posted.id_token, `an id_token was posted: ${JSON.stringify(posted)}`);
  const claims = claimsOf(posted.id_token);
  assert.deepEqual(claims.amr, ['tel']);
  assert.equal(claims.aud, 'callverify-demo');
  assert.equal(claims.acr, 'possessionorinherence');
  assert.match(claims.iss, /\/external-mfa\/demo$/);
  assert.equal(claims.exp - claims.iat, 300);
  await en.page.getByRole('heading', { name: 'Signed in' }).waitFor();
  assert.match(await en.page.locator('#claims').innerText(), /"amr"/);
  if (shots) await en.page.screenshot({ path: join(shots, 'entra-2-signed-in.png') });
  await en.context.close();

  step('the Dutch calling page, and Cancel');
  const nl = await signIn('nl-NL');
  await nl.page.getByRole('heading', { name: 'Bevestig uw aanmelding', level: 1 }).waitFor();
  assert.match(await nl.page.locator('#calling').innerText(), /^We bellen \+\d/);
  if (shots) await nl.page.screenshot({ path: join(shots, 'entra-3-dutch.png') });
  await nl.page.getByRole('button', { name: 'Annuleren', exact: true }).click();
  const refused = formFields(await nl.postBack);
  assert.equal(refused.error, 'access_denied');
  assert.equal(refused.state, 'demo-state');
  assert.equal(refused.id_token, undefined);
  await nl.page.getByRole('heading', { name: 'Sign-in refused' }).waitFor();
  // Let the canceled call end (hang up), so the user has no live call left.
  await nl.phone.getByRole('button', { name: 'Hang up', exact: true }).click().catch(() => {});
  await nl.context.close();
  step('passed');
} finally {
  await browser.close();
}
