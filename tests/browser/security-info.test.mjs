// The demo portal's Security-info page in headless Debian chromium, driven by playwright-core:
// the English accessible names are the contract. Run by tests/browser/run.sh against
// a running `callverify demo --web` (DEMO_URL); screenshots go to SCREENSHOT_DIR.
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
  // playwright-core gives every launch a fresh, empty profile (its own --user-data-dir).
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1120, height: 860 } });
page.setDefaultTimeout(15_000);
page.on('pageerror', (e) => { console.error('page error:', e); process.exitCode = 1; });

const step = (name) => console.log(`browser: ${name}`);
const shot = async (name) => { if (shots) await page.screenshot({ path: join(shots, `${name}.png`) }); };
const button = (name) => page.getByRole('button', { name, exact: true });
const status = page.getByRole('status');
let phone = page.getByRole('complementary', { name: 'Virtual phone' });
let methods = page.getByRole('list', { name: 'Your methods' });

async function startCall(country, number, labels = {}) {
  await button(labels.add ?? 'Add method').click();
  await page.getByLabel(labels.method ?? 'Method', { exact: true }).selectOption('phone');
  await page.getByLabel(labels.country ?? 'Country or region').selectOption(country);
  await page.getByLabel(labels.number ?? 'Phone number').fill(number);
  await button(labels.callMe ?? 'Call me').click();
  await phone.waitFor({ state: 'visible' });
}

/** Waits until the virtual phone shows the spoken text containing `words`. */
async function hears(words) {
  await phone.getByText(words).waitFor();
}

try {
  step('the page and its empty list');
  await page.goto(base + '/');
  await page.getByRole('heading', { name: 'Security info', level: 1 }).waitFor();
  assert.equal(await methods.getByRole('listitem').count(), 0);
  for (const kind of ['Phone', 'Authenticator app', 'Email']) {
    assert.ok(await page.getByLabel('Method', { exact: true }).locator('option', { hasText: kind }).count());
  }

  step('add a phone, "Call me", press # on the virtual phone');
  await button('Add method').click();
  await page.getByLabel('Country or region').selectOption('US');
  await page.getByLabel('Phone number').fill('425 555 1234');
  await shot('1-add-phone');
  await button('Call me').click();
  await phone.waitFor({ state: 'visible' });
  await hears('press the pound key');
  await shot('2-virtual-phone');
  const pressed = Date.now();
  await phone.getByRole('button', { name: '#', exact: true }).click();
  await status.getByText('Phone registered', { exact: true }).waitFor({ timeout: 5_000 });
  const latency = Date.now() - pressed;
  console.log(`browser: "Phone registered" ${latency} ms after the key press`);
  assert.ok(latency < 1_000, `shown ${latency} ms after #: the long-poll should answer at once`);
  const registered = methods.getByRole('listitem').filter({ hasText: 'Phone' });
  await registered.getByText('Default', { exact: true }).waitFor();
  assert.match(await registered.innerText(), /\+1\*{8}34/, 'the number is masked');
  await phone.waitFor({ state: 'hidden' });
  await shot('3-phone-registered');

  step('a refused default change shows the API\'s problem message');
  await button('Add method').click();
  await page.getByLabel('Method', { exact: true }).selectOption('email');
  await page.getByLabel('Email address').fill('adele@contoso.example');
  await button('Add').click();
  await methods.getByRole('listitem').filter({ hasText: 'Email' }).waitFor();
  await page.getByLabel('Default sign-in method').selectOption('email');
  await button('Change').click();
  const refusal = page.getByRole('alert').filter({ hasText: /password reset|two-step|sign-in/i });
  await refusal.waitFor();
  await shot('4-default-refused');
  await page.getByLabel('Default sign-in method').selectOption('sms');
  await button('Change').click();
  await page.getByText('Default sign-in method changed.').waitFor();
  assert.equal(await page.getByLabel('Default sign-in method').inputValue(), 'sms');

  step('delete the phone');
  await registered.getByRole('button', { name: 'Delete', exact: true }).click();
  await registered.waitFor({ state: 'detached' });
  assert.equal(await methods.getByRole('listitem').count(), 1, 'only the e-mail method is left');

  step('0 then # reports fraud and the page shows the block');
  await startCall('US', '425 555 1235');
  await hears('press the pound key');
  await phone.getByRole('button', { name: '0', exact: true }).click();
  await hears('report this call as fraud');
  await phone.getByRole('button', { name: '#', exact: true }).click();
  await status.getByText('You reported this call as fraud', { exact: false }).waitFor();
  await page.getByRole('alert').filter({ hasText: 'Calls to you are blocked' }).waitFor();
  await shot('5-fraud-block');
  await button('Call me').click();
  await status.getByText(/blocked/i).waitFor();
  await button('Lift the block (administrator)').click();
  await page.getByText('The block is lifted.').waitFor();

  step('the Dutch page, and a call in Dutch');
  await page.goto(base + '/?lang=nl');
  await page.getByRole('heading', { name: 'Beveiligingsgegevens', level: 1 }).waitFor();
  phone = page.getByRole('complementary', { name: 'Virtuele telefoon' });
  methods = page.getByRole('list', { name: 'Uw methoden' });
  await startCall('NL', '06 12345678', {
    add: 'Methode toevoegen', method: 'Methode', country: 'Land of regio', number: 'Telefoonnummer',
    callMe: 'Mij bellen',
  });
  await hears('hekje');
  await shot('6-dutch-call');
  await phone.getByRole('button', { name: '#', exact: true }).click();
  await status.getByText('Telefoon geregistreerd', { exact: true }).waitFor();
  await methods.getByRole('listitem').filter({ hasText: 'Telefoon' }).getByText('Standaard').waitFor();
  await phone.waitFor({ state: 'hidden' });
  await shot('7-dutch-registered');
  step('passed');
} catch (e) {
  await shot('failure').catch(() => {});
  throw e;
} finally {
  await browser.close();
}
