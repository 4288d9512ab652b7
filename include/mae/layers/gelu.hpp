// GELU, exact erf form as torch.nn.GELU() (not the tanh approximation).
//   forward:  y = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))     (Φ: math::normal_cdf)
//   backward: dx += dy · (Φ(x) + x · φ(x)),   Φ(x) = 0.5 · (1 + erf(x / √2)) = y / x,   φ(x) = exp(-x²/2) / √(2π)
// Backward reads Φ(x) back from the forward output (y / x, exact to an ulp) instead of calling erf
// again: erf is the dearest scalar function of the step.
#pragma once
#include "mae/tensor/math.hpp"
#include "mae/tensor/view.hpp"

namespace mae {
namespace kernels {
template <class T>
struct GeluForward {
  const T* x; T* y;
  MAE_HOST_DEVICE void operator()(Index i) const {
    y[i] = x[i] * math::normal_cdf(x[i]);
  }
};
template <class T>
struct GeluBackward {
  const T* x; const T* y; const T* dy; T* dx; bool accumulate = true;
  MAE_HOST_DEVICE void operator()(Index i) const {
    const T v = x[i];
    const T pdf = math::inv_sqrt_2pi<T> * math::exp(T(-0.5) * v * v);
    // Φ(v) = y / v, exact to an ulp while y = v Φ(v) is a normal number; Φ(v) = 1/2 to all digits below that
    const T cdf = (v > T(1e-30) || v < T(-1e-30)) ? y[i] / v : T(0.5);
    const T g = dy[i] * (cdf + v * pdf);
    dx[i] = accumulate ? dx[i] + g : g;
  }
};
}  // namespace kernels

template <class T>
struct Gelu {
  template <class B>
  void forward(B& be, Span<const T> x, Span<T> y) const {
    be.parallel_for(x.size, kernels::GeluForward<T>{x.data, y.data}, 16);
  }
  // y: this layer's forward output for x. accumulate false: dx is overwritten instead of added to.
  template <class B>
  void backward(B& be, Span<const T> x, Span<const T> y, Span<const T> dy, Span<T> dx, bool accumulate = true) const {
    be.parallel_for(x.size, kernels::GeluBackward<T>{x.data, y.data, dy.data, dx.data, accumulate}, 8);
  }
};

}  // namespace mae
