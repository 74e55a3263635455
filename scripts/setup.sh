#!/usr/bin/env bash
# Creates .venv and installs the project with its dev, analysis and gpu extras; installs Debian's Chromium for the
# browser tests when asked (--browser) and missing. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.floodlight-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  echo "== installing Python dependencies (pinned in pyproject.toml, all versions in requirements.lock)"
  .venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
  # torch first, alone: pinned to the CPU wheel the machine provides (no CUDA download).
  .venv/bin/python -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
  # The demo and the tests need every part: the generator (gpu), the analysis and the test tools.
  .venv/bin/python -m pip install --quiet -c requirements.lock -e ".[dev,analysis,gpu]" 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c "import django, torch, celery, pandas, statsmodels, pgeocode" 
  touch "$stamp"
fi

# The test tools from Debian: chromium (browser tests), npm (axe-core for the accessibility
# checks) and a Compose client (validates docker-compose.yml) when neither the v2 plugin nor
# docker-compose is there.
if [ "${1:-}" = "--browser" ]; then
  missing=""
  command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
  command -v npm >/dev/null 2>&1 || missing="$missing npm"
  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    missing="$missing docker-compose"
  fi
  if [ -n "$missing" ]; then
    echo "== installing Debian's$missing for the tests"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

# axe-core, pinned in package.json / package-lock.json, into node_modules/ (the browser tests
# inject node_modules/axe-core/axe.min.js into each page).
if [ "${1:-}" = "--browser" ]; then
  if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "== installing axe-core (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
