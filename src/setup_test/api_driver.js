'use strict';
// Runs the setup page's REST module (appserver/static/vtpivot_setup_api.js) from Python
// tests: node api_driver.js <web_url> <token> <steps.json>  -> one JSON line of results.
// steps: [{"op": "saveAll", "values": {...}, "secrets": {...}, "stored": {...}}, {"op": ...}]
const path = require('node:path');
const fs = require('node:fs');
const { webLogin, fetchRequest } = require('./fake_env');
const setupApi = require(path.join(__dirname, '..', '..', 'appserver', 'static', 'vtpivot_setup_api.js'));

async function main() {
  const [webUrl, token, stepsFile] = process.argv.slice(2);
  const info = { web_url: webUrl };
  const session = await webLogin(info, token);
  const log = [];
  const api = setupApi.createApi(fetchRequest(info, session, log));
  const steps = JSON.parse(fs.readFileSync(stepsFile, 'utf8'));
  const results = [];
  for (const step of steps) {
    try {
      let value;
      if (step.op === 'loadSettings') value = await api.loadSettings();
      else if (step.op === 'secretStatus') value = await api.secretStatus();
      else if (step.op === 'appStatus') value = await api.appStatus();
      else if (step.op === 'testConnection') value = await api.testConnection(step.userId || '');
      else if (step.op === 'saveAll') value = await api.saveAll(step.values, step.secrets, step.stored, step.options);
      else throw new Error(`unknown op ${step.op}`);
      results.push({ ok: true, value: value === undefined ? null : value });
    } catch (err) {
      results.push({ ok: false, status: err.status || null, message: setupApi.messageOf(err), errors: err.errors || null });
    }
  }
  // Everything the "browser" received, so tests can check the key never came back.
  process.stdout.write(`${JSON.stringify({ results, received: log.map((l) => l.text), calls: log.map((l) => [l.method, l.path, l.status]) })}\n`);
}

main().catch((err) => { process.stderr.write(`${err.stack}\n`); process.exit(1); });
