// Browser tests of the built bundle in headless Chromium (playwright-core + /usr/bin/chromium),
// loaded through require.js with stand-ins for Splunk's API, served from 127.0.0.1 only.
// Screenshots of every run: <repo>/tests/out/viz/*.png
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { openHarness } = require('../harness/browser.js');
const fx = require('../harness/fixtures.js');

const here = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.resolve(here, '../../../tests/out/viz');
fs.mkdirSync(OUT, { recursive: true });

const EVIL = '<img src=x onerror=alert(1)>';

async function load(page, data, config) {
  return page.evaluate(([f, r, c]) => window.harness.load(f, r, c || {}), [data.fields, data.rows, config || {}]);
}
// Stable layout: alpha below the view's SETTLE_ALPHA (0.05); generous timeout for loaded CI hosts.
async function settle(page, timeoutMs) {
  return page.evaluate((t) => window.harness.waitSettled(0.05, t), timeoutMs || 20000);
}
async function state(page) { return page.evaluate(() => window.harness.state()); }
function node(st, id) {
  const n = st.nodes.find((x) => x.id === id);
  assert.ok(n, `node ${id} is in the view`);
  return n;
}
async function shot(page, name) {
  await page.locator('#panel').screenshot({ path: path.join(OUT, name) });
}
// Put the pointer on a node. On a loaded host the layout may still drift after settle(), so
// read the node's position afresh until the view reports it under the pointer.
async function pointAt(page, id) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const n = node(await state(page), id);
    await page.mouse.move(n.x, n.y);
    if ((await state(page)).hover === id) return n;
    await page.mouse.move(2, 300);
    await page.waitForTimeout(100);
  }
  assert.fail(`the pointer never rested on ${id}`);
}
function close(rgb, expected, tol) {
  return Math.abs(rgb[0] - expected[0]) + Math.abs(rgb[1] - expected[1]) + Math.abs(rgb[2] - expected[2]) <= tol;
}

describe('vtgraph in headless Chromium', () => {
  let h;
  const dialogs = [];
  before(async () => {
    h = await openHarness();
    h.page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  });
  after(async () => {
    if (h) await h.close();
  });

  it('asks Splunk for more than the default 1000 rows', async () => {
    await load(h.page, fx.vtpivotScenario());
    const params = await h.page.evaluate(() => window.__dataParams);
    assert.equal(params.count, 10000);
    assert.equal(params.outputMode, 'json_rows');
  });

  it('draws nodes and edges on the canvas (pixels, not calls)', async () => {
    await load(h.page, fx.vtpivotScenario());
    await settle(h.page);
    const st = await state(h.page);
    assert.equal(st.nodes.length, 24);
    const px = await h.page.evaluate(() => window.harness.canvasPixels());
    assert.deepEqual(px.background, [255, 255, 255]);
    assert.ok(px.nonBackground > 0.01, `canvas has drawing (${px.nonBackground})`);
    // A malicious IP (6 engines) is a red square at its position.
    const ip = node(st, '192.0.2.41');
    const ipPx = await h.page.evaluate(([x, y]) => window.harness.pixelAt(x, y), [ip.x, ip.y]);
    assert.ok(close(ipPx, [220, 78, 65], 40), `malicious node is red, got ${ipPx}`);
    // A clean IP (0 engines) is green.
    const clean = node(st, '203.0.113.77');
    const cleanPx = await h.page.evaluate(([x, y]) => window.harness.pixelAt(x, y), [clean.x, clean.y]);
    assert.ok(close(cleanPx, [83, 160, 81], 40), `clean node is green, got ${cleanPx}`);
    // The edge 203.0.113.77 -> benign-bakery-shop.com is drawn between the two nodes.
    const dst = node(st, 'benign-bakery-shop.com');
    const samples = [];
    for (let t = 0.3; t <= 0.7; t += 0.05) {
      samples.push(await h.page.evaluate(([x, y]) => window.harness.pixelAt(x, y),
        [clean.x + (dst.x - clean.x) * t, clean.y + (dst.y - clean.y) * t]));
    }
    const inked = samples.filter((p) => p[0] + p[1] + p[2] < 255 * 3 - 60).length;
    assert.ok(inked >= 3, `edge pixels found along the segment (${inked}/${samples.length})`);
    assert.ok(st.labelsDrawn >= 8, `labels drawn (${st.labelsDrawn})`);
    const legend = await h.page.locator('.vtgraph-legend').innerText();
    assert.match(legend, /IP address/);
    assert.match(legend, /Malicious/);
    assert.match(legend, /communicating_files/);
    await shot(h.page, '01_vtpivot_scenario_light.png');
  });

  it('hover highlights neighbours and shows a tooltip with the node facts', async () => {
    await pointAt(h.page, '192.0.2.41');
    const st = await state(h.page);
    await h.page.waitForSelector('.vtgraph-tooltip.vtgraph-visible');
    const tip = await h.page.locator('.vtgraph-tooltip').innerText();
    assert.match(tip, /192\.0\.2\.41/);
    assert.match(tip, /AS64501/);
    assert.match(tip, /EXAMPLE-BULLETPROOF-HOSTING/);
    assert.match(tip, /6 \(malicious\)/);
    assert.equal((await state(h.page)).hover, '192.0.2.41');
    // A non-neighbour is dimmed: its pixel is now close to the background.
    const far = node(st, 'benign-bakery-shop.com');
    const farPx = await h.page.evaluate(([x, y]) => window.harness.pixelAt(x, y), [far.x, far.y]);
    assert.ok(farPx[0] + farPx[1] + farPx[2] > 600, `non-neighbour dimmed, got ${farPx}`);
    await shot(h.page, '02_hover_highlight.png');
    await h.page.mouse.move(2, 300);
  });

  it('click drills down with the node value and type', async () => {
    await h.page.evaluate(() => { window.__drilldowns.length = 0; });
    const d = await pointAt(h.page, 'micros0ft-auth.co');
    await h.page.mouse.click(d.x, d.y);
    const calls = await h.page.evaluate(() => window.__drilldowns);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].action, 'fieldvalue');
    assert.deepEqual(calls[0].data, { node: 'micros0ft-auth.co', node_type: 'domain', domain: 'micros0ft-auth.co' });
    assert.equal(calls[0].hasEvent, true);
    // An IP node hands its type too.
    const ip = await pointAt(h.page, '198.51.100.23');
    await h.page.mouse.click(ip.x, ip.y);
    const last = (await h.page.evaluate(() => window.__drilldowns)).at(-1);
    assert.deepEqual(last.data, { node: '198.51.100.23', node_type: 'ip', ip: '198.51.100.23' });
    // Clicking empty space does not drill down.
    await h.page.mouse.click(880, 60);
    assert.equal((await h.page.evaluate(() => window.__drilldowns)).length, 2);
  });

  it('drag pins a node; wheel zooms; search finds a node', async () => {
    const n = await pointAt(h.page, 'cdn-assets-static.net');
    await h.page.mouse.down();
    await h.page.mouse.move(n.x + 40, n.y + 30, { steps: 5 });
    await h.page.mouse.up();
    let st = await state(h.page);
    const moved = node(st, 'cdn-assets-static.net');
    assert.equal(moved.pinned, true);
    assert.ok(Math.abs(moved.x - (n.x + 40)) < 3 && Math.abs(moved.y - (n.y + 30)) < 3, 'node follows the pointer');
    const k0 = st.transform.k;
    await h.page.mouse.move(450, 300);
    await h.page.mouse.wheel(0, -400);
    await h.page.waitForFunction((k) => window.harness.state().transform.k > k * 1.2, k0);
    await h.page.fill('.vtgraph-search', 'c2-beacon');
    st = await state(h.page);
    assert.equal(st.selected, 'c2-beacon-update.xyz');
    assert.equal(st.matchInfo, '1 of 1');
    const c2 = node(st, 'c2-beacon-update.xyz');
    assert.ok(Math.abs(c2.x - 450) < 2 && Math.abs(c2.y - 280) < 2, 'view centred on the match');
    await h.page.fill('.vtgraph-search', 'no-such-node');
    assert.equal((await state(h.page)).matchInfo, 'no match');
    await shot(h.page, '03_zoom_search.png');
    await h.page.fill('.vtgraph-search', '');
    await h.page.click('.vtgraph-button:text("Unpin all")');
    assert.equal(node(await state(h.page), 'cdn-assets-static.net').pinned, false);
  });

  it('reflow after a resize changes the canvas size and redraws', async () => {
    await load(h.page, fx.vtpivotScenario());
    await settle(h.page);
    const before = await state(h.page);
    assert.equal(before.canvasWidth, 900);
    await h.page.evaluate(() => window.harness.resize(520, 340));
    const after = await state(h.page);
    assert.equal(after.canvasWidth, 520);
    assert.equal(after.canvasHeight, 340);
    assert.ok(after.frames > before.frames, 'a frame was drawn on reflow');
    const px = await h.page.evaluate(() => window.harness.canvasPixels());
    assert.equal(px.width, 520);
    assert.ok(px.nonBackground > 0.01, 'resized canvas holds the graph');
    // Still fitted: every node centre is inside the smaller panel.
    for (const n of after.nodes) {
      assert.ok(n.x > 0 && n.x < 520 && n.y > 0 && n.y < 340, `${n.id} inside after reflow`);
    }
    await shot(h.page, '04_after_reflow_520x340.png');
    await h.page.evaluate(() => window.harness.resize(900, 560));
  });

  it('a domain named <img onerror> is text in the tooltip and the search, never markup', async () => {
    const data = fx.vtpivotScenario({ extraRows: [
      fx.edgeRow('192.0.2.41', 'ip', 'resolutions', EVIL, 'domain', 2, { malicious: 9, asOwner: '<b>owner</b>' }),
    ] });
    await load(h.page, data);
    await settle(h.page);
    const st = await state(h.page);
    const n = node(st, EVIL);
    await h.page.mouse.move(n.x, n.y);
    await h.page.waitForSelector('.vtgraph-tooltip.vtgraph-visible');
    const title = await h.page.locator('.vtgraph-tooltip-title').textContent();
    assert.equal(title, EVIL);
    const tipHtml = await h.page.locator('.vtgraph-tooltip').innerHTML();
    assert.ok(tipHtml.includes('&lt;img src=x onerror=alert(1)&gt;'), 'escaped in the DOM');
    await h.page.fill('.vtgraph-search', '<img');
    assert.equal((await state(h.page)).matchInfo, '1 of 1');
    assert.equal(await h.page.evaluate(() => document.querySelectorAll('img, b').length), 0);
    assert.deepEqual(dialogs, []);
    await shot(h.page, '05_escaping_tooltip.png');
    await h.page.fill('.vtgraph-search', '');
    await h.page.mouse.move(2, 300);
  });

  it('says in the panel when Splunk cut the results at the row cap', async () => {
    const big = fx.largeGraph(12000, 3);
    const delivered = await load(h.page, big);
    assert.equal(delivered, 10000);
    await h.page.waitForSelector('.vtgraph-notice.vtgraph-visible');
    const text = await h.page.locator('.vtgraph-notice').innerText();
    assert.match(text, /first 10,000 rows/);
    assert.match(text, /incomplete/);
    await settle(h.page, 30000);
    await shot(h.page, '06_truncated_10000_rows.png');
    // Below the cap: no notice.
    await load(h.page, fx.vtpivotScenario());
    assert.equal(await h.page.locator('.vtgraph-notice.vtgraph-visible').count(), 0);
  });

  it('empty and malformed results give a message inside the panel', async () => {
    await load(h.page, { fields: ['src', 'dst'], rows: [] });
    await h.page.waitForSelector('.vtgraph-message', { state: 'visible' });
    assert.equal(await h.page.locator('.vtgraph-message-title').innerText(), 'Nothing to draw');
    assert.match(await h.page.locator('.vtgraph-message-text').innerText(), /No results/);
    assert.equal(await h.page.locator('.vtgraph-toolbar').isVisible(), false);
    await shot(h.page, '07_empty_message.png');
    await load(h.page, { fields: ['domain', 'count'], rows: [['a.example.com', '4']] });
    assert.equal(await h.page.locator('.vtgraph-message-title').innerText(), 'Cannot draw these results');
    assert.match(await h.page.locator('.vtgraph-message-text').innerText(), /two columns/);
    await shot(h.page, '08_malformed_message.png');
    await h.page.evaluate(() => window.harness.loadRaw({ fields: [{ name: 'a' }, { name: 'b' }], rows: 'oops' }));
    assert.equal(await h.page.locator('.vtgraph-message-title').innerText(), 'Cannot draw these results');
    // Data again: the message goes away.
    await load(h.page, fx.statsCountTable());
    assert.equal(await h.page.locator('.vtgraph-message').isVisible(), false);
    await settle(h.page);
    await shot(h.page, '09_stats_count_by_domain_ip.png');
    const st = await state(h.page);
    assert.equal(node(st, 'evil-login.com').type, 'domain');
    assert.equal(node(st, '192.0.2.10').type, 'ip');
  });

  it('follows the dark theme', async () => {
    await load(h.page, fx.vtpivotScenario());
    await h.page.evaluate(() => window.harness.setTheme('dark'));
    await settle(h.page);
    const px = await h.page.evaluate(() => window.harness.canvasPixels());
    assert.ok(px.background[0] + px.background[1] + px.background[2] < 120, `dark background ${px.background}`);
    assert.ok(px.nonBackground > 0.01);
    await shot(h.page, '10_vtpivot_scenario_dark.png');
    await h.page.evaluate(() => window.harness.setTheme('light'));
  });

  it('stays interactive with 5,000 edges (canvas, no page errors, no outside requests)', async () => {
    await load(h.page, fx.largeGraph(5000, 11));
    const s = await settle(h.page, 45000);
    const st = await state(h.page);
    assert.ok(st.nodes.length > 2000, `${st.nodes.length} nodes`);
    assert.ok(s.alpha < 0.05, `layout settled (alpha ${s.alpha} after ${Math.round(s.ms)} ms)`);
    assert.ok(st.drawMs < 100, `one frame draws in ${st.drawMs.toFixed(1)} ms`);
    // Hit-testing stays exact at this size: hovering the biggest hub names it.
    const hub = st.nodes.reduce((a, b) => (b.degree > a.degree ? b : a));
    await h.page.mouse.move(hub.x, hub.y);
    await h.page.waitForFunction((id) => window.harness.state().hover === id, hub.id);
    await shot(h.page, '11_5000_edges.png');
    assert.deepEqual(h.errors, []);
    assert.deepEqual(h.blocked, []);
  });
});
