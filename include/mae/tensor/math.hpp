// Scalar maths usable on the host and in CUDA device code, overloaded for float and double so that
// float kernels stay in float (no silent promotion to double).
#pragma once
#include <cmath>

#include "mae/config.hpp"

namespace mae::math {

MAE_HOST_DEVICE inline float exp(float x) { return ::expf(x); }
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

}  // namespace mae::math
