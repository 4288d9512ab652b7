// Pre-norm transformer block (timm Block): x1 = x + Attn(LN1(x)), y = x1 + MLP(LN2(x1)).
// Forward vs a textbook composition; backward (dx and all 12 parameter gradients) vs central
// differences in double on CpuEigen, f = <y, g>. Cache and scratch start as NaN, gradients as a sentinel;
// the forward scratch is NaN again before backward, which rebuilds what the block does not keep.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/block.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using mae::Param;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Tensor {
  std::string name;
  Vec value, grad;
  Param<double> param() { return {value.data(), grad.data(), Index(value.size())}; }
};

struct BlockCase {
  Index n, tok, dim, heads, hidden;
  Vec x, g, y, dx, cache, fscratch, scratch;
  std::vector<Tensor> p;  // in timm's state_dict order
  mae::CpuEigen be;
  mae::Block<double> blk;

  BlockCase(Index n_, Index t_, Index d_, Index h_, Index hid, std::uint64_t seed = 100, bool keep_probs = false)
      : n(n_), tok(t_), dim(d_), heads(h_), hidden(hid) {
    const Index r = n * tok;
    x = t::random_normal(r * dim, seed);
    g = t::random_normal(r * dim, seed + 1);
    auto add = [&](const std::string& name, Index size, double std, double mean) {
      p.push_back({name, t::random_normal(size, seed + 10 + p.size(), std, mean), Vec(size, t::kSentinel)});
    };
    add("norm1.weight", dim, 0.2, 1.0);
    add("norm1.bias", dim, 0.2, 0.0);
    add("attn.qkv.weight", 3 * dim * dim, 0.5, 0.0);
    add("attn.qkv.bias", 3 * dim, 0.2, 0.0);
    add("attn.proj.weight", dim * dim, 0.4, 0.0);
    add("attn.proj.bias", dim, 0.2, 0.0);
    add("norm2.weight", dim, 0.2, 1.0);
    add("norm2.bias", dim, 0.2, 0.0);
    add("mlp.fc1.weight", hidden * dim, 0.4, 0.0);
    add("mlp.fc1.bias", hidden, 0.2, 0.0);
    add("mlp.fc2.weight", dim * hidden, 0.3, 0.0);
    add("mlp.fc2.bias", dim, 0.2, 0.0);
    blk.dim = dim;
    blk.norm1 = {dim, 1e-6, p[0].param(), p[1].param()};
    blk.attn = {dim, heads, {dim, 3 * dim, p[2].param(), p[3].param()}, {dim, dim, p[4].param(), p[5].param()}};
    blk.norm2 = {dim, 1e-6, p[6].param(), p[7].param()};
    blk.mlp = {dim, hidden, {dim, hidden, p[8].param(), p[9].param()}, {hidden, dim, p[10].param(), p[11].param()}};
    blk.attn.keep_probs = keep_probs;
    dx.assign(x.size(), t::kSentinel);
    y.assign(x.size(), kNaN);
    cache.assign(blk.cache_elems(n, tok), kNaN);
    fscratch.assign(blk.forward_scratch_elems(n, tok), kNaN);
    scratch.assign(blk.scratch_elems(n, tok), kNaN);
  }
  mae::BlockCache<double> c() { return blk.make_cache({cache.data(), Index(cache.size())}, n, tok); }
  double objective() {
    t::prefill_nan(y);
    blk.forward(be, MatView<const double>(x.data(), n * tok, dim), MatView<double>(y.data(), n * tok, dim), n, tok, c(),
                {fscratch.data(), Index(fscratch.size())});
    return t::dot(y, g);
  }
  void backward(bool accumulate = true) {
    t::prefill_nan(scratch);
    t::prefill_nan(fscratch);
    blk.backward(be, MatView<const double>(x.data(), n * tok, dim), MatView<const double>(g.data(), n * tok, dim), n,
                 tok, c(), {scratch.data(), Index(scratch.size())}, MatView<double>(dx.data(), n * tok, dim),
                 accumulate);
  }
  Vec reference() const {
    const Index r = n * tok;
    const Vec xn1 = t::naive::layer_norm(x, r, dim, p[0].value, p[1].value, 1e-6);
    Vec x1 = t::naive::attention(xn1, n, tok, dim, heads, p[2].value, p[3].value, p[4].value, p[5].value);
    for (std::size_t i = 0; i < x1.size(); ++i) x1[i] += x[i];
    const Vec xn2 = t::naive::layer_norm(x1, r, dim, p[6].value, p[7].value, 1e-6);
    Vec out = t::naive::mlp(xn2, r, dim, hidden, p[8].value, p[9].value, p[10].value, p[11].value);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] += x1[i];
    return out;
  }
};

void check_gradients(BlockCase& bc) {
  bc.objective();
  bc.backward();
  auto f = [&](const Vec&) { return bc.objective(); };
  const t::ScopedOmpThreads serial(1);  // FD loop only: the analytic pass ran on the configured threads
  t::require_fd("x", t::fd_check(f, bc.x, t::minus_sentinel(bc.dx)));
  std::uint64_t seed = 200;
  for (Tensor& p : bc.p) t::require_fd(p.name, t::fd_check(f, p.value, t::minus_sentinel(p.grad), 200, seed++));
}

}  // namespace

TEST_CASE("Block forward is x1 = x + Attn(LN1(x)), y = x1 + MLP(LN2(x1))", "[block]") {
  BlockCase bc(2, 5, 12, 3, 24);
  bc.objective();
  CHECK(t::max_abs_diff(bc.y, bc.reference()) <= 1e-12);
}

TEST_CASE("Block backward adds dx and every parameter gradient, matching central differences", "[block][grad]") {
  SECTION("batch 2, tokens 5, width 12, heads 3, hidden 24") {
    BlockCase bc(2, 5, 12, 3, 24);
    check_gradients(bc);
  }
  SECTION("batch 3, tokens 3, width 8, heads 2, hidden 12") {
    BlockCase bc(3, 3, 8, 2, 12, 300);
    check_gradients(bc);
  }
  SECTION("batch 2, tokens 5, width 12, heads 3, hidden 24, attention probabilities kept") {
    BlockCase bc(2, 5, 12, 3, 24, 100, /*keep_probs=*/true);
    check_gradients(bc);
  }
}

TEST_CASE("Block backward twice adds twice (the += rule, residual branches included)", "[block]") {
  BlockCase bc(2, 5, 12, 3, 24);
  bc.objective();
  bc.backward();
  const Vec x1 = t::minus_sentinel(bc.dx);
  std::vector<Vec> g1;
  for (const Tensor& p : bc.p) g1.push_back(t::minus_sentinel(p.grad));
  bc.backward();
  const Vec x2 = t::minus_sentinel(bc.dx);
  double worst = 0;
  for (std::size_t i = 0; i < x1.size(); ++i) worst = std::max(worst, std::abs(x2[i] - 2 * x1[i]));
  for (std::size_t k = 0; k < bc.p.size(); ++k) {
    const Vec g2 = t::minus_sentinel(bc.p[k].grad);
    for (std::size_t i = 0; i < g2.size(); ++i) worst = std::max(worst, std::abs(g2[i] - 2 * g1[k][i]));
  }
  CHECK(worst <= 1e-12);
}

TEST_CASE("Block backward with accumulate false overwrites dx (NaN before is gone) and still adds parameter "
          "gradients",
          "[block]") {
  BlockCase bc(2, 5, 12, 3, 24);
  bc.objective();
  bc.backward();  // += into the sentinel
  const Vec dx_add = t::minus_sentinel(bc.dx);
  std::vector<Vec> g1;
  for (const Tensor& p : bc.p) g1.push_back(t::minus_sentinel(p.grad));
  t::prefill_nan(bc.dx);
  bc.backward(/*accumulate=*/false);  // every inner buffer (MLP, attention, GELU) is overwritten too
  REQUIRE(t::all_finite(bc.dx));
  CHECK(t::max_abs_diff(bc.dx, dx_add) <= 1e-12);
  double worst = 0;
  for (std::size_t k = 0; k < bc.p.size(); ++k) {
    const Vec g2 = t::minus_sentinel(bc.p[k].grad);
    for (std::size_t i = 0; i < g2.size(); ++i) worst = std::max(worst, std::abs(g2[i] - 2 * g1[k][i]));
  }
  CHECK(worst <= 1e-12);
}

TEST_CASE("Block keeps x1, the LayerNorm statistics, qkv and fc1's output; rebuilding the rest changes no bit",
          "[block]") {
  BlockCase lean(2, 5, 12, 3, 24), kept(2, 5, 12, 3, 24, 100, /*keep_probs=*/true);
  const Index r = 2 * 5;
  CHECK(lean.cache.size() == std::size_t(4 * r + r * 12 + r * 36 + r * 24));
  lean.objective();
  kept.objective();
  CHECK(lean.y == kept.y);
  lean.backward();
  kept.backward();
  CHECK(lean.dx == kept.dx);
  for (std::size_t k = 0; k < lean.p.size(); ++k) {
    INFO(lean.p[k].name);
    CHECK(lean.p[k].grad == kept.p[k].grad);
  }
}

TEST_CASE("Block forward_rows / backward_rows are the full block on the listed rows, with dy zero on the others",
          "[block][grad]") {
  // rows of the n·t = 10: some per sample, not the same count in each (the block does not assume it)
  const std::vector<std::int64_t> rows = {1, 3, 4, 6, 8, 9};
  const Index m = Index(rows.size()), dim = 12;
  for (const bool keep_probs : {false, true}) {
    INFO("attention probabilities kept: " << keep_probs);
    BlockCase full(2, 5, dim, 3, 24, 100, keep_probs), part(2, 5, dim, 3, 24, 100, keep_probs);
    for (Index i = 0, j = 0; i < 10; ++i)  // the loss reads only the listed rows
      if (j < m && rows[j] == i) ++j;
      else std::fill(full.g.begin() + i * dim, full.g.begin() + (i + 1) * dim, 0.0);
    full.objective();
    full.backward();

    Vec y_rows(m * dim, kNaN), g_rows(m * dim);
    for (Index j = 0; j < m; ++j)
      std::copy(part.g.begin() + rows[j] * dim, part.g.begin() + (rows[j] + 1) * dim, g_rows.begin() + j * dim);
    auto objective = [&] {
      t::prefill_nan(y_rows);
      part.blk.forward_rows(part.be, MatView<const double>(part.x.data(), 10, dim), rows.data(),
                            MatView<double>(y_rows.data(), m, dim), 2, 5, part.c(),
                            {part.fscratch.data(), Index(part.fscratch.size())});
      return t::dot(y_rows, g_rows);
    };
    objective();
    double worst = 0;
    for (Index j = 0; j < m; ++j)
      for (Index c = 0; c < dim; ++c) worst = std::max(worst, std::abs(y_rows[j * dim + c] - full.y[rows[j] * dim + c]));
    CHECK(worst <= 1e-12);

    t::prefill_nan(part.scratch);
    t::prefill_nan(part.fscratch);
    part.blk.backward_rows(part.be, MatView<const double>(part.x.data(), 10, dim),
                           MatView<const double>(g_rows.data(), m, dim), rows.data(), 2, 5, part.c(),
                           {part.scratch.data(), Index(part.scratch.size())}, MatView<double>(part.dx.data(), 10, dim));
    REQUIRE(t::all_finite(part.dx));
    CHECK(t::max_abs_diff(t::minus_sentinel(part.dx), t::minus_sentinel(full.dx)) <= 1e-12);
    for (std::size_t k = 0; k < part.p.size(); ++k) {
      INFO(part.p[k].name);
      CHECK(t::max_abs_diff(t::minus_sentinel(part.p[k].grad), t::minus_sentinel(full.p[k].grad)) <= 1e-12);
    }
    // and against central differences of <y_rows, g_rows> itself, for x
    auto f = [&](const Vec&) { return objective(); };
    const t::ScopedOmpThreads serial(1);
    t::require_fd("x (rows)", t::fd_check(f, part.x, t::minus_sentinel(part.dx)));
  }
}
