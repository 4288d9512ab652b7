// bench_step: one full MAE training step (forward, backward, AdamW) and encoder-only inference, per
// config, in ms, images/s, GFLOP/s, % of the GEMM peak measured in the same run, and peak RSS.
//
// Modes
//   train         the official masked step: TrainLoop::iteration = zero grads, forward (encoder on
//                 the K = L/4 kept patches), backward, AdamW (betas 0.9, 0.95, wd 0.05); AdamW
//                 runs inside backward block by block (TrainLoop's default), or after it with
//                 --optimizer after (then every gradient is kept: more memory, same numbers);
//                 --attention-probs rebuild: MaeViT::set_keep_attention_probs(false)
//   train_nomask  the same step with every patch through the encoder and the loss over all
//                 patches (MaeViT::Mode::AllTokens): what the asymmetric design saves
//   infer         encoder only on all patches, natural order, no masking (MaeViT::features)
//
// FLOPs are GEMM FLOPs (2·m·n·k) counted from the config: every Linear and both attention products,
// forward; training adds the two backward products of each (×3), except that the patch embedding
// needs no input gradient. LayerNorm, softmax, GELU, the loss and AdamW are not counted. These are
// the model's FLOPs, the same count for PyTorch's step: ours skips the last decoder block's MLP half,
// decoder_norm and decoder_pred on the rows no loss reads (Predict::LossPatches; 1.3-3.2% of the count),
// so its GFLOP/s is model FLOPs per second, not FLOPs executed. The peak is
// the GFLOP/s of the fastest of repeated 2048³ and 3072³ float GEMMs through the same backend and thread count,
// measured in this run (or given with --peak). The asymmetric-encoder speedup is train_nomask ms / train ms,
// printed next to the FLOP ratio of the two steps.
//
// Usage: bench_step [--config tiny32,fmnist28,base224] [--mode train,train_nomask,infer] [--json]
//                   [--threads 2] [--budget SECONDS] [--min-reps 3] [--backend default|eigen]
//                   [--peak GFLOPS | --no-peak] [--peak-only] [--list]
//   --json: one object per line. Results: {"kind": "step", "impl": "mae.cpp", config, mode, batch,
//   threads, median_ms, min_ms, max_ms, images_per_s, gflops, peak_rss_mb, ...}; also a "peak" line
//   (the sgemm) and, when train and train_nomask of a config ran, a "speedup" line.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"
#include "mae/model/init.hpp"
#include "mae/model/mae_vit.hpp"
#include "mae/tensor/rng.hpp"
#include "mae/train/train_loop.hpp"
#include "support/bench.hpp"
#ifdef MAE_HAVE_CUDA
#include "mae/backend/cuda.hpp"  // this file is then compiled by nvcc (benchmarks/cuda/bench_step.cu)
#endif

namespace {

using mae::Index;
namespace b = mae::bench;

struct BenchConfig {
  std::string name;
  mae::MaeConfig model;
  Index batch;
};

mae::MaeConfig make(Index img, Index p, Index c, Index d, Index depth, Index heads, Index dd, Index ddepth,
                    Index dheads) {
  mae::MaeConfig m;
  m.img_size = img, m.patch_size = p, m.in_chans = c;
  m.embed_dim = d, m.depth = depth, m.num_heads = heads;
  m.decoder_embed_dim = dd, m.decoder_depth = ddepth, m.decoder_num_heads = dheads;
  m.mlp_ratio = 4.0;
  m.norm_pix_loss = true;
  m.mask_ratio = 0.75;
  return m;
}

// The configs (pytorch_mae.py holds the same table).
std::vector<BenchConfig> all_configs() {
  return {{"tiny32", make(32, 4, 3, 192, 12, 3, 128, 4, 4), 64},
          {"fmnist28", make(28, 4, 1, 192, 6, 3, 128, 2, 4), 128},
          {"base224", make(224, 16, 3, 768, 12, 12, 512, 8, 16), 8}};
}
const std::vector<std::string> kModes = {"train", "train_nomask", "infer"};

// ---- FLOPs ------------------------------------------------------------------------------------------

// Forward GEMM FLOPs of one block over n samples of t tokens, width d, MLP hidden hm.
double block_flops(double n, double t, double d, double hm) {
  const double r = n * t;
  return 2 * r * d * (3 * d + d + 2 * hm)  // qkv, proj, fc1, fc2
         + 4 * n * t * t * d;              // Q·Kᵀ and P·V over all heads
}

// GEMM FLOPs of one step of `mode` (see the file comment).
double step_flops(const mae::MaeConfig& c, Index batch, const std::string& mode) {
  const double n = double(batch), l = double(c.num_patches()), p = double(c.patch_dim());
  const double d = double(c.embed_dim), dd = double(c.decoder_embed_dim);
  const double k = mode == "train" ? double(c.len_keep()) : l;  // tokens the encoder embeds
  const double patch = 2 * n * k * p * d;
  const double enc = double(c.depth) * block_flops(n, 1 + k, d, double(c.mlp_hidden()));
  if (mode == "infer") return patch + enc;
  const double dec = 2 * n * (1 + k) * d * dd + double(c.decoder_depth) * block_flops(n, 1 + l, dd, double(c.decoder_mlp_hidden())) +
                     2 * n * (1 + l) * dd * p;
  return 3 * (patch + enc + dec) - patch;  // the patch embedding's backward has no dx product
}

// ---- inputs ----------------------------------------------------------------------------------------

constexpr int kNoiseSets = 4;  // masking noise cycles through a few draws, as fresh batches would

struct Inputs {
  std::vector<float> imgs;                 // (N, C, H, W), standard normal (normalized pixels)
  std::vector<std::vector<float>> noise;   // kNoiseSets × (N, L), uniform [0, 1)
};

Inputs make_inputs(const BenchConfig& bc) {
  Inputs in;
  const mae::MaeConfig& c = bc.model;
  mae::Rng rng(2024, 1, 0);
  in.imgs.resize(std::size_t(bc.batch * c.in_chans * c.img_size * c.img_size));
  for (float& x : in.imgs) x = float(rng.normal());
  for (int s = 0; s < kNoiseSets; ++s) {
    mae::Rng r(2024, 2, std::uint64_t(s));
    std::vector<float> v(std::size_t(bc.batch * c.num_patches()));
    for (float& x : v) x = r.uniform_float();
    in.noise.push_back(std::move(v));
  }
  return in;
}

// ---- measurements ----------------------------------------------------------------------------------

struct Result {
  b::Stats t;
  double rss_mb = 0, checksum = 0;
};

template <class B>
Result run_step(const BenchConfig& bc, const std::string& mode, const b::TimeBudget& budget, bool fuse,
                bool keep_probs) {
  using Model = mae::MaeViT<float, B>;
  const Inputs in = make_inputs(bc);
  b::reset_peak_rss();
  B be;
  Model model(bc.model, be, bc.batch, mode == "train_nomask" ? Model::Mode::AllTokens : Model::Mode::Masked);
  mae::init_weights(model, 7);
  model.set_keep_attention_probs(keep_probs);
  Result r;
  if (mode == "infer") {
    r.t = b::time_it(
        [&] {
          const std::vector<float> f = model.features(in.imgs.data(), bc.batch);
          r.checksum += double(f[0]) + double(f[f.size() / 2]);
        },
        budget);
  } else {
    mae::LrSchedule sched;
    sched.lr = mae::peak_lr(1.5e-4, bc.batch);
    sched.warmup_epochs = 0;
    sched.epochs = 100;
    sched.iters_per_epoch = 1000;
    mae::OptimConfig opt;
    opt.fuse_into_backward = fuse;
    mae::TrainLoop<float, B> loop(model, sched, opt);
    int step = 0;
    r.t = b::time_it([&] { r.checksum += double(loop.iteration(in.imgs.data(), in.noise[step++ % kNoiseSets].data())); },
                     budget);
  }
  r.rss_mb = b::peak_rss_mb();
  return r;
}

// GFLOP/s of the fastest of repeated square n×n×n float GEMMs through backend B (the best the
// machine gives this backend; the fastest call is the least disturbed by other work).
template <class B>
double sgemm_gflops(Index n, double budget_s, double& checksum) {
  B be;
  std::vector<float> a(std::size_t(n * n)), bm(std::size_t(n * n)), c(std::size_t(n * n), 0.0f);
  mae::Rng rng(11, 0, 0);
  for (float& x : a) x = rng.uniform_float() - 0.5f;
  for (float& x : bm) x = rng.uniform_float() - 0.5f;
  // operands in the backend's memory (device memory for Cuda), synchronized after every call
  mae::Buffer<float, B> da(be, n * n), db(be, n * n), dc(be, n * n);
  be.to_device(da.data(), a.data(), sizeof(float) * a.size());
  be.to_device(db.data(), bm.data(), sizeof(float) * bm.size());
  b::TimeBudget tb;
  tb.budget_s = budget_s;
  const b::Stats s = b::time_it(
      [&] {
        be.gemm(mae::Op::N, mae::Op::N, n, n, n, 1.0f, da.data(), n, db.data(), n, 0.0f, dc.data(), n);
        be.synchronize();
      },
      tb);
  be.to_host(c.data(), dc.data(), sizeof(float) * c.size());
  checksum += double(c[0]) + double(c[c.size() - 1]);
  return 2.0 * double(n) * double(n) * double(n) / (s.min_ms * 1e-3) * 1e-9;
}

const char* kUsage =
    "usage: bench_step [--config NAME[,NAME..]] [--mode train|train_nomask|infer[,..]] [--json]\n"
    "                  [--threads N] [--budget SECONDS] [--min-reps N] [--backend default|eigen|cuda]\n"
    "                  [--batch N (instead of each config's own; e.g. to fill a GPU)]\n"
    "                  [--optimizer fused|after (AdamW inside backward, the default, or after it)]\n"
    "                  [--attention-probs keep|rebuild (cache them, the default, or rebuild in backward)]\n"
    "                  [--peak GFLOPS | --no-peak] [--peak-only] [--list]\n"
    "  configs: tiny32 fmnist28 base224 (default: all); modes: train train_nomask infer (default: all)\n";

template <class B>
int run(b::Args& args) {
  const bool json = args.flag("--json");
  const bool peak_only = args.flag("--peak-only");
  const bool no_peak = args.flag("--no-peak");
  const std::string optimizer = args.value("--optimizer", "fused");
  MAE_CHECK(optimizer == "fused" || optimizer == "after", "--optimizer must be fused or after, got '", optimizer, "'");
  const bool fuse = optimizer == "fused";
  const std::string probs = args.value("--attention-probs", "keep");
  MAE_CHECK(probs == "keep" || probs == "rebuild", "--attention-probs must be keep or rebuild, got '", probs, "'");
  const bool keep_probs = probs == "keep";
  const int threads = int(args.number("--threads", 2));
  b::TimeBudget budget;
  budget.budget_s = args.number("--budget", 2.0);
  budget.min_reps = int(args.number("--min-reps", 3));
  double peak = args.number("--peak", 0);
  const Index batch_override = Index(args.number("--batch", 0));
  const bool peak_given = peak > 0;
  const std::string cfg_arg = args.value("--config", ""), mode_arg = args.value("--mode", "");
  if (args.flag("--list")) {
    for (const BenchConfig& c : all_configs()) std::printf("%s %s batch %ld\n", c.name.c_str(), c.model.to_json().dump().c_str(), long(c.batch));
    return 0;
  }
  if (const std::string e = args.error(); !e.empty() || threads < 1) {
    std::fprintf(stderr, "bench_step: %s\n%s", e.empty() ? "--threads must be >= 1" : e.c_str(), kUsage);
    return 2;
  }
  std::vector<BenchConfig> configs;
  for (BenchConfig c : all_configs())
    if (cfg_arg.empty() || cfg_arg == "all" || [&] { for (auto& s : b::split_list(cfg_arg)) if (s == c.name) return true; return false; }())
      configs.push_back(batch_override > 0 ? (c.batch = batch_override, c) : c);
  for (const std::string& s : b::split_list(cfg_arg))
    if (s != "all" && std::none_of(configs.begin(), configs.end(), [&](const BenchConfig& c) { return c.name == s; })) {
      std::fprintf(stderr, "bench_step: unknown config '%s'\n%s", s.c_str(), kUsage);
      return 2;
    }
  std::vector<std::string> modes = mode_arg.empty() || mode_arg == "all" ? kModes : b::split_list(mode_arg);
  for (const std::string& m : modes)
    if (std::find(kModes.begin(), kModes.end(), m) == kModes.end()) {
      std::fprintf(stderr, "bench_step: unknown mode '%s'\n%s", m.c_str(), kUsage);
      return 2;
    }

  omp_set_num_threads(threads);
  const std::string machine = b::machine_line(threads);
  double checksum = 0;
  // Two sizes: on AVX-512 OneDnn runs 2048³ as a matmul primitive and 3072³ through dnnl_sgemm (wide
  // B), and the faster of the two is the machine's best.
  if (peak <= 0 && !no_peak)
    peak = std::max(sgemm_gflops<B>(2048, 0.5, checksum), sgemm_gflops<B>(3072, 0.5, checksum));
  if (json) {
    b::Json().add("kind", "peak").add("impl", "mae.cpp").add("backend", B::name).add("op", "sgemm 2048^3, 3072^3")
        .add("threads", threads).add("gflops", peak).add("machine", machine).print();
  } else {
    std::printf("bench_step: float32, backend %s, median of repeats (budget %.1f s, >= %d reps, 1 warm-up step)\n%s\n",
                B::name, budget.budget_s, budget.min_reps, machine.c_str());
    if (peak > 0)
      std::printf("GEMM peak: %.1f GFLOP/s (%s, fastest of 2048^3 and 3072^3 sgemm, %d threads)\n\n", peak,
                  peak_given ? "given with --peak," : B::name, threads);
    else
      std::printf("GEMM peak: not measured (--no-peak)\n\n");
  }
  if (peak_only) return 0;

  const b::Table table({{"config", 8, true}, {"mode", 12, true}, {"batch", 5, false}, {"median ms", 10, false},
                        {"min ms", 9, false}, {"max ms", 9, false}, {"img/s", 8, false}, {"GFLOP", 7, false},
                        {"GFLOP/s", 8, false}, {"% peak", 6, false}, {"RSS MB", 7, false}, {"reps", 4, false}});
  if (!json) table.header();
  std::map<std::string, std::map<std::string, double>> ms;  // config -> mode -> median ms
  for (const BenchConfig& bc : configs) {
    for (const std::string& mode : modes) {
      const Result r = run_step<B>(bc, mode, budget, fuse, keep_probs);
      checksum += r.checksum;
      const double flop = step_flops(bc.model, bc.batch, mode);
      const double gflops = flop / (r.t.median_ms * 1e-3) * 1e-9, ips = double(bc.batch) / (r.t.median_ms * 1e-3);
      const double pct = peak > 0 ? 100.0 * gflops / peak : 0.0;
      ms[bc.name][mode] = r.t.median_ms;
      if (json)
        b::Json().add("kind", "step").add("impl", "mae.cpp").add("backend", B::name).add("config", bc.name)
            .add("mode", mode).add("batch", long(bc.batch)).add("threads", threads).add("median_ms", r.t.median_ms)
            .add("min_ms", r.t.min_ms).add("max_ms", r.t.max_ms).add("images_per_s", ips).add("gflops", gflops)
            .add("peak_rss_mb", r.rss_mb).add("model_gflop", flop * 1e-9).add("peak_gflops", peak)
            .add("pct_peak", pct).add("reps", r.t.reps).add("checksum", r.checksum, 9).print();
      else
        table.row({bc.name, mode, b::fmt("%ld", long(bc.batch)), b::fmt("%.2f", r.t.median_ms), b::fmt("%.2f", r.t.min_ms),
                   b::fmt("%.2f", r.t.max_ms), b::fmt("%.1f", ips), b::fmt("%.2f", flop * 1e-9), b::fmt("%.1f", gflops),
                   peak > 0 ? b::fmt("%.1f", pct) : "-", b::fmt("%.0f", r.rss_mb), b::fmt("%d", r.t.reps)});
    }
  }

  // Asymmetric encoder: the all-tokens step over the masked step, time and FLOPs.
  bool first = true;
  for (const BenchConfig& bc : configs) {
    const auto& m = ms[bc.name];
    if (!m.count("train") || !m.count("train_nomask")) continue;
    const double speedup = m.at("train_nomask") / m.at("train");
    const double ratio = step_flops(bc.model, bc.batch, "train_nomask") / step_flops(bc.model, bc.batch, "train");
    if (json) {
      b::Json().add("kind", "speedup").add("impl", "mae.cpp").add("config", bc.name).add("batch", long(bc.batch))
          .add("threads", threads).add("speedup", speedup).add("flop_ratio", ratio).print();
    } else {
      if (first) std::printf("\nasymmetric encoder: train_nomask ms / train ms vs the FLOP ratio of the two steps\n");
      first = false;
      std::printf("  %-8s  speedup %5.2fx   FLOP ratio %5.2fx\n", bc.name.c_str(), speedup, ratio);
    }
  }
  if (json)
    b::Json().add("kind", "checksum").add("impl", "mae.cpp").add("checksum", checksum, 12).print();
  else
    std::printf("\nchecksum %.9g\n", checksum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  b::Args args(argc, argv);
  if (args.flag("-h") || args.flag("--help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  const std::string backend = args.value("--backend", "default");
  try {
    if (backend == "default") return run<mae::backend::Default>(args);
    if (backend == "eigen") return run<mae::CpuEigen>(args);
#ifdef MAE_HAVE_CUDA
    if (backend == "cuda") return run<mae::Cuda>(args);
#else
    if (backend == "cuda") throw mae::Error("this bench_step was built without CUDA (configure with -DMAE_WITH_CUDA=ON)");
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_step: error: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "bench_step: unknown backend '%s'\n%s", backend.c_str(), kUsage);
  return 2;
}
