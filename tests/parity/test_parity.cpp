// Parity with the official PyTorch MAE: every folder of shared/fixtures/mae_parity, every output and
// every parameter gradient, in float and double, through every CPU backend; and the training
// forward that predicts only the removed patches (Predict::LossPatches): loss and every gradient.
#include "mae/backend/default.hpp"
#include "mae/backend/cpu_eigen.hpp"
#include "mae/io/weights.hpp"
#include "support/compare.hpp"
#include "support/fixtures.hpp"

namespace {
using mae::test::Case;
using EigenF = Case<float, mae::CpuEigen>;
using EigenD = Case<double, mae::CpuEigen>;
using DefaultF = Case<float, mae::backend::Default>;  // OneDnn when this build has it
using DefaultD = Case<double, mae::backend::Default>;
}  // namespace

TEMPLATE_TEST_CASE("every parity fixture: loss, pred, target, latent, mask, features and every gradient match "
                   "the official MAE",
                   "[parity]", EigenF, EigenD, DefaultF, DefaultD) {
  using T = typename TestType::T;
  using B = typename TestType::B;
  const double tol = mae::test::parity_tolerance<T>();
  const auto dirs = mae::test::fixture_dirs("mae_parity");
  if (dirs.empty()) WARN("no fixtures under " << mae::test::fixtures_root() << "/mae_parity");
  for (const std::string& dir : dirs)
    for (const bool loss_patches : {false, true}) {
      SECTION(dir + (loss_patches ? " (LossPatches)" : "")) {
        const mae::MaeConfig cfg = mae::test::fixture_config(dir);
        const auto inputs = mae::io::SafeTensorsFile::load(dir + "/inputs.safetensors");
        const auto expected = mae::io::SafeTensorsFile::load(dir + "/expected.safetensors");
        const mae::Index n = inputs.info("imgs").shape.at(0);
        B be;
        mae::MaeViT<T, B> model(cfg, be, n);
        mae::io::load_weights(model, dir + "/weights.safetensors");
        if (loss_patches) model.set_predict(mae::MaeViT<T, B>::Predict::LossPatches);
        const auto imgs = inputs.read_as<T>("imgs", {n, cfg.in_chans, cfg.img_size, cfg.img_size});
        const auto noise = inputs.read_as<T>("noise", {n, cfg.num_patches()});

        model.zero_grad();
        const T loss = model.forward(imgs.data(), noise.data());
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
        const mae::Index L = cfg.num_patches(), P = cfg.patch_dim(), K = cfg.len_keep();
        if (loss_patches) CHECK_THROWS_WITH(model.pred(), Catch::Contains("LossPatches"));
        else check("pred", model.pred(), expected.read_as<double>("pred", {n, L, P}));
        check("target", model.target(), expected.read_as<double>("target", {n, L, P}));
        check("latent", model.latent(), expected.read_as<double>("latent", {n, 1 + K, cfg.embed_dim}));
        check("mask", model.mask(), expected.read_as<double>("mask", {n, L}));
        CHECK(model.ids_restore_host() == expected.read_as<std::int64_t>("ids_restore", {n, L}));
        CHECK(model.ids_shuffle_host() == expected.read_as<std::int64_t>("ids_shuffle", {n, L}));
        for (const mae::ParamInfo& p : model.table().entries()) {
          if (!p.trainable) continue;
          check("grad." + p.name, model.grad(p.name), expected.read_as<double>("grad." + p.name, p.shape));
        }
        check("features", model.features(imgs.data(), n),
              expected.read_as<double>("features", {n, 1 + L, cfg.embed_dim}));
        WARN(dir << (loss_patches ? " LossPatches" : "") << " [" << (sizeof(T) == 8 ? "f64" : "f32") << ", " << B::name
                 << "]: worst " << worst << " (" << worst_name << ")");
      }
    }
}
