#!/usr/bin/env bash
# Debian packages the tests and the demo need: libmagic1 (AppInspect), redis-server (the
# shared-backend tests), chromium (the graph and setup-page browser tests, the demo's PNG).
# Installs what is missing when run as root (CI, a fresh machine); otherwise says what to run.
# Usage: system_deps.sh [--required]   (--required: exit 1 when something stays missing)
set -u
packages=(libmagic1 redis-server chromium)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "system_deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null && exit 0
fi
echo "system_deps: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
[ "${1:-}" = "--required" ] && exit 1
exit 0
