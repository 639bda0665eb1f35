'use strict';
// Unit tests of the data shaping (src/model.js): `node --test test/model.test.js`.
const test = require('node:test');
const assert = require('node:assert/strict');
const model = require('../src/model');
const fx = require('../harness/fixtures');

function byId(graph, id) {
  const n = graph.nodes.find((x) => x.id === id);
  assert.ok(n, `node ${id} exists`);
  return n;
}

test('named columns: vtpivot output gives typed nodes, relationships and facts', () => {
  const data = fx.vtpivotScenario();
  const g = model.buildGraph(data);
  assert.equal(g.ok, true);
  assert.equal(g.mode, 'named');
  assert.deepEqual(g.columns, { src: 'src', dst: 'dst' });
  const start = byId(g, 'login-micros0ft-support.com');
  assert.equal(start.type, 'domain');
  assert.equal(start.origin, true);
  assert.equal(start.hop, 0);
  const ip = byId(g, '192.0.2.41');
  assert.equal(ip.type, 'ip');
  assert.equal(ip.malicious, 6);
  assert.equal(ip.asn, '64501');
  assert.equal(ip.asOwner, 'EXAMPLE-BULLETPROOF-HOSTING');
  assert.equal(ip.origin, false);
  const sibling = byId(g, 'office-verify-account.net');
  assert.equal(sibling.creationDate, '2023-11-14');
  assert.deepEqual(g.types, ['domain', 'ip', 'file']);
  assert.ok(g.relationships.includes('communicating_files'));
  assert.ok(g.relationships.includes('resolutions'));
  // office-verify-account.net is reached from two IPs: two edges, degree 2.
  assert.equal(sibling.degree, 2);
  assert.equal(g.edges.length, data.rows.length);
  assert.equal(g.truncated, false);
});

test('source/target column names are recognised', () => {
  const g = model.buildGraph({ fields: [{ name: 'target' }, { name: 'source' }, { name: 'weight' }],
    rows: [['b.example.com', 'a.example.com', '5']] });
  assert.equal(g.ok, true);
  assert.equal(g.mode, 'named');
  assert.equal(g.edges.length, 1);
  assert.equal(g.nodes[g.edges[0].source].id, 'a.example.com');
  assert.equal(g.edges[0].count, 5);
});

test('stats count BY domain, ip: positional columns, types from column names, count as weight', () => {
  const g = model.buildGraph(fx.statsCountTable());
  assert.equal(g.ok, true);
  assert.equal(g.mode, 'positional');
  assert.deepEqual(g.columns, { src: 'domain', dst: 'ip' });
  assert.equal(byId(g, 'evil-login.com').type, 'domain');
  assert.equal(byId(g, 'evil-login.com').typeSource, 'column name');
  assert.equal(byId(g, '192.0.2.10').type, 'ip');
  const e = g.edges.find((x) => g.nodes[x.source].id === 'example-shop.org');
  assert.equal(e.count, 120);
  assert.equal(byId(g, '192.0.2.10').count, 59); // 42 + 17
  assert.equal(g.maxCount, 120);
});

test('count column may come first; internal columns are skipped', () => {
  const g = model.buildGraph({ fields: ['count', '_time', 'sha256', 'dest_domain'],
    rows: [['3', '1700000000', 'a'.repeat(64), 'x.example.org']] });
  assert.equal(g.ok, true);
  assert.deepEqual(g.columns, { src: 'sha256', dst: 'dest_domain' });
  assert.equal(g.nodes[0].type, 'file');
  assert.equal(g.nodes[1].type, 'domain');
  assert.equal(g.edges[0].count, 3);
});

test('types inferred from values when column names say nothing', () => {
  const g = model.buildGraph({ fields: ['a', 'b'], rows: [
    ['203.0.113.5', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['2001:db8::1', 'www.example.com'],
    ['hxxp thing', 'https://example.com/x'],
  ] });
  assert.equal(g.ok, true);
  assert.equal(byId(g, '203.0.113.5').type, 'ip');
  assert.equal(byId(g, 'd41d8cd98f00b204e9800998ecf8427e').type, 'file');
  assert.equal(byId(g, '2001:db8::1').type, 'ip');
  assert.equal(byId(g, 'www.example.com').type, 'domain');
  assert.equal(byId(g, 'hxxp thing').type, 'other');
  assert.equal(byId(g, 'https://example.com/x').type, 'url');
  assert.equal(byId(g, 'www.example.com').typeSource, 'value');
});

test('normalizeType and inferTypeFromValue', () => {
  assert.equal(model.normalizeType('sha256'), 'file');
  assert.equal(model.normalizeType('MD5'), 'file');
  assert.equal(model.normalizeType('hash'), 'file');
  assert.equal(model.normalizeType('dest_ip_address'), 'ip');
  assert.equal(model.normalizeType('sender_domain'), 'domain');
  assert.equal(model.normalizeType('user'), '');
  assert.equal(model.inferTypeFromValue('256.1.1.1'), 'other');
  assert.equal(model.inferTypeFromValue('10.0.0.1'), 'ip');
});

test('src_type/dst_type columns win over value inference; "hash" type maps to file', () => {
  const g = model.buildGraph({ fields: ['src', 'src_type', 'dst', 'dst_type'],
    rows: [['1.2.3.4', 'domain', 'abc', 'hash']] });
  assert.equal(byId(g, '1.2.3.4').type, 'domain');
  assert.equal(byId(g, 'abc').type, 'file');
});

test('duplicate edges merge and sum their counts; self loops are not edges', () => {
  const g = model.buildGraph({ fields: ['src', 'dst', 'count'], rows: [
    ['a.com', 'b.com', '2'], ['a.com', 'b.com', '3'], ['a.com', 'a.com', '1'],
  ] });
  assert.equal(g.edges.length, 1);
  assert.equal(g.edges[0].count, 5);
  assert.equal(g.selfLoops, 1);
  assert.equal(byId(g, 'a.com').degree, 1);
});

test('multivalue cells expand into several edges', () => {
  const g = model.buildGraph({ fields: ['domain', 'ip'], rows: [['a.com', ['192.0.2.1', '192.0.2.2']]] });
  assert.equal(g.edges.length, 2);
  assert.equal(g.nodes.length, 3);
});

test('malicious column: generic "malicious" applies to the destination; max wins', () => {
  const g = model.buildGraph({ fields: ['src', 'dst', 'malicious'], rows: [
    ['a.com', '192.0.2.1', '0'], ['b.com', '192.0.2.1', '4'], ['c.com', '192.0.2.2', 'n/a'],
  ] });
  assert.equal(byId(g, '192.0.2.1').malicious, 4);
  assert.equal(byId(g, '192.0.2.2').malicious, null);
  assert.equal(byId(g, 'a.com').malicious, null);
  assert.equal(model.riskBand(null), 'unknown');
  assert.equal(model.riskBand(0), 'clean');
  assert.equal(model.riskBand(3), 'suspicious');
  assert.equal(model.riskBand(5), 'malicious');
});

test('empty results give a clear "empty" message', () => {
  const g = model.buildGraph({ fields: [{ name: 'src' }, { name: 'dst' }], rows: [] });
  assert.equal(g.ok, false);
  assert.equal(g.kind, 'empty');
  assert.match(g.message, /No results/);
  assert.equal(model.buildGraph({}).kind, 'empty');
});

test('rows with empty ends are skipped and counted; all-empty is a message', () => {
  const g = model.buildGraph({ fields: ['src', 'dst'], rows: [['a.com', ''], ['a.com', 'b.com'], [null, 'x']] });
  assert.equal(g.ok, true);
  assert.equal(g.skippedRows, 2);
  const none = model.buildGraph({ fields: ['src', 'dst'], rows: [['', ''], [null, null]] });
  assert.equal(none.ok, false);
  assert.equal(none.kind, 'empty');
  assert.match(none.message, /empty "src" or "dst"/);
});

test('malformed data: one column, non-list rows, no data at all', () => {
  const one = model.buildGraph({ fields: ['domain', 'count'], rows: [['a.com', '3']] });
  assert.equal(one.ok, false);
  assert.equal(one.kind, 'malformed');
  assert.match(one.message, /two columns/);
  assert.match(one.message, /domain, count/);
  const notRows = model.buildGraph({ fields: ['a', 'b'], rows: 'nope' });
  assert.equal(notRows.kind, 'malformed');
  const badRows = model.buildGraph({ fields: ['a', 'b'], rows: [{ a: 1 }, 5] });
  assert.equal(badRows.kind, 'malformed');
  assert.equal(model.buildGraph(null).kind, 'malformed');
});

test('truncation: flagged when the row count reaches the cap, with a notice naming the cap', () => {
  const rows = [];
  for (let i = 0; i < model.ROW_CAP; i++) rows.push([`d${i}.example.com`, `192.0.2.${i % 250}`]);
  const g = model.buildGraph({ fields: ['domain', 'ip'], rows });
  assert.equal(model.ROW_CAP, 10000);
  assert.equal(g.truncated, true);
  assert.match(model.truncationNotice(g), /first 10,000 rows/);
  const small = model.buildGraph({ fields: ['domain', 'ip'], rows: rows.slice(0, 9999) });
  assert.equal(small.truncated, false);
  assert.equal(model.truncationNotice(small), '');
  const custom = model.buildGraph({ fields: ['domain', 'ip'], rows: rows.slice(0, 50) }, { cap: 50 });
  assert.equal(custom.truncated, true);
});

test('escaping helpers: markup stays text, control and bidi characters are made visible', () => {
  const evil = '<img src=x onerror=alert(1)>';
  assert.equal(model.escapeHtml(evil), '&lt;img src=x onerror=alert(1)&gt;');
  assert.equal(model.escapeHtml('"a" & \'b\''), '&quot;a&quot; &amp; &#39;b&#39;');
  assert.equal(model.toDisplayText(evil), evil); // plain text, for textContent
  assert.equal(model.toDisplayText('evil\u202Emoc.com'), 'evil\\u202emoc.com');
  assert.equal(model.toDisplayText('a\nb\u0000'), 'a\\u000ab\\u0000');
  assert.equal(model.toDisplayText(null), '');
  assert.equal(model.toDisplayText(['a', 'b']), 'a, b');
  assert.equal(model.toDisplayText('abcdefghij', 5), 'abcd\u2026');
});

test('labels: hashes shortened in the middle, long names cut', () => {
  const h = 'f'.repeat(20) + '0'.repeat(44);
  assert.equal(model.shortLabel(h, 'file'), 'ffffffff\u20260000');
  assert.equal(model.shortLabel('x'.repeat(40), 'domain').length, 32);
  assert.equal(model.shortLabel('short.com', 'domain'), 'short.com');
});

test('tooltip facts and drilldown payload', () => {
  const g = model.buildGraph(fx.vtpivotScenario());
  const ip = byId(g, '192.0.2.41');
  const facts = Object.fromEntries(model.nodeFacts(ip));
  assert.equal(facts.Type, 'ip');
  assert.equal(facts.ASN, 'AS64501');
  assert.equal(facts['AS owner'], 'EXAMPLE-BULLETPROOF-HOSTING');
  assert.match(facts['Malicious detections'], /^6 \(malicious\)$/);
  assert.deepEqual(model.drilldownData(ip), { node: '192.0.2.41', node_type: 'ip', ip: '192.0.2.41' });
  const file = g.nodes.find((n) => n.type === 'file');
  assert.deepEqual(Object.keys(model.drilldownData(file)), ['node', 'node_type', 'hash']);
});

test('an <img onerror> domain name stays a plain string in the model and its facts', () => {
  const evil = '<img src=x onerror=alert(1)>';
  const g = model.buildGraph({ fields: ['src', 'dst', 'dst_as_owner'], rows: [['a.com', evil, '<b>x</b>']] });
  const n = byId(g, evil);
  assert.equal(n.type, 'other');
  assert.equal(n.label, evil);
  assert.equal(Object.fromEntries(model.nodeFacts(n))['AS owner'], '<b>x</b>');
});
