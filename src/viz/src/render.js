'use strict';
/*
 * vtgraph rendering: a canvas force-directed graph view (d3-force layout, d3-zoom/d3-drag
 * interaction). Knows nothing of Splunk: visualization_source.js feeds it the model built by
 * model.js and receives node clicks through callbacks.onNodeClick(node, event).
 *
 * Every string that comes from the data reaches the DOM through textContent only.
 */
var d3force = require('d3-force');
var quadtree = require('d3-quadtree').quadtree;
var d3zoom = require('d3-zoom');
var d3drag = require('d3-drag');
var select = require('d3-selection').select;
var model = require('./model');

var SETTLE_ALPHA = 0.05; // layout considered stable below this alpha
var PATH_CHUNK = 64; // segments/shapes per canvas path

var THEMES = {
  light: {
    bg: '#ffffff', text: '#1f2933', muted: '#5c6773', edge: '#8d99a6', halo: 'rgba(255,255,255,0.9)',
    nodeStroke: '#ffffff', unknown: '#8b9bab', origin: '#3b5fe0', match: '#f8be34',
    dim: 0.12, edgeAlpha: 0.55,
  },
  dark: {
    bg: '#1a1c20', text: '#e1e6eb', muted: '#9aa4ae', edge: '#6b7885', halo: 'rgba(26,28,32,0.9)',
    nodeStroke: '#1a1c20', unknown: '#7f8c99', origin: '#7b93ff', match: '#f8be34',
    dim: 0.14, edgeAlpha: 0.6,
  },
};

var RISK_COLORS = { malicious: '#dc4e41', suspicious: '#f1813f', clean: '#53a051' };
var RISK_LABELS = [
  ['malicious', 'Malicious (5+ engines)'],
  ['suspicious', 'Suspicious (1\u20134 engines)'],
  ['clean', 'No detections'],
  ['unknown', 'Not analysed / unknown'],
];
var TYPE_LABELS = { domain: 'Domain', ip: 'IP address', file: 'File (hash)', url: 'URL', other: 'Other' };
var REL_COLORS = {
  resolutions: '#5b8db8', communicating_files: '#a066b5', referrer_files: '#8a79c7',
  contacted_domains: '#3fa39a', contacted_ips: '#4f8fc9', contacted_urls: '#6aa84f',
  siblings: '#c0a030', subdomains: '#d08a45', parent: '#b07a5a', dropped_files: '#b5587d',
  execution_parents: '#9b6bd0', bundled_files: '#7d7fb8',
};
var EXTRA_REL_COLORS = ['#4aa3a0', '#c46a8a', '#8c9b3e', '#6b7fd7', '#c48b3f', '#5aa06b'];

function clamp(v, lo, hi) { return v < lo ? lo : (v > hi ? hi : v); }

function el(tag, className, text) {
  var e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Trace a node's shape (by type) as a sub-path at (x, y) with radius r. */
function shapePath(ctx, type, x, y, r) {
  var i, a;
  if (type === 'ip') {
    var s = r * 0.9;
    ctx.moveTo(x - s, y - s); ctx.lineTo(x + s, y - s); ctx.lineTo(x + s, y + s); ctx.lineTo(x - s, y + s);
    ctx.closePath();
  } else if (type === 'file') {
    for (i = 0; i < 6; i++) {
      a = Math.PI / 3 * i + Math.PI / 6;
      if (i === 0) ctx.moveTo(x + r * Math.cos(a), y + r * Math.sin(a));
      else ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
    }
    ctx.closePath();
  } else if (type === 'url') {
    ctx.moveTo(x, y - r * 1.15); ctx.lineTo(x + r * 1.15, y); ctx.lineTo(x, y + r * 1.15); ctx.lineTo(x - r * 1.15, y);
    ctx.closePath();
  } else if (type === 'other') {
    ctx.moveTo(x, y - r * 1.1); ctx.lineTo(x + r * 1.05, y + r * 0.8); ctx.lineTo(x - r * 1.05, y + r * 0.8);
    ctx.closePath();
  } else {
    ctx.moveTo(x + r, y);
    ctx.arc(x, y, r, 0, Math.PI * 2);
  }
}

function GraphView(container, callbacks) {
  this.container = container;
  this.callbacks = callbacks || {};
  this.themeName = 'light';
  this.theme = THEMES.light;
  this.options = { sizeBy: 'degree', edgeLabels: 'auto', nodeLabels: 'auto', showLegend: true };
  this.graph = null;
  this.nodes = [];
  this.edges = [];
  this.transform = d3zoom.zoomIdentity;
  this.width = 0;
  this.height = 0;
  this.dpr = 1;
  this.hover = null;
  this.selected = null;
  this.matches = [];
  this.matchCursor = -1;
  this.focusSet = null;
  this.autoFit = true;
  this.frames = 0;
  this.drawMs = 0;
  this._drawPending = 0;
  this._tree = null;
  this._treeDirty = true;
  this._labelWidths = new Map();
  this._relColors = {};
  this._big = false;
  this._origins = [];
  this._labelOrder = [];
  this._edgeGroups = [];
  this.stats = { layoutStart: 0, settledAt: 0, ticks: 0 };
  this._buildDom();
  this._bindInteraction();
}

GraphView.prototype._buildDom = function () {
  var root = el('div', 'vtgraph-root');
  this.root = root;
  this.canvas = el('canvas', 'vtgraph-canvas');
  this.canvas.setAttribute('role', 'img');
  this.canvas.setAttribute('aria-label', 'Relationship graph');
  this.ctx = this.canvas.getContext('2d');
  root.appendChild(this.canvas);

  var toolbar = el('div', 'vtgraph-toolbar');
  this.searchInput = el('input', 'vtgraph-search');
  this.searchInput.type = 'search';
  this.searchInput.placeholder = 'Find a node\u2026';
  this.searchInput.setAttribute('aria-label', 'Find a node by name');
  this.matchInfo = el('span', 'vtgraph-matchinfo', '');
  this.fitButton = el('button', 'vtgraph-button', 'Fit');
  this.fitButton.type = 'button';
  this.fitButton.title = 'Fit the whole graph in the panel';
  this.unpinButton = el('button', 'vtgraph-button', 'Unpin all');
  this.unpinButton.type = 'button';
  this.unpinButton.title = 'Release every node you dragged (double-click releases one)';
  toolbar.appendChild(this.searchInput);
  toolbar.appendChild(this.matchInfo);
  toolbar.appendChild(this.fitButton);
  toolbar.appendChild(this.unpinButton);
  root.appendChild(toolbar);
  this.toolbar = toolbar;

  this.stat = el('div', 'vtgraph-stat', '');
  root.appendChild(this.stat);
  this.notice = el('div', 'vtgraph-notice', '');
  this.notice.setAttribute('role', 'status');
  root.appendChild(this.notice);
  this.legend = el('div', 'vtgraph-legend');
  root.appendChild(this.legend);
  this.tooltip = el('div', 'vtgraph-tooltip');
  this.tooltip.setAttribute('role', 'tooltip');
  root.appendChild(this.tooltip);
  this.message = el('div', 'vtgraph-message');
  this.message.setAttribute('role', 'alert');
  this.messageTitle = el('div', 'vtgraph-message-title', '');
  this.messageText = el('div', 'vtgraph-message-text', '');
  this.message.appendChild(this.messageTitle);
  this.message.appendChild(this.messageText);
  root.appendChild(this.message);
  this.container.appendChild(root);
};

GraphView.prototype._bindInteraction = function () {
  var self = this;
  var canvas = this.canvas;

  this.drag = d3drag.drag()
    .container(canvas)
    .subject(function (event) {
      var n = self.nodeAtScreen(event.x, event.y);
      if (!n) return null;
      return { node: n, x: self.transform.applyX(n.x), y: self.transform.applyY(n.y) };
    })
    .on('start', function (event) {
      var n = event.subject.node;
      self._dragging = n;
      self.autoFit = false;
      // Small graphs re-run the layout live while dragging. Large ones (costly ticks) move
      // just the node and let the neighbourhood relax after the drop, so dragging stays fluid.
      if (self.sim) {
        if (self._big) self.sim.stop();
        else self.sim.alphaTarget(0.25).restart();
      }
      n.fx = n.x; n.fy = n.y;
      self._hideTooltip();
    })
    .on('drag', function (event) {
      var n = event.subject.node;
      n.fx = self.transform.invertX(event.x);
      n.fy = self.transform.invertY(event.y);
      n.pinned = true;
      if (self._big) { n.x = n.fx; n.y = n.fy; self._treeDirty = true; }
      self.requestDraw();
    })
    .on('end', function (event) {
      var n = event.subject.node;
      self._dragging = null;
      if (self.sim) {
        if (self._big) self.sim.alpha(Math.max(self.sim.alpha(), 0.04)).restart();
        else self.sim.alphaTarget(0);
      }
      if (!n.pinned) { n.fx = null; n.fy = null; }
      self.requestDraw();
    });

  this.zoom = d3zoom.zoom()
    .scaleExtent([0.05, 12])
    .on('zoom', function (event) {
      self.transform = event.transform;
      // Only the user's own zoom/pan hides the tooltip: the automatic re-fit that follows
      // the settling layout must not blink it away under a resting pointer.
      if (event.sourceEvent) {
        self.autoFit = false;
        self._hideTooltip();
      }
      self.requestDraw();
    });

  select(canvas).call(this.drag).call(this.zoom).on('dblclick.zoom', null);

  canvas.addEventListener('mousemove', function (e) {
    if (self._dragging) return;
    var p = self._pointer(e);
    var n = self.nodeAtScreen(p[0], p[1]);
    if (n !== self.hover) {
      self.hover = n;
      self._updateFocus();
      self.requestDraw();
    }
    canvas.style.cursor = n ? 'pointer' : 'grab';
    if (n) self._showTooltip(n, p[0], p[1]); else self._hideTooltip();
  });
  canvas.addEventListener('mouseleave', function () {
    if (self.hover) { self.hover = null; self._updateFocus(); self.requestDraw(); }
    self._hideTooltip();
  });
  canvas.addEventListener('click', function (e) {
    var p = self._pointer(e);
    var n = self.nodeAtScreen(p[0], p[1]);
    self.selected = n;
    self._updateFocus();
    self.requestDraw();
    if (n && self.callbacks.onNodeClick) self.callbacks.onNodeClick(n, e);
  });
  canvas.addEventListener('dblclick', function (e) {
    var p = self._pointer(e);
    var n = self.nodeAtScreen(p[0], p[1]);
    if (n && n.pinned) {
      n.pinned = false; n.fx = null; n.fy = null;
      if (self.sim) self.sim.alpha(Math.max(self.sim.alpha(), 0.1)).restart();
    }
  });

  this.searchInput.addEventListener('input', function () { self.search(self.searchInput.value, false); });
  this.searchInput.addEventListener('keydown', function (e) {
    if (e.key === 'Enter') { e.preventDefault(); self.search(self.searchInput.value, true); }
    if (e.key === 'Escape') { self.searchInput.value = ''; self.search('', false); }
  });
  this.fitButton.addEventListener('click', function () { self.fit(); });
  this.unpinButton.addEventListener('click', function () { self.unpinAll(); });
};

GraphView.prototype._pointer = function (e) {
  var rect = this.canvas.getBoundingClientRect();
  return [e.clientX - rect.left, e.clientY - rect.top];
};

GraphView.prototype.setTheme = function (name) {
  name = name === 'dark' ? 'dark' : 'light';
  if (name === this.themeName && this.root.getAttribute('data-theme')) return;
  this.themeName = name;
  this.theme = THEMES[name];
  this.root.setAttribute('data-theme', name);
  this._renderLegend();
  this.requestDraw();
};

GraphView.prototype.setOptions = function (opts) {
  var changed = false;
  for (var k in opts) {
    if (Object.prototype.hasOwnProperty.call(opts, k) && opts[k] !== undefined && this.options[k] !== opts[k]) {
      this.options[k] = opts[k];
      changed = true;
    }
  }
  if (changed && this.graph) {
    this._computeSizes();
    if (this.sim && this.sim.force('collide')) {
      this.sim.force('collide', d3force.forceCollide(function (d) { return d.r + 2; }).strength(0.7));
    }
    this._renderLegend();
    this.requestDraw();
  }
};

GraphView.prototype.showMessage = function (kind, text) {
  this._stop();
  this.graph = null;
  this.nodes = [];
  this.edges = [];
  this.root.classList.add('vtgraph-has-message');
  this.root.setAttribute('data-message-kind', kind);
  this.messageTitle.textContent = kind === 'empty' ? 'Nothing to draw' : 'Cannot draw these results';
  this.messageText.textContent = model.toDisplayText(text, 600);
  this.notice.textContent = '';
  this.notice.classList.remove('vtgraph-visible');
  this._hideTooltip();
  this.resize();
};

GraphView.prototype.relColor = function (rel) {
  if (!rel) return this.theme.edge;
  if (REL_COLORS[rel]) return REL_COLORS[rel];
  if (!this._relColors[rel]) {
    var n = Object.keys(this._relColors).length;
    this._relColors[rel] = EXTRA_REL_COLORS[n % EXTRA_REL_COLORS.length];
  }
  return this._relColors[rel];
};

GraphView.prototype.nodeColor = function (n) {
  var band = model.riskBand(n.malicious);
  return band === 'unknown' ? this.theme.unknown : RISK_COLORS[band];
};

GraphView.prototype._computeSizes = function () {
  var g = this.graph;
  var byCount = this.options.sizeBy === 'count' && g.maxCount > 0;
  for (var i = 0; i < this.nodes.length; i++) {
    var n = this.nodes[i];
    var r = byCount
      ? 4.5 + 15 * Math.sqrt(n.count / g.maxCount)
      : 4.5 + 2.6 * Math.sqrt(Math.max(0, n.degree - 1));
    if (n.origin) r = Math.max(r, 11);
    n.r = clamp(r, 4, 24);
  }
  var maxCount = 1;
  for (var j = 0; j < this.edges.length; j++) maxCount = Math.max(maxCount, this.edges[j].count);
  for (var k = 0; k < this.edges.length; k++) {
    var e = this.edges[k];
    e.width = maxCount > 1 ? 1 + 4 * Math.log(e.count) / Math.log(maxCount) : 1.2;
  }
};

GraphView.prototype.setGraph = function (graph) {
  this._stop();
  this.root.classList.remove('vtgraph-has-message');
  this.root.removeAttribute('data-message-kind');
  this.graph = graph;
  // Copy so that the layout's x/y/vx/vy never leak into the model object.
  var nodes = graph.nodes.map(function (n) {
    var c = {};
    for (var k in n) if (Object.prototype.hasOwnProperty.call(n, k)) c[k] = n[k];
    c.neighbors = [];
    c.pinned = false;
    return c;
  });
  var edges = graph.edges.map(function (e) {
    return { source: nodes[e.source], target: nodes[e.target], relationship: e.relationship,
      count: e.count, resolutionDate: e.resolutionDate };
  });
  for (var i = 0; i < edges.length; i++) {
    edges[i].source.neighbors.push(edges[i].target.index);
    edges[i].target.neighbors.push(edges[i].source.index);
  }
  this.nodes = nodes;
  this.edges = edges;
  this.hover = null;
  this.selected = null;
  this.focusSet = null;
  this.matches = [];
  this.autoFit = true;
  this._labelWidths.clear();
  this._relColors = {};
  this._computeSizes();
  // Label priority: start node, detections, then the most connected.
  this._labelOrder = nodes.slice().sort(function (a, b) {
    return (b.origin - a.origin) || ((b.malicious || 0) > 0) - ((a.malicious || 0) > 0)
      || b.degree - a.degree || (a.id < b.id ? -1 : 1);
  });
  this._origins = nodes.filter(function (n) { return n.origin; }).slice(0, 5);
  // Edges grouped by colour and width so that thousands of them cost a few strokes.
  this._edgeGroups = this._groupEdges(edges);

  this._renderLegend();
  this._renderNotice();
  this.stat.textContent = model.formatInt(nodes.length) + ' nodes \u00b7 ' + model.formatInt(edges.length) + ' edges';
  if (this.searchInput.value) this.search(this.searchInput.value, false);
  else this.matchInfo.textContent = '';
  this.resize();
  this._startSimulation();
};

GraphView.prototype._groupEdges = function (edges) {
  var groups = {};
  var list = [];
  for (var i = 0; i < edges.length; i++) {
    var e = edges[i];
    var w = Math.round(e.width * 2) / 2;
    var key = e.relationship + '|' + w;
    if (!groups[key]) { groups[key] = { rel: e.relationship, width: w, edges: [] }; list.push(groups[key]); }
    groups[key].edges.push(e);
  }
  return list;
};

GraphView.prototype._startSimulation = function () {
  var self = this;
  var n = this.nodes.length;
  var big = n > 1500;
  this._big = big;
  var w = Math.max(this.width, 300);
  var h = Math.max(this.height, 200);
  this.stats = { layoutStart: now(), settledAt: 0, ticks: 0 };
  // Large graphs trade some polish for speed: no collision force (the costliest one),
  // a coarser Barnes-Hut approximation and a faster cool-down. Small ones, whose every
  // label is drawn, get room for their labels: longer links, a stronger repulsion and a
  // collision radius that keeps a label's height clear around each node.
  var small = n < 300;
  var sim = d3force.forceSimulation(this.nodes)
    .alphaDecay(big ? 0.06 : 0.03)
    .alphaMin(big ? 0.008 : 0.001)
    .velocityDecay(0.45)
    .force('link', d3force.forceLink(this.edges)
      .distance(function (e) { return (big ? 18 : (small ? 60 : 34)) + e.source.r + e.target.r; })
      .iterations(1))
    .force('charge', d3force.forceManyBody()
      .strength(function (d) { return -(small ? 240 : (big ? 35 : 60)) - 8 * Math.sqrt(d.degree); })
      .theta(big ? 1.2 : 0.9)
      .distanceMax(big ? 220 : (small ? 600 : 420)))
    .force('collide', big ? null : d3force.forceCollide(function (d) {
      return d.r + (small ? 12 : 2);
    }).strength(0.7))
    .force('x', d3force.forceX(w / 2).strength(big ? 0.06 : 0.045))
    .force('y', d3force.forceY(h / 2).strength(big ? 0.06 : 0.045))
    .on('tick', function () {
      self.stats.ticks++;
      self._treeDirty = true;
      if (!self.stats.settledAt && sim.alpha() < SETTLE_ALPHA) self.stats.settledAt = now();
      self.requestDraw();
    })
    .on('end', function () { self.requestDraw(); });
  this.sim = sim;
};

GraphView.prototype._stop = function () {
  if (this.sim) { this.sim.on('tick', null).on('end', null); this.sim.stop(); this.sim = null; }
};

GraphView.prototype.resize = function () {
  var rect = this.container.getBoundingClientRect();
  var w = Math.max(1, Math.floor(rect.width));
  var h = Math.max(1, Math.floor(rect.height));
  var dpr = (typeof window !== 'undefined' && window.devicePixelRatio) || 1;
  var changed = w !== this.width || h !== this.height || dpr !== this.dpr;
  this.width = w; this.height = h; this.dpr = dpr;
  if (changed) {
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = w + 'px';
    this.canvas.style.height = h + 'px';
  }
  if (this.sim) {
    this.sim.force('x').x(w / 2);
    this.sim.force('y').y(h / 2);
  }
  if (this.autoFit && this.nodes.length) this.fit(true);
  this.draw(); // synchronous: a reflow really redraws
};

/** Bounds of the laid-out nodes in world coordinates. */
GraphView.prototype._bounds = function () {
  var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (var i = 0; i < this.nodes.length; i++) {
    var n = this.nodes[i];
    if (n.x - n.r < x0) x0 = n.x - n.r;
    if (n.y - n.r < y0) y0 = n.y - n.r;
    if (n.x + n.r > x1) x1 = n.x + n.r;
    if (n.y + n.r > y1) y1 = n.y + n.r;
  }
  return [x0, y0, x1, y1];
};

GraphView.prototype.fit = function (keepAuto) {
  if (!this.nodes.length || this.nodes[0].x === undefined) return;
  var b = this._bounds();
  var pad = Math.min(36, Math.round(Math.min(this.width, this.height) * 0.06) + 4);
  var top = this.toolbar.offsetHeight ? this.toolbar.offsetHeight + 16 : pad; // below the toolbar
  // Keep the graph clear of the legend when the panel is tall enough to afford it.
  var bottom = pad;
  var legendH = this.legend.classList.contains('vtgraph-visible') ? this.legend.offsetHeight : 0;
  if (legendH && this.height - legendH > 260) bottom = legendH + 16;
  var bw = Math.max(b[2] - b[0], 1);
  var bh = Math.max(b[3] - b[1], 1);
  var k = clamp(Math.min((this.width - 2 * pad) / bw, (this.height - top - bottom) / bh), 0.05, 1.4);
  var tx = this.width / 2 - k * (b[0] + bw / 2);
  var ty = top + (this.height - top - bottom) / 2 - k * (b[1] + bh / 2);
  var t = d3zoom.zoomIdentity.translate(tx, ty).scale(k);
  select(this.canvas).call(this.zoom.transform, t);
  this.transform = t;
  if (!keepAuto) this.autoFit = false;
};

GraphView.prototype.centerOn = function (n, minScale) {
  var k = Math.max(this.transform.k, minScale || 1.4);
  var t = d3zoom.zoomIdentity.translate(this.width / 2 - k * n.x, this.height / 2 - k * n.y).scale(k);
  select(this.canvas).call(this.zoom.transform, t);
  this.transform = t;
  this.autoFit = false;
};

GraphView.prototype.unpinAll = function () {
  for (var i = 0; i < this.nodes.length; i++) {
    var n = this.nodes[i];
    if (n.pinned) { n.pinned = false; n.fx = null; n.fy = null; }
  }
  if (this.sim) this.sim.alpha(Math.max(this.sim.alpha(), 0.2)).restart();
};

GraphView.prototype.search = function (text, jump) {
  var q = String(text || '').trim().toLowerCase();
  this.matches = [];
  if (q) {
    for (var i = 0; i < this.nodes.length; i++) {
      if (this.nodes[i].id.toLowerCase().indexOf(q) >= 0) this.matches.push(this.nodes[i]);
    }
    // Exact match first, then shortest names.
    this.matches.sort(function (a, b) {
      return (b.id.toLowerCase() === q) - (a.id.toLowerCase() === q) || a.id.length - b.id.length;
    });
  }
  if (!q) {
    this.matchInfo.textContent = '';
    this.matchCursor = -1;
  } else if (!this.matches.length) {
    this.matchInfo.textContent = 'no match';
    this.matchCursor = -1;
  } else {
    if (jump) {
      this.matchCursor = (this.matchCursor + 1) % this.matches.length;
    } else {
      this.matchCursor = 0;
    }
    var m = this.matches[this.matchCursor];
    this.matchInfo.textContent = (this.matchCursor + 1) + ' of ' + this.matches.length;
    this.selected = m;
    if (m.x !== undefined) this.centerOn(m, 1.2);
  }
  this._updateFocus();
  this.requestDraw();
};

GraphView.prototype._updateFocus = function () {
  var f = this.hover || this.selected;
  if (!f) { this.focusSet = null; return; }
  var set = new Set(f.neighbors);
  set.add(f.index);
  this.focusSet = set;
};

GraphView.prototype.nodeAtScreen = function (sx, sy) {
  if (!this.nodes.length || this.nodes[0].x === undefined) return null;
  if (this._treeDirty || !this._tree) {
    this._tree = quadtree(this.nodes, function (d) { return d.x; }, function (d) { return d.y; });
    this._maxR = 0;
    for (var i = 0; i < this.nodes.length; i++) this._maxR = Math.max(this._maxR, this.nodes[i].r);
    this._treeDirty = false;
  }
  var t = this.transform;
  var wx = t.invertX(sx);
  var wy = t.invertY(sy);
  var slack = 4 / t.k; // a few screen pixels around small nodes
  var found = null;
  var best = Infinity;
  var reach = this._maxR + slack;
  this._tree.visit(function (quad, x0, y0, x1, y1) {
    if (!quad.length) {
      do {
        var d = quad.data;
        var dx = d.x - wx, dy = d.y - wy;
        var dist = Math.sqrt(dx * dx + dy * dy);
        if (dist <= d.r + slack && dist - d.r < best) { best = dist - d.r; found = d; }
      } while ((quad = quad.next));
    }
    return x0 > wx + reach || x1 < wx - reach || y0 > wy + reach || y1 < wy - reach;
  });
  return found;
};

GraphView.prototype.requestDraw = function () {
  var self = this;
  if (this._drawPending) return;
  var raf = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : function (f) { return setTimeout(f, 16); };
  this._drawPending = raf(function () { self._drawPending = 0; self.draw(); });
};

GraphView.prototype.draw = function () {
  var t0 = now();
  var ctx = this.ctx;
  var th = this.theme;
  var dpr = this.dpr;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.globalAlpha = 1;
  ctx.fillStyle = th.bg;
  ctx.fillRect(0, 0, this.width, this.height);
  if (!this.graph || !this.nodes.length || this.nodes[0].x === undefined) { this.frames++; return; }
  if (this.autoFit && this.sim && this.sim.alpha() > 0.02 && this.frames % 4 === 0) this.fit(true);

  var t = this.transform;
  var focus = this.focusSet;
  ctx.setTransform(dpr * t.k, 0, 0, dpr * t.k, dpr * t.x, dpr * t.y);

  // Edges.
  var g, i, e, n;
  var groups = this._edgeGroups;
  var lw = 1 / t.k;
  for (g = 0; g < groups.length; g++) {
    var grp = groups[g];
    ctx.strokeStyle = this.relColor(grp.rel);
    ctx.lineWidth = grp.width * lw;
    ctx.globalAlpha = focus ? th.dim : th.edgeAlpha;
    // Stroke in chunks: one huge path of crossing segments is very slow to rasterize
    // (software canvas computes coverage for the whole path at once).
    ctx.beginPath();
    for (i = 0; i < grp.edges.length; i++) {
      e = grp.edges[i];
      ctx.moveTo(e.source.x, e.source.y);
      ctx.lineTo(e.target.x, e.target.y);
      if (i % PATH_CHUNK === PATH_CHUNK - 1) { ctx.stroke(); ctx.beginPath(); }
    }
    ctx.stroke();
    if (focus) {
      ctx.globalAlpha = 0.95;
      ctx.lineWidth = (grp.width + 0.8) * lw;
      ctx.beginPath();
      for (i = 0; i < grp.edges.length; i++) {
        e = grp.edges[i];
        if (focus.has(e.source.index) && focus.has(e.target.index)
          && (this._isFocusEdge(e))) {
          ctx.moveTo(e.source.x, e.source.y);
          ctx.lineTo(e.target.x, e.target.y);
        }
      }
      ctx.stroke();
    }
  }
  // Arrowheads (direction of the pivot) when there are few enough edges to read them.
  if (this.edges.length <= 3000 && t.k > 0.45) this._drawArrows(ctx, focus, lw);

  // Nodes, batched by fill colour.
  var nodes = this.nodes;
  var fills = {};
  var fillKeys = [];
  for (i = 0; i < nodes.length; i++) {
    n = nodes[i];
    var c = this.nodeColor(n);
    if (!fills[c]) { fills[c] = []; fillKeys.push(c); }
    fills[c].push(n);
  }
  ctx.lineWidth = 1.5 * lw;
  ctx.strokeStyle = th.nodeStroke;
  // Outlines separate touching nodes; below ~3 px on screen they only cost time.
  var outline = t.k * 6 >= 3 || nodes.length < 1500;
  for (g = 0; g < fillKeys.length; g++) {
    var list = fills[fillKeys[g]];
    for (var pass = 0; pass < (focus ? 2 : 1); pass++) {
      ctx.globalAlpha = focus ? (pass === 0 ? th.dim + 0.1 : 1) : 1;
      ctx.fillStyle = fillKeys[g];
      ctx.beginPath();
      var inPath = 0;
      for (i = 0; i < list.length; i++) {
        n = list[i];
        if (focus && (pass === 0) === focus.has(n.index)) continue;
        shapePath(ctx, n.type, n.x, n.y, n.r);
        if (++inPath === PATH_CHUNK) { ctx.fill(); if (outline) ctx.stroke(); ctx.beginPath(); inPath = 0; }
      }
      if (inPath) { ctx.fill(); if (outline) ctx.stroke(); }
    }
  }
  ctx.globalAlpha = 1;
  // Rings: start node(s), selection, search matches, pinned marker.
  for (i = 0; i < nodes.length; i++) {
    n = nodes[i];
    if (n.origin) this._ring(ctx, n, th.origin, 2.5 * lw, 3.5 * lw);
    if (n.pinned) {
      ctx.fillStyle = th.text;
      ctx.beginPath();
      ctx.arc(n.x + n.r * 0.75, n.y - n.r * 0.75, 2.5 * lw, 0, Math.PI * 2);
      ctx.fill();
    }
  }
  for (i = 0; i < this.matches.length && i < 200; i++) this._ring(ctx, this.matches[i], th.match, 2 * lw, 3 * lw);
  if (this.selected) this._ring(ctx, this.selected, th.text, 2 * lw, 5 * lw);
  if (this.hover && this.hover !== this.selected) this._ring(ctx, this.hover, th.text, 1.5 * lw, 3 * lw);

  // Labels in screen space, collision-aware.
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  this._drawLabels(ctx);
  this.frames++;
  this.drawMs = now() - t0;
};

GraphView.prototype._isFocusEdge = function (e) {
  var f = this.hover || this.selected;
  return f && (e.source === f || e.target === f);
};

GraphView.prototype._ring = function (ctx, n, color, width, gap) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  shapePath(ctx, n.type, n.x, n.y, n.r + gap);
  ctx.stroke();
};

GraphView.prototype._drawArrows = function (ctx, focus, lw) {
  var size = 5 * lw;
  ctx.globalAlpha = focus ? 0.9 : 0.7;
  var byColor = {};
  for (var i = 0; i < this.edges.length; i++) {
    var e = this.edges[i];
    if (focus && !this._isFocusEdge(e)) continue;
    var c = this.relColor(e.relationship);
    (byColor[c] = byColor[c] || []).push(e);
  }
  for (var c2 in byColor) {
    ctx.fillStyle = c2;
    ctx.beginPath();
    var list = byColor[c2];
    for (var j = 0; j < list.length; j++) {
      var ed = list[j];
      var dx = ed.target.x - ed.source.x, dy = ed.target.y - ed.source.y;
      var len = Math.sqrt(dx * dx + dy * dy);
      if (len < ed.target.r + size * 2) continue;
      var ux = dx / len, uy = dy / len;
      var tipX = ed.target.x - ux * (ed.target.r + 1.5 * lw);
      var tipY = ed.target.y - uy * (ed.target.r + 1.5 * lw);
      ctx.moveTo(tipX, tipY);
      ctx.lineTo(tipX - ux * size * 1.6 - uy * size * 0.7, tipY - uy * size * 1.6 + ux * size * 0.7);
      ctx.lineTo(tipX - ux * size * 1.6 + uy * size * 0.7, tipY - uy * size * 1.6 - ux * size * 0.7);
      ctx.closePath();
    }
    ctx.fill();
  }
  ctx.globalAlpha = 1;
};

GraphView.prototype._labelWidth = function (ctx, text) {
  var w = this._labelWidths.get(text);
  if (w === undefined) { w = ctx.measureText(text).width; this._labelWidths.set(text, w); }
  return w;
};

GraphView.prototype._drawLabels = function (ctx) {
  var t = this.transform;
  var th = this.theme;
  var W = this.width, H = this.height;
  var placed = [];
  var cell = 64;
  var grid = new Map();
  function overlaps(r) {
    var cx0 = Math.floor(r[0] / cell), cx1 = Math.floor(r[2] / cell);
    var cy0 = Math.floor(r[1] / cell), cy1 = Math.floor(r[3] / cell);
    for (var cx = cx0; cx <= cx1; cx++) {
      for (var cy = cy0; cy <= cy1; cy++) {
        var bucket = grid.get(cx + ':' + cy);
        if (!bucket) continue;
        for (var i = 0; i < bucket.length; i++) {
          var o = bucket[i];
          if (r[0] < o[2] && r[2] > o[0] && r[1] < o[3] && r[3] > o[1]) return true;
        }
      }
    }
    return false;
  }
  function add(r) {
    placed.push(r);
    for (var cx = Math.floor(r[0] / cell); cx <= Math.floor(r[2] / cell); cx++) {
      for (var cy = Math.floor(r[1] / cell); cy <= Math.floor(r[3] / cell); cy++) {
        var key = cx + ':' + cy;
        var b = grid.get(key);
        if (!b) { b = []; grid.set(key, b); }
        b.push(r);
      }
    }
  }
  // Reserve the overlays so labels do not hide under them.
  add([0, 0, W, 40]);
  if (this.options.showLegend && this.legend.offsetWidth) {
    add([0, H - this.legend.offsetHeight - 12, this.legend.offsetWidth + 12, H]);
  }

  // Nodes are obstacles too: a label never covers a node drawn on screen.
  var obstacles = 0;
  for (var o = 0; o < this.nodes.length && obstacles < 3000; o++) {
    var on = this.nodes[o];
    var ox = t.applyX(on.x), oy = t.applyY(on.y), orr = on.r * t.k;
    if (orr < 2.5 || ox < -20 || ox > W + 20 || oy < -20 || oy > H + 20) continue;
    add([ox - orr, oy - orr, ox + orr, oy + orr]);
    obstacles++;
  }

  var budget = Math.round(clamp(W * H / 7000 * Math.sqrt(Math.max(t.k, 0.3)), 15, 400));
  var focus = this.focusSet;
  // `must` labels are drawn even when crowded (pointer, selection, start node); `first`
  // labels (search matches, neighbours of the focused node) go first but still avoid collisions.
  var must = this._origins.slice();
  if (this.selected) must.push(this.selected);
  if (this.hover) must.push(this.hover);
  var forced = must.slice();
  for (var m = 0; m < this.matches.length && m < 50; m++) forced.push(this.matches[m]);
  if (focus) {
    var f = this.hover || this.selected;
    for (var q = 0; q < f.neighbors.length && q < 200; q++) forced.push(this.nodes[f.neighbors[q]]);
  }

  ctx.font = '600 11px "Splunk Platform Sans", "Proxima Nova", Roboto, "Helvetica Neue", Arial, sans-serif';
  ctx.textBaseline = 'middle';
  ctx.lineJoin = 'round';
  var drawn = 0;
  var tried = 0;
  var seen = new Set();
  // "Hover only": just the node under the pointer and the selection.
  var hoverOnly = this.options.nodeLabels === 'never';
  if (hoverOnly) { must = must.filter(function (x) { return !x.origin; }); forced = must; }
  var order = hoverOnly ? must : forced.concat(this._labelOrder);
  for (var i = 0; i < order.length && drawn < budget + forced.length && tried < 4000; i++) {
    var n = order[i];
    if (seen.has(n.index)) continue;
    seen.add(n.index);
    var isForced = i < forced.length;
    if (focus && !focus.has(n.index) && !isForced) continue;
    var sx = t.applyX(n.x), sy = t.applyY(n.y);
    var sr = n.r * t.k;
    if (sx < -50 || sx > W + 50 || sy < -20 || sy > H + 20) continue;
    // Tiny, unremarkable nodes get a label only when zoomed in.
    if (!isForced && sr < 3.2 && !n.origin && !(n.malicious > 0)) continue;
    tried++;
    var text = n.label;
    var tw = this._labelWidth(ctx, text);
    // Candidate spots: right, left, below, above the node; the first free one wins.
    var spots = [[sx + sr + 4, sy], [sx - sr - 4 - tw, sy], [sx - tw / 2, sy + sr + 9], [sx - tw / 2, sy - sr - 9]];
    var spot = null;
    for (var c = 0; c < spots.length; c++) {
      var cand = [spots[c][0] - 2, spots[c][1] - 7, spots[c][0] + tw + 2, spots[c][1] + 7];
      if (!overlaps(cand)) { spot = spots[c]; add(cand); break; }
    }
    if (!spot) {
      if (i >= must.length) continue;
      spot = spots[0];
    }
    ctx.lineWidth = 3;
    ctx.strokeStyle = th.halo;
    ctx.strokeText(text, spot[0], spot[1]);
    ctx.fillStyle = n.malicious >= 5 ? (this.themeName === 'dark' ? '#ff8a80' : '#b3261e') : th.text;
    ctx.fillText(text, spot[0], spot[1]);
    drawn++;
  }
  this._labelsDrawn = drawn;
  this._drawEdgeLabels(ctx, overlaps, add);
};

GraphView.prototype._drawEdgeLabels = function (ctx, overlaps, add) {
  var mode = this.options.edgeLabels;
  if (mode === 'never') return;
  var t = this.transform;
  var focusNode = this.hover || this.selected;
  var all = mode === 'always' || t.k >= 1.8;
  if (!all && !focusNode) return;
  ctx.font = '10px "Splunk Platform Sans", Roboto, "Helvetica Neue", Arial, sans-serif';
  var count = 0;
  for (var i = 0; i < this.edges.length && count < 150; i++) {
    var e = this.edges[i];
    if (!e.relationship) continue;
    var isFocus = focusNode && (e.source === focusNode || e.target === focusNode);
    if (!all && !isFocus) continue;
    if (this.focusSet && !isFocus) continue;
    var x1 = t.applyX(e.source.x), y1 = t.applyY(e.source.y);
    var x2 = t.applyX(e.target.x), y2 = t.applyY(e.target.y);
    var mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
    if (mx < 0 || mx > this.width || my < 0 || my > this.height) continue;
    var len = Math.sqrt((x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1));
    var text = model.toDisplayText(e.relationship, 24) + (e.count > 1 ? ' \u00d7' + e.count : '');
    var tw = this._labelWidth(ctx, text);
    if (len < tw * 0.8) continue;
    var r = [mx - tw / 2 - 2, my - 7, mx + tw / 2 + 2, my + 7];
    if (overlaps(r)) continue;
    add(r);
    ctx.lineWidth = 3;
    ctx.strokeStyle = this.theme.halo;
    ctx.strokeText(text, mx - tw / 2, my);
    ctx.fillStyle = this.relColor(e.relationship);
    ctx.fillText(text, mx - tw / 2, my);
    count++;
  }
};

GraphView.prototype._showTooltip = function (n, sx, sy) {
  var tip = this.tooltip;
  while (tip.firstChild) tip.removeChild(tip.firstChild);
  tip.appendChild(el('div', 'vtgraph-tooltip-title', model.toDisplayText(n.id, 300)));
  var facts = model.nodeFacts(n);
  var table = el('div', 'vtgraph-tooltip-facts');
  for (var i = 0; i < facts.length; i++) {
    table.appendChild(el('div', 'vtgraph-tooltip-key', facts[i][0]));
    table.appendChild(el('div', 'vtgraph-tooltip-value', facts[i][1]));
  }
  tip.appendChild(table);
  tip.appendChild(el('div', 'vtgraph-tooltip-hint', 'Click to pivot \u00b7 drag to pin \u00b7 double-click to release'));
  tip.classList.add('vtgraph-visible');
  var tw = tip.offsetWidth, thh = tip.offsetHeight;
  var x = sx + 14, y = sy + 14;
  if (x + tw > this.width - 4) x = Math.max(4, sx - tw - 14);
  if (y + thh > this.height - 4) y = Math.max(4, sy - thh - 14);
  tip.style.left = x + 'px';
  tip.style.top = y + 'px';
};

GraphView.prototype._hideTooltip = function () {
  this.tooltip.classList.remove('vtgraph-visible');
};

GraphView.prototype._renderNotice = function () {
  var parts = [];
  var g = this.graph;
  var trunc = model.truncationNotice(g);
  if (trunc) parts.push(trunc);
  if (g && g.skippedRows) parts.push(model.formatInt(g.skippedRows) + ' row(s) without both ends were skipped.');
  this.notice.textContent = parts.join(' ');
  this.notice.classList.toggle('vtgraph-visible', parts.length > 0);
  this.notice.classList.toggle('vtgraph-truncated', !!trunc);
};

GraphView.prototype._renderLegend = function () {
  var lg = this.legend;
  while (lg.firstChild) lg.removeChild(lg.firstChild);
  lg.classList.toggle('vtgraph-visible', !!(this.graph && this.options.showLegend));
  if (!this.graph) return;
  var self = this;
  function swatch(draw) {
    var c = document.createElement('canvas');
    var dpr = window.devicePixelRatio || 1;
    c.width = 14 * dpr; c.height = 14 * dpr;
    c.className = 'vtgraph-swatch';
    var x = c.getContext('2d');
    x.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw(x);
    return c;
  }
  function row(parent, sw, text) {
    var r = el('div', 'vtgraph-legend-row');
    r.appendChild(sw);
    r.appendChild(el('span', '', text));
    parent.appendChild(r);
  }
  var types = el('div', 'vtgraph-legend-section');
  types.appendChild(el('div', 'vtgraph-legend-title', 'Node type'));
  this.graph.types.forEach(function (type) {
    row(types, swatch(function (x) {
      x.fillStyle = self.theme.unknown; x.beginPath(); shapePath(x, type, 7, 7, 5); x.fill();
    }), TYPE_LABELS[type] || type);
  });
  lg.appendChild(types);

  var risk = el('div', 'vtgraph-legend-section');
  risk.appendChild(el('div', 'vtgraph-legend-title', 'VirusTotal verdict'));
  RISK_LABELS.forEach(function (rl) {
    row(risk, swatch(function (x) {
      x.fillStyle = rl[0] === 'unknown' ? self.theme.unknown : RISK_COLORS[rl[0]];
      x.beginPath(); x.arc(7, 7, 5, 0, Math.PI * 2); x.fill();
    }), rl[1]);
  });
  if (this.graph.nodes.some(function (n) { return n.origin; })) {
    row(risk, swatch(function (x) {
      x.strokeStyle = self.theme.origin; x.lineWidth = 2; x.beginPath(); x.arc(7, 7, 5, 0, Math.PI * 2); x.stroke();
    }), 'Start indicator');
  }
  lg.appendChild(risk);

  if (this.graph.relationships.length) {
    var rels = el('div', 'vtgraph-legend-section');
    rels.appendChild(el('div', 'vtgraph-legend-title', 'Relationship'));
    this.graph.relationships.slice(0, 10).forEach(function (rel) {
      row(rels, swatch(function (x) {
        x.strokeStyle = self.relColor(rel); x.lineWidth = 2.5;
        x.beginPath(); x.moveTo(1, 7); x.lineTo(13, 7); x.stroke();
      }), model.toDisplayText(rel, 40));
    });
    if (this.graph.relationships.length > 10) {
      rels.appendChild(el('div', 'vtgraph-legend-more', '+' + (this.graph.relationships.length - 10) + ' more'));
    }
    lg.appendChild(rels);
  }
};

/** Screen-space state for tests and the benchmark (no globals: the harness asks the instance). */
GraphView.prototype.debugState = function () {
  var t = this.transform;
  return {
    width: this.width,
    height: this.height,
    canvasWidth: this.canvas.width,
    canvasHeight: this.canvas.height,
    dpr: this.dpr,
    frames: this.frames,
    drawMs: this.drawMs,
    labelsDrawn: this._labelsDrawn || 0,
    alpha: this.sim ? this.sim.alpha() : 0,
    settleMs: this.stats.settledAt ? this.stats.settledAt - this.stats.layoutStart : null,
    ticks: this.stats.ticks,
    transform: { k: t.k, x: t.x, y: t.y },
    selected: this.selected ? this.selected.id : null,
    hover: this.hover ? this.hover.id : null,
    matchInfo: this.matchInfo.textContent,
    nodes: this.nodes.map(function (n) {
      return { id: n.id, type: n.type, x: t.applyX(n.x), y: t.applyY(n.y), r: n.r * t.k,
        pinned: !!n.pinned, degree: n.degree };
    }),
  };
};

GraphView.prototype.destroy = function () {
  this._stop();
  if (this.root.parentNode) this.root.parentNode.removeChild(this.root);
};

function now() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

module.exports = { GraphView: GraphView, THEMES: THEMES, RISK_COLORS: RISK_COLORS, SETTLE_ALPHA: SETTLE_ALPHA };
