'use strict';
// Generates appserver/static/visualizations/vtgraph/preview.png (116x76, the size Splunk's
// visualization picker shows) from the real bundle drawing the phishing scenario.
// Run once after visual changes: `npm run preview` in src/viz; the PNG is committed.
const fs = require('fs');
const path = require('path');
const { openHarness } = require('./browser');
const fx = require('./fixtures');

const OUT = path.resolve(__dirname, '../../../appserver/static/visualizations/vtgraph/preview.png');

(async () => {
  const h = await openHarness({ deviceScaleFactor: 2 });
  try {
    const { page } = h;
    await page.addStyleTag({ content: '.vtgraph-toolbar,.vtgraph-stat,.vtgraph-legend{display:none!important}' });
    await page.evaluate(() => window.harness.resize(232, 152));
    const d = fx.vtpivotScenario();
    await page.evaluate(([f, r]) => window.harness.load(f, r, {
      'display.visualizations.custom.vtpivot.vtgraph.showLegend': 'false',
      'display.visualizations.custom.vtpivot.vtgraph.edgeLabels': 'never',
      'display.visualizations.custom.vtpivot.vtgraph.nodeLabels': 'never',
    }), [d.fields, d.rows]);
    await page.evaluate(() => window.harness.waitSettled(0.005, 20000));
    const dataUrl = await page.evaluate(() => {
      const src = document.querySelector('canvas.vtgraph-canvas');
      const out = document.createElement('canvas');
      out.width = 116; out.height = 76;
      const ctx = out.getContext('2d');
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
      ctx.drawImage(src, 0, 0, src.width, src.height, 0, 0, 116, 76);
      return out.toDataURL('image/png');
    });
    fs.writeFileSync(OUT, Buffer.from(dataUrl.split(',')[1], 'base64'));
    console.log(`wrote ${OUT}`);
  } finally {
    await h.close();
  }
})().catch((err) => { console.error(err); process.exit(1); });
