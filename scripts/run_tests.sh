#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite.
#   scripts/run_tests.sh [build-dir]          (default: build)
# Fixtures are read from ../shared/fixtures (override with MAE_FIXTURES=/path/to/fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash scripts/install_deps.sh --test --data
jobs=$(nproc)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$jobs"
cd "$build"
ctest --output-on-failure -j"$jobs" --timeout 900
