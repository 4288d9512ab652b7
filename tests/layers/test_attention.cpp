// Multi-head self-attention (timm Attention, fused qkv): forward vs a textbook loop, the probability
// cache (keep_probs), and the backward (P and O kept, or rebuilt from qkv: the default) (dx, qkv and proj gradients) vs central differences in double on CpuEigen,
// f = <y, g>. Caches and scratch start as NaN, gradients as a sentinel.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/attention.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using mae::Span;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct AttnCase {
  Index n, tok, dim, heads;
  Vec x, g, y, wqkv, bqkv, wproj, bproj, dwqkv, dbqkv, dwproj, dbproj, dx, cache, fscratch, scratch;
  mae::CpuEigen be;
  mae::Attention<double> attn;

  AttnCase(Index n_, Index t_, Index d_, Index h_, std::uint64_t seed = 40, bool keep_probs = false)
      : n(n_), tok(t_), dim(d_), heads(h_) {
    const Index r = n * tok;
    x = t::random_normal(r * dim, seed + 1);
    g = t::random_normal(r * dim, seed + 2);
    // weights large enough that the softmax is far from uniform
    wqkv = t::random_normal(3 * dim * dim, seed + 3, 0.6);
    bqkv = t::random_normal(3 * dim, seed + 4, 0.3);
    wproj = t::random_normal(dim * dim, seed + 5, 0.4);
    bproj = t::random_normal(dim, seed + 6, 0.3);
    dwqkv.assign(wqkv.size(), t::kSentinel);
    dbqkv.assign(bqkv.size(), t::kSentinel);
    dwproj.assign(wproj.size(), t::kSentinel);
    dbproj.assign(bproj.size(), t::kSentinel);
    dx.assign(x.size(), t::kSentinel);
    y.assign(x.size(), kNaN);
    attn.dim = dim;
    attn.heads = heads;
    attn.qkv = {dim, 3 * dim, {wqkv.data(), dwqkv.data(), Index(wqkv.size())}, {bqkv.data(), dbqkv.data(), 3 * dim}};
    attn.proj = {dim, dim, {wproj.data(), dwproj.data(), Index(wproj.size())}, {bproj.data(), dbproj.data(), dim}};
    attn.keep_probs = keep_probs;
    cache.assign(attn.cache_elems(n, tok), kNaN);
    fscratch.assign(attn.forward_scratch_elems(n, tok), kNaN);
    scratch.assign(attn.scratch_elems(n, tok), kNaN);
  }
  mae::AttentionCache<double> c() { return attn.make_cache({cache.data(), Index(cache.size())}, n, tok); }
  double objective() {
    t::prefill_nan(y);
    attn.forward(be, MatView<const double>(x.data(), n * tok, dim), MatView<double>(y.data(), n * tok, dim), n, tok, c(),
                 {fscratch.data(), Index(fscratch.size())});
    return t::dot(y, g);
  }
  void backward() {
    t::prefill_nan(scratch);   // "contents irrelevant"
    t::prefill_nan(fscratch);  // backward must not read forward's scratch (the model shares the two)
    attn.backward(be, MatView<const double>(x.data(), n * tok, dim), MatView<const double>(g.data(), n * tok, dim), n,
                  tok, c(), {scratch.data(), Index(scratch.size())}, MatView<double>(dx.data(), n * tok, dim));
  }
};

void check_gradients(AttnCase& ac) {
  t::prefill_nan(ac.cache);
  ac.objective();
  ac.backward();
  auto f = [&](const Vec&) { return ac.objective(); };
  const t::ScopedOmpThreads serial(1);  // FD loop only: the analytic pass ran on the configured threads
  t::require_fd("x", t::fd_check(f, ac.x, t::minus_sentinel(ac.dx)));
  t::require_fd("attn.qkv.weight", t::fd_check(f, ac.wqkv, t::minus_sentinel(ac.dwqkv), 200, 41));
  t::require_fd("attn.qkv.bias", t::fd_check(f, ac.bqkv, t::minus_sentinel(ac.dbqkv)));
  t::require_fd("attn.proj.weight", t::fd_check(f, ac.wproj, t::minus_sentinel(ac.dwproj), 200, 42));
  t::require_fd("attn.proj.bias", t::fd_check(f, ac.bproj, t::minus_sentinel(ac.dbproj)));
}

}  // namespace

TEST_CASE("Attention forward is timm's: qkv columns s*D + h*Dh + d, softmax(q·kᵀ·Dh^-1/2)·v, heads concatenated",
          "[attention]") {
  AttnCase ac(2, 5, 12, 3, 40, /*keep_probs=*/true);
  ac.objective();
  Vec probs;
  const Vec ref = t::naive::attention(ac.x, 2, 5, 12, 3, ac.wqkv, ac.bqkv, ac.wproj, ac.bproj, &probs);
  CHECK(t::max_abs_diff(ac.y, ref) <= 1e-13);
  const auto c = ac.c();
  CHECK(t::max_abs_diff(Vec(c.probs.data, c.probs.data + c.probs.size), probs) <= 1e-14);
  const Vec qkv = t::naive::linear(ac.x, 10, 12, 36, ac.wqkv, ac.bqkv);
  CHECK(t::max_abs_diff(Vec(c.qkv.data, c.qkv.data + c.qkv.size), qkv) <= 1e-13);
}

TEST_CASE("Attention rows of the probability cache sum to 1", "[attention]") {
  AttnCase ac(2, 5, 12, 3, 40, /*keep_probs=*/true);
  ac.objective();
  const auto c = ac.c();
  REQUIRE(c.probs.size == 2 * 3 * 5 * 5);
  double worst = 0, pmin = 1, pmax = 0;
  for (Index row = 0; row < 2 * 3 * 5; ++row) {
    double s = 0;
    for (Index j = 0; j < 5; ++j) {
      const double p = c.probs[row * 5 + j];
      s += p;
      pmin = std::min(pmin, p);
      pmax = std::max(pmax, p);
    }
    worst = std::max(worst, std::abs(s - 1.0));
  }
  CHECK(worst <= 1e-15);
  CHECK(pmin > 0.0);
  CHECK(pmax < 1.0);
  CHECK(pmax - pmin > 0.1);  // not uniform: the test data exercises the softmax
}

TEST_CASE("Attention backward adds dx and the qkv and proj gradients that match central differences",
          "[attention][grad]") {
  SECTION("batch 2, tokens 5, width 12, heads 3") {
    AttnCase ac(2, 5, 12, 3);
    check_gradients(ac);
  }
  SECTION("batch 3, tokens 4, width 6, heads 2") {
    AttnCase ac(3, 4, 6, 2, 50);
    check_gradients(ac);
  }
  SECTION("batch 1, tokens 7, width 8, heads 4 (head dim 2)") {
    AttnCase ac(1, 7, 8, 4, 60);
    check_gradients(ac);
  }
  SECTION("batch 2, tokens 5, width 12, heads 3, probabilities kept instead of rebuilt") {
    AttnCase ac(2, 5, 12, 3, 40, /*keep_probs=*/true);
    check_gradients(ac);
  }
  SECTION("one token, one head: probabilities are 1, q and k get no gradient") {
    AttnCase ac(2, 1, 4, 1, 70);
    check_gradients(ac);
    const Vec dw = t::minus_sentinel(ac.dwqkv);
    for (Index i = 0; i < 2 * 4 * 4; ++i) CHECK(std::abs(dw[i]) <= 1e-15);  // q and k rows of Wqkv
  }
}

TEST_CASE("Attention backward twice adds twice (the += rule), also with a reused NaN scratch", "[attention]") {
  AttnCase ac(2, 5, 12, 3);
  ac.objective();
  ac.backward();
  const Vec a1 = t::minus_sentinel(ac.dwqkv), x1 = t::minus_sentinel(ac.dx), p1 = t::minus_sentinel(ac.dbproj);
  ac.backward();
  const Vec a2 = t::minus_sentinel(ac.dwqkv), x2 = t::minus_sentinel(ac.dx), p2 = t::minus_sentinel(ac.dbproj);
  for (std::size_t i = 0; i < a1.size(); ++i) CHECK(a2[i] == Approx(2 * a1[i]).margin(1e-13));
  for (std::size_t i = 0; i < x1.size(); ++i) CHECK(x2[i] == Approx(2 * x1[i]).margin(1e-13));
  for (std::size_t i = 0; i < p1.size(); ++i) CHECK(p2[i] == Approx(2 * p1[i]).margin(1e-13));
}

TEST_CASE("Attention without keep_probs caches only qkv, and its rebuilt P and O give bit-identical results",
          "[attention]") {
  AttnCase lean(2, 5, 12, 3), kept(2, 5, 12, 3, 40, /*keep_probs=*/true);
  CHECK(lean.cache.size() == std::size_t(2 * 5 * 36));
  CHECK(kept.cache.size() == std::size_t(2 * 5 * 36 + 2 * 3 * 25 + 2 * 5 * 12));
  lean.objective();
  kept.objective();
  CHECK(lean.y == kept.y);
  lean.backward();
  kept.backward();
  CHECK(lean.dx == kept.dx);
  CHECK(lean.dwqkv == kept.dwqkv);
  CHECK(lean.dbqkv == kept.dbqkv);
  CHECK(lean.dwproj == kept.dwproj);
  CHECK(lean.dbproj == kept.dbproj);
}

TEST_CASE("Attention with an inference cache (for_backward false) keeps P and O in scratch, same output bit for bit",
          "[attention]") {
  AttnCase ac(2, 5, 12, 3, 40, /*keep_probs=*/true);
  ac.objective();
  const Vec y_train = ac.y;
  const Index n = 2, tok = 5, r = n * tok;
  Vec cache(ac.attn.cache_elems(n, tok, false), kNaN), fscratch(ac.attn.forward_scratch_elems(n, tok, false), kNaN);
  CHECK(cache.size() == std::size_t(r * 36));
  CHECK(fscratch.size() == std::size_t(n * 3 * tok * tok + r * 12));
  Vec y(r * 12, kNaN);
  ac.attn.forward(ac.be, MatView<const double>(ac.x.data(), r, 12), MatView<double>(y.data(), r, 12), n, tok,
                  ac.attn.make_cache({cache.data(), Index(cache.size())}, n, tok, false),
                  {fscratch.data(), Index(fscratch.size())});
  CHECK(y == y_train);
}
