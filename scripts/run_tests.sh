#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite.
#   scripts/run_tests.sh [build-dir]          (default: build)
# Fixtures are read from ../shared/fixtures (override with MAE_FIXTURES=/path/to/fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash scripts/install_deps.sh
# Optional: PyTorch (the official model, for the tests that compare against it) and the Fashion-MNIST
# files; the tests that need them are skipped where they are missing.
bash scripts/install_deps.sh --test --data ||
  echo "run_tests.sh: warning: optional packages could not be installed; tests that need them will be skipped" >&2
jobs=$(nproc)
cuda=()
# The CUDA backend and its tests are compiled wherever the toolkit is; without a GPU its test
# executable exits 77 and ctest reports it as skipped.
nvcc=$(command -v nvcc || true)
[ -n "$nvcc" ] || [ ! -x /usr/local/cuda/bin/nvcc ] || nvcc=/usr/local/cuda/bin/nvcc
[ -z "$nvcc" ] || cuda=(-DMAE_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc")
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMAE_BUILD_TESTS=ON -DMAE_BUILD_EXAMPLES=ON "${cuda[@]}"
cmake --build "$build" -j"$jobs"
cd "$build"
ctest --output-on-failure -j"$jobs" --timeout 900
