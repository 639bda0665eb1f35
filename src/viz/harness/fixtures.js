'use strict';
// Test and benchmark data shaped like vtpivot's output (one row per edge) and like
// `| stats count BY domain, ip`. Deterministic (seeded), no network. IPs are from the
// documentation ranges; names are invented.

const VTPIVOT_FIELDS = ['src', 'src_type', 'relationship', 'dst', 'dst_type', 'hop', 'resolution_date',
  'dst_malicious', 'dst_asn', 'dst_as_owner', 'dst_creation_date', 'domain', 'ip', 'hash'];

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function hex(rand, n) {
  let out = '';
  for (let i = 0; i < n; i++) out += '0123456789abcdef'[Math.floor(rand() * 16)];
  return out;
}

function edgeRow(src, srcType, rel, dst, dstType, hop, extra) {
  extra = extra || {};
  const conv = { domain: '', ip: '', hash: '' };
  for (const [v, t] of [[src, srcType], [dst, dstType]]) {
    if (t === 'domain' && !conv.domain) conv.domain = v;
    if (t === 'ip' && !conv.ip) conv.ip = v;
    if (t === 'file' && !conv.hash) conv.hash = v;
  }
  return [src, srcType, rel, dst, dstType, String(hop), extra.date || '1717200000',
    extra.malicious === undefined ? '' : String(extra.malicious), extra.asn || '', extra.asOwner || '',
    extra.created || '', conv.domain, conv.ip, conv.hash];
}

/** A phishing kit's infrastructure around one domain: ~40 edges, depth 2. */
function vtpivotScenario(opts) {
  opts = opts || {};
  const rand = rng(7);
  const start = opts.start || 'login-micros0ft-support.com';
  const rows = [];
  const ips = [
    ['192.0.2.41', 64501, 'EXAMPLE-BULLETPROOF-HOSTING', 6],
    ['198.51.100.23', 64502, 'Cheap VPS Ltd', 2],
    ['203.0.113.77', 64503, 'CloudFront-Like CDN', 0],
  ];
  for (const [ip, asn, owner, mal] of ips) {
    rows.push(edgeRow(start, 'domain', 'resolutions', ip, 'ip', 1, { malicious: mal, asn, asOwner: owner }));
  }
  const subs = ['mail', 'secure', 'o365'];
  for (const s of subs) {
    rows.push(edgeRow(start, 'domain', 'subdomains', `${s}.${start}`, 'domain', 1,
      { malicious: s === 'secure' ? 9 : 1, created: '1714000000' }));
  }
  const files = [];
  for (let i = 0; i < 4; i++) {
    const h = hex(rand, 64);
    files.push(h);
    rows.push(edgeRow(start, 'domain', 'communicating_files', h, 'file', 1, { malicious: 20 + i * 7 }));
  }
  const siblingNames = ['office-verify-account.net', 'micros0ft-auth.co', 'sharepoint-docs-view.info',
    'outlook-webmail-login.org', 'onedrive-filestore.live', 'teams-meeting-invite.click',
    'helpdesk-password-reset.com', 'cdn-assets-static.net', 'benign-bakery-shop.com',
    'invoice-portal-secure.biz', 'docusign-envelope-review.top', 'azure-billing-alert.site'];
  siblingNames.forEach((d, i) => {
    const ip = ips[i % 3][0];
    const mal = [7, 12, 4, 9, 3, 5, 1, 0, 0, 6, 8, 2][i];
    rows.push(edgeRow(ip, 'ip', 'resolutions', d, 'domain', 2, { malicious: mal, created: String(1700000000 + i * 864000) }));
  });
  // Shared infrastructure: two siblings also on a second IP.
  rows.push(edgeRow('198.51.100.23', 'ip', 'resolutions', 'office-verify-account.net', 'domain', 2, { malicious: 7 }));
  rows.push(edgeRow('203.0.113.77', 'ip', 'resolutions', 'micros0ft-auth.co', 'domain', 2, { malicious: 12 }));
  for (const f of files.slice(0, 3)) {
    rows.push(edgeRow(f, 'file', 'contacted_ips', '192.0.2.41', 'ip', 2, { malicious: 6, asn: 64501, asOwner: 'EXAMPLE-BULLETPROOF-HOSTING' }));
  }
  rows.push(edgeRow(files[0], 'file', 'contacted_domains', 'c2-beacon-update.xyz', 'domain', 2, { malicious: 15 }));
  rows.push(edgeRow(files[1], 'file', 'contacted_domains', 'c2-beacon-update.xyz', 'domain', 2, { malicious: 15 }));
  if (opts.extraRows) rows.push(...opts.extraRows);
  return { fields: VTPIVOT_FIELDS.slice(), rows };
}

/** `| stats count BY domain, ip`: columns domain, ip, count. */
function statsCountTable() {
  const rows = [
    ['evil-login.com', '192.0.2.10', '42'],
    ['evil-login.com', '192.0.2.11', '3'],
    ['cdn.evil-login.com', '192.0.2.10', '17'],
    ['paypa1-secure.net', '198.51.100.5', '8'],
    ['paypa1-secure.net', '192.0.2.11', '1'],
    ['example-shop.org', '203.0.113.9', '120'],
  ];
  return { fields: ['domain', 'ip', 'count'], rows };
}

/**
 * A large, clustered graph with about `edges` edges: a few hub IPs, many domains, some files.
 * Returns vtpivot-shaped rows.
 */
function largeGraph(edges, seed) {
  const rand = rng(seed || 42);
  const rows = [];
  const nIps = Math.max(5, Math.round(edges / 12));
  const nDomains = Math.max(10, Math.round(edges / 2.2));
  const nFiles = Math.max(3, Math.round(edges / 15));
  const ip = (i) => `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`;
  const dom = (i) => `host-${i.toString(36)}.example-${i % 17}.net`;
  const fileHash = [];
  for (let i = 0; i < nFiles; i++) fileHash.push(hex(rand, 64));
  const malOf = (i) => (i % 11 === 0 ? 8 : i % 5 === 0 ? 2 : 0);
  // One start indicator (hop 1 edges), then hop 2 around the hubs.
  for (let i = 0; i < Math.min(8, nIps); i++) {
    rows.push(edgeRow('start-indicator.example.com', 'domain', 'resolutions', ip(i), 'ip', 1, { malicious: 3 }));
  }
  while (rows.length < edges) {
    const r = rand();
    if (r < 0.7) {
      // Preferential-ish attachment: low ids are hubs.
      const i = Math.floor(Math.pow(rand(), 2.2) * nIps);
      const d = Math.floor(rand() * nDomains);
      rows.push(edgeRow(ip(i), 'ip', 'resolutions', dom(d), 'domain', 2, { malicious: malOf(d) }));
    } else if (r < 0.85) {
      const f = Math.floor(rand() * nFiles);
      const d = Math.floor(Math.pow(rand(), 1.5) * nDomains);
      rows.push(edgeRow(fileHash[f], 'file', 'contacted_domains', dom(d), 'domain', 2, { malicious: malOf(d) }));
    } else {
      const d = Math.floor(rand() * nDomains);
      const i = Math.floor(Math.pow(rand(), 2.2) * nIps);
      rows.push(edgeRow(dom(d), 'domain', 'resolutions', ip(i), 'ip', 2, { malicious: i % 9 === 0 ? 5 : 0, asn: 64500 + (i % 20), asOwner: `Hosting ${i % 20}` }));
    }
  }
  return { fields: VTPIVOT_FIELDS.slice(), rows };
}

module.exports = { VTPIVOT_FIELDS, vtpivotScenario, statsCountTable, largeGraph, edgeRow };
