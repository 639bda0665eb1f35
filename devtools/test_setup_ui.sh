#!/usr/bin/env bash
# Browser + unit tests of the setup page (src/setup_test): headless /usr/bin/chromium driven by
# playwright-core against devtools/fakesplunkd. Never downloads a browser.
# Usage: bash devtools/test_setup_ui.sh   (from anywhere; the Makefile calls it from `make test`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/src/setup_test"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --ignore-scripts >/dev/null
fi
export VTPIVOT_PYTHON="${VTPIVOT_PYTHON:-$ROOT/.venv/py313/bin/python}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
mkdir -p "$ROOT/tests/out/setup"
set +e
node --test --test-reporter=tap api.test.js setup_page.test.js > "$ROOT/tests/out/setup/node_test.tap" 2>&1
status=$?
set -e
# The runner's summary (tests / pass / fail), then where the full report and screenshot are.
grep -E '^# (tests|pass|fail) ' "$ROOT/tests/out/setup/node_test.tap" | tr '\n' ' '; echo
if [ $status -ne 0 ]; then grep -E '^not ok|error:' -A3 "$ROOT/tests/out/setup/node_test.tap" | head -40; fi
echo "report: tests/out/setup/node_test.tap  screenshot: tests/out/setup/setup_page.png"
exit $status
