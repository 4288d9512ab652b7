// The official pretraining loop (AdamW, parameter groups, per-iteration lr, gradient accumulation)
// against every folder of shared/fixtures/mae_train, in float and double, through every CPU backend.
#include <nlohmann/json.hpp>

#include <cmath>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"
#include "mae/io/fixtures.hpp"
#include "mae/model/init.hpp"
#include "mae/train/train_loop.hpp"
#include "support/compare.hpp"
#include "support/fixtures.hpp"

namespace {
using mae::test::Case;
using EigenF = Case<float, mae::CpuEigen>;
using EigenD = Case<double, mae::CpuEigen>;
using DefaultF = Case<float, mae::backend::Default>;
using DefaultD = Case<double, mae::backend::Default>;

// Entries [w, 2w) of an attention qkv bias (the key bias) have zero gradient in exact arithmetic;
// AdamW turns their rounding noise into moves of up to ~lr (mae_train README §7). Their values
// never affect any output; they get an absolute tolerance.
bool is_key_bias(const std::string& name) {
  return name.size() > 14 && name.compare(name.size() - 14, 14, ".attn.qkv.bias") == 0;
}
}  // namespace

TEMPLATE_TEST_CASE("every training fixture: losses, parameters after every AdamW step and the moments match the "
                   "official MAE loop",
                   "[train]", EigenF, EigenD, DefaultF, DefaultD) {
  using T = typename TestType::T;
  using B = typename TestType::B;
  constexpr bool is_double = sizeof(T) == 8;
  const auto dirs = mae::test::fixture_dirs("mae_train");
  if (dirs.empty()) WARN("no fixtures under " << mae::test::fixtures_root() << "/mae_train");
  for (const std::string& dir : dirs) {
    SECTION(dir) {
      nlohmann::json raw;
      const mae::MaeConfig cfg = mae::test::fixture_config(dir, &raw);
      const nlohmann::json& tj = raw.at("train");
      const auto inputs = mae::io::SafeTensorsFile::load(dir + "/inputs.safetensors");
      const auto expected = mae::io::SafeTensorsFile::load(dir + "/expected.safetensors");
      const mae::Index n = tj.at("batch").get<mae::Index>(), L = cfg.num_patches();
      B be;
      mae::MaeViT<T, B> model(cfg, be, n);
      mae::io::load_weights(model, dir + "/weights.safetensors");
      mae::OptimConfig opt;
      opt.beta1 = tj.at("betas").at(0).get<double>();
      opt.beta2 = tj.at("betas").at(1).get<double>();
      opt.eps = tj.at("eps").get<double>();
      opt.weight_decay = tj.at("weight_decay").get<double>();
      mae::TrainLoop<T, B> loop(model, mae::io::fixture_schedule(tj, dir), opt);

      // The groups the optimizer uses are the official ones.
      for (const auto& name : tj.at("decay_params")) CHECK(model.table().at(name.get<std::string>()).decay);
      for (const auto& name : tj.at("no_decay_params")) CHECK_FALSE(model.table().at(name.get<std::string>()).decay);

      const auto lrs = tj.at("lr_per_iter").get<std::vector<double>>();
      const auto step_iters = tj.at("step_iters").get<std::vector<mae::Index>>();
      double lr_sum = 0, worst = 0;
      std::string worst_name;
      mae::Index step = 0;
      const mae::Index iterations = tj.at("iterations").get<mae::Index>();
      for (mae::Index i = 0; i < iterations; ++i) {
        const auto imgs = inputs.read_as<T>("imgs." + std::to_string(i), {n, cfg.in_chans, cfg.img_size, cfg.img_size});
        const auto noise = inputs.read_as<T>("noise." + std::to_string(i), {n, L});
        const T loss = loop.iteration(imgs.data(), noise.data());
        CHECK(loop.lr() == lrs.at(i));
        const auto ref_loss = expected.read_as<double>("loss." + std::to_string(i), {});
        INFO("iteration " << i << ": loss " << loss << ", expected " << ref_loss[0]);
        CHECK(std::abs(double(loss) - ref_loss[0]) <= (is_double ? 1e-12 : 1e-5) * std::abs(ref_loss[0]));
        CHECK(loop.stepped() == (step < mae::Index(step_iters.size()) && step_iters[step] == i));
        if (!loop.stepped()) continue;
        lr_sum += loop.lr();
        // double: 1e-10 of each tensor's max; float: 0.01 · Σ lr absolute (README §7)
        for (const mae::ParamInfo& p : model.table().entries()) {
          if (!p.trainable) continue;
          const std::string key = "param." + std::to_string(step) + "." + p.name;
          auto actual = model.get(p.name);
          auto ref = expected.read_as<double>(key, p.shape);
          if (is_key_bias(p.name)) {
            const mae::Index w = p.numel / 3;
            const double abs_tol = is_double ? 1e-10 : 4 * lr_sum + 1e-7;
            for (mae::Index e = w; e < 2 * w; ++e) CHECK(std::abs(double(actual[e]) - ref[e]) <= abs_tol);
            for (mae::Index e = w; e < 2 * w; ++e) actual[e] = T(ref[e]);  // checked above
          }
          const auto c = mae::test::compare(actual, ref);
          INFO(c.report(key));
          if (is_double) CHECK(c.rel <= 1e-10);
          else CHECK(c.max_abs <= 0.01 * lr_sum + 1e-7);
          if (c.rel > worst) worst = c.rel, worst_name = key;
        }
        ++step;
      }
      CHECK(step == tj.at("steps").get<mae::Index>());
      CHECK(loop.optimizer().step_count() == step);
      for (const mae::ParamInfo& p : model.table().entries()) {
        if (!p.trainable) continue;
        for (const char* which : {"exp_avg", "exp_avg_sq"}) {
          const std::string key = std::string(which) + "." + p.name;
          auto actual = std::string(which) == "exp_avg" ? loop.exp_avg(p.name) : loop.exp_avg_sq(p.name);
          auto ref = expected.read_as<double>(key, p.shape);
          if (is_key_bias(p.name))  // moments of pure rounding noise: compare them against zero-ish scale
            for (mae::Index e = p.numel / 3; e < 2 * p.numel / 3; ++e) actual[e] = T(ref[e]);
          const auto c = mae::test::compare(actual, ref);
          INFO(c.report(key));
          CHECK(c.rel <= (is_double ? 1e-10 : 2e-5));
        }
      }
      WARN(dir << " [" << (is_double ? "f64" : "f32") << ", " << B::name << "]: worst parameter " << worst << " ("
               << worst_name << ")");
    }
  }
}

namespace {
// Three steps of a small model from the same start, AdamW after backward or inside it.
template <class T, class B>
void check_fused_matches_unfused() {
  mae::MaeConfig cfg;
  cfg.img_size = 16, cfg.patch_size = 4, cfg.in_chans = 3;
  cfg.embed_dim = 24, cfg.depth = 3, cfg.num_heads = 3;
  cfg.decoder_embed_dim = 16, cfg.decoder_depth = 2, cfg.decoder_num_heads = 2;
  cfg.norm_pix_loss = true;
  const mae::Index n = 3;
  B be;
  mae::MaeViT<T, B> a(cfg, be, n), b(cfg, be, n);
  mae::init_weights(a, 7);
  b.copy_params_from(a);
  mae::LrSchedule s;
  s.lr = 1e-3, s.min_lr = 1e-5, s.warmup_epochs = 1, s.epochs = 3, s.iters_per_epoch = 2, s.accum_iter = 1;
  mae::OptimConfig after;
  after.fuse_into_backward = false;
  mae::TrainLoop<T, B> la(a, s, after), lb(b, s);
  REQUIRE(!la.fused());
  REQUIRE(lb.fused());
  std::vector<T> imgs(n * a.image_elems()), noise(n * cfg.num_patches());
  for (int it = 0; it < 3; ++it) {
    for (std::size_t i = 0; i < imgs.size(); ++i) imgs[i] = T(std::sin(0.37 * double(i) + it));
    for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = T(std::fmod(0.61 * double(i) + 0.3 * it, 1.0));
    CHECK(la.iteration(imgs.data(), noise.data()) == lb.iteration(imgs.data(), noise.data()));
  }
  CHECK(la.optimizer().step_count() == lb.optimizer().step_count());
  const mae::Span<T> pa = a.param_arena(), pb = b.param_arena();
  std::vector<T> ha(pa.size), hb(pb.size);
  be.to_host(ha.data(), pa.data, sizeof(T) * pa.size);
  be.to_host(hb.data(), pb.data, sizeof(T) * pb.size);
  CHECK(ha == hb);
  for (const mae::ParamInfo& p : a.table().entries()) {
    INFO(p.name);
    CHECK(la.exp_avg(p.name) == lb.exp_avg(p.name));
    CHECK(la.exp_avg_sq(p.name) == lb.exp_avg_sq(p.name));
  }
  // the fused model kept one block's worth of gradients, not the whole model's
  CHECK(b.grad_arena().size < a.grad_arena().size / 2);
}
}  // namespace

TEMPLATE_TEST_CASE("AdamW applied inside backward, block by block, is bit for bit AdamW after backward",
                   "[train]", EigenF, EigenD, DefaultF, DefaultD) {
  check_fused_matches_unfused<typename TestType::T, typename TestType::B>();
}
