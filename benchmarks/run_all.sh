#!/bin/sh
# The one command: build the benchmarks if needed, check the PyTorch peer against the parity
# fixtures, then run mae.cpp and PyTorch alternately on every config and mode and print the table
# (see README.md). Arguments go to compare.py, e.g.
#   benchmarks/run_all.sh                       # everything, ~11 min on 2 idle cores
#   benchmarks/run_all.sh --config tiny32 --mode train
#   benchmarks/run_all.sh --update-readme       # also rewrite README.md's results section
# Environment: MAE_BENCH_BUILD (build folder, default build-bench), MAE_FIXTURES (default ../shared/fixtures).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
build=${MAE_BENCH_BUILD:-$repo/build-bench}

bash "$repo/scripts/install_deps.sh" --bench >&2
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DMAE_BUILD_TESTS=OFF -DMAE_BUILD_EXAMPLES=OFF \
    -DMAE_BUILD_BENCHMARKS=ON >&2
fi
cmake --build "$build" --target bench_step bench_layers bench_gemm -j2 >&2

exec /usr/bin/python3 "$here/compare.py" --build-dir "$build" "$@"
