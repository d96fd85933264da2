#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then lint, types, tests.
source "$(dirname "$0")/bootstrap.sh"
ensure_debian redis-server redis-server
ensure_debian prometheus prometheus
ensure_debian chromium chromium chromium-driver
ensure_venv "test,dev,bets"
echo "==> ruff" >&2
"$VENV/bin/ruff" check compiler tests benchmarks
echo "==> mypy --strict" >&2
"$VENV/bin/mypy" compiler/modelpin
echo "==> pytest" >&2
exec "$VENV/bin/pytest" -q "$@"
