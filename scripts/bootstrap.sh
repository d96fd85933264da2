# Sourced by scripts/demo.sh and scripts/test.sh: a virtual environment from
# pyproject.toml, rebuilt when pyproject.toml changes, and Debian packages on demand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"

ensure_venv() {  # ensure_venv EXTRAS
  local extras="$1" stamp want
  want="$(sha256sum pyproject.toml | cut -c1-16)-$extras"
  stamp="$VENV/.modelpin-stamp"
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> setting up $VENV ($extras)" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e ".[$extras]"
    echo "$want" > "$stamp"
  fi
}

APT_UPDATED=0
ensure_debian() {  # ensure_debian COMMAND PACKAGE...
  local cmd="$1"; shift
  if ! command -v "$cmd" >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      echo "error: '$cmd' is missing; install Debian package(s): $*" >&2
      exit 2
    fi
    echo "==> installing $* from Debian's packages" >&2
    if [ "$APT_UPDATED" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}
