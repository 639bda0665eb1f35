'use strict';
// Unit tests of appserver/static/vtpivot_setup_api.js with a recording request().
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const setupApi = require(path.join(__dirname, '..', '..', 'appserver', 'static', 'vtpivot_setup_api.js'));

const GOOD = {
  tier: 'public', api_url: 'https://www.virustotal.com/api/v3', user_id: '', per_minute: '4',
  per_day: '500', per_month: '0', proxy_url: '', proxy_username: '', ca_bundle: '',
  ttl_domain: '86400', ttl_ip: '86400', ttl_file: '604800', ttl_not_found: '3600',
  backend: 'sqlite', redis_url: '', never_send_domains: 'corp.example, *.internal.example',
};
const KEY = 'a'.repeat(64);

function recorder(answers) {
  const calls = [];
  const request = (method, p, params) => {
    calls.push({ method, path: p, params: Object.assign({}, params) });
    const answer = (answers || {})[`${method} ${p}`];
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve({ status: 200, data: answer || {} });
  };
  return { calls, request };
}

test('valid form has no errors', () => {
  assert.deepEqual(setupApi.validate(GOOD, { api_key: KEY }), {});
});

test('numbers, URLs, domains and the key are validated with clear messages', () => {
  const bad = Object.assign({}, GOOD, {
    per_minute: '4.5', per_day: '-1', ttl_ip: 'abc', api_url: 'ftp://x', proxy_url: 'http://u:p@proxy:3128',
    never_send_domains: 'ok.example, bad domain!', backend: 'redis', user_id: 'b'.repeat(64),
  });
  const errors = setupApi.validate(bad, { api_key: 'has space' });
  assert.match(errors.per_minute, /whole number/);
  assert.match(errors.per_day, /whole number/);
  assert.match(errors.ttl_ip, /whole number/);
  assert.match(errors.api_url, /URL/);
  assert.match(errors.proxy_url, /credentials/);
  assert.match(errors.never_send_domains, /Not a domain: domain!/);
  assert.match(errors.redis_url, /required/);
  assert.match(errors.user_id, /API key/);
  assert.match(errors.api_key, /spaces/);
  assert.match(setupApi.validate(Object.assign({}, GOOD, { per_minute: '0' })).per_minute, /between 1/);
  assert.match(setupApi.validate(Object.assign({}, GOOD, { api_url: 'http://vt.example.com/api/v3' })).api_url, /https/);
  assert.equal(setupApi.validate(Object.assign({}, GOOD, { api_url: 'http://127.0.0.1:8080/api/v3' })).api_url, undefined);
  assert.match(setupApi.validate(Object.assign({}, GOOD, { ca_bundle: 'relative.pem' })).ca_bundle, /absolute path/);
  assert.match(setupApi.validate(GOOD, { proxy_password: 'x' }).proxy_password, /proxy URL/);
});

test('form values map to the stanzas and keys of default/vtpivot.conf; PEM goes on one line', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\nAAAA\n-----END CERTIFICATE-----\n';
  const stanzas = setupApi.toStanzas(Object.assign({}, GOOD, { ca_bundle: pem }));
  assert.deepEqual(Object.keys(stanzas).sort(), ['api', 'cache', 'indicators', 'limits', 'proxy', 'tls']);
  assert.equal(stanzas.api.url, GOOD.api_url);
  assert.equal(stanzas.limits.per_day, '500');
  assert.equal(stanzas.indicators.never_send_domains, 'corp.example,*.internal.example');
  assert.equal(stanzas.tls.ca_bundle, '-----BEGIN CERTIFICATE----- MIIB AAAA -----END CERTIFICATE-----');
  const back = setupApi.fromEntries([{ name: 'tls', content: { ca_bundle: stanzas.tls.ca_bundle } }]);
  assert.equal(back.ca_bundle, '-----BEGIN CERTIFICATE-----\nMIIB AAAA\n-----END CERTIFICATE-----');
});

test('saveAll writes settings, creates the key with its ACL, marks the app configured', async () => {
  const { calls, request } = recorder();
  const api = setupApi.createApi(request);
  const result = await api.saveAll(GOOD, { api_key: KEY }, { api_key: false });
  assert.deepEqual(result.secrets, ['api_key']);
  const paths = calls.map((c) => `${c.method} ${c.path}`);
  assert.ok(paths.includes('POST configs/conf-vtpivot/limits'));
  const create = calls.find((c) => c.path === 'storage/passwords');
  assert.deepEqual(create.params, { name: 'api_key', realm: 'vtpivot', password: KEY });
  const acl = calls.find((c) => c.path === 'storage/passwords/vtpivot%3Aapi_key%3A/acl');
  assert.deepEqual(acl.params, { sharing: 'app', owner: 'nobody', 'perms.read': 'admin,sc_admin,vtpivot_user', 'perms.write': 'admin,sc_admin' });
  assert.equal(paths[paths.length - 1], 'POST apps/local/vtpivot');
  assert.deepEqual(calls[calls.length - 1].params, { configured: '1' });
  // The key only travels in the storage/passwords calls.
  calls.filter((c) => !c.path.startsWith('storage/passwords')).forEach((c) => {
    assert.ok(!JSON.stringify(c).includes(KEY), `key leaked into ${c.path}`);
  });
});

test('a blank key keeps the stored one; an existing key is updated, 409 falls back to update', async () => {
  let rec = recorder();
  await setupApi.createApi(rec.request).saveAll(GOOD, { api_key: '' }, { api_key: true });
  assert.ok(!rec.calls.some((c) => c.path.startsWith('storage/passwords')));
  rec = recorder();
  await setupApi.createApi(rec.request).saveAll(GOOD, { api_key: KEY }, { api_key: true });
  assert.ok(rec.calls.some((c) => c.path === 'storage/passwords/vtpivot%3Aapi_key%3A' && c.params.password === KEY));
  const conflict = Object.assign(new Error('HTTP 409'), { status: 409 });
  rec = recorder({ 'POST storage/passwords': conflict });
  await setupApi.createApi(rec.request).saveAll(GOOD, { api_key: KEY }, {});
  assert.ok(rec.calls.some((c) => c.path === 'storage/passwords/vtpivot%3Aapi_key%3A'));
});

test('invalid values are refused before any request', async () => {
  const { calls, request } = recorder();
  await assert.rejects(setupApi.createApi(request).saveAll(Object.assign({}, GOOD, { per_day: 'x' }), {}),
    (err) => err.errors && /whole number/.test(err.errors.per_day));
  assert.equal(calls.length, 0);
});

test('secretStatus and testConnection use the app endpoint, never read storage/passwords', async () => {
  const { calls, request } = recorder({ 'POST vtpivot/test_connection': { ok: true, secrets: { api_key: true } } });
  const api = setupApi.createApi(request);
  assert.deepEqual(await api.secretStatus(), { api_key: true });
  await api.testConnection('alice');
  assert.deepEqual(calls.map((c) => c.params), [{ action: 'status' }, { action: 'test', user_id: 'alice' }]);
  assert.ok(!calls.some((c) => c.method === 'GET' && c.path.startsWith('storage/passwords')));
});
