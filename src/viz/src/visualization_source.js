'use strict';
/*
 * Splunk glue for the vtgraph custom visualization (Simple XML): data params, formatData,
 * updateView, reflow and drilldown. Data shaping lives in model.js, drawing in render.js.
 *
 * Drilldown: a click on a node calls
 *   this.drilldown({action: FIELD_VALUE_DRILLDOWN, data: {node, node_type, <domain|ip|hash|url>}})
 * so a dashboard can use $click.value$ (the node), $row.node$, $row.node_type$ and, for a
 * domain node, $row.domain$ (ip: $row.ip$, file: $row.hash$).
 */
var SplunkVisualizationBase = require('api/SplunkVisualizationBase');
var SplunkVisualizationUtils = require('api/SplunkVisualizationUtils');
var model = require('./model');
var GraphView = require('./render').GraphView;

var OPTION_DEFAULTS = { sizeBy: 'degree', edgeLabels: 'auto', nodeLabels: 'auto', showLegend: 'true' };

module.exports = SplunkVisualizationBase.extend({
  initialize: function () {
    SplunkVisualizationBase.prototype.initialize.apply(this, arguments);
    this.el.classList.add('vtgraph-container');
    var self = this;
    this._view = new GraphView(this.el, {
      onNodeClick: function (node, event) { self._drilldownNode(node, event); },
    });
    this._lastGraph = null;
  },

  getInitialDataParams: function () {
    return {
      outputMode: SplunkVisualizationBase.ROW_MAJOR_OUTPUT_MODE,
      count: model.ROW_CAP,
    };
  },

  formatData: function (data) {
    // Never throw: malformed or empty data becomes a message drawn inside the panel.
    try {
      return model.buildGraph(data, { cap: model.ROW_CAP });
    } catch (err) {
      return { ok: false, kind: 'malformed', message: 'The results could not be read: ' + (err && err.message) };
    }
  },

  _option: function (config, name) {
    var ns = this.getPropertyNamespaceInfo().propertyNamespace;
    var v = config ? config[ns + name] : undefined;
    return v === undefined || v === null || v === '' ? OPTION_DEFAULTS[name] : String(v);
  },

  _theme: function () {
    try {
      return SplunkVisualizationUtils.getCurrentTheme && SplunkVisualizationUtils.getCurrentTheme() === 'dark'
        ? 'dark' : 'light';
    } catch (e) {
      return 'light';
    }
  },

  updateView: function (graph, config) {
    var view = this._view;
    view.setTheme(this._theme());
    var sizeBy = this._option(config, 'sizeBy');
    var edgeLabels = this._option(config, 'edgeLabels');
    view.setOptions({
      sizeBy: sizeBy === 'count' ? 'count' : 'degree',
      edgeLabels: ['auto', 'always', 'never'].indexOf(edgeLabels) >= 0 ? edgeLabels : 'auto',
      nodeLabels: this._option(config, 'nodeLabels') === 'never' ? 'never' : 'auto',
      showLegend: SplunkVisualizationUtils.normalizeBoolean
        ? SplunkVisualizationUtils.normalizeBoolean(this._option(config, 'showLegend'))
        : this._option(config, 'showLegend') !== 'false',
    });
    if (!graph) {
      graph = { ok: false, kind: 'empty', message: 'No results: the search returned no rows to draw.' };
    }
    if (graph === this._lastGraph) return; // config-only update: keep the layout
    this._lastGraph = graph;
    if (!graph.ok) {
      view.showMessage(graph.kind, graph.message);
    } else {
      view.setGraph(graph);
    }
  },

  reflow: function () {
    this._view.resize();
  },

  _drilldownNode: function (node, event) {
    this.drilldown({
      action: SplunkVisualizationBase.FIELD_VALUE_DRILLDOWN,
      data: model.drilldownData(node),
    }, event);
  },

  remove: function () {
    if (this._view) this._view.destroy();
    return SplunkVisualizationBase.prototype.remove.apply(this, arguments);
  },

  // For the test harness and the benchmark only.
  debugState: function () {
    return this._view.debugState();
  },
});
