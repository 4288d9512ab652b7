// Scalar maths usable on the host and in CUDA device code, overloaded for float and double so that
// float kernels stay in float (no silent promotion to double).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "mae/config.hpp"

namespace mae::math {

// Branch-free selects on float bits. A `c ? a : b` on floats in a loop body is a branch to GCC
// unless -fno-trapping-math (jump threading then copies the code after it into both arms), so
// without AVX-512's masked instructions such a loop stays scalar; an integer mask select is plain
// data flow and vectorizes on every ISA, with the same result bit for bit.
namespace detail {
MAE_HOST_DEVICE inline std::int32_t bits_of(float x) {
  std::int32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
MAE_HOST_DEVICE inline float float_of(std::int32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
MAE_HOST_DEVICE inline std::int32_t mask_if(bool c) { return -std::int32_t(c); }  // all ones or zero
MAE_HOST_DEVICE inline float select(std::int32_t mask, float a, float b) {  // mask ? a : b
  return float_of((mask & bits_of(a)) | (~mask & bits_of(b)));
}
}  // namespace detail

// float exp without a library call or a branch, so loops over it vectorize: exp(x) = 2^n · e^r with
// n = round(x / ln 2) (rounded by adding 1.5 · 2^23, whose low mantissa bits then hold n),
// r = x − n ln 2 (ln 2 split in two for an exact product), |r| ≤ ln2 / 2, and e^r by its Taylor
// series to r^7 (truncation < 5e-9 relative); max error about 1 ulp. Inputs are clamped to
// [-87.3, 88.3]: below, the result is the smallest normal float instead of a denormal or 0.
MAE_HOST_DEVICE inline float exp(float x) {
  x = detail::select(detail::mask_if(x < -87.3f), -87.3f, x);
  x = detail::select(detail::mask_if(x > 88.3f), 88.3f, x);
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-06f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * detail::float_of((detail::bits_of(shifted) - 0x4B400000 + 127) << 23);
}
MAE_HOST_DEVICE inline double exp(double x) { return ::exp(x); }
MAE_HOST_DEVICE inline float erf(float x) { return ::erff(x); }
MAE_HOST_DEVICE inline double erf(double x) { return ::erf(x); }
MAE_HOST_DEVICE inline float sqrt(float x) { return ::sqrtf(x); }
MAE_HOST_DEVICE inline double sqrt(double x) { return ::sqrt(x); }
MAE_HOST_DEVICE inline float max(float a, float b) { return a > b ? a : b; }
MAE_HOST_DEVICE inline double max(double a, double b) { return a > b ? a : b; }

template <class T>
inline constexpr T inv_sqrt2 = T(0.70710678118654752440084436210484903928);
template <class T>
inline constexpr T inv_sqrt_2pi = T(0.39894228040143267793994605993438186848);

// Φ(x) = 0.5 · (1 + erf(x / √2)), the standard normal CDF (exact GELU is x · Φ(x)), with the
// normal density φ(x) = exp(−x²/2) / √(2π) that GELU's slope needs (normal_cdf_pdf: one exp for both).
// double: from libm's erf and exp. float: Φ(x) = erfc(−x/√2) / 2, no cancellation for negative x,
// and erfc(a) = t · exp(−a²) · Q(t) with t = 1 / (1 + a/2) (a = |x|/√2, the substitution of the
// Chebyshev erfc fit in Numerical Recipes) and Q a degree-8 polynomial fitted to erfc(a) · exp(a²) / t
// for minimal relative error on a ∈ [0, 9.4] (4.2e-8; Q(0) = 1/(2√π) in the limit a → ∞), so the
// exp(−a²) is φ's too. No library call or branch: GELU loops vectorize.
template <class T>
struct CdfPdf {
  T cdf, pdf;
};
MAE_HOST_DEVICE inline double normal_cdf(double x) { return 0.5 * (1.0 + ::erf(x * inv_sqrt2<double>)); }
MAE_HOST_DEVICE inline CdfPdf<double> normal_cdf_pdf(double x) {
  return {normal_cdf(x), inv_sqrt_2pi<double> * ::exp(-0.5 * x * x)};
}
MAE_HOST_DEVICE inline CdfPdf<float> normal_cdf_pdf(float x) {
  const float z = x * inv_sqrt2<float>, a = detail::float_of(detail::bits_of(z) & 0x7fffffff);  // |z|
  const float t = 1.0f / (1.0f + 0.5f * a);
  float q = -0.058847334f;
  q = q * t + 0.28348873f;
  q = q * t - 0.48493910f;
  q = q * t + 0.27546543f;
  q = q * t - 0.024821194f;
  q = q * t + 0.20191736f;
  q = q * t + 0.24330004f;
  q = q * t + 0.28234804f;
  q = q * t + 0.28208799f;
  const float g = exp(-(a * a));                 // exp(−x²/2)
  const float half_erfc = (0.5f * t) * (q * g);  // erfc(|z|) / 2
  return {detail::select(detail::mask_if(z < 0), half_erfc, 1.0f - half_erfc), inv_sqrt_2pi<float> * g};
}
MAE_HOST_DEVICE inline float normal_cdf(float x) { return normal_cdf_pdf(x).cdf; }

// Σ_{i<n} term(i) in Lanes interleaved partial sums (term i goes to lane i % Lanes), then the lanes
// pairwise in a fixed order. A single running sum is one chain of dependent adds that the compiler
// may not reorder (no -ffast-math), so it stays scalar; lanes vectorize, and the order is still fixed:
// the same result for every thread count, on the CPU and the GPU (the row kernels share this code).
// kLanes (8) suits short rows (softmax over 13-197 tokens). kWideLanes (16) is for rows of a model's
// width (LayerNorm: 128-768): one 8-float vector of partial sums is a chain of dependent adds (3-4
// cycles each), which two vectors (or one 512-bit one) hide: in cache, 0.22 -> 0.06 ns per term on
// 192-wide rows, while softmax's 17-wide rows got slower with 16 (the Zen 4 VM of 2026-12-04).
inline constexpr Index kLanes = 8, kWideLanes = 16;
template <class T, Index Lanes = kLanes, class F>
MAE_HOST_DEVICE inline T lane_sum(Index n, const F& term) {
  T acc[Lanes] = {};
  Index i = 0;
  for (; i + Lanes <= n; i += Lanes)
    for (Index j = 0; j < Lanes; ++j) acc[j] += term(i + j);
  for (Index j = 0; i + j < n; ++j) acc[j] += term(i + j);
  for (Index w = Lanes / 2; w > 0; w /= 2)
    for (Index j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}
// max_{i<n} x[i] (n >= 1) in lanes, so it vectorizes; max is exact, so the result is the plain
// running max whatever the order (NaN aside).
template <class T>
MAE_HOST_DEVICE inline T lane_max(const T* x, Index n) {
  T acc[kLanes];
  for (Index j = 0; j < kLanes; ++j) acc[j] = x[0];
  Index i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (Index j = 0; j < kLanes; ++j) acc[j] = max(acc[j], x[i + j]);
  for (Index j = 0; i + j < n; ++j) acc[j] = max(acc[j], x[i + j]);
  for (Index w = kLanes / 2; w > 0; w /= 2)
    for (Index j = 0; j < w; ++j) acc[j] = max(acc[j], acc[j + w]);
  return acc[0];
}

}  // namespace mae::math
