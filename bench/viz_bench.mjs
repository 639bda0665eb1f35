// vtgraph benchmark: time to a stable layout (alpha below 0.05) and frames per second while
// dragging a node, for 500, 2,000 and 5,000 edges, in headless Chromium (software rendering).
// Needs the built bundle (`make viz`). Usage: node bench/viz_bench.mjs [--json out.json]
import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../src/viz/package.json'));
const { openHarness } = require('./harness/browser.js');
const fx = require('./harness/fixtures.js');

const SIZES = [500, 2000, 5000];
const SETTLE_ALPHA = 0.05;
const DRAG_MS = 3000;

async function benchOne(h, edges) {
  const { page } = h;
  const data = fx.largeGraph(edges, 1000 + edges);
  const t0 = Date.now();
  await page.evaluate(([f, r]) => window.harness.load(f, r, {}), [data.fields, data.rows]);
  const loadMs = Date.now() - t0;
  const settled = await page.evaluate((a) => window.harness.waitSettled(a, 120000), SETTLE_ALPHA);
  let st = await page.evaluate(() => window.harness.state());
  const settleMs = loadMs + settled.ms;
  // Let the layout cool completely, then drag the biggest hub in a circle for DRAG_MS.
  await page.evaluate(() => window.harness.waitSettled(0.002, 60000));
  st = await page.evaluate(() => window.harness.state());
  const hub = st.nodes.reduce((a, b) => (b.degree > a.degree ? b : a));
  const drag = await page.evaluate(([x, y, ms]) => window.harness.dragInPage(x, y, ms), [hub.x, hub.y, DRAG_MS]);
  st = await page.evaluate(() => window.harness.state());
  const fps = (drag.frames * 1000) / drag.ms;
  const drawMs = drag.drawMs;
  return { edges: st.nodes.length ? data.rows.length : 0, nodes: st.nodes.length, settleMs, ticks: settled.ticks,
    dragFps: fps, drawMs, pinned: st.nodes.some((n) => n.pinned) };
}

const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null;
const h = await openHarness({ viewport: { width: 1000, height: 700 } });
const results = [];
try {
  for (const n of SIZES) results.push(await benchOne(h, n));
} finally {
  await h.close();
}
const pad = (s, w) => String(s).padStart(w);
console.log(`vtgraph benchmark (headless Chromium, --disable-gpu, 900x560 panel, ${new Date().toISOString()})`);
console.log(`${pad('edges', 7)} ${pad('nodes', 7)} ${pad('stable layout (ms)', 19)} ${pad('ticks', 6)} ${pad('drag fps', 9)} ${pad('draw (ms)', 10)}`);
for (const r of results) {
  console.log(`${pad(r.edges, 7)} ${pad(r.nodes, 7)} ${pad(Math.round(r.settleMs), 19)} ${pad(r.ticks, 6)} ${pad(r.dragFps.toFixed(1), 9)} ${pad(r.drawMs.toFixed(1), 10)}`);
}
console.log(`stable = simulation alpha < ${SETTLE_ALPHA}; drag fps = frames drawn while the biggest hub is dragged (one pointer move per animation frame) for ${DRAG_MS / 1000} s; draw = last frame's draw time`);
if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(results, null, 2));
