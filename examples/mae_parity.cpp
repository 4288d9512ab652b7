// mae_parity: runs a reference fixture folder through mae.cpp and writes every result with the
// fixture's names, for comparison with the official PyTorch MAE's expected.safetensors.
//   mae_parity <fixture-dir> [--dtype f32|f64] [--backend eigen|onednn] --out <file.safetensors>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"
#include "mae/io/fixtures.hpp"
#ifdef MAE_HAVE_CUDA
#include "mae/backend/cuda.hpp"  // this file is then compiled by nvcc (examples/cuda/*.cu)
#endif

namespace {
void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: mae_parity <fixture-dir> [--dtype f32|f64] [--backend eigen|onednn|cuda] --out <file.safetensors>\n"
               "  Reads config.json, weights.safetensors and inputs.safetensors from <fixture-dir> and writes\n"
               "  loss, pred, mask, ids_restore, ids_shuffle, latent, target, features and grad.<name>\n"
               "  (training fixtures: loss.<i>, param.<s>.<name>, exp_avg.<name>, exp_avg_sq.<name>).\n");
}

template <class T, class B>
void run(const std::string& dir, const std::string& out_path) {
  B be;
  mae::io::SafeTensorsWriter out;
  mae::io::run_fixture<T>(dir, be, out, [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); });
  out.set_metadata("producer", std::string("mae.cpp ") + mae::version_string + " mae_parity");
  out.set_metadata("backend", B::name);
  out.set_metadata("dtype", sizeof(T) == 8 ? "f64" : "f32");
  out.write(out_path);
}
}  // namespace

int main(int argc, char** argv) {
  std::string dir, out, dtype = "f64", backend = "eigen";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) throw mae::Error(std::string(flag) + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--out") out = value("--out");
      else if (a == "--dtype") dtype = value("--dtype");
      else if (a == "--backend") backend = value("--backend");
      else if (a == "-h" || a == "--help") return usage(stdout), 0;
      else if (!a.empty() && a[0] == '-') throw mae::Error("unknown option '" + a + "'");
      else if (dir.empty()) dir = a;
      else throw mae::Error("unexpected argument '" + a + "'");
    } catch (const mae::Error& e) {
      std::fprintf(stderr, "mae_parity: %s\n", e.what());
      usage(stderr);
      return 2;
    }
  }
  if (dir.empty() || out.empty() || (dtype != "f32" && dtype != "f64") ||
      (backend != "eigen" && backend != "onednn" && backend != "cuda")) {
    usage(stderr);
    return 2;
  }
  try {
    std::fprintf(stderr, "mae_parity: %s (%s, %s) -> %s\n", dir.c_str(), dtype.c_str(), backend.c_str(), out.c_str());
    if (backend == "cuda") {
#ifdef MAE_HAVE_CUDA
      if (dtype == "f32") run<float, mae::Cuda>(dir, out); else run<double, mae::Cuda>(dir, out);
#else
      throw mae::Error("this build has no CUDA backend (configure with -DMAE_WITH_CUDA=ON)");
#endif
    } else if (backend == "onednn") {
#ifdef MAE_HAVE_ONEDNN
      if (dtype == "f32") run<float, mae::OneDnn>(dir, out); else run<double, mae::OneDnn>(dir, out);
#else
      throw mae::Error("this build has no oneDNN backend (configure with -DMAE_WITH_ONEDNN=ON)");
#endif
    } else {
      if (dtype == "f32") run<float, mae::CpuEigen>(dir, out); else run<double, mae::CpuEigen>(dir, out);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mae_parity: error: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "mae_parity: wrote %s\n", out.c_str());
  return 0;
}
