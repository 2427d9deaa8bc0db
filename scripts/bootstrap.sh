# Sourced by scripts/dev, scripts/test and .ci/run: make sure uv exists and the locked
# dependencies are installed in .venv. Safe to run repeatedly; it does nothing when up to date.
set -euo pipefail

if ! command -v uv >/dev/null 2>&1; then
  if ! python3 -m uv --version >/dev/null 2>&1; then
    echo "bootstrap: installing uv from PyPI" >&2
    python3 -m pip install --quiet --disable-pip-version-check uv
  fi
  uv() { python3 -m uv "$@"; }
  export -f uv
fi
uv sync --frozen --quiet
