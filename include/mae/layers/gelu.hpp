// GELU, exact erf form as torch.nn.GELU() (not the tanh approximation).
//   forward:  y = x · Φ(x) = 0.5 · x · (1 + erf(x / √2))     (Φ: math::normal_cdf)
//   backward: dx += dy · (Φ(x) + x · φ(x)),   φ(x) = exp(-x²/2) / √(2π)   (both from math::normal_cdf_pdf,
//             which computes the exp once for Φ and φ)
// The MLP keeps only x (its fc1 output) between forward and backward: GeluRecompute rebuilds y for
// fc2's weight gradient and turns dy into dx in the same pass, so the GELU output is never stored.
#pragma once
#include "mae/tensor/math.hpp"
#include "mae/tensor/view.hpp"

namespace mae {
namespace kernels {
template <class T>
MAE_HOST_DEVICE inline T gelu_slope(T x, math::CdfPdf<T> c) {  // d gelu / dx given Φ(x), φ(x)
  return c.cdf + x * c.pdf;
}
template <class T>
struct GeluForward {
  static constexpr bool kWideVectors = true;  // 512-bit vectors where available (CpuKernels)
  const T* x; T* y;
  MAE_HOST_DEVICE void operator()(Index i) const {
    y[i] = x[i] * math::normal_cdf(x[i]);
  }
};
// h(r, :) += b, then y(r, :) = gelu(h(r, :)): fc1's bias and the GELU in one pass over a row (the
// same bits as add_row_vector then GeluForward). h and y are contiguous (R, cols) matrices.
template <class T>
struct BiasGeluForward {
  static constexpr bool kWideVectors = true;  // 512-bit vectors where available (CpuKernels)
  T* h; const T* b; T* y; Index cols;
  MAE_HOST_DEVICE void operator()(Index r) const {
    T* hr = h + r * cols;
    T* yr = y + r * cols;
    for (Index c = 0; c < cols; ++c) {
      const T v = hr[c] + b[c];
      hr[c] = v;
      yr[c] = v * math::normal_cdf(v);
    }
  }
};
// Accumulate a template parameter, not a member: a run-time `accumulate ? dx[i] + g : g` is a
// conditional load to GCC and keeps the loop scalar.
template <class T, bool Accumulate = true>
struct GeluBackward {
  static constexpr bool kWideVectors = true;  // 512-bit vectors where available (CpuKernels)
  const T* x; const T* dy; T* dx;
  MAE_HOST_DEVICE void operator()(Index i) const {
    const T v = x[i];
    const T g = dy[i] * gelu_slope(v, math::normal_cdf_pdf(v));
    if constexpr (Accumulate) dx[i] += g;
    else dx[i] = g;
  }
};
// y = gelu(x) (bit for bit what GeluForward wrote) and, in place, d := d · gelu'(x).
template <class T>
struct GeluRecompute {
  static constexpr bool kWideVectors = true;  // 512-bit vectors where available (CpuKernels)
  const T* x; T* y; T* d;
  MAE_HOST_DEVICE void operator()(Index i) const {
    const T v = x[i];
    const math::CdfPdf<T> c = math::normal_cdf_pdf(v);
    y[i] = v * c.cdf;
    d[i] *= gelu_slope(v, c);
  }
};
}  // namespace kernels

template <class T>
struct Gelu {
  template <class B>
  void forward(B& be, Span<const T> x, Span<T> y) const {
    be.parallel_for(x.size, kernels::GeluForward<T>{x.data, y.data}, 16);
  }
  // x := x + b row by row (x: rows of b's length `cols`), then y = gelu(x). b may be null (a
  // Linear without bias): then only y = gelu(x).
  template <class B>
  void forward_with_bias(B& be, Span<T> x, const T* b, Index cols, Span<T> y) const {
    if (!b) return forward(be, Span<const T>(x), y);
    MAE_ASSERT(x.size == y.size && cols > 0 && x.size % cols == 0, "Gelu: bias does not tile the input");
    be.parallel_for(x.size / cols, kernels::BiasGeluForward<T>{x.data, b, y.data, cols}, 16 * cols);
  }
  // accumulate false: dx is overwritten instead of added to.
  template <class B>
  void backward(B& be, Span<const T> x, Span<const T> dy, Span<T> dx, bool accumulate = true) const {
    if (accumulate) be.parallel_for(x.size, kernels::GeluBackward<T, true>{x.data, dy.data, dx.data}, 24);
    else be.parallel_for(x.size, kernels::GeluBackward<T, false>{x.data, dy.data, dx.data}, 24);
  }
  // y := gelu(x) as forward wrote it, and d := d ∘ gelu'(x) (d: the gradient w.r.t. y on entry).
  template <class B>
  void recompute_backward(B& be, Span<const T> x, Span<T> y, Span<T> d) const {
    be.parallel_for(x.size, kernels::GeluRecompute<T>{x.data, y.data, d.data}, 24);
  }
};

}  // namespace mae
