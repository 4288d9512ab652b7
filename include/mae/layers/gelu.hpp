// GELU, exact erf form as torch.nn.GELU() (not the tanh approximation).
//   forward:  y = 0.5 · x · (1 + erf(x / √2))
//   backward: dx += dy · (0.5 · (1 + erf(x / √2)) + x · φ(x)),   φ(x) = exp(-x²/2) / √(2π)
#pragma once
#include "mae/tensor/math.hpp"
#include "mae/tensor/view.hpp"

namespace mae {
namespace kernels {
template <class T>
struct GeluForward {
  const T* x; T* y;
  MAE_HOST_DEVICE void operator()(Index i) const {
    const T v = x[i];
    y[i] = T(0.5) * v * (T(1) + math::erf(v * math::inv_sqrt2<T>));
  }
};
template <class T>
struct GeluBackward {
  const T* x; const T* dy; T* dx;
  MAE_HOST_DEVICE void operator()(Index i) const {
    const T v = x[i];
    const T cdf = T(0.5) * (T(1) + math::erf(v * math::inv_sqrt2<T>));
    const T pdf = math::inv_sqrt_2pi<T> * math::exp(T(-0.5) * v * v);
    dx[i] += dy[i] * (cdf + v * pdf);
  }
};
}  // namespace kernels

template <class T>
struct Gelu {
  template <class B>
  void forward(B& be, Span<const T> x, Span<T> y) const {
    be.parallel_for(x.size, kernels::GeluForward<T>{x.data, y.data});
  }
  template <class B>
  void backward(B& be, Span<const T> x, Span<const T> dy, Span<T> dx) const {
    be.parallel_for(x.size, kernels::GeluBackward<T>{x.data, dy.data, dx.data});
  }
};

}  // namespace mae
