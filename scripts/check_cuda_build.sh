#!/usr/bin/env bash
# Checks the CUDA backend builds and its tests run: configures a separate build directory with
# -DMAE_WITH_CUDA=ON, builds test_cuda (every CUDA kernel and cuBLAS call compiled and linked), and
# runs `ctest -R cuda`. On a machine without a GPU the test exits 77 and CTest reports it as
# skipped, which is a success here; on a GPU machine it runs every CUDA test.
#
#   scripts/check_cuda_build.sh               # build dir: build-cuda, 2 jobs
#   BUILD_DIR=/tmp/b JOBS=8 CUDACXX=/opt/cuda/bin/nvcc CUDA_ARCHS=native scripts/check_cuda_build.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build-cuda}
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
jobs=${JOBS:-2}

if [[ ! -x $nvcc ]]; then
  echo "check_cuda_build: nvcc not found at '$nvcc' (set CUDACXX)" >&2
  exit 1
fi
if ! grep -Eq 'add_subdirectory\(\s*cuda\s*\)' "$root/tests/CMakeLists.txt"; then
  echo "check_cuda_build: tests/CMakeLists.txt does not add tests/cuda; it needs:" >&2
  printf '  if(MAE_WITH_CUDA)\n    add_subdirectory(cuda)\n  endif()\n' >&2
  exit 1
fi

archs=()
[[ -n ${CUDA_ARCHS:-} ]] && archs=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS")
cmake -S "$root" -B "$build" -DMAE_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" -DMAE_BUILD_TESTS=ON \
  -DMAE_BUILD_EXAMPLES=OFF -DMAE_BUILD_BENCHMARKS=OFF "${archs[@]}"
cmake --build "$build" --target test_cuda -j "$jobs"

cd "$build"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ctest -R '^cuda\.' --output-on-failure 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if ! grep -q 'cuda.test_cuda' "$log"; then
  echo "check_cuda_build: ctest found no test named cuda.test_cuda" >&2
  exit 1
fi
if [[ $rc -ne 0 ]]; then
  echo "check_cuda_build: CUDA tests FAILED (ctest exit $rc)" >&2
  exit "$rc"
fi
if grep -q '\*\*\*Skipped' "$log"; then
  echo "check_cuda_build: built and linked; no CUDA device here, so cuda.test_cuda was skipped (exit 77)"
else
  echo "check_cuda_build: built, linked and every CUDA test passed on the device"
fi
