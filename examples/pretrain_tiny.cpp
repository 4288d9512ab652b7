// pretrain_tiny: MAE pretraining with the official recipe, by default a small ViT on Fashion-MNIST
// (Debian's dataset-fashion-mnist) that trains in minutes on two cores. Writes into --out:
// checkpoint.safetensors, model.safetensors, log.jsonl and recon_<epoch>.png.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"
#include "mae/train/trainer.hpp"
#ifdef MAE_HAVE_CUDA
#include "mae/backend/cuda.hpp"  // this file is then compiled by nvcc (examples/cuda/*.cu)
#endif

namespace {
const char* kUsage = R"(usage: pretrain_tiny [options]
  --config FILE        JSON config (fields as in TrainConfig; a "preset" plus overrides)
  --preset NAME        fmnist_tiny (default), vit_base_patch16, vit_large_patch16, vit_huge_patch14
  --data PATH          IDX folder/file (MNIST family) or ImageFolder root  [/usr/share/datasets/fashion-mnist]
  --out DIR            output folder                                      [runs/pretrain_tiny]
  --epochs N  --warmup-epochs N  --batch N  --accum-iter N  --max-steps N (iterations this run)
  --blr X  --lr X (absolute, overrides blr)  --min-lr X  --weight-decay X  --mask-ratio X
  --seed N  --threads N  --log-every N  --recon-images N
  --no-augment         resize instead of RandomResizedCrop + flip
  --skip-bad-images    skip (and count) unreadable images instead of stopping
  --dtype f32|f64      --backend onednn|eigen|cuda
  --resume FILE        continue from a checkpoint.safetensors, bit for bit
  --full               the paper's schedule: 800 epochs, 40 warmup, blr 1.5e-4, effective batch 4096
)";

long long parse_int(const std::string& flag, const std::string& v) {
  std::size_t used = 0;
  long long x = 0;
  try {
    x = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty()) throw mae::Error(flag + " expects an integer, got '" + v + "'");
  return x;
}
double parse_real(const std::string& flag, const std::string& v) {
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty()) throw mae::Error(flag + " expects a number, got '" + v + "'");
  return x;
}

template <class T, class B>
void train(const mae::TrainConfig& cfg, const std::string& resume) {
  B be;
  mae::Trainer<T, B>(cfg, be, resume).run();
}
}  // namespace

int main(int argc, char** argv) {
  // OpenMP's wait policy is the runtime's default (spin briefly, then sleep) unless OMP_WAIT_POLICY
  // is set in the environment. libgomp reads it when it is loaded, before main, so a setenv here
  // would have no effect (an earlier version tried that; it never took). Passive waiting costs a
  // wake-up per parallel region, 30-140 us on a 2-core VM, where the default run then trains at
  // 390 instead of 720 img/s; on a machine busy with other work it can still be the better choice
  // (benchmarks/README.md).
  try {
    mae::TrainConfig cfg = mae::preset_config("fmnist_tiny");
    std::string resume, backend = "onednn";
    // --preset first, then the config file on top of it (its own "preset" wins), then the other
    // flags, wherever they stand
    for (int i = 1; i + 1 < argc; ++i)
      if (std::string(argv[i]) == "--preset") cfg = mae::preset_config(argv[++i]);
    for (int i = 1; i + 1 < argc; ++i)
      if (std::string(argv[i]) == "--config") {
        const std::string path = argv[++i];
        mae::apply_config_json(cfg, mae::io::read_json_file(path), "'" + path + "'");
      }
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto val = [&]() -> std::string {
        if (i + 1 >= argc) throw mae::Error(a + " needs a value");
        return argv[++i];
      };
      if (a == "-h" || a == "--help") { std::fputs(kUsage, stdout); return 0; }
      else if (a == "--config" || a == "--preset") val();  // applied above
      else if (a == "--data") cfg.data = val();
      else if (a == "--out") cfg.out = val();
      else if (a == "--epochs") cfg.epochs = parse_int(a, val());
      else if (a == "--warmup-epochs") cfg.warmup_epochs = parse_int(a, val());
      else if (a == "--batch") cfg.batch = parse_int(a, val());
      else if (a == "--accum-iter") cfg.accum_iter = parse_int(a, val());
      else if (a == "--max-steps") cfg.max_steps = parse_int(a, val());
      else if (a == "--blr") cfg.blr = parse_real(a, val());
      else if (a == "--lr") cfg.lr = parse_real(a, val());
      else if (a == "--min-lr") cfg.min_lr = parse_real(a, val());
      else if (a == "--weight-decay") cfg.weight_decay = parse_real(a, val());
      else if (a == "--mask-ratio") cfg.model.mask_ratio = parse_real(a, val());
      else if (a == "--seed") { const long long s = parse_int(a, val()); if (s < 0) throw mae::Error("--seed must be >= 0"); cfg.seed = std::uint64_t(s); }
      else if (a == "--threads") cfg.threads = int(parse_int(a, val()));
      else if (a == "--log-every") cfg.log_every = parse_int(a, val());
      else if (a == "--recon-images") cfg.recon_images = parse_int(a, val());
      else if (a == "--no-augment") cfg.augment = false;
      else if (a == "--skip-bad-images") cfg.skip_bad_images = true;
      else if (a == "--dtype") cfg.dtype = val();
      else if (a == "--backend") backend = val();
      else if (a == "--resume") resume = val();
      else if (a == "--full") cfg.epochs = 800, cfg.warmup_epochs = 40, cfg.blr = 1.5e-4, cfg.batch = 256, cfg.accum_iter = 16;
      else throw mae::Error("unknown option '" + a + "' (see --help)");
    }
    cfg.validate();
    if (backend != "onednn" && backend != "eigen" && backend != "cuda")
      throw mae::Error("--backend must be onednn, eigen or cuda, got '" + backend + "'");
    if (backend == "cuda") {
#ifdef MAE_HAVE_CUDA
      if (cfg.dtype == "f64") train<double, mae::Cuda>(cfg, resume); else train<float, mae::Cuda>(cfg, resume);
      return 0;
#else
      throw mae::Error("--backend cuda: this pretrain_tiny was built without CUDA (configure with -DMAE_WITH_CUDA=ON)");
#endif
    }
#ifdef MAE_HAVE_ONEDNN
    if (backend == "onednn") {
      if (cfg.dtype == "f64") train<double, mae::OneDnn>(cfg, resume); else train<float, mae::OneDnn>(cfg, resume);
      return 0;
    }
#else
    if (backend == "onednn") std::fprintf(stderr, "pretrain_tiny: built without oneDNN; using the Eigen backend\n");
#endif
    if (cfg.dtype == "f64") train<double, mae::CpuEigen>(cfg, resume); else train<float, mae::CpuEigen>(cfg, resume);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pretrain_tiny: error: %s\n", e.what());
    return 1;
  }
}
