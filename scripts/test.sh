#!/usr/bin/env bash
# Set up (if needed) and run every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check robyn_server tools_agent tests scripts
exec .venv/bin/python -m pytest -q "$@"
