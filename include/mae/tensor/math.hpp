// Scalar maths usable on the host and in CUDA device code, overloaded for float and double so that
// float kernels stay in float (no silent promotion to double).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "mae/config.hpp"

namespace mae::math {

// float exp without a library call, so loops over it vectorize: exp(x) = 2^n · e^r with
// n = round(x / ln 2) (rounded by adding 1.5 · 2^23, whose low mantissa bits then hold n),
// r = x − n ln 2 (ln 2 split in two for an exact product), |r| ≤ ln2 / 2, and e^r by its Taylor
// series to r^7 (truncation < 5e-9 relative); max error about 1 ulp. Inputs are clamped to
// [-87.3, 88.3]: below, the result is the smallest normal float instead of a denormal or 0.
MAE_HOST_DEVICE inline float exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
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
  std::int32_t nbits;
  std::memcpy(&nbits, &shifted, sizeof nbits);
  const std::int32_t bits = (nbits - 0x4B400000 + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
MAE_HOST_DEVICE inline double exp(double x) { return ::exp(x); }
MAE_HOST_DEVICE inline float erf(float x) { return ::erff(x); }
MAE_HOST_DEVICE inline double erf(double x) { return ::erf(x); }
MAE_HOST_DEVICE inline float sqrt(float x) { return ::sqrtf(x); }
MAE_HOST_DEVICE inline double sqrt(double x) { return ::sqrt(x); }
MAE_HOST_DEVICE inline float max(float a, float b) { return a > b ? a : b; }
MAE_HOST_DEVICE inline double max(double a, double b) { return a > b ? a : b; }

// Φ(x) = 0.5 · (1 + erf(x / √2)), the standard normal CDF (exact GELU is x · Φ(x)).
// double: from libm's erf. float: from the Chebyshev fit of erfc published in Numerical Recipes
// (erfcc, fractional error < 1.2e-7 everywhere) with the exp above, Φ(x) = erfc(−x/√2) / 2: no
// library call, so GELU loops vectorize, and no cancellation for negative x.
MAE_HOST_DEVICE inline double normal_cdf(double x) { return 0.5 * (1.0 + ::erf(x * 0.70710678118654752440)); }
MAE_HOST_DEVICE inline float normal_cdf(float x) {
  const float z = x * 0.707106781186547524f, a = z < 0 ? -z : z;
  const float t = 1.0f / (1.0f + 0.5f * a);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float erfc_a = t * exp(p - a * a);  // erfc(|z|)
  return z < 0 ? 0.5f * erfc_a : 1.0f - 0.5f * erfc_a;
}

template <class T>
inline constexpr T inv_sqrt2 = T(0.70710678118654752440084436210484903928);
template <class T>
inline constexpr T inv_sqrt_2pi = T(0.39894228040143267793994605993438186848);

}  // namespace mae::math
