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
  # Two workers, each taking whole test files (module fixtures are built once): CI's two
  # cores run the suite in about 6 minutes instead of 11. `-n 0` after it runs in one process.
  test) shift; setup; exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@" ;;
  setup) setup ;;
  *) echo "usage: ./dev.sh demo|test|setup [args]" >&2; exit 2 ;;
esac
