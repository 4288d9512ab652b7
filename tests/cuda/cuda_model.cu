// The whole model on the GPU: MaeViT<T, Cuda> against the official PyTorch fixtures (every output and
// every gradient, float and double), bitwise repeatability of a step, and training iterations
// (forward, backward, AdamW) on Cuda against the same iterations on CpuEigen.
#include "cuda_support.cuh"
#include "mae/io/weights.hpp"
#include "mae/model/mae_vit.hpp"
#include "mae/train/train_loop.hpp"
#include "support/fixtures.hpp"

using mae::Cuda;
using mae::Index;

namespace {
template <class T>
struct FixtureInputs {
  mae::MaeConfig cfg;
  Index n = 0;
  std::vector<T> imgs, noise;
};
template <class T>
FixtureInputs<T> read_inputs(const std::string& dir) {
  FixtureInputs<T> in;
  in.cfg = mae::test::fixture_config(dir);
  const auto f = mae::io::SafeTensorsFile::load(dir + "/inputs.safetensors");
  in.n = f.info("imgs").shape.at(0);
  in.imgs = f.read_as<T>("imgs", {in.n, in.cfg.in_chans, in.cfg.img_size, in.cfg.img_size});
  in.noise = f.read_as<T>("noise", {in.n, in.cfg.num_patches()});
  return in;
}
}  // namespace

TEMPLATE_TEST_CASE("MaeViT<T, Cuda> matches every parity fixture: loss, pred, target, latent, mask, ids, features and "
                   "every gradient",
                   "[cuda][parity]", float, double) {
  using T = TestType;
  const double tol = mae::test::parity_tolerance<T>();
  const auto dirs = mae::test::fixture_dirs("mae_parity");
  if (dirs.empty()) WARN("no fixtures under " << mae::test::fixtures_root() << "/mae_parity");
  for (const std::string& dir : dirs) {
    SECTION(dir) {
      const auto in = read_inputs<T>(dir);
      const mae::MaeConfig& cfg = in.cfg;
      const Index n = in.n, L = cfg.num_patches(), P = cfg.patch_dim(), K = cfg.len_keep();
      const auto expected = mae::io::SafeTensorsFile::load(dir + "/expected.safetensors");
      Cuda be;
      mae::MaeViT<T, Cuda> model(cfg, be, n);
      mae::io::load_weights(model, dir + "/weights.safetensors");
      model.zero_grad();
      const T loss = model.forward(in.imgs.data(), in.noise.data());
      model.backward();

      double worst = 0;
      std::string worst_name;
      auto check = [&](const std::string& name, const auto& actual, const std::vector<double>& ref) {
        const auto c = mae::test::compare(actual, ref);
        INFO(c.report(name));
        CHECK(c.rel <= tol);
        if (c.rel > worst) worst = c.rel, worst_name = name;
      };
      check("loss", std::vector<T>{loss}, expected.read_as<double>("loss", {}));
      check("pred", model.pred(), expected.read_as<double>("pred", {n, L, P}));
      check("target", model.target(), expected.read_as<double>("target", {n, L, P}));
      check("latent", model.latent(), expected.read_as<double>("latent", {n, 1 + K, cfg.embed_dim}));
      check("mask", model.mask(), expected.read_as<double>("mask", {n, L}));
      CHECK(model.ids_restore_host() == expected.read_as<std::int64_t>("ids_restore", {n, L}));
      CHECK(model.ids_shuffle_host() == expected.read_as<std::int64_t>("ids_shuffle", {n, L}));
      for (const mae::ParamInfo& p : model.table().entries()) {
        if (!p.trainable) continue;
        check("grad." + p.name, model.grad(p.name), expected.read_as<double>("grad." + p.name, p.shape));
      }
      check("features", model.features(in.imgs.data(), n),
            expected.read_as<double>("features", {n, 1 + L, cfg.embed_dim}));
      WARN(dir << " [" << (sizeof(T) == 8 ? "f64" : "f32") << ", cuda]: worst " << worst << " (" << worst_name << ")");
    }
  }
}

TEST_CASE("a MaeViT<float, Cuda> step is bitwise repeatable: same loss and gradients twice", "[cuda][model]") {
  const auto dirs = mae::test::fixture_dirs("mae_parity");
  REQUIRE_FALSE(dirs.empty());
  const auto in = read_inputs<float>(dirs.front());
  Cuda be;
  mae::MaeViT<float, Cuda> model(in.cfg, be, in.n);
  mae::io::load_weights(model, dirs.front() + "/weights.safetensors");
  std::vector<float> losses, grads[2];
  for (int run = 0; run < 2; ++run) {
    model.zero_grad();
    losses.push_back(model.forward(in.imgs.data(), in.noise.data()));
    model.backward();
    grads[run].resize(model.grad_arena().size);
    be.to_host(grads[run].data(), model.grad_arena().data, grads[run].size() * sizeof(float));
  }
  CHECK(losses[0] == losses[1]);
  CHECK(grads[0] == grads[1]);
}

TEST_CASE("training iterations (forward, backward, AdamW under the MAE schedule) on Cuda follow CpuEigen: losses, "
          "parameters and both moments",
          "[cuda][model][optim]") {
  using T = double;  // first AdamW steps divide m by sqrt(v): float noise in near-zero gradients would flip signs
  const auto dirs = mae::test::fixture_dirs("mae_parity");
  REQUIRE_FALSE(dirs.empty());
  const std::string& dir = dirs.back();
  const auto in = read_inputs<T>(dir);
  mae::LrSchedule sched;
  sched.lr = 1e-3;
  sched.warmup_epochs = 1;
  sched.epochs = 4;
  sched.iters_per_epoch = 2;
  sched.accum_iter = 1;
  const int iterations = 4;

  auto train = [&](auto& be, std::vector<T>& losses) {
    using B = std::decay_t<decltype(be)>;
    auto model = std::make_unique<mae::MaeViT<T, B>>(in.cfg, be, in.n);
    mae::io::load_weights(*model, dir + "/weights.safetensors");
    mae::TrainLoop<T, B> loop(*model, sched);
    for (int i = 0; i < iterations; ++i) losses.push_back(loop.iteration(in.imgs.data(), in.noise.data()));
    std::map<std::string, std::vector<T>> out;
    for (const mae::ParamInfo& p : model->table().entries()) {
      out["param." + p.name] = model->get(p.name);
      if (!p.trainable) continue;
      out["exp_avg." + p.name] = loop.exp_avg(p.name);
      out["exp_avg_sq." + p.name] = loop.exp_avg_sq(p.name);
    }
    return out;
  };
  mae::CpuEigen cpu;
  Cuda gpu;
  std::vector<T> ref_losses, losses;
  const auto ref = train(cpu, ref_losses);
  const auto got = train(gpu, losses);
  const double tol = mae::test::parity_tolerance<T>();
  const auto lc = mae::test::compare(losses, ref_losses);
  INFO(lc.report("losses"));
  CHECK(lc.rel <= tol);
  for (const auto& [name, r] : ref) {
    const auto c = mae::test::compare(got.at(name), r);
    INFO(c.report(name + " (cuda vs eigen)"));
    CHECK(c.rel <= tol);
  }
}
