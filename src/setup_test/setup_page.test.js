'use strict';
// Browser test: the real setup page (view XML + vtpivot_setup*.js/css) in headless Chromium,
// against devtools/fakesplunkd (splunkweb proxy, storage/passwords, conf, the test endpoint)
// and the fake VirusTotal. Never downloads a browser: uses /usr/bin/chromium.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');
const { REPO, startFake } = require('./fake_env');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOT_DIR = path.join(REPO, 'tests', 'out', 'setup');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let fake;
let context;
let userDir;

test.before(async () => {
  fake = await startFake();
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtpivot-chromium-'));
  context = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 1700 },
  });
});

test.after(async () => {
  if (context) await context.close();
  if (fake) await fake.stop();
  if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
});

async function openSetup(page) {
  await page.goto(`${fake.web_url}/account/fake_login?token=admin-token&return_to=${encodeURIComponent('/en-US/app/vtpivot/vtpivot_setup')}`);
  await page.waitForSelector('#vtp-setup[aria-busy="false"]', { timeout: 15000 });
}

function watchResponses(page) {
  const bodies = [];
  page.on('response', async (res) => {
    try { bodies.push({ url: res.url(), text: await res.text() }); } catch (e) { /* redirects */ }
  });
  return bodies;
}

test('save, reload masked, test connection ok, wrong key gives VTP-E010', async () => {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await openSetup(page);
  assert.match(await page.textContent('#vtp-banner'), /not configured/);
  assert.match(await page.textContent('.vtp-terms'), /must not be used in commercial products or services/);

  // Client-side validation: a bad number is refused with a message, nothing is sent.
  await page.fill('#vtp-per_day', 'lots');
  await page.click('#vtp-save');
  assert.match(await page.textContent('#vtp-per_day-error'), /whole number/);

  // Save the key, a proxy, limits (tier preset first, then a premium contract's figures).
  await page.selectOption('#vtp-tier', 'public');
  assert.equal(await page.inputValue('#vtp-per_day'), '500');
  await page.selectOption('#vtp-tier', 'premium');
  await page.fill('#vtp-per_minute', '30');
  await page.fill('#vtp-per_day', '20000');
  await page.fill('#vtp-per_month', '600000');
  await page.fill('#vtp-api_key', fake.good_key);
  await page.fill('#vtp-proxy_url', '');
  await page.fill('#vtp-never_send_domains', 'corp.example, *.internal.example');
  await page.click('#vtp-save');
  await page.waitForSelector('.vtp-message.vtp-success', { timeout: 15000 });
  assert.equal(await page.inputValue('#vtp-api_key'), '');

  // Reload: the key is shown as stored, and appears nowhere in the DOM, HTML or responses.
  const bodies = watchResponses(page);
  await page.reload();
  await page.waitForSelector('#vtp-setup[aria-busy="false"]');
  await page.waitForFunction(() => document.querySelector('#vtp-api_key').placeholder.indexOf('(stored)') > 0);
  assert.match(await page.getAttribute('#vtp-api_key', 'placeholder'), /\u2022+ \(stored\)/);
  assert.match(await page.textContent('#vtp-banner'), /is configured/);
  assert.equal(await page.inputValue('#vtp-per_minute'), '30');
  assert.equal(await page.inputValue('#vtp-tier'), 'premium');
  const dom = await page.evaluate(() => document.documentElement.outerHTML +
    Array.from(document.querySelectorAll('input,textarea')).map((e) => e.value).join('|'));
  assert.ok(!dom.includes(fake.good_key), 'key in the DOM');
  assert.ok(!dom.includes(fake.good_key.slice(0, 16)), 'part of the key in the DOM');

  // Test connection (the saved settings point at the fake VirusTotal).
  await page.fill('#vtp-user_id', '');
  await page.click('#vtp-test');
  await page.waitForSelector('.vtp-result.vtp-ok, .vtp-result.vtp-fail', { timeout: 20000 });
  const okText = await page.textContent('#vtp-result');
  assert.match(okText, /Connection OK/);
  assert.match(okText, /This minute/);
  fs.mkdirSync(SHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SHOT_DIR, 'setup_page.png'), fullPage: true });
  for (const b of bodies) {
    assert.ok(!b.text.includes(fake.good_key), `key received by the browser from ${b.url}`);
  }

  // A wrong key: saved through the page, then the test shows the code.
  await page.fill('#vtp-api_key', 'f'.repeat(64));
  await page.click('#vtp-save');
  await page.waitForSelector('.vtp-message.vtp-success');
  await page.click('#vtp-test');
  await page.waitForSelector('.vtp-result.vtp-fail', { timeout: 20000 });
  const failText = await page.textContent('#vtp-result');
  assert.match(failText, /VTP-E010/);
  assert.match(failText, /Fix:/);
  await page.screenshot({ path: path.join(SHOT_DIR, 'setup_page_wrong_key.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test('an analyst (no vtpivot_admin) is told the test endpoint is not allowed', async () => {
  const page = await context.newPage();
  await page.goto(`${fake.web_url}/account/fake_login?token=analyst-token&return_to=${encodeURIComponent('/en-US/app/vtpivot/vtpivot_setup')}`);
  await page.waitForSelector('#vtp-setup[aria-busy="false"]', { timeout: 15000 });
  await page.click('#vtp-test');
  await page.waitForSelector('.vtp-result.vtp-fail');
  assert.match(await page.textContent('#vtp-result'), /vtpivot_admin/);
  await page.close();
});
