#!/usr/bin/env bash
# Install the official server (`langgraph dev`, pinned) into .venv-reference/ for tests/test_differential.py.
# Never into .venv: the two servers' dependencies must not mix. Idempotent: a stamp of the pins skips the install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PINS=(
  "langgraph-cli[inmem]==0.4.40"
  "langgraph-api==0.16.7"
  "langgraph-runtime-inmem==0.36.7"
  "langgraph-sdk==0.4.14"
)
stamp=.venv-reference/.installed-$(printf '%s\n' "${PINS[@]}" | sha1sum | cut -c1-12)
[ -f "$stamp" ] && exit 0
[ -x .venv-reference/bin/python ] || "$PY" -m venv .venv-reference
.venv-reference/bin/pip install --quiet --disable-pip-version-check "${PINS[@]}"
rm -f .venv-reference/.installed-*
touch "$stamp"
