#!/usr/bin/env bash
# Installs the Debian packages mae.cpp needs, only those that are missing.
#   scripts/install_deps.sh            build dependencies (compiler, Eigen, oneDNN, stb, json, Catch2)
#   scripts/install_deps.sh --test     also PyTorch + NumPy: the tests that check against the official
#                                      model in PyTorch (they are skipped where torch is missing)
#   scripts/install_deps.sh --data     also the Fashion-MNIST dataset (for pretrain_tiny)
#   scripts/install_deps.sh --bench    also PyTorch + NumPy + OpenBLAS (the peer in benchmarks/)
set -euo pipefail
pkgs=(build-essential cmake libeigen3-dev libdnnl-dev ocl-icd-opencl-dev libstb-dev nlohmann-json3-dev catch2)
for arg in "$@"; do
  case "$arg" in
    --data) pkgs+=(dataset-fashion-mnist) ;;
    --test) pkgs+=(python3-torch python3-numpy) ;;
    --bench) pkgs+=(python3-torch python3-numpy libopenblas0-openmp) ;;  # torch without OpenBLAS runs ~5 GFLOP/s
    *) echo "install_deps.sh: unknown option '$arg' (expected --test, --data or --bench)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps.sh: all ${#pkgs[@]} packages already installed"
  exit 0
fi
echo "install_deps.sh: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
