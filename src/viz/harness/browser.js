'use strict';
// Headless Chromium (Debian's /usr/bin/chromium) through playwright-core, with a fresh
// profile, on the local harness server. Used by the browser tests, the benchmark and the
// preview-image script. Never downloads a browser.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');
const { startServer } = require('./server');

const CHROMIUM = process.env.VTGRAPH_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const BUNDLE = path.resolve(__dirname, '../../../appserver/static/visualizations/vtgraph/visualization.js');

async function openHarness(opts) {
  opts = opts || {};
  if (!fs.existsSync(BUNDLE)) {
    throw new Error(`bundle missing: ${BUNDLE}; build it first with "make viz" (devtools/build_viz.sh)`);
  }
  const server = await startServer();
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtgraph-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: opts.viewport || { width: 1000, height: 700 },
      deviceScaleFactor: opts.deviceScaleFactor || 1,
    });
  } catch (err) {
    await server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
  // Only the local harness may be reached: anything else is refused (and recorded).
  const blocked = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(server.url + '/')) return route.continue();
    blocked.push(url);
    return route.abort();
  });
  const page = context.pages()[0] || await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${server.url}/harness/index.html`);
  await page.waitForFunction(() => window.harnessReady || window.harnessError, null, { timeout: 15000 });
  const loadError = await page.evaluate(() => window.harnessError || null);
  if (loadError) throw new Error(`harness failed to load the bundle: ${loadError}`);
  return {
    page, context, server, errors, blocked,
    async close() {
      await context.close();
      await server.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

module.exports = { openHarness, CHROMIUM, ARGS };
