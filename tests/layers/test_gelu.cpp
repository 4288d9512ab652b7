// GELU, exact erf form (torch.nn.GELU()): y = 0.5·x·(1 + erf(x/√2)); backward adds dy·(Φ(x) + x·φ(x)),
// given x; recompute_backward (what the MLP uses) rebuilds y bit for bit and applies the same slope.
// Closed forms are computed here in long double; the gradient check is in double on CpuEigen, f = <y, g>.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/gelu.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::Span;
using Vec = std::vector<double>;
namespace t = mae::test;

long double gelu_exact(long double x) { return 0.5L * x * (1.0L + std::erf(x / std::sqrt(2.0L))); }
long double gelu_tanh(long double x) {
  const long double pi = 3.141592653589793238462643383279502884L;
  return 0.5L * x * (1.0L + std::tanh(std::sqrt(2.0L / pi) * (x + 0.044715L * x * x * x)));
}
long double gelu_slope(long double x) {  // Φ(x) + x φ(x)
  const long double pi = 3.141592653589793238462643383279502884L;
  return 0.5L * (1.0L + std::erf(x / std::sqrt(2.0L))) + x * std::exp(-0.5L * x * x) / std::sqrt(2.0L * pi);
}

template <class T>
std::vector<T> run_forward(const std::vector<T>& x) {
  mae::CpuEigen be;
  std::vector<T> y(x.size(), std::numeric_limits<T>::quiet_NaN());
  mae::Gelu<T>{}.forward(be, Span<const T>{x.data(), Index(x.size())}, Span<T>{y.data(), Index(y.size())});
  return y;
}

}  // namespace

TEST_CASE("GELU is the exact erf form: gelu(1) = 0.5*(1+erf(1/sqrt 2))", "[gelu]") {
  const Vec x = {1.0, -1.0, 0.0, 0.5, -0.25, 2.0, -3.0, 5.5, -7.0, 1e-8, 12.0};
  const Vec y = run_forward(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO("x = " << x[i]);
    const long double ref = gelu_exact(x[i]);
    CHECK(std::abs(y[i] - double(ref)) <= 4e-16 * std::max(1.0, std::abs(double(ref))));
  }
  // gelu(1) by the formula, and far from the tanh approximation (0.841192 vs 0.841345)
  CHECK(y[0] == Approx(double(0.5L * (1.0L + std::erf(1.0L / std::sqrt(2.0L))))).epsilon(1e-15));
  CHECK(std::abs(y[0] - double(gelu_tanh(1.0L))) > 1e-4);
  CHECK(y[2] == 0.0);
}

TEST_CASE("GELU in float stays within a few float ulps of the erf form", "[gelu]") {
  const std::vector<float> x = {1.0f, -1.0f, 0.5f, -2.5f, 3.0f, -0.125f};
  const std::vector<float> y = run_forward(x);
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO("x = " << x[i]);
    const long double ref = gelu_exact(x[i]);
    CHECK(std::abs(double(y[i]) - double(ref)) <= 4 * 1.2e-7 * std::max(1.0, std::abs(double(ref))));
  }
}

TEST_CASE("GELU backward adds dy·(Phi(x) + x·phi(x)), matching the closed form and central differences",
          "[gelu][grad]") {
  mae::CpuEigen be;
  Vec x = t::random_normal(13, 31, 2.0);
  x[0] = 0.0;
  x[1] = 1.0;
  x[2] = -4.0;
  const Vec g = t::random_normal(13, 32);
  Vec dx(13, t::kSentinel), y(13);
  const mae::Gelu<double> gelu;
  auto objective = [&](const Vec&) {
    std::fill(y.begin(), y.end(), std::numeric_limits<double>::quiet_NaN());
    gelu.forward(be, Span<const double>{x.data(), 13}, Span<double>{y.data(), 13});
    return t::dot(y, g);
  };
  objective(x);
  gelu.backward(be, Span<const double>{x.data(), 13}, Span<const double>{g.data(), 13}, Span<double>{dx.data(), 13});
  const Vec added = t::minus_sentinel(dx);
  for (std::size_t i = 0; i < x.size(); ++i) {
    INFO("x = " << x[i]);
    CHECK(added[i] == Approx(double(g[i] * gelu_slope(x[i]))).epsilon(1e-14).margin(1e-15));
  }
  const double pi = 3.14159265358979323846;
  CHECK(added[1] ==
        Approx(g[1] * (0.5 * (1 + std::erf(1 / std::sqrt(2.0))) + std::exp(-0.5) / std::sqrt(2 * pi))).epsilon(1e-14));
  t::require_fd("x", t::fd_check(objective, x, added));
}

TEST_CASE("GELU forward and backward cover more elements than the parallel grain (OpenMP path)", "[gelu][grad]") {
  mae::CpuEigen be;
  const Index n = 5003;  // n · work per item > detail::kParallelGrain: the loops run in parallel
  Vec x = t::random_normal(n, 33, 2.0);
  const Vec g = t::random_normal(n, 34);
  Vec y(n), dx(n, t::kSentinel);
  const mae::Gelu<double> gelu;
  auto objective = [&](const Vec&) {
    gelu.forward(be, Span<const double>{x.data(), n}, Span<double>{y.data(), n});
    return t::dot(y, g);
  };
  objective(x);
  double worst = 0;
  for (Index i = 0; i < n; ++i)
    worst = std::max(worst, std::abs(y[i] - double(gelu_exact(x[i]))) / std::max(1.0, std::abs(y[i])));
  CHECK(worst <= 1e-15);
  gelu.backward(be, Span<const double>{x.data(), n}, Span<const double>{g.data(), n}, Span<double>{dx.data(), n});
  const t::ScopedOmpThreads serial(1);  // FD loop only: the analytic pass above ran in parallel
  t::require_fd("x (sampled)", t::fd_check(objective, x, t::minus_sentinel(dx), 200, 35));
}

TEST_CASE("the FD check (STYLE.md max_rel_fd_error) passes the exact GELU slope and fails one 1e-5 off",
          "[gelu][grad]") {
  // f(x) = Σ g_i gelu(x_i); max_rel_fd_error visits every element
  Vec x = t::random_normal(9, 36, 1.5);
  const Vec g = t::random_normal(9, 37);
  auto f = [&](const Vec& v) {
    long double s = 0;
    for (std::size_t i = 0; i < v.size(); ++i) s += g[i] * gelu_exact(v[i]);
    return double(s);
  };
  Vec exact(9), off(9);
  for (std::size_t i = 0; i < 9; ++i) {
    exact[i] = double(g[i] * gelu_slope(x[i]));
    off[i] = exact[i] * (1 + 1e-5) + (i == 4 ? 1e-5 : 0.0);
  }
  const double good = t::max_rel_fd_error(f, x, exact), bad = t::max_rel_fd_error(f, x, off);
  CHECK(good <= 1e-9);  // what the tolerance leaves room for: ~3 decades
  CHECK(bad > t::kFdTolerance);
  // fd_check on all indices measures the same thing
  CHECK(t::fd_check(f, x, exact).worst == good);
}

TEST_CASE("GELU backward is exact near 0, at subnormal x and in the tails", "[gelu]") {
  // dx = dy · (Φ(x) + x φ(x)) with dy = 1, vs the long double closed form. Error bound: a few ulps of
  // each term, plus one ulp of 1 for the cancellation in 1 + erf(x/√2) when x < 0 (inherent in the
  // erf form; it is why Φ(−9) ~ 1e-19 comes out as 0 in double).
  auto check = [](auto tag, const std::vector<long double>& xs) {
    using T = decltype(tag);
    const long double eps = std::numeric_limits<T>::epsilon();
    mae::CpuEigen be;
    const Index n = Index(xs.size());
    std::vector<T> x(xs.begin(), xs.end()), y(n), dy(n, T(1)), dx(n, T(0));
    const mae::Gelu<T> gelu;
    gelu.backward(be, Span<const T>{x.data(), n}, Span<const T>{dy.data(), n}, Span<T>{dx.data(), n});
    const long double pi = 3.141592653589793238462643383279502884L;
    for (Index i = 0; i < n; ++i) {
      INFO((sizeof(T) == 4 ? "float" : "double") << " x = " << double(x[i]));
      const long double v = x[i], cdf = 0.5L * (1.0L + std::erf(v / std::sqrt(2.0L)));
      const long double xpdf = std::abs(v) * std::exp(-0.5L * v * v) / std::sqrt(2.0L * pi);
      CHECK(std::isfinite(double(dx[i])));
      CHECK(std::abs((long double)dx[i] - gelu_slope(v)) <= 8 * eps * (cdf + xpdf) + (v < 0 ? eps : 0.0L));
    }
  };
  const std::vector<long double> xs = {0.0L,   1e-31L, -1e-31L, 1e-30L, -1e-30L, 2e-30L, -3e-30L, 1e-20L, -1e-8L,
                                       0.25L,  -0.75L, 3.0L,    -3.0L,  6.0L,    -6.0L,  9.0L,   -9.0L,  40.0L,
                                       -40.0L, 1e-300L, -1e-300L, 4.9e-324L};
  check(double{}, xs);
  check(float{}, xs);  // (1e-300 and 4.9e-324 become 0 in float)
}

TEST_CASE("GELU recompute_backward rebuilds the forward output bit for bit and equals backward bit for bit",
          "[gelu]") {
  // The MLP keeps only the GELU input: backward must see exactly the output forward fed to fc2,
  // and exactly the gradient a plain backward gives. 5003 elements: the parallel path runs too.
  auto check = [](auto tag) {
    using T = decltype(tag);
    mae::CpuEigen be;
    const Index n = 5003;
    const Vec xd = t::random_normal(n, 38, 3.0), gd = t::random_normal(n, 39);
    std::vector<T> x(xd.begin(), xd.end()), g(gd.begin(), gd.end());
    x[0] = T(0);
    x[1] = T(-40);
    x[2] = T(1e-30);
    std::vector<T> y(n), dx(n), y2(n, std::numeric_limits<T>::quiet_NaN()), d = g;
    const mae::Gelu<T> gelu;
    gelu.forward(be, Span<const T>{x.data(), n}, Span<T>{y.data(), n});
    gelu.backward(be, Span<const T>{x.data(), n}, Span<const T>{g.data(), n}, Span<T>{dx.data(), n}, false);
    gelu.recompute_backward(be, Span<const T>{x.data(), n}, Span<T>{y2.data(), n}, Span<T>{d.data(), n});
    Index y_diff = 0, d_diff = 0;
    for (Index i = 0; i < n; ++i) {
      y_diff += y2[i] != y[i];
      d_diff += d[i] != dx[i];
    }
    INFO((sizeof(T) == 4 ? "float" : "double"));
    CHECK(y_diff == 0);
    CHECK(d_diff == 0);
  };
  check(double{});
  check(float{});
}
