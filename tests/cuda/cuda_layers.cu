// Every kernel family on Cuda against CpuEigen, in float and double: the same layer code runs on
// both backends from the same inputs, and every tensor it touches (outputs, caches, gradients, and
// the inputs themselves) must agree by the parity rule. Caches and written outputs start as NaN
// (forward must write what backward reads); accumulated gradients start random (the += rule).
#include "cuda_support.cuh"
#include "mae/layers/block.hpp"
#include "mae/layers/mask_unshuffle.hpp"
#include "mae/layers/mse_loss.hpp"
#include "mae/layers/patch_embed.hpp"
#include "mae/layers/random_masking.hpp"
#include "mae/optim/adamw.hpp"

using mae::Index;
using mae::MatView;
using mae::Span;
using mae::test::HostSet;
using mae::test::nan_vector;
using mae::test::random_vector;

namespace {
// A Linear's weight (out, in), bias (out) and their gradients under `name`.
template <class T>
void add_linear(HostSet<T>& h, const std::string& name, Index in, Index out, std::uint64_t seed) {
  const double bound = 1.0 / std::sqrt(double(in));
  h.values[name + ".w"] = random_vector<T>(out * in, seed, -bound, bound);
  h.values[name + ".b"] = random_vector<T>(out, seed + 1, -0.1, 0.1);
  h.values["d" + name + ".w"] = random_vector<T>(out * in, seed + 2);
  h.values["d" + name + ".b"] = random_vector<T>(out, seed + 3);
}
template <class T, class Tensors>
mae::Linear<T> linear(const Tensors& t, const std::string& name, Index in, Index out) {
  return {in, out, t.param(name + ".w"), t.param(name + ".b")};
}
template <class T>
void add_layer_norm(HostSet<T>& h, const std::string& name, Index dim, std::uint64_t seed) {
  h.values[name + ".g"] = random_vector<T>(dim, seed, 0.5, 1.5);
  h.values[name + ".b"] = random_vector<T>(dim, seed + 1, -0.2, 0.2);
  h.values["d" + name + ".g"] = random_vector<T>(dim, seed + 2);
  h.values["d" + name + ".b"] = random_vector<T>(dim, seed + 3);
}
template <class T, class Tensors>
mae::LayerNorm<T> layer_norm(const Tensors& t, const std::string& name, Index dim) {
  return {dim, T(1e-6), t.param(name + ".g"), t.param(name + ".b")};
}
}  // namespace

TEMPLATE_TEST_CASE("tensor ops (fill, add_to, copy, add_row_vector, add_column_sums on padded views) agree on "
                   "Cuda and CpuEigen",
                   "[cuda][layers]", float, double) {
  using T = TestType;
  const Index R = 9, C = 13, ld = 16;
  HostSet<T> h;
  h.values["a"] = random_vector<T>(R * ld, 1);
  h.values["b"] = random_vector<T>(R * ld, 2);
  h.values["c"] = nan_vector<T>(R * ld);
  h.values["v"] = random_vector<T>(C, 3);
  h.values["sums"] = random_vector<T>(C, 4);
  h.values["filled"] = nan_vector<T>(37);
  mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
    mae::fill(be, t.span("filled"), T(0.25));
    mae::copy(be, Span<const T>(t.span("a")), t.span("c"));
    mae::add_to(be, Span<const T>(t.span("b")), t.span("c"));
    mae::add_row_vector(be, MatView<T>(t["c"], R, C, ld), t["v"]);
    mae::add_column_sums(be, MatView<const T>(t["c"], R, C, ld), t["sums"]);
  });
}

TEMPLATE_TEST_CASE("LayerNorm forward and backward on padded rows agree on Cuda and CpuEigen", "[cuda][layers]",
                   float, double) {
  using T = TestType;
  const Index R = 7, D = 33, ld = 40;
  HostSet<T> h;
  h.values["x"] = random_vector<T>(R * ld, 1, -2, 3);
  h.values["y"] = random_vector<T>(R * ld, 2);  // padding must survive
  h.values["dy"] = random_vector<T>(R * ld, 3);
  h.values["dx"] = random_vector<T>(R * ld, 4);
  h.values["cache"] = nan_vector<T>(mae::LayerNorm<T>::cache_elems(R));
  add_layer_norm(h, "ln", D, 10);
  mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
    const mae::LayerNorm<T> ln = layer_norm<T>(t, "ln", D);
    const auto cache = mae::LayerNorm<T>::make_cache(t.span("cache"), R);
    ln.forward(be, MatView<const T>(t["x"], R, D, ld), MatView<T>(t["y"], R, D, ld), cache);
    ln.backward(be, MatView<const T>(t["x"], R, D, ld), MatView<const T>(t["dy"], R, D, ld), cache,
                MatView<T>(t["dx"], R, D, ld));
  });
}

TEMPLATE_TEST_CASE("GELU (erf form) forward and backward agree on Cuda and CpuEigen", "[cuda][layers]", float, double) {
  using T = TestType;
  const Index n = 1001;
  HostSet<T> h;
  h.values["x"] = random_vector<T>(n, 1, -6, 6);
  h.values["x"][7] = T(0);
  h.values["y"] = nan_vector<T>(n);
  h.values["y2"] = nan_vector<T>(n);
  h.values["dy"] = random_vector<T>(n, 2);
  h.values["dx"] = random_vector<T>(n, 3);
  h.values["d"] = random_vector<T>(n, 4);
  mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
    mae::Gelu<T>{}.forward(be, Span<const T>(t.span("x")), t.span("y"));
    mae::Gelu<T>{}.backward(be, Span<const T>(t.span("x")), Span<const T>(t.span("dy")), t.span("dx"));
    mae::Gelu<T>{}.recompute_backward(be, Span<const T>(t.span("x")), t.span("y2"), t.span("d"));
  });
}

TEMPLATE_TEST_CASE("Attention (batched head GEMMs, softmax and its backward) agrees on Cuda and CpuEigen",
                   "[cuda][layers]", float, double) {
  using T = TestType;
  const Index shapes[][4] = {{2, 5, 8, 2}, {3, 17, 24, 3}, {1, 50, 64, 4}};  // n, t, D, H
  for (const bool keep : {false, true})
  for (const auto& s : shapes) {
    const Index n = s[0], tt = s[1], D = s[2], H = s[3], r = n * tt;
    INFO("n " << n << " t " << tt << " D " << D << " heads " << H << " keep_probs " << keep);
    mae::Attention<T> shape{D, H, {}, {}, keep};
    HostSet<T> h;
    h.values["x"] = random_vector<T>(r * D, 1, -2, 2);
    h.values["y"] = nan_vector<T>(r * D);
    h.values["dy"] = random_vector<T>(r * D, 2);
    h.values["dx"] = random_vector<T>(r * D, 3);
    h.values["cache"] = nan_vector<T>(shape.cache_elems(n, tt));
    h.values["scratch"] = nan_vector<T>(shape.scratch_elems(n, tt));
    add_linear(h, "qkv", D, 3 * D, 10);
    add_linear(h, "proj", D, D, 20);
    mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
      const mae::Attention<T> a{D, H, linear<T>(t, "qkv", D, 3 * D), linear<T>(t, "proj", D, D), keep};
      const auto cache = a.make_cache(t.span("cache"), n, tt);
      a.forward(be, MatView<const T>(t["x"], r, D), MatView<T>(t["y"], r, D), n, tt, cache, t.span("scratch"));
      a.backward(be, MatView<const T>(t["x"], r, D), MatView<const T>(t["dy"], r, D), n, tt, cache, t.span("scratch"),
                 MatView<T>(t["dx"], r, D));
    });
  }
}

TEMPLATE_TEST_CASE("a transformer Block (LayerNorm, attention, MLP, residuals) agrees on Cuda and CpuEigen",
                   "[cuda][layers]", float, double) {
  using T = TestType;
  const Index n = 2, tt = 9, D = 16, H = 2, Hm = 64, r = n * tt;
  auto make = [&](const auto& t) {
    mae::Block<T> b;
    b.dim = D;
    b.norm1 = layer_norm<T>(t, "ln1", D);
    b.norm2 = layer_norm<T>(t, "ln2", D);
    b.attn = {D, H, linear<T>(t, "qkv", D, 3 * D), linear<T>(t, "proj", D, D)};
    b.mlp = {D, Hm, linear<T>(t, "fc1", D, Hm), linear<T>(t, "fc2", Hm, D)};
    return b;
  };
  mae::Block<T> shape;
  shape.dim = D;
  shape.attn = {D, H, {}, {}};
  shape.mlp = {D, Hm, {}, {}};
  HostSet<T> h;
  h.values["x"] = random_vector<T>(r * D, 1, -2, 2);
  h.values["y"] = nan_vector<T>(r * D);
  h.values["dy"] = random_vector<T>(r * D, 2);
  h.values["dx"] = random_vector<T>(r * D, 3);
  h.values["cache"] = nan_vector<T>(shape.cache_elems(n, tt));
  h.values["scratch"] = nan_vector<T>(shape.scratch_elems(n, tt));
  add_layer_norm(h, "ln1", D, 10);
  add_layer_norm(h, "ln2", D, 20);
  add_linear(h, "qkv", D, 3 * D, 30);
  add_linear(h, "proj", D, D, 40);
  add_linear(h, "fc1", D, Hm, 50);
  add_linear(h, "fc2", Hm, D, 60);
  mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
    const mae::Block<T> b = make(t);
    const auto cache = b.make_cache(t.span("cache"), n, tt);
    b.forward(be, MatView<const T>(t["x"], r, D), MatView<T>(t["y"], r, D), n, tt, cache, t.span("scratch"));
    b.backward(be, MatView<const T>(t["x"], r, D), MatView<const T>(t["dy"], r, D), n, tt, cache, t.span("scratch"),
               MatView<T>(t["dx"], r, D));
  });
}

TEMPLATE_TEST_CASE("patch gather (c, u, v), patch embedding, token assembly and their backward agree on Cuda and "
                   "CpuEigen",
                   "[cuda][layers]", float, double) {
  using T = TestType;
  const Index img = 8, p = 2, C = 3, D = 16, n = 2, g = img / p, L = g * g, keep = 5, P = C * p * p;
  HostSet<T> h;
  h.values["imgs"] = random_vector<T>(n * C * img * img, 1, -2, 2);
  h.values["patches"] = nan_vector<T>(n * keep * P);
  h.values["tok"] = nan_vector<T>(n * keep * D);
  h.values["out"] = nan_vector<T>(n * (1 + keep) * D);
  h.values["dout"] = random_vector<T>(n * (1 + keep) * D, 2);
  h.values["dtok"] = nan_vector<T>(n * keep * D);
  h.values["cls"] = random_vector<T>(D, 3);
  h.values["dcls"] = random_vector<T>(D, 4);
  h.values["pos"] = random_vector<T>((1 + L) * D, 5);
  add_linear(h, "proj", P, D, 10);
  h.ids["ids"] = mae::test::random_permutations(n, L, 6);
  mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
    const mae::PatchEmbed<T> pe{img, p, C, D, linear<T>(t, "proj", P, D), t.param("cls"), t["pos"]};
    pe.forward(be, t["imgs"], t.ids("ids"), L, n, keep, MatView<T>(t["patches"], n * keep, P),
               MatView<T>(t["tok"], n * keep, D), MatView<T>(t["out"], n * (1 + keep), D));
    pe.backward(be, n, keep, MatView<const T>(t["patches"], n * keep, P),
                MatView<const T>(t["dout"], n * (1 + keep), D), MatView<T>(t["dtok"], n * keep, D));
  });
}

TEMPLATE_TEST_CASE("decoder unshuffle with mask tokens and its backward agree on Cuda and CpuEigen", "[cuda][layers]",
                   float, double) {
  using T = TestType;
  const Index n = 3, L = 16, keep = 4, Dd = 8;
  const auto noise = random_vector<T>(n * L, 1, 0, 1);
  const mae::Masking m = mae::random_masking(noise.data(), n, L, 0.75);
  REQUIRE(m.keep == keep);
  HostSet<T> h;
  h.values["y"] = random_vector<T>(n * (1 + keep) * Dd, 2);
  h.values["mask_token"] = random_vector<T>(Dd, 3);
  h.values["dmask_token"] = random_vector<T>(Dd, 4);
  h.values["pos"] = random_vector<T>((1 + L) * Dd, 5);
  h.values["z"] = nan_vector<T>(n * (1 + L) * Dd);
  h.values["dz"] = random_vector<T>(n * (1 + L) * Dd, 6);
  h.values["dy"] = random_vector<T>(n * (1 + keep) * Dd, 7);
  h.ids["shuffle"] = m.ids_shuffle;
  h.ids["restore"] = m.ids_restore;
  mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
    const mae::MaskUnshuffle<T> u{Dd, t.param("mask_token"), t["pos"]};
    u.forward(be, MatView<const T>(t["y"], n * (1 + keep), Dd), t.ids("restore"), n, L, keep,
              MatView<T>(t["z"], n * (1 + L), Dd));
    u.backward(be, MatView<const T>(t["dz"], n * (1 + L), Dd), t.ids("shuffle"), t.ids("restore"), n, L, keep,
               MatView<T>(t["dy"], n * (1 + keep), Dd));
  });
}

TEMPLATE_TEST_CASE("loss: patchified target (with and without norm_pix), masked mean and its gradient agree on Cuda "
                   "and CpuEigen",
                   "[cuda][layers]", float, double) {
  using T = TestType;
  const Index img = 8, p = 2, C = 3, n = 2, L = 16, keep = 4, P = p * p * C;
  const auto noise = random_vector<T>(n * L, 1, 0, 1);
  const mae::Masking m = mae::random_masking(noise.data(), n, L, 0.75);
  std::vector<T> mask(n * L);
  for (Index i = 0; i < n * L; ++i) mask[i] = m.ids_restore[i] >= keep ? T(1) : T(0);
  for (bool norm_pix : {false, true}) {
    INFO("norm_pix_loss " << norm_pix);
    HostSet<T> h;
    h.values["imgs"] = random_vector<T>(n * C * img * img, 2, -2, 2);
    h.values["pred"] = random_vector<T>(n * (1 + L) * P, 3);
    h.values["mask"] = mask;
    h.values["target"] = nan_vector<T>(n * L * P);
    h.values["err"] = nan_vector<T>(n * L);
    h.values["stats"] = nan_vector<T>(2);
    h.values["dpred"] = nan_vector<T>(n * (1 + L) * P);
    mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
      const mae::MseLoss<T> loss{img, p, C, norm_pix};
      loss.target(be, t["imgs"], n, MatView<T>(t["target"], n * L, P));
      loss.forward(be, MatView<const T>(t["pred"], n * (1 + L), P), MatView<const T>(t["target"], n * L, P), t["mask"],
                   n, t.span("err"), t.span("stats"));
      loss.backward(be, MatView<const T>(t["pred"], n * (1 + L), P), MatView<const T>(t["target"], n * L, P),
                    t["mask"], n, Span<const T>(t.span("stats")), T(0.5), MatView<T>(t["dpred"], n * (1 + L), P));
    });
  }
}

TEMPLATE_TEST_CASE("AdamW steps (decay and no-decay segments) agree on Cuda and CpuEigen", "[cuda][optim]", float,
                   double) {
  using T = TestType;
  const Index n1 = 1000, n2 = 37;
  HostSet<T> h;
  for (const char* s : {"1", "2"}) {
    const Index n = s[0] == '1' ? n1 : n2;
    const std::uint64_t seed = s[0] == '1' ? 10 : 20;
    h.values[std::string("p") + s] = random_vector<T>(n, seed);
    h.values[std::string("g") + s] = random_vector<T>(n, seed + 1, -1e-2, 1e-2);
    h.values[std::string("m") + s] = random_vector<T>(n, seed + 2, -1e-3, 1e-3);
    h.values[std::string("v") + s] = random_vector<T>(n, seed + 3, 0, 1e-4);
  }
  mae::test::expect_same_on_both(h, [&](auto& be, auto& t) {
    mae::AdamW<T> opt;
    const std::vector<typename mae::AdamW<T>::Segment> segs = {{t["p1"], t["g1"], t["m1"], t["v1"], n1, true},
                                                               {t["p2"], t["g2"], t["m2"], t["v2"], n2, false}};
    for (double lr : {0.0, 1e-3, 5e-4}) opt.step(be, segs, lr);
  });
}
