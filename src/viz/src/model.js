'use strict';
/*
 * vtgraph data shaping: Splunk search results -> node/edge model.
 *
 * Pure functions only (no DOM, no Splunk): unit-tested with `node --test` (test/model.test.js).
 *
 * Two data contracts are accepted:
 *   1. Named columns: src/dst (or source/target), optionally with vtpivot's richer columns
 *      src_type, dst_type, relationship, hop, dst_malicious (or malicious), src_malicious,
 *      dst_asn, dst_as_owner, dst_creation_date, resolution_date and count.
 *   2. Positional: the first two columns are the two ends of an edge and an optional
 *      `count` (or `weight`) column gives the edge weight; node types come from the column
 *      names (`| stats count BY domain, ip` -> columns domain, ip, count).
 */

// Rows asked from Splunk through getInitialDataParams (Splunk's default is 1000).
var ROW_CAP = 10000;

var NODE_TYPES = ['domain', 'ip', 'file', 'url', 'other'];

var TYPE_ALIASES = {
  domain: 'domain', domains: 'domain', hostname: 'domain', host: 'domain', fqdn: 'domain',
  dest_domain: 'domain', src_domain: 'domain', url_domain: 'domain', sender_domain: 'domain',
  query: 'domain', dns_query: 'domain', subdomain: 'domain', sibling: 'domain',
  ip: 'ip', ips: 'ip', ip_address: 'ip', ipv4: 'ip', ipv6: 'ip', src_ip: 'ip', dest_ip: 'ip',
  dst_ip: 'ip', clientip: 'ip', client_ip: 'ip', server_ip: 'ip', ip_addresses: 'ip',
  file: 'file', files: 'file', hash: 'file', file_hash: 'file', filehash: 'file',
  sha256: 'file', sha1: 'file', md5: 'file', sha256_hash: 'file', md5_hash: 'file',
  url: 'url', urls: 'url', uri: 'url',
};

var NAMED_PAIRS = [['src', 'dst'], ['source', 'target'], ['src', 'dest'], ['from', 'to']];
var COUNT_COLUMNS = ['count', 'weight', 'edge_count'];

var RE_IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
var RE_IPV6 = /^[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}$/i;
var RE_HASH = /^([0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$/i;
var RE_DOMAIN = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}\.?$/i;
var RE_URL = /^[a-z][a-z0-9+.-]*:\/\//i;

// Control characters and bidirectional overrides: a domain holding U+202E could display
// reversed text in a label or tooltip (a spoofing trick); show them as visible escapes.
// eslint-disable-next-line no-control-regex
var RE_UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** Any value -> a plain display string (never markup), control/bidi chars made visible. */
function toDisplayText(value, maxLen) {
  var s;
  if (value === null || value === undefined) {
    s = '';
  } else if (Array.isArray(value)) {
    s = value.map(function (v) { return toDisplayText(v); }).join(', ');
  } else {
    s = String(value);
  }
  s = s.replace(RE_UNSAFE_CHARS, function (c) {
    return '\\u' + ('0000' + c.charCodeAt(0).toString(16)).slice(-4);
  });
  if (maxLen && s.length > maxLen) {
    s = s.slice(0, Math.max(1, maxLen - 1)) + '\u2026';
  }
  return s;
}

/** HTML-escape a string (for any consumer that must build markup; the viz itself uses textContent). */
function escapeHtml(value) {
  return toDisplayText(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Normalize a type name (column name or *_type value) to one of NODE_TYPES, or '' if unknown. */
function normalizeType(name) {
  if (name === null || name === undefined) return '';
  var key = String(name).trim().toLowerCase();
  if (!key) return '';
  if (Object.prototype.hasOwnProperty.call(TYPE_ALIASES, key)) return TYPE_ALIASES[key];
  if (NODE_TYPES.indexOf(key) >= 0) return key;
  // Column names such as "dest_ip_address" or "parent_sha256".
  if (/(^|_)(ip|ipv4|ipv6|ip_address)($|_)/.test(key)) return 'ip';
  if (/(^|_)(sha256|sha1|md5|hash|file)($|_)/.test(key)) return 'file';
  if (/(^|_)(domain|fqdn|hostname)($|_)/.test(key)) return 'domain';
  if (/(^|_)url($|_)/.test(key)) return 'url';
  return '';
}

/** Infer a node type from its value alone. */
function inferTypeFromValue(value) {
  var v = String(value).trim();
  if (RE_IPV4.test(v) || (v.indexOf(':') >= 0 && RE_IPV6.test(v))) return 'ip';
  if (RE_HASH.test(v)) return 'file';
  if (RE_URL.test(v)) return 'url';
  if (RE_DOMAIN.test(v)) return 'domain';
  return 'other';
}

/** Short on-canvas label: hashes are cut in the middle, long names at the end. */
function shortLabel(value, type) {
  var s = toDisplayText(value);
  if (type === 'file' && RE_HASH.test(s)) return s.slice(0, 8) + '\u2026' + s.slice(-4);
  if (s.length > 32) return s.slice(0, 31) + '\u2026';
  return s;
}

function toNumber(v) {
  if (Array.isArray(v)) v = v[0];
  if (v === null || v === undefined || v === '') return null;
  var n = Number(v);
  return isFinite(n) ? n : null;
}

function firstValue(v) {
  if (Array.isArray(v)) return v.length ? v[0] : null;
  return v;
}

/** Cell -> list of non-empty trimmed strings (multivalue cells give several). */
function cellValues(v) {
  var list = Array.isArray(v) ? v : [v];
  var out = [];
  for (var i = 0; i < list.length; i++) {
    if (list[i] === null || list[i] === undefined) continue;
    var s = String(list[i]).trim();
    if (s) out.push(s);
  }
  return out;
}

function fieldNames(data) {
  var fields = (data && data.fields) || [];
  var names = [];
  for (var i = 0; i < fields.length; i++) {
    var f = fields[i];
    names.push(typeof f === 'string' ? f : (f && f.name !== undefined ? String(f.name) : ''));
  }
  return names;
}

/**
 * Decide which columns hold what. Returns {mode, src, dst, srcType, dstType, count,
 * relationship, hop, srcMalicious, dstMalicious, dstAsn, dstAsOwner, dstCreationDate,
 * resolutionDate, srcTypeFromName, dstTypeFromName} (indices, -1 when absent) or {error}.
 */
function detectColumns(names) {
  var lower = names.map(function (n) { return String(n).toLowerCase(); });
  function idx(name) { return lower.indexOf(name); }
  function idxAny(list) {
    for (var i = 0; i < list.length; i++) { var j = idx(list[i]); if (j >= 0) return j; }
    return -1;
  }
  var cols = null;
  for (var p = 0; p < NAMED_PAIRS.length; p++) {
    var a = idx(NAMED_PAIRS[p][0]);
    var b = idx(NAMED_PAIRS[p][1]);
    if (a >= 0 && b >= 0) {
      cols = { mode: 'named', src: a, dst: b };
      break;
    }
  }
  if (!cols) {
    // Positional: the first two columns that are neither a count nor Splunk-internal.
    var ends = [];
    for (var i = 0; i < lower.length && ends.length < 2; i++) {
      if (COUNT_COLUMNS.indexOf(lower[i]) >= 0 || lower[i].charAt(0) === '_') continue;
      ends.push(i);
    }
    if (ends.length < 2) {
      return {
        error: 'The graph needs two columns that hold the two ends of each edge, e.g. '
          + '"| stats count BY domain, ip" or columns named src and dst. Columns found: '
          + (names.length ? names.join(', ') : 'none') + '.',
      };
    }
    cols = { mode: 'positional', src: ends[0], dst: ends[1] };
  }
  cols.count = idxAny(COUNT_COLUMNS);
  cols.relationship = idxAny(['relationship', 'relation', 'rel']);
  cols.hop = idx('hop');
  cols.srcType = cols.mode === 'named' ? idxAny(['src_type', 'source_type']) : -1;
  cols.dstType = cols.mode === 'named' ? idxAny(['dst_type', 'target_type', 'dest_type']) : -1;
  cols.srcMalicious = idx('src_malicious');
  cols.dstMalicious = idxAny(['dst_malicious', 'malicious', 'vt_malicious']);
  cols.dstAsn = idxAny(['dst_asn', 'asn', 'vt_asn']);
  cols.dstAsOwner = idxAny(['dst_as_owner', 'as_owner', 'vt_as_owner']);
  cols.dstCreationDate = idxAny(['dst_creation_date', 'creation_date', 'vt_creation_date']);
  cols.resolutionDate = idx('resolution_date');
  cols.srcTypeFromName = cols.mode === 'positional' ? normalizeType(names[cols.src]) : '';
  cols.dstTypeFromName = cols.mode === 'positional' ? normalizeType(names[cols.dst]) : '';
  cols.srcName = names[cols.src];
  cols.dstName = names[cols.dst];
  return cols;
}

function cell(row, i) {
  return i >= 0 && i < row.length ? row[i] : null;
}

function formatDate(v) {
  var n = toNumber(v);
  if (n !== null && n > 100000000) { // epoch seconds
    return new Date(n * 1000).toISOString().slice(0, 10);
  }
  var s = firstValue(v);
  return s === null || s === undefined ? '' : String(s);
}

function resultMessage(kind, message) {
  return { ok: false, kind: kind, message: message };
}

/**
 * Build the graph model from Splunk row-major data ({fields, rows}).
 * options: {cap: rows asked from Splunk (truncation detection), sizeBy: 'degree'|'count'}.
 * Returns {ok: true, nodes, edges, rowCount, truncated, cap, skippedRows, mode, columns,
 *          types, relationships, maxDegree, maxCount}
 *      or {ok: false, kind: 'empty'|'malformed', message}.
 */
function buildGraph(data, options) {
  options = options || {};
  var cap = options.cap || ROW_CAP;
  if (!data || typeof data !== 'object') {
    return resultMessage('malformed', 'No data was handed to the visualization.');
  }
  var names = fieldNames(data);
  var rows = data.rows;
  if (rows !== undefined && rows !== null && !Array.isArray(rows)) {
    return resultMessage('malformed', 'The results are not in row-major form (rows is not a list).');
  }
  rows = rows || [];
  if (rows.length === 0) {
    return resultMessage('empty', 'No results: the search returned no rows to draw. '
      + 'Check the indicator, widen the time range, or look at the vt_status/vt_error fields.');
  }
  var cols = detectColumns(names);
  if (cols.error) return resultMessage('malformed', cols.error);

  var nodes = [];
  var nodeIndex = Object.create(null);
  var edges = [];
  var edgeIndex = Object.create(null);
  var skipped = 0;
  var badRows = 0;
  var selfLoops = 0;

  function getNode(value, type, typeSource) {
    var n = nodeIndex[value];
    if (!n) {
      n = {
        id: value,
        label: '',
        type: type,
        typeSource: typeSource,
        malicious: null,
        asn: '',
        asOwner: '',
        creationDate: '',
        hop: null,
        degree: 0,
        count: 0,
        relationships: [],
        origin: false,
        index: nodes.length,
      };
      n.label = shortLabel(value, type);
      nodeIndex[value] = n;
      nodes.push(n);
    } else if (n.type === 'other' && type !== 'other') {
      n.type = type;
      n.typeSource = typeSource;
      n.label = shortLabel(value, type);
    }
    return n;
  }

  function typeFor(row, typeCol, fromName, value) {
    if (typeCol >= 0) {
      var t = normalizeType(firstValue(cell(row, typeCol)));
      if (t) return [t, 'column'];
    }
    if (fromName) return [fromName, 'column name'];
    return [inferTypeFromValue(value), 'value'];
  }

  for (var r = 0; r < rows.length; r++) {
    var row = rows[r];
    if (!Array.isArray(row)) { badRows++; continue; }
    var srcs = cellValues(cell(row, cols.src));
    var dsts = cellValues(cell(row, cols.dst));
    if (!srcs.length || !dsts.length) { skipped++; continue; }
    var count = cols.count >= 0 ? toNumber(cell(row, cols.count)) : null;
    if (count === null || count < 0) count = 1;
    var rel = cols.relationship >= 0 ? firstValue(cell(row, cols.relationship)) : null;
    rel = rel === null || rel === undefined ? '' : String(rel);
    var hop = cols.hop >= 0 ? toNumber(cell(row, cols.hop)) : null;
    var dMal = cols.dstMalicious >= 0 ? toNumber(cell(row, cols.dstMalicious)) : null;
    var sMal = cols.srcMalicious >= 0 ? toNumber(cell(row, cols.srcMalicious)) : null;
    var asn = cols.dstAsn >= 0 ? firstValue(cell(row, cols.dstAsn)) : null;
    var asOwner = cols.dstAsOwner >= 0 ? firstValue(cell(row, cols.dstAsOwner)) : null;
    var created = cols.dstCreationDate >= 0 ? cell(row, cols.dstCreationDate) : null;
    var resolved = cols.resolutionDate >= 0 ? cell(row, cols.resolutionDate) : null;

    for (var si = 0; si < srcs.length; si++) {
      for (var di = 0; di < dsts.length; di++) {
        var sv = srcs[si];
        var dv = dsts[di];
        var st = typeFor(row, cols.srcType, cols.srcTypeFromName, sv);
        var dt = typeFor(row, cols.dstType, cols.dstTypeFromName, dv);
        var s = getNode(sv, st[0], st[1]);
        var d = getNode(dv, dt[0], dt[1]);
        if (sMal !== null) s.malicious = Math.max(s.malicious === null ? 0 : s.malicious, sMal);
        if (dMal !== null) d.malicious = Math.max(d.malicious === null ? 0 : d.malicious, dMal);
        if (asn !== null && asn !== undefined && asn !== '') d.asn = String(asn);
        if (asOwner) d.asOwner = String(asOwner);
        if (created !== null && created !== undefined && created !== '') d.creationDate = formatDate(created);
        if (hop !== null) {
          d.hop = d.hop === null ? hop : Math.min(d.hop, hop);
          var srcHop = Math.max(0, hop - 1);
          s.hop = s.hop === null ? srcHop : Math.min(s.hop, srcHop);
        }
        if (rel && d.relationships.indexOf(rel) < 0 && d.relationships.length < 12) d.relationships.push(rel);
        if (s === d) { selfLoops++; s.count += count; continue; }
        var key = s.index + '\u0001' + d.index + '\u0001' + rel;
        var e = edgeIndex[key];
        if (!e) {
          e = { source: s.index, target: d.index, relationship: rel, count: 0, resolutionDate: '' };
          edgeIndex[key] = e;
          edges.push(e);
          s.degree++;
          d.degree++;
        }
        e.count += count;
        if (resolved !== null && resolved !== undefined && resolved !== '' && !e.resolutionDate) {
          e.resolutionDate = formatDate(resolved);
        }
        s.count += count;
        d.count += count;
      }
    }
  }

  if (!nodes.length) {
    if (badRows === rows.length) {
      return resultMessage('malformed', 'The results could not be read: rows are not lists of values.');
    }
    return resultMessage('empty', 'No edges to draw: every row has an empty "' + cols.srcName
      + '" or "' + cols.dstName + '" value (' + rows.length + ' rows read).');
  }

  var types = [];
  var rels = [];
  var maxDegree = 0;
  var maxCount = 0;
  var hasHop = false;
  for (var k = 0; k < nodes.length; k++) {
    var n = nodes[k];
    if (types.indexOf(n.type) < 0) types.push(n.type);
    if (n.degree > maxDegree) maxDegree = n.degree;
    if (n.count > maxCount) maxCount = n.count;
    if (n.hop !== null) hasHop = true;
  }
  for (var m = 0; m < edges.length; m++) {
    if (edges[m].relationship && rels.indexOf(edges[m].relationship) < 0) rels.push(edges[m].relationship);
  }
  if (hasHop) {
    for (var q = 0; q < nodes.length; q++) nodes[q].origin = nodes[q].hop === 0;
  }
  types.sort(function (a, b) { return NODE_TYPES.indexOf(a) - NODE_TYPES.indexOf(b); });

  return {
    ok: true,
    nodes: nodes,
    edges: edges,
    rowCount: rows.length,
    cap: cap,
    truncated: rows.length >= cap,
    skippedRows: skipped + badRows,
    selfLoops: selfLoops,
    mode: cols.mode,
    columns: { src: cols.srcName, dst: cols.dstName },
    types: types,
    relationships: rels.sort(),
    maxDegree: maxDegree,
    maxCount: maxCount,
  };
}

/** The notice shown in the panel when Splunk may have cut the results. */
function truncationNotice(graph) {
  if (!graph || !graph.ok || !graph.truncated) return '';
  return 'Showing the first ' + formatInt(graph.cap) + ' rows: the search returned at least that '
    + 'many, so the graph may be incomplete. Narrow the search (fewer relationships, lower '
    + 'limit or max_nodes) to see everything.';
}

function formatInt(n) {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Risk band of a node from its VirusTotal malicious-engine count. */
function riskBand(malicious) {
  if (malicious === null || malicious === undefined) return 'unknown';
  if (malicious >= 5) return 'malicious';
  if (malicious >= 1) return 'suspicious';
  return 'clean';
}

/** Tooltip facts: [[label, value], ...], all plain strings. */
function nodeFacts(node) {
  var facts = [['Type', node.type + (node.typeSource === 'value' ? ' (inferred)' : '')]];
  if (node.malicious !== null) {
    facts.push(['Malicious detections', String(node.malicious) + ' (' + riskBand(node.malicious) + ')']);
  } else {
    facts.push(['Malicious detections', 'unknown']);
  }
  if (node.asn) facts.push(['ASN', 'AS' + String(node.asn).replace(/^AS/i, '')]);
  if (node.asOwner) facts.push(['AS owner', node.asOwner]);
  if (node.creationDate) facts.push(['Created', node.creationDate]);
  if (node.hop !== null) facts.push(['Hop', node.hop === 0 ? '0 (start)' : String(node.hop)]);
  facts.push(['Connections', String(node.degree)]);
  if (node.count && node.count !== node.degree) facts.push(['Count', formatInt(node.count)]);
  if (node.relationships.length) facts.push(['Reached via', node.relationships.join(', ')]);
  return facts.map(function (f) { return [f[0], toDisplayText(f[1], 200)]; });
}

/** The drilldown payload: field names usable as $row.node$ / $row.node_type$ / $click.value$. */
function drilldownData(node) {
  var data = { node: node.id, node_type: node.type };
  var typeField = { domain: 'domain', ip: 'ip', file: 'hash', url: 'url' }[node.type];
  if (typeField) data[typeField] = node.id;
  return data;
}

module.exports = {
  ROW_CAP: ROW_CAP,
  NODE_TYPES: NODE_TYPES,
  buildGraph: buildGraph,
  detectColumns: detectColumns,
  normalizeType: normalizeType,
  inferTypeFromValue: inferTypeFromValue,
  shortLabel: shortLabel,
  toDisplayText: toDisplayText,
  escapeHtml: escapeHtml,
  truncationNotice: truncationNotice,
  riskBand: riskBand,
  nodeFacts: nodeFacts,
  drilldownData: drilldownData,
  formatInt: formatInt,
};
