'use strict';
// Builds the vtgraph custom visualization as one AMD module for Splunk Web.
// Output: <app>/appserver/static/visualizations/vtgraph/visualization.js (not committed;
// run `make viz` / devtools/build_viz.sh).
const path = require('path');
const TerserPlugin = require('terser-webpack-plugin');

module.exports = {
  mode: 'production',
  entry: path.resolve(__dirname, 'src/visualization_source.js'),
  output: {
    path: path.resolve(__dirname, '../../appserver/static/visualizations/vtgraph'),
    filename: 'visualization.js',
    libraryTarget: 'amd',
    clean: false, // the folder also holds formatter.html, visualization.css and preview.png
  },
  externals: ['api/SplunkVisualizationBase', 'api/SplunkVisualizationUtils'],
  devtool: false, // no source maps in the app package
  target: ['web', 'es2017'],
  node: { global: false },
  performance: { hints: false },
  optimization: {
    moduleIds: 'deterministic',
    chunkIds: 'deterministic',
    minimize: true,
    minimizer: [new TerserPlugin({
      extractComments: false, // no visualization.js.LICENSE.txt next to the bundle
      terserOptions: {
        mangle: true, // minified, readable structure: no obfuscation
        format: { comments: false, preamble: '/* vtpivot vtgraph visualization. Bundles d3-force, d3-quadtree, d3-zoom, d3-drag, d3-selection (ISC License, Mike Bostock). Sources: src/viz in the vtpivot repository. */' },
      },
    })],
  },
};
