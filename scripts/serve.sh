#!/usr/bin/env bash
# Set up (if needed) and start the server on its embedded default. Extra arguments go to robyn-server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m robyn_server "$@"
