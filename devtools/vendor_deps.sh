#!/usr/bin/env bash
# Build the vendored library folder the app ships (lib/), reproducibly and pure-Python only.
# A real Python 3.9 pip resolves the pins so nothing needs a newer interpreter; --platform any
# refuses compiled wheels (charset-normalizer, for one, prefers a mypyc build otherwise).
set -euo pipefail
out=${1:-lib}
py=${PY39:?set PY39 to a Python 3.9 interpreter}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip install -q --disable-pip-version-check --no-compile --target "$tmp/lib" \
  --only-binary=:all: --platform any --implementation py --python-version 3.9 \
  -r "$here/requirements.txt"
"$py" -m pip install -q --disable-pip-version-check --no-compile --target "$tmp/lib" \
  --no-deps --use-pep517 -r "$here/requirements-splunksdk.txt"
# Wheels' console scripts and metadata folders are not needed inside Splunk.
rm -rf "$tmp/lib/bin"
find "$tmp/lib" -name '__pycache__' -type d -prune -exec rm -rf {} +
find "$tmp/lib" \( -name '*.so' -o -name '*.pyd' -o -name '*.dylib' \) -print -delete
find "$tmp/lib" -type f -exec chmod 644 {} +
find "$tmp/lib" -type d -exec chmod 755 {} +
rm -rf "$out"
mv "$tmp/lib" "$out"
echo "vendored $(ls "$out" | grep -cE 'dist-info|egg-info') distributions into $out"
