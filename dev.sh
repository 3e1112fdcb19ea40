#!/usr/bin/env bash
# One command to set up and run:   ./dev.sh demo   |   ./dev.sh test [pytest args]
# Needs only Python 3.11 and the package registries. Creates .venv/ beside this file.
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  [ -x .venv/bin/python ] || python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv
  # Compiled bytecode keeps imports fast even where PYTHONDONTWRITEBYTECODE is set.
  # The spark extra is optional for users; developers and CI get it, so the suite runs the
  # Spark parity test (tests/pipelines/test_spark_parity.py; Spark also needs Java 17).
  .venv/bin/python -m uv pip install --quiet --compile-bytecode --python .venv/bin/python -e ".[dev,spark]"
}

case "${1:-}" in
  demo) shift; setup; exec .venv/bin/suprel demo "$@" ;;
  test) shift; setup; exec .venv/bin/python -m pytest "$@" ;;
  setup) setup ;;
  *) echo "usage: ./dev.sh demo|test|setup [args]" >&2; exit 2 ;;
esac
