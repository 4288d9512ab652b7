// Gradient-check helpers (STYLE.md §7), used by the layer and model tests in double precision.
//   random_normal / random_uniform   seeded inputs (std::mt19937_64): every run sees the same numbers
//   max_rel_fd_error / fd_check      central differences, h = 1e-6, error relative to max(1, |fd|, |analytic|)
//   sample_indices                   a seeded sample of the elements of a large tensor
//   prefill_sentinel / minus_sentinel   gradients start at s = 0.375; result − s is what backward added
//                                       (a backward that assigns instead of adding loses the s)
//   prefill_nan                      caches and scratch start as NaN: what backward reads must be written
//                                    by forward (a NaN that survives poisons the checked gradients)
//   ScopedOmpThreads                 runs a scope (e.g. thousands of FD forwards) on a set thread count
//   naive::*                         textbook loops, written from the formulas (no library code), that
//                                    the forward passes are compared with
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace mae::test {

// Tolerance of every gradient check: the truncation error of a central difference at h = 1e-6 is
// O(h² f''') ~ 1e-12 relative and the rounding error ~ eps·|f| / h ~ 1e-10 for |f| ~ 1, so a correct
// backward is far below 1e-6 and a wrong one (a missing term, a transposed index) far above it.
inline constexpr double kFdTolerance = 1e-6;
inline constexpr double kFdStep = 1e-6;
inline constexpr double kSentinel = 0.375;  // exactly representable; result − s is exact for |grad| ≲ 1

inline std::vector<double> random_normal(std::size_t n, std::uint64_t seed, double stddev = 1.0, double mean = 0.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

inline std::vector<double> random_uniform(std::size_t n, std::uint64_t seed, double lo = 0.0, double hi = 1.0) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(n);
  for (double& x : v) x = dist(gen);
  return v;
}

// All indices of a tensor of n elements when n <= count, else `count` distinct ones (sorted), seeded.
inline std::vector<std::size_t> sample_indices(std::size_t n, std::size_t count, std::uint64_t seed) {
  std::vector<std::size_t> all(n);
  std::iota(all.begin(), all.end(), std::size_t(0));
  if (n <= count) return all;
  std::vector<std::size_t> out;
  out.reserve(count);
  std::mt19937_64 gen(seed);
  std::sample(all.begin(), all.end(), std::back_inserter(out), count, gen);
  return out;
}

// Exactly STYLE.md §7. f: projected forward, std::vector<double> -> double (x is perturbed in place,
// so f may read x through views that point into it).
template <class F>
double max_rel_fd_error(F&& f, std::vector<double>& x, const std::vector<double>& analytic, double h = kFdStep) {
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h; const double up = f(x);
    x[i] = x0 - h; const double down = f(x);
    x[i] = x0;
    const double fd = (up - down) / (2 * h);
    worst = std::max(worst, std::abs(fd - analytic[i]) / std::max({1.0, std::abs(fd), std::abs(analytic[i])}));
  }
  return worst;
}

// The same measure on chosen indices, also saying where the worst element is (for the report).
struct FdResult {
  double worst = 0, fd = 0, analytic = 0;
  std::size_t index = 0, checked = 0;
};

template <class F>
FdResult fd_check(F&& f, std::vector<double>& x, const std::vector<double>& analytic,
                  const std::vector<std::size_t>& indices, double h = kFdStep) {
  REQUIRE(analytic.size() == x.size());
  FdResult r;
  for (std::size_t i : indices) {
    const double x0 = x[i];
    x[i] = x0 + h; const double up = f(x);
    x[i] = x0 - h; const double down = f(x);
    x[i] = x0;
    const double fd = (up - down) / (2 * h);
    const double err = std::abs(fd - analytic[i]) / std::max({1.0, std::abs(fd), std::abs(analytic[i])});
    ++r.checked;
    if (!(err <= r.worst)) {  // a NaN becomes the worst and stays
      r.worst = std::isnan(err) ? std::numeric_limits<double>::infinity() : err;
      r.index = i;
      r.fd = fd;
      r.analytic = analytic[i];
    }
  }
  return r;
}

// Every element when x has at most max_checked, else a seeded sample of max_checked.
template <class F>
FdResult fd_check(F&& f, std::vector<double>& x, const std::vector<double>& analytic, std::size_t max_checked = 200,
                  std::uint64_t seed = 12345) {
  return fd_check(f, x, analytic, sample_indices(x.size(), max_checked, seed));
}

// The assertion every gradient test makes; the captured values name the tensor and the worst element.
inline void require_fd(const std::string& tensor, const FdResult& r, double tol = kFdTolerance) {
  INFO("gradient of '" << tensor << "': worst relative FD error " << r.worst << " at element " << r.index
                       << " (fd " << r.fd << ", analytic " << r.analytic << ") over " << r.checked << " elements");
  CHECK(r.checked > 0);
  CHECK(r.worst <= tol);
}

// Sets the OpenMP thread count for a scope and restores it. The FD loops of big checks run on one
// thread: thousands of tiny parallel regions on a shared, oversubscribed machine cost far more in
// barrier waits than the work itself, and CpuKernels results do not depend on the thread count
// (every parallel_for item writes its own outputs). Do not use it around a OneDnn object, whose
// primitives are sized for the thread count at creation.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) {
#ifdef _OPENMP
    saved_ = omp_get_max_threads();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
  }
  ~ScopedOmpThreads() {
#ifdef _OPENMP
    omp_set_num_threads(saved_);
#endif
  }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int saved_ = 1;
};

inline void prefill_sentinel(std::vector<double>& g, double s = kSentinel) { std::fill(g.begin(), g.end(), s); }
inline std::vector<double> minus_sentinel(const std::vector<double>& g, double s = kSentinel) {
  std::vector<double> out(g.size());
  for (std::size_t i = 0; i < g.size(); ++i) out[i] = g[i] - s;
  return out;
}
inline void prefill_nan(std::vector<double>& c) {
  std::fill(c.begin(), c.end(), std::numeric_limits<double>::quiet_NaN());
}
inline bool all_finite(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
}
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (!(d <= m)) m = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  }
  return m;
}

// ---- textbook references, from the formulas in the layer headers and the fixture README ------------
namespace naive {

using Vec = std::vector<double>;

// y(R, out) = x(R, in) · Wᵀ + b, W (out, in); b may be empty.
inline Vec linear(const Vec& x, long rows, long in, long out, const Vec& w, const Vec& b) {
  Vec y(rows * out);
  for (long r = 0; r < rows; ++r)
    for (long o = 0; o < out; ++o) {
      long double s = b.empty() ? 0.0L : b[o];
      for (long i = 0; i < in; ++i) s += (long double)x[r * in + i] * w[o * in + i];
      y[r * out + o] = double(s);
    }
  return y;
}

// LayerNorm over rows of width d: biased variance, eps inside the square root.
inline Vec layer_norm(const Vec& x, long rows, long d, const Vec& gamma, const Vec& beta, double eps) {
  Vec y(rows * d);
  for (long r = 0; r < rows; ++r) {
    long double mean = 0, var = 0;
    for (long c = 0; c < d; ++c) mean += x[r * d + c];
    mean /= d;
    for (long c = 0; c < d; ++c) var += (x[r * d + c] - mean) * (x[r * d + c] - mean);
    var /= d;
    const long double rstd = 1.0L / std::sqrt(var + eps);
    for (long c = 0; c < d; ++c) y[r * d + c] = double((x[r * d + c] - mean) * rstd * gamma[c] + beta[c]);
  }
  return y;
}

inline double gelu(double x) { return double(0.5L * x * (1.0L + std::erf((long double)x / std::sqrt(2.0L)))); }

// timm Attention on n samples of t tokens, width d, h heads: returns y (n*t, d); probs (n, h, t, t).
inline Vec attention(const Vec& x, long n, long t, long d, long h, const Vec& wqkv, const Vec& bqkv, const Vec& wproj,
                     const Vec& bproj, Vec* probs = nullptr) {
  const long dh = d / h;
  const Vec qkv = linear(x, n * t, d, 3 * d, wqkv, bqkv);
  Vec o(n * t * d), p(n * h * t * t);
  const long double scale = 1.0L / std::sqrt((long double)dh);
  for (long s = 0; s < n; ++s)
    for (long hh = 0; hh < h; ++hh) {
      auto q = [&](long i, long e) { return (long double)qkv[(s * t + i) * 3 * d + hh * dh + e]; };
      auto k = [&](long i, long e) { return (long double)qkv[(s * t + i) * 3 * d + d + hh * dh + e]; };
      auto v = [&](long i, long e) { return (long double)qkv[(s * t + i) * 3 * d + 2 * d + hh * dh + e]; };
      for (long i = 0; i < t; ++i) {
        std::vector<long double> sc(t);
        long double m = -1e300L, z = 0;
        for (long j = 0; j < t; ++j) {
          long double a = 0;
          for (long e = 0; e < dh; ++e) a += q(i, e) * k(j, e);
          sc[j] = a * scale;
          m = std::max(m, sc[j]);
        }
        for (long j = 0; j < t; ++j) z += (sc[j] = std::exp(sc[j] - m));
        for (long j = 0; j < t; ++j) p[((s * h + hh) * t + i) * t + j] = double(sc[j] / z);
        for (long e = 0; e < dh; ++e) {
          long double a = 0;
          for (long j = 0; j < t; ++j) a += sc[j] / z * v(j, e);
          o[(s * t + i) * d + hh * dh + e] = double(a);
        }
      }
    }
  if (probs) *probs = p;
  return linear(o, n * t, d, d, wproj, bproj);
}

// timm Mlp: fc2(GELU(fc1(x))).
inline Vec mlp(const Vec& x, long rows, long d, long hidden, const Vec& w1, const Vec& b1, const Vec& w2, const Vec& b2) {
  Vec a = linear(x, rows, d, hidden, w1, b1);
  for (double& v : a) v = gelu(v);
  return linear(a, rows, hidden, d, w2, b2);
}

}  // namespace naive
}  // namespace mae::test
