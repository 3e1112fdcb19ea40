#!/usr/bin/env bash
# Many SIGKILL crash trials (tests/pipelines/test_crash.py): ./benchmarks/crash_trials.sh [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PREFECT_HOME="$(mktemp -d)" PREFECT_SERVER_ANALYTICS_ENABLED=false SUPREL_CRASH_TRIALS="${1:-100}"
exec .venv/bin/python -m pytest tests/pipelines/test_crash.py -q -s -p no:warnings
