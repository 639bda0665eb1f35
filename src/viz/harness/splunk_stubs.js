/*
 * Stand-ins for Splunk Web's api/SplunkVisualizationBase and api/SplunkVisualizationUtils,
 * just enough of the documented custom visualization API to run the real bundle:
 * extend(), initialize(), el, getPropertyNamespaceInfo(), drilldown(), remove() and the
 * constants. Drilldown payloads are recorded in window.__drilldowns for the tests.
 */
window.__drilldowns = [];
window.__theme = 'light';

define('api/SplunkVisualizationBase', [], function () {
  function Base(options) {
    this.el = options.el;
    this.initialize.apply(this, arguments);
  }
  Base.prototype.initialize = function () {};
  Base.prototype.getPropertyNamespaceInfo = function () {
    return { propertyNamespace: 'display.visualizations.custom.vtpivot.vtgraph.' };
  };
  Base.prototype.drilldown = function (payload, browserEvent) {
    window.__drilldowns.push({ action: payload.action, data: payload.data, hasEvent: !!browserEvent });
  };
  Base.prototype.invalidateUpdateView = function () {};
  Base.prototype.invalidateReflow = function () {};
  Base.prototype.remove = function () {
    while (this.el.firstChild) this.el.removeChild(this.el.firstChild);
  };
  Base.extend = function (proto) {
    var Parent = this;
    function Child() { Parent.apply(this, arguments); }
    Child.prototype = Object.create(Parent.prototype);
    Object.keys(proto).forEach(function (k) { Child.prototype[k] = proto[k]; });
    Child.prototype.constructor = Child;
    Child.extend = Parent.extend;
    return Child;
  };
  Base.ROW_MAJOR_OUTPUT_MODE = 'json_rows';
  Base.COLUMN_MAJOR_OUTPUT_MODE = 'json_cols';
  Base.RAW_OUTPUT_MODE = 'json';
  Base.FIELD_VALUE_DRILLDOWN = 'fieldvalue';
  Base.GEOSPATIAL_DRILLDOWN = 'geoviz';
  return Base;
});

define('api/SplunkVisualizationUtils', [], function () {
  return {
    getCurrentTheme: function () { return window.__theme; },
    normalizeBoolean: function (v) {
      return v === true || v === 1 || /^(true|1|yes|on|t|y)$/i.test(String(v));
    },
    escapeHtml: function (s) {
      return String(s).replace(/[&<>"']/g, function (c) {
        return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
      });
    },
  };
});
