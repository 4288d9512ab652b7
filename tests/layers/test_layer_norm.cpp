// LayerNorm over the last dimension (eps 1e-6, biased variance): y = xhat · gamma + beta;
// backward adds dgamma, dbeta and dx. Gradient checks in double on CpuEigen, f = <y, g>.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/layer_norm.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// rows x dim, stored with leading dimension ld (>= dim) for x, y, dy and dx; padding of inputs is
// NaN, padding of outputs a sentinel.
struct LnCase {
  Index rows, dim, ld;
  Vec x, g, y, gamma, beta, dgamma, dbeta, dx, cache;
  mae::CpuEigen be;
  mae::LayerNorm<double> ln;

  LnCase(Index rows_, Index dim_, Index pad, double scale = 1.0, double offset = 0.0)
      : rows(rows_), dim(dim_), ld(dim_ + pad) {
    x.assign(rows * ld, kNaN);
    g.assign(rows * ld, kNaN);
    const Vec xv = t::random_normal(rows * dim, 21, scale, offset), gv = t::random_normal(rows * dim, 22);
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < dim; ++c) {
        x[r * ld + c] = xv[r * dim + c];
        g[r * ld + c] = gv[r * dim + c];
      }
    gamma = t::random_normal(dim, 23, 0.3, 1.0);
    beta = t::random_normal(dim, 24, 0.2);
    dgamma.assign(dim, t::kSentinel);
    dbeta.assign(dim, t::kSentinel);
    dx.assign(rows * ld, t::kSentinel);
    y.assign(rows * ld, t::kSentinel);
    cache.assign(mae::LayerNorm<double>::cache_elems(rows), kNaN);  // forward must write what backward reads
    ln.dim = dim;
    ln.gamma = {gamma.data(), dgamma.data(), dim};
    ln.beta = {beta.data(), dbeta.data(), dim};
  }
  mae::LayerNormCache<double> c() { return mae::LayerNorm<double>::make_cache({cache.data(), Index(cache.size())}, rows); }
  double objective() {
    for (Index r = 0; r < rows; ++r)
      for (Index k = 0; k < dim; ++k) y[r * ld + k] = kNaN;
    ln.forward(be, MatView<const double>(x.data(), rows, dim, ld), MatView<double>(y.data(), rows, dim, ld), c());
    double f = 0;
    for (Index r = 0; r < rows; ++r)
      for (Index k = 0; k < dim; ++k) f += y[r * ld + k] * g[r * ld + k];
    return f;
  }
  void backward() {
    ln.backward(be, MatView<const double>(x.data(), rows, dim, ld), MatView<const double>(g.data(), rows, dim, ld), c(),
                MatView<double>(dx.data(), rows, dim, ld));
  }
  Vec dense(const Vec& m) const {
    Vec out(rows * dim);
    for (Index r = 0; r < rows; ++r)
      for (Index k = 0; k < dim; ++k) out[r * dim + k] = m[r * ld + k];
    return out;
  }
};

void check_gradients(LnCase& lc) {
  lc.objective();
  lc.backward();
  CHECK(t::all_finite(lc.dx));
  auto f = [&](const Vec&) { return lc.objective(); };
  Vec dx_full(lc.x.size(), 0.0);
  std::vector<std::size_t> idx;
  for (Index r = 0; r < lc.rows; ++r)
    for (Index k = 0; k < lc.dim; ++k) {
      idx.push_back(std::size_t(r * lc.ld + k));
      dx_full[r * lc.ld + k] = lc.dx[r * lc.ld + k] - t::kSentinel;
    }
  t::require_fd("x", t::fd_check(f, lc.x, dx_full, idx));
  t::require_fd("gamma", t::fd_check(f, lc.gamma, t::minus_sentinel(lc.dgamma)));
  t::require_fd("beta", t::fd_check(f, lc.beta, t::minus_sentinel(lc.dbeta)));
}

}  // namespace

TEST_CASE("LayerNorm normalizes each row with the biased variance and eps = 1e-6 inside the sqrt", "[layer_norm]") {
  // inputs of standard deviation 1e-3 (variance 1e-6 ~ eps): eps placement and the divisor show
  LnCase lc(7, 12, 0, 1e-3, 0.5);
  lc.objective();
  CHECK(lc.ln.eps == 1e-6);
  const Vec ref = t::naive::layer_norm(lc.x, 7, 12, lc.gamma, lc.beta, 1e-6);
  CHECK(t::max_abs_diff(lc.y, ref) <= 1e-12);
  // the cache holds each row's mean and 1/sqrt(var + eps)
  const auto c = lc.c();
  for (Index r = 0; r < 7; ++r) {
    long double m = 0, v = 0;
    for (Index k = 0; k < 12; ++k) m += lc.x[r * 12 + k];
    m /= 12;
    for (Index k = 0; k < 12; ++k) v += (lc.x[r * 12 + k] - m) * (lc.x[r * 12 + k] - m);
    CHECK(c.mean[r] == Approx(double(m)).epsilon(1e-13));
    CHECK(c.rstd[r] == Approx(double(1.0L / std::sqrt(v / 12 + 1e-6L))).epsilon(1e-12));
    // the wrong conventions give clearly different numbers on these rows
    CHECK(std::abs(c.rstd[r] - double(1.0L / std::sqrt(v / 11 + 1e-6L))) > 1e-3 * c.rstd[r]);
    CHECK(std::abs(c.rstd[r] - double(1.0L / (std::sqrt(v / 12) + 1e-6L))) > 1e-3 * c.rstd[r]);
  }
}

TEST_CASE("LayerNorm backward adds dgamma, dbeta and dx that match central differences", "[layer_norm][grad]") {
  SECTION("rows 7, width 12") {
    LnCase lc(7, 12, 0);
    check_gradients(lc);
  }
  SECTION("rows 5, width 9, rows offset by 3 and scaled by 2") {
    LnCase lc(5, 9, 0, 2.0, 3.0);
    check_gradients(lc);
  }
  SECTION("rows 6, width 37: parameter sums span three column chunks, the last one partial") {
    LnCase lc(6, 37, 0);
    check_gradients(lc);
  }
  SECTION("a single row of width 2") {
    LnCase lc(1, 2, 0);
    check_gradients(lc);
  }
}

TEST_CASE("LayerNorm on strided views (ld > width) matches central differences and leaves the padding alone",
          "[layer_norm][grad]") {
  LnCase lc(7, 12, 5);
  check_gradients(lc);
  for (Index r = 0; r < lc.rows; ++r)
    for (Index k = lc.dim; k < lc.ld; ++k) {
      CHECK(lc.y[r * lc.ld + k] == t::kSentinel);
      CHECK(lc.dx[r * lc.ld + k] == t::kSentinel);
    }
}

TEST_CASE("LayerNorm dx sums to zero over each row (y does not change when a row is shifted)", "[layer_norm]") {
  LnCase lc(7, 12, 0);
  lc.objective();
  std::fill(lc.dx.begin(), lc.dx.end(), 0.0);
  lc.backward();
  for (Index r = 0; r < 7; ++r) {
    double s = 0;
    for (Index k = 0; k < 12; ++k) s += lc.dx[r * 12 + k];
    CHECK(std::abs(s) <= 1e-12);
  }
}

TEMPLATE_TEST_CASE("LayerNorm backward with a residual is the separate add then backward, bit for bit", "[layer_norm]",
                   float, double) {
  using T = TestType;
  const Index rows = 7, dim = 40;  // 40: two 16-lane blocks and a tail
  auto vec = [](Index n, std::uint64_t seed, double std = 1.0, double mean = 0.0) {
    const Vec v = t::random_normal(n, seed, std, mean);
    return std::vector<T>(v.begin(), v.end());
  };
  const std::vector<T> x = vec(rows * dim, 31, 1.5, 0.2), dy = vec(rows * dim, 32), res = vec(rows * dim, 33),
                       start = vec(rows * dim, 34);
  std::vector<T> gamma = vec(dim, 35, 0.3, 1.0), beta = vec(dim, 36, 0.2), y(rows * dim), cache(2 * rows);
  mae::CpuEigen be;
  auto run = [&](int mode, std::vector<T>& dx) {  // 0: add then backward, 1: residual kept, 2: residual, overwrite
    std::vector<T> dgamma(dim, T(0)), dbeta(dim, T(0));
    mae::LayerNorm<T> ln{dim, T(1e-6), {gamma.data(), dgamma.data(), dim}, {beta.data(), dbeta.data(), dim}};
    const auto c = ln.make_cache({cache.data(), 2 * rows}, rows);
    ln.forward(be, MatView<const T>(x.data(), rows, dim), MatView<T>(y.data(), rows, dim), c);
    const MatView<const T> xv(x.data(), rows, dim), dyv(dy.data(), rows, dim), rv(res.data(), rows, dim);
    const MatView<T> dxv(dx.data(), rows, dim);
    if (mode == 0) {
      for (std::size_t i = 0; i < dx.size(); ++i) dx[i] += res[i];
      ln.backward(be, xv, dyv, c, dxv);
    } else {
      ln.backward(be, xv, dyv, c, dxv, rv, /*accumulate=*/mode == 1);
    }
  };
  std::vector<T> sep = start, kept = start, fresh(rows * dim, std::numeric_limits<T>::quiet_NaN());
  run(0, sep);
  run(1, kept);
  CHECK(kept == sep);
  std::vector<T> from_zero(rows * dim, T(0));
  run(0, from_zero);  // 0 + res = res exactly: the overwrite mode's reference
  run(2, fresh);      // the NaNs are never read
  CHECK(fresh == from_zero);
  CHECK(sep != from_zero);  // the start values matter in the kept mode
}
