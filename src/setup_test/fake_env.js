'use strict';
// Starts devtools/fakesplunkd (+ fake VirusTotal) as a child process and logs a token in the
// way a browser is logged in: splunkweb's session cookie and CSRF cookie.
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

const REPO = path.resolve(__dirname, '..', '..');

function python() {
  return process.env.VTPIVOT_PYTHON || path.join(REPO, '.venv', 'py313', 'bin', 'python');
}

function startFake() {
  const js = [
    `require.js=${require.resolve('requirejs/require.js')}`,
    `jquery.js=${require.resolve('jquery/dist/jquery.js')}`,
  ];
  const args = ['-m', 'fakesplunkd'];
  js.forEach((j) => args.push('--js', j));
  const env = Object.assign({}, process.env, {
    PYTHONPATH: ['devtools', 'bin', 'lib'].map((p) => path.join(REPO, p)).join(path.delimiter),
    PYTHONDONTWRITEBYTECODE: '1',
  });
  delete env.VT_API_KEY;
  const child = spawn(python(), args, { cwd: REPO, env, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout });
    rl.once('line', (line) => {
      const info = JSON.parse(line);
      info.stop = () => new Promise((done) => { child.once('exit', done); child.stdin.end(); });
      resolve(info);
    });
    child.once('exit', (code) => reject(new Error(`fakesplunkd exited with ${code}`)));
  });
}

// Log in through the fake splunkweb; returns {cookie header, form key}.
async function webLogin(info, token) {
  const url = `${info.web_url}/account/fake_login?token=${encodeURIComponent(token)}&return_to=/`;
  const res = await fetch(url, { redirect: 'manual' });
  const cookies = res.headers.getSetCookie().map((c) => c.split(';')[0]);
  const formKey = cookies.find((c) => c.startsWith('splunkweb_csrf_token_')).split('=')[1];
  return { cookie: cookies.join('; '), formKey };
}

// The setup page's request() contract over fetch, through splunkweb's proxy, as
// jqueryRequest does in the browser.
function fetchRequest(info, session, log) {
  const base = `${info.web_url}/splunkd/__raw/servicesNS/nobody/vtpivot/`;
  return async (method, p, params) => {
    const body = new URLSearchParams(params || {});
    let url = `${base}${p}?output_mode=json`;
    const init = { method, headers: { Cookie: session.cookie, 'X-Splunk-Form-Key': session.formKey } };
    if (method === 'GET') { if (String(body)) url += `&${body}`; } else {
      init.body = body;
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded; charset=UTF-8';
    }
    const res = await fetch(url, init);
    const text = await res.text();
    if (log) log.push({ method, path: p, status: res.status, text });
    let data = null;
    try { data = JSON.parse(text); } catch (e) { data = null; }
    if (res.status >= 400) {
      const err = new Error(`HTTP ${res.status}`);
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return { status: res.status, data };
  };
}

module.exports = { REPO, startFake, webLogin, fetchRequest };
