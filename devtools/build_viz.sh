#!/usr/bin/env bash
# Build the vtgraph custom visualization (src/viz -> appserver/static/visualizations/vtgraph/).
#   - `npm ci` only when src/viz/node_modules is missing or package-lock.json changed;
#   - webpack (production, deterministic) only when the sources, the lock file or the
#     webpack config changed, or the bundle is missing/modified.
# Idempotent: a second run with nothing changed does no work and exits 0 in well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VIZ="$ROOT/src/viz"
OUT_DIR="$ROOT/appserver/static/visualizations/vtgraph"
BUNDLE="$OUT_DIR/visualization.js"
LOCK_STAMP="$VIZ/node_modules/.vtpivot-lock.sha256"
BUILD_STAMP="$VIZ/node_modules/.vtpivot-build.sha256"

command -v node >/dev/null || { echo "build_viz: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "build_viz: npm is not installed" >&2; exit 1; }

lock_sum="$(sha256sum "$VIZ/package-lock.json" "$VIZ/package.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -d "$VIZ/node_modules" || ! -f "$LOCK_STAMP" || "$(cat "$LOCK_STAMP")" != "$lock_sum" ]]; then
  echo "build_viz: npm ci (node_modules missing or package-lock.json changed)"
  (cd "$VIZ" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$LOCK_STAMP"
fi

# Everything the bundle depends on, plus the bundle itself (rebuild if someone edited it).
inputs_sum() {
  {
    find "$VIZ/src" -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum "$VIZ/webpack.config.js" "$VIZ/package-lock.json"
    node --version
    if [[ -f "$BUNDLE" ]]; then sha256sum "$BUNDLE"; else echo "no bundle"; fi
  } | sha256sum | cut -d' ' -f1
}

current="$(inputs_sum)"
if [[ -f "$BUILD_STAMP" && "$(cat "$BUILD_STAMP")" == "$current" ]]; then
  echo "build_viz: up to date ($BUNDLE)"
  exit 0
fi

echo "build_viz: webpack --mode production"
mkdir -p "$OUT_DIR"
(cd "$VIZ" && ./node_modules/.bin/webpack --mode production --no-stats >/dev/null)
# Vetting aids: the bundle must not carry eval, source maps or remote script URLs.
if grep -qE '(^|[^A-Za-z0-9_.])eval\(|sourceMappingURL' "$BUNDLE"; then
  echo "build_viz: bundle contains eval or a source map reference" >&2
  exit 1
fi
inputs_sum > "$BUILD_STAMP"
echo "build_viz: wrote $BUNDLE ($(wc -c < "$BUNDLE") bytes, sha256 $(sha256sum "$BUNDLE" | cut -c1-12))"
