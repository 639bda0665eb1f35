'use strict';
// Static server for the browser tests, the benchmark and the preview image. Binds 127.0.0.1
// only and serves three folders: the harness page, the built bundle and require.js.
const http = require('http');
const fs = require('fs');
const path = require('path');

const VIZ_ROOT = path.resolve(__dirname, '..');
const ROUTES = {
  '/harness/': path.join(VIZ_ROOT, 'harness'),
  '/viz/': path.resolve(VIZ_ROOT, '../../appserver/static/visualizations/vtgraph'),
  '/vendor/': path.join(VIZ_ROOT, 'node_modules/requirejs'),
};
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.json': 'application/json' };

function resolve(urlPath) {
  for (const prefix of Object.keys(ROUTES)) {
    if (urlPath.startsWith(prefix)) {
      const base = ROUTES[prefix];
      const file = path.resolve(base, '.' + path.posix.normalize('/' + urlPath.slice(prefix.length)));
      if (file === base || !file.startsWith(base + path.sep)) return null;
      return file;
    }
  }
  return null;
}

/** Start the server on 127.0.0.1 and a free port. Resolves to {url, close()}. */
function startServer() {
  return new Promise((resolveStart, reject) => {
    const server = http.createServer((req, res) => {
      const urlPath = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
      const file = resolve(urlPath);
      if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
        'cache-control': 'no-store' });
      fs.createReadStream(file).pipe(res);
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolveStart({ url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

module.exports = { startServer };
