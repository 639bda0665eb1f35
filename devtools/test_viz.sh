#!/usr/bin/env bash
# Build the vtgraph visualization (if needed) and run its tests: node's test runner on the
# pure data-shaping module and on the built bundle in headless Chromium.
# Screenshots of each run: tests/out/viz/*.png. Exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/devtools/build_viz.sh"
cd "$ROOT/src/viz"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
npm test --silent 2>&1 | tee "$log" | grep -E '^(not ok|# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms))' 
status=${PIPESTATUS[0]}
set -e
if [[ $status -ne 0 ]]; then
  echo "test_viz: FAILED; details:" >&2
  grep -E -A25 '^\s*not ok' "$log" >&2 || true
  exit "$status"
fi
echo "test_viz: screenshots in $ROOT/tests/out/viz/"
