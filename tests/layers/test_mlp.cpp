// MLP (timm Mlp): y = fc2(GELU(fc1(x))). Forward vs a textbook loop; backward (dx, fc1 and fc2
// gradients) vs central differences in double on CpuEigen, f = <y, g>.
#include <catch2/catch.hpp>

#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/mlp.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct MlpCase {
  Index rows, dim, hidden;
  Vec x, g, y, w1, b1, w2, b2, dw1, db1, dw2, db2, dx, cache, fscratch, scratch;
  mae::CpuEigen be;
  mae::Mlp<double> mlp;

  MlpCase(Index rows_, Index dim_, Index hidden_, std::uint64_t seed = 80) : rows(rows_), dim(dim_), hidden(hidden_) {
    x = t::random_normal(rows * dim, seed + 1);
    g = t::random_normal(rows * dim, seed + 2);
    w1 = t::random_normal(hidden * dim, seed + 3, 0.5);
    b1 = t::random_normal(hidden, seed + 4, 0.3);
    w2 = t::random_normal(dim * hidden, seed + 5, 0.4);
    b2 = t::random_normal(dim, seed + 6, 0.3);
    dw1.assign(w1.size(), t::kSentinel);
    db1.assign(b1.size(), t::kSentinel);
    dw2.assign(w2.size(), t::kSentinel);
    db2.assign(b2.size(), t::kSentinel);
    dx.assign(x.size(), t::kSentinel);
    y.assign(x.size(), kNaN);
    mlp.dim = dim;
    mlp.hidden = hidden;
    mlp.fc1 = {dim, hidden, {w1.data(), dw1.data(), Index(w1.size())}, {b1.data(), db1.data(), hidden}};
    mlp.fc2 = {hidden, dim, {w2.data(), dw2.data(), Index(w2.size())}, {b2.data(), db2.data(), dim}};
    cache.assign(mlp.cache_elems(rows), kNaN);
    fscratch.assign(mlp.forward_scratch_elems(rows), kNaN);
    scratch.assign(mlp.scratch_elems(rows), kNaN);
  }
  mae::MlpCache<double> c() { return mlp.make_cache({cache.data(), Index(cache.size())}, rows); }
  double objective() {
    t::prefill_nan(y);
    mlp.forward(be, MatView<const double>(x.data(), rows, dim), MatView<double>(y.data(), rows, dim), c(),
                {fscratch.data(), Index(fscratch.size())});
    return t::dot(y, g);
  }
  void backward() {
    t::prefill_nan(scratch);
    t::prefill_nan(fscratch);  // backward must not read forward's scratch (the model shares the two)
    mlp.backward(be, MatView<const double>(x.data(), rows, dim), MatView<const double>(g.data(), rows, dim), c(),
                 {scratch.data(), Index(scratch.size())}, MatView<double>(dx.data(), rows, dim));
  }
};

void check_gradients(MlpCase& mc) {
  mc.objective();
  mc.backward();
  auto f = [&](const Vec&) { return mc.objective(); };
  const t::ScopedOmpThreads serial(1);  // FD loop only: the analytic pass ran on the configured threads
  t::require_fd("x", t::fd_check(f, mc.x, t::minus_sentinel(mc.dx)));
  t::require_fd("mlp.fc1.weight", t::fd_check(f, mc.w1, t::minus_sentinel(mc.dw1), 200, 81));
  t::require_fd("mlp.fc1.bias", t::fd_check(f, mc.b1, t::minus_sentinel(mc.db1)));
  t::require_fd("mlp.fc2.weight", t::fd_check(f, mc.w2, t::minus_sentinel(mc.dw2), 200, 82));
  t::require_fd("mlp.fc2.bias", t::fd_check(f, mc.b2, t::minus_sentinel(mc.db2)));
}

}  // namespace

TEST_CASE("MLP forward is fc2(GELU_erf(fc1(x))) and caches only fc1's output", "[mlp]") {
  MlpCase mc(7, 12, 18);
  mc.objective();
  CHECK(t::max_abs_diff(mc.y, t::naive::mlp(mc.x, 7, 12, 18, mc.w1, mc.b1, mc.w2, mc.b2)) <= 1e-13);
  const auto c = mc.c();
  const Vec h = t::naive::linear(mc.x, 7, 12, 18, mc.w1, mc.b1);
  CHECK(mc.mlp.cache_elems(7) == 7 * 18);  // the GELU output is scratch, rebuilt by backward
  CHECK(t::max_abs_diff(Vec(c.h.data, c.h.data + c.h.size), h) <= 1e-13);
}

TEST_CASE("MLP backward adds dx and the fc1 and fc2 gradients that match central differences", "[mlp][grad]") {
  SECTION("rows 7, width 12, hidden 18 (mlp_ratio 1.5)") {
    MlpCase mc(7, 12, 18);
    check_gradients(mc);
  }
  SECTION("rows 3, width 5, hidden 20") {
    MlpCase mc(3, 5, 20, 90);
    check_gradients(mc);
  }
}

TEST_CASE("MLP backward twice adds twice (the += rule)", "[mlp]") {
  MlpCase mc(7, 12, 18);
  mc.objective();
  mc.backward();
  const Vec w1 = t::minus_sentinel(mc.dw1), x1 = t::minus_sentinel(mc.dx), b1 = t::minus_sentinel(mc.db2);
  mc.backward();
  const Vec w2 = t::minus_sentinel(mc.dw1), x2 = t::minus_sentinel(mc.dx), b2 = t::minus_sentinel(mc.db2);
  for (std::size_t i = 0; i < w1.size(); ++i) CHECK(w2[i] == Approx(2 * w1[i]).margin(1e-13));
  for (std::size_t i = 0; i < x1.size(); ++i) CHECK(x2[i] == Approx(2 * x1[i]).margin(1e-13));
  for (std::size_t i = 0; i < b1.size(); ++i) CHECK(b2[i] == Approx(2 * b1[i]).margin(1e-13));
}
