// The best CPU backend of this build (backend::Default: OneDnn when MAE_HAVE_ONEDNN, else CpuEigen)
// computes the same model as CpuEigen: loss, pred, latent, features and every trainable gradient, on
// a few small configurations with odd sizes. Tolerance: max |a − b| <= tol · max |b| per tensor,
// tol = 2e-5 in float (different GEMM summation orders), 1e-12 in double.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"
#include "mae/model/mae_vit.hpp"
#include "support/compare.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
namespace t = mae::test;

struct Shape {
  const char* name;
  Index img, patch, chans, dim, depth, heads, ddim, ddepth, dheads;
  double mlp_ratio;
  bool norm_pix;
  double mask_ratio;
  Index batch;
};

const Shape kShapes[] = {
    {"img 12 patch 3 C 3, D 12 depth 2 heads 3, Dd 8 depth 1 heads 2", 12, 3, 3, 12, 2, 3, 8, 1, 2, 2.0, true, 0.75, 2},
    {"img 10 patch 2 C 1, D 20 depth 1 heads 5, Dd 12 depth 2 heads 3", 10, 2, 1, 20, 1, 5, 12, 2, 3, 1.5, false, 0.6, 3},
    {"img 14 patch 7 C 2, D 16 depth 1 heads 4, Dd 4 depth 1 heads 1", 14, 7, 2, 16, 1, 4, 4, 1, 1, 3.0, true, 0.5, 1},
};

mae::MaeConfig config_of(const Shape& s) {
  mae::MaeConfig c;
  c.img_size = s.img;
  c.patch_size = s.patch;
  c.in_chans = s.chans;
  c.embed_dim = s.dim;
  c.depth = s.depth;
  c.num_heads = s.heads;
  c.decoder_embed_dim = s.ddim;
  c.decoder_depth = s.ddepth;
  c.decoder_num_heads = s.dheads;
  c.mlp_ratio = s.mlp_ratio;
  c.norm_pix_loss = s.norm_pix;
  c.mask_ratio = s.mask_ratio;
  return c;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// One model per backend, same weights and inputs; runs forward + backward.
template <class T, class B>
struct Run {
  B be;
  mae::MaeViT<T, B> model;
  T loss = 0;
  Run(const mae::MaeConfig& cfg, Index batch, const std::vector<double>& imgs, const std::vector<double>& noise,
      std::uint64_t seed)
      : model(cfg, be, batch) {
    for (const mae::ParamInfo& p : model.table().entries()) {
      if (!p.trainable) continue;
      const bool norm_weight = ends_with(p.name, "norm1.weight") || ends_with(p.name, "norm2.weight") ||
                               p.name == "norm.weight" || p.name == "decoder_norm.weight";
      std::vector<double> v = norm_weight                  ? t::random_normal(p.numel, seed, 0.2, 1.0)
                              : ends_with(p.name, ".bias") ? t::random_normal(p.numel, seed, 0.1)
                                                           : t::random_normal(p.numel, seed, 0.3);
      ++seed;
      model.set(p.name, cast<T>(v));
    }
    const std::vector<T> ti = cast<T>(imgs), tn = cast<T>(noise);
    model.zero_grad();
    loss = model.forward(ti.data(), tn.data());
    model.backward();
  }
};

template <class T>
void check_close(const std::string& what, const std::vector<T>& got, const std::vector<T>& ref) {
  const double tol = sizeof(T) == 4 ? 2e-5 : 1e-12;
  const t::Comparison c = t::compare(got, ref);
  INFO(c.report(what));
  CHECK(c.rel <= tol);
}

}  // namespace

TEMPLATE_TEST_CASE("backend::Default and CpuEigen give the same loss, pred, features and gradients", "[backends]",
                   float, double) {
  using T = TestType;
  using Default = mae::backend::Default;
  if (std::is_same_v<Default, mae::CpuEigen>) WARN("built without oneDNN: Default is CpuEigen, compared with itself");
  std::uint64_t seed = 1200;
  for (const Shape& s : kShapes) {
    INFO("config " << s.name << ", " << (sizeof(T) == 4 ? "float" : "double"));
    const mae::MaeConfig cfg = config_of(s);
    const Index pixels = s.batch * s.chans * s.img * s.img, patches = s.batch * cfg.num_patches();
    const std::vector<double> imgs = t::random_normal(pixels, seed++), noise = t::random_uniform(patches, seed++);
    Run<T, Default> a(cfg, s.batch, imgs, noise, seed);
    Run<T, mae::CpuEigen> b(cfg, s.batch, imgs, noise, seed);
    seed += 100;
    REQUIRE(std::isfinite(double(b.loss)));
    check_close("loss", std::vector<T>{a.loss}, std::vector<T>{b.loss});
    check_close("pred", a.model.pred(), b.model.pred());
    check_close("latent", a.model.latent(), b.model.latent());
    CHECK(a.model.mask() == b.model.mask());
    for (const mae::ParamInfo& p : b.model.table().entries())
      if (p.trainable) check_close("grad." + p.name, a.model.grad(p.name), b.model.grad(p.name));
    const std::vector<T> ti = cast<T>(imgs);
    check_close("features", a.model.features(ti.data(), s.batch), b.model.features(ti.data(), s.batch));
  }
}
