// Whole-model gradient check: a tiny MaeViT<double, CpuEigen> with randomly perturbed weights;
// model.grad(name) vs central differences of the loss returned by model.forward, for a seeded sample
// of elements of every trainable tensor. Also the gradient arena's write rule: backward adds
// (twice doubles), backward(scale) scales, zero_grad clears, fixed tensors get nothing.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/model/mae_vit.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using Vec = std::vector<double>;
namespace t = mae::test;
using Model = mae::MaeViT<double, mae::CpuEigen>;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

mae::MaeConfig tiny_config() {
  mae::MaeConfig cfg;
  cfg.img_size = 8;
  cfg.patch_size = 2;
  cfg.in_chans = 2;
  cfg.embed_dim = 8;
  cfg.depth = 2;
  cfg.num_heads = 2;
  cfg.decoder_embed_dim = 8;
  cfg.decoder_depth = 1;
  cfg.decoder_num_heads = 2;
  cfg.mlp_ratio = 2.0;
  cfg.norm_pix_loss = true;
  cfg.mask_ratio = 0.5;
  return cfg;
}

// Every trainable tensor gets seeded random values: LayerNorm weights near 1, biases and tokens
// small but non-zero, matrices large enough that attention is far from uniform.
void perturb_weights(Model& model, std::uint64_t seed) {
  for (const mae::ParamInfo& p : model.table().entries()) {
    if (!p.trainable) continue;
    const bool norm_weight = ends_with(p.name, "norm1.weight") || ends_with(p.name, "norm2.weight") ||
                             p.name == "norm.weight" || p.name == "decoder_norm.weight";
    Vec v;
    if (norm_weight) v = t::random_normal(p.numel, seed++, 0.2, 1.0);
    else if (ends_with(p.name, ".bias")) v = t::random_normal(p.numel, seed++, 0.1);
    else if (ends_with(p.name, "_token")) v = t::random_normal(p.numel, seed++, 0.3);
    else v = t::random_normal(p.numel, seed++, 0.35);
    model.set(p.name, v);
  }
}

struct ModelCase {
  mae::CpuEigen be;
  Model model;
  Vec imgs, noise;
  ModelCase() : model(tiny_config(), be, 2) {
    perturb_weights(model, 900);
    imgs = t::random_normal(2 * model.image_elems(), 950);
    noise = t::random_uniform(2 * model.config().num_patches(), 951);
  }
  double loss() { return model.forward(imgs.data(), noise.data()); }
};

}  // namespace

TEST_CASE("MaeViT gradients of every trainable tensor match central differences of the loss", "[model][grad]") {
  ModelCase mc;
  Model& model = mc.model;
  REQUIRE(model.config().len_keep() == 8);
  model.zero_grad();
  const double l0 = mc.loss();
  REQUIRE(std::isfinite(l0));
  model.backward();
  Index tensors = 0;
  std::uint64_t seed = 1000;
  for (const mae::ParamInfo& p : model.table().entries()) {
    if (!p.trainable) continue;
    ++tensors;
    const Vec analytic = model.grad(p.name);
    REQUIRE(t::all_finite(analytic));
    Vec x = model.get(p.name);
    auto f = [&](const Vec& v) {
      model.set(p.name, v);
      return mc.loss();
    };
    t::FdResult r;
    {
      const t::ScopedOmpThreads serial(1);  // the analytic pass above ran on the configured threads
      r = t::fd_check(f, x, analytic, 40, seed++);
    }
    model.set(p.name, x);
    t::require_fd(p.name, r);
    // no trainable tensor is dead in this model: its gradient is visibly non-zero
    double gmax = 0;
    for (double g : analytic) gmax = std::max(gmax, std::abs(g));
    INFO(p.name);
    CHECK(gmax > 1e-8);
  }
  CHECK(tensors == Index(4 + 12 * 3 + 2 + 2 + 2 + 2));  // cls, mask, patch W/b; 3 blocks; norms; embed; pred
  CHECK(mc.loss() == l0);  // the weights were restored exactly
}

TEST_CASE("MaeViT backward adds into the gradient arena: twice doubles, scale scales, zero_grad clears",
          "[model]") {
  ModelCase mc;
  Model& model = mc.model;
  model.zero_grad();
  mc.loss();
  model.backward();
  const mae::Span<double> arena = model.grad_arena();
  const Vec g1(arena.data, arena.data + arena.size);
  double gmax = 0;
  for (double g : g1) gmax = std::max(gmax, std::abs(g));
  REQUIRE(gmax > 0);

  model.backward();  // no forward in between: the same gradient added again
  double worst = 0;
  for (Index i = 0; i < arena.size; ++i) worst = std::max(worst, std::abs(arena[i] - 2 * g1[i]));
  CHECK(worst <= 1e-14 * gmax);

  model.zero_grad();
  for (Index i = 0; i < arena.size; ++i) REQUIRE(arena[i] == 0.0);

  mc.loss();
  model.backward(0.25);
  worst = 0;
  for (Index i = 0; i < arena.size; ++i) worst = std::max(worst, std::abs(arena[i] - 0.25 * g1[i]));
  CHECK(worst <= 1e-14 * gmax);

  // the fixed position embeddings get no gradient
  for (double g : model.grad("pos_embed")) CHECK(g == 0.0);
  for (double g : model.grad("decoder_pos_embed")) CHECK(g == 0.0);
}

TEST_CASE("MaeViT forward is deterministic and the same after a backward (caches are not clobbered)", "[model]") {
  ModelCase mc;
  const double a = mc.loss();
  const Vec pred_a = mc.model.pred();
  mc.model.backward();
  const double b = mc.loss();
  CHECK(a == b);
  CHECK(mc.model.pred() == pred_a);
}

TEST_CASE("MaeViT with a mask ratio that keeps no patch (L 4, ratio 0.9: K = 0) still has correct gradients",
          "[model][grad]") {
  mae::MaeConfig cfg = tiny_config();
  cfg.img_size = 4;  // grid 2, L 4: int(4 · 0.1) = 0 patches kept, the encoder sees only the cls token
  cfg.mask_ratio = 0.9;
  mae::CpuEigen be;
  Model model(cfg, be, 2);
  REQUIRE(cfg.len_keep() == 0);
  perturb_weights(model, 1300);
  const Vec imgs = t::random_normal(2 * model.image_elems(), 1301);
  const Vec noise = t::random_uniform(2 * cfg.num_patches(), 1302);
  model.zero_grad();
  const double l0 = model.forward(imgs.data(), noise.data());
  REQUIRE(std::isfinite(l0));
  model.backward();
  for (double m : model.mask()) CHECK(m == 1.0);
  // no patch is embedded: the patch embedding gets exactly zero gradient
  for (double g : model.grad("patch_embed.proj.weight")) CHECK(g == 0.0);
  for (double g : model.grad("patch_embed.proj.bias")) CHECK(g == 0.0);
  std::uint64_t seed = 1400;
  const t::ScopedOmpThreads serial(1);
  for (const mae::ParamInfo& p : model.table().entries()) {
    if (!p.trainable) continue;
    const Vec analytic = model.grad(p.name);
    Vec x = model.get(p.name);
    auto f = [&](const Vec& v) {
      model.set(p.name, v);
      return model.forward(imgs.data(), noise.data());
    };
    const t::FdResult r = t::fd_check(f, x, analytic, 12, seed++);
    model.set(p.name, x);
    t::require_fd(p.name, r);
  }
}

TEST_CASE("Gradients::PerBlock hands every block's gradient to the sink once, final and equal to Full's, then zeroes "
          "it",
          "[model]") {
  ModelCase full, per;
  full.model.zero_grad();
  full.loss();
  full.model.backward(0.5);
  per.model.set_gradients(Model::Gradients::PerBlock);
  CHECK_THROWS_WITH(per.model.backward(), Catch::Contains("pass a sink"));
  per.loss();
  Model& m = per.model;
  const auto& es = m.table().entries();
  std::vector<Index> order;
  Index mismatches = 0, compared = 0;
  auto compare = [&](Index e) {
    if (!es[e].trainable) return;
    Vec got(es[e].numel);
    std::copy(m.grad_data(e), m.grad_data(e) + es[e].numel, got.begin());
    const Vec want = full.model.grad(es[e].name);
    for (std::size_t i = 0; i < got.size(); ++i) mismatches += got[i] != want[i];
    compared += es[e].numel;
  };
  m.backward(0.5, [&](Index k) {
    order.push_back(k);
    if (k == Model::kNonBlock) {
      for (Index e = 0; e < Index(es.size()); ++e)
        if (m.block_of(e) == Model::kNonBlock) compare(e);
    } else {
      for (Index e = m.block_spans()[k].entry_begin; e < m.block_spans()[k].entry_end; ++e) compare(e);
    }
  });
  // decoder block 0 (index depth + 0), encoder blocks 1 then 0, then everything else
  CHECK(order == std::vector<Index>{2, 1, 0, Model::kNonBlock});
  CHECK(mismatches == 0);
  Index trainable = 0;
  for (const auto& p : es) trainable += p.trainable ? p.numel : 0;
  CHECK(compared == trainable);
  // the storage is zero again, ready for the next step; block gradients are not readable by name
  const mae::Span<double> storage = m.grad_arena();
  Index nonzero = 0;
  for (Index i = 0; i < storage.size; ++i) nonzero += storage[i] != 0.0;
  CHECK(nonzero == 0);
  CHECK(storage.size < full.model.grad_arena().size / 2);
  CHECK_THROWS_WITH(m.grad("blocks.0.attn.qkv.weight"), Catch::Contains("PerBlock"));
  CHECK(m.grad("cls_token").size() == 8);
  // back to Full: backward() works again, as before
  m.set_gradients(Model::Gradients::Full);
  per.loss();
  m.backward(0.5);
  CHECK(m.grad("blocks.1.mlp.fc2.weight") == full.model.grad("blocks.1.mlp.fc2.weight"));
}

TEST_CASE("Gradients::PerBlock: a sink that returns true has zeroed the gradients itself, false or void "
          "leaves it to the model",
          "[model]") {
  ModelCase c;
  Model& m = c.model;
  m.set_gradients(Model::Gradients::PerBlock);
  auto nonzero = [&] {
    const mae::Span<double> storage = m.grad_arena();
    Index n = 0;
    for (Index i = 0; i < storage.size; ++i) n += storage[i] != 0.0;
    return n;
  };
  Index calls = 0;
  c.loss();
  m.backward(1.0, [&](Index) { ++calls; return false; });
  CHECK(nonzero() == 0);
  c.loss();
  m.backward(1.0, [&](Index) { ++calls; return true; });  // claims a zero fill it did not do
  CHECK(nonzero() > 0);  // so the model trusted it: the last block's and the other tensors' gradients remain
  CHECK(calls == 8);
  m.zero_grad();
  c.loss();
  m.backward(1.0, [&](Index) { ++calls; });
  CHECK(nonzero() == 0);
}

TEST_CASE("MaeViT with attention probabilities rebuilt in backward: same loss, gradients and features, bit for bit",
          "[model]") {
  ModelCase kept, lean;
  REQUIRE(kept.model.keep_attention_probs());
  const Vec f_kept = kept.model.features(kept.imgs);
  lean.model.features(lean.imgs);  // planned with probabilities kept, then re-planned below
  lean.model.set_keep_attention_probs(false);
  CHECK(lean.model.features(lean.imgs) == f_kept);
  kept.model.zero_grad();
  lean.model.zero_grad();
  CHECK(kept.loss() == lean.loss());
  kept.model.backward();
  lean.model.backward();
  for (const mae::ParamInfo& p : kept.model.table().entries()) {
    INFO(p.name);
    CHECK(kept.model.grad(p.name) == lean.model.grad(p.name));
  }
}
