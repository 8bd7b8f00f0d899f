#!/usr/bin/env bash
# Install what the browser tests need: Debian's chromium (when missing, as root) and the pinned npm packages
# (`npm ci` from package-lock.json). Called by scripts/test.sh. In CI (CI=true) anything missing is an error;
# elsewhere it is a warning and tests/test_browser.py skips itself with the reason.
set -uo pipefail
cd "$(dirname "$0")"

in_ci() { case "${CI:-}" in 1 | true | TRUE | True | yes) return 0 ;; esac; return 1; }
problem() {
  if in_ci; then
    echo "browser setup: $1" >&2
    exit 1
  fi
  echo "browser setup: $1; the browser tests will be skipped" >&2
  exit 0
}

if [ -z "${CHROMIUM_PATH:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser setup: installing Debian's chromium" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
      problem "apt-get install chromium failed"
  else
    problem "chromium is not installed and this is not root (install it with: sudo apt-get install chromium)"
  fi
fi

command -v npm >/dev/null 2>&1 || problem "npm not found (install Node.js 20 or newer)"
stamp="node_modules/.installed-$(sha1sum package-lock.json | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  npm ci --no-audit --no-fund --loglevel=error || problem "npm ci in tests/browser failed"
  touch "$stamp"
fi
