#!/usr/bin/env bash
# Installs what is missing (build deps + Debian's dataset-fashion-mnist), builds, and runs the main
# job: pretrain_tiny on Fashion-MNIST. Extra arguments go to pretrain_tiny, e.g. --epochs 2.
#   scripts/run_pretrain.sh [pretrain_tiny options]       (output in runs/pretrain_tiny)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh --data
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMAE_BUILD_EXAMPLES=ON
cmake --build build -j"$(nproc)" --target pretrain_tiny
exec ./build/examples/pretrain_tiny "$@"
