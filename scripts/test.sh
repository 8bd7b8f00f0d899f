#!/usr/bin/env bash
# Set up (if needed) and run every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The official server, pinned, in .venv-reference/ for tests/test_differential.py (which fails in CI without it)
scripts/setup_reference.sh || echo "test.sh: the reference server could not be installed" >&2
tests/browser/setup.sh  # Chromium + npm packages for tests/test_browser.py
.venv/bin/ruff check robyn_server tools_agent tests scripts

# The suite runs three times: on memory (everything), then the tests that drive the session server again on
# SQLite and on Postgres (TEST_STORAGE; tests/conftest.py creates a fresh Postgres database for that pass and
# drops it afterwards). Storage contract, restart and recovery tests cover every backend in the first pass.
# Each pass runs on two pytest-xdist workers (TEST_WORKERS), one test file per worker at a time: most tests
# wait on server processes, so two workers keep both cores busy.
status=0
run_pass() {
  echo "== pytest, session server on $1" >&2
  TEST_STORAGE=$1 .venv/bin/python -m pytest -q -n "${TEST_WORKERS:-2}" --dist loadfile "${@:2}" || status=1
}
run_pass memory "$@"
run_pass sqlite "$@"
if reason=$(.venv/bin/python -c 'from tests.server import postgres_unreachable as u; r = u(); print(r or ""); raise SystemExit(bool(r))'); then
  run_pass postgres "$@"
elif [ "${REQUIRE_POSTGRES:-}" = 1 ]; then
  echo "test.sh: REQUIRE_POSTGRES=1 but $reason" >&2
  status=1
else
  echo "test.sh: skipping the Postgres pass: $reason (set REQUIRE_POSTGRES=1 to fail instead)" >&2
fi
exit $status
