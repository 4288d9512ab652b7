// Linear layer, as torch.nn.Linear: weight (out, in) row-major, y = x · Wᵀ + b.
//   forward:  y(R, out) = x(R, in) · Wᵀ + b
//   backward: dW += dyᵀ · x;   db += Σ_r dy;   dx += dy · W      (dx skipped when dx.data is null;
//             with accumulate_dx false, dx = dy · W overwrites it: no zero fill needed first)
#pragma once
#include "mae/tensor/ops.hpp"
#include "mae/tensor/param.hpp"

namespace mae {

template <class T>
struct Linear {
  Index in = 0, out = 0;
  Param<T> weight, bias;  // (out, in), (out); bias.value may be null (no bias)

  // With a residual (a matrix of y's shape): y = (x · Wᵀ + b) + residual, the bias and the residual
  // added in one pass.
  template <class B>
  void forward(B& be, MatView<const T> x, MatView<T> y, MatView<const T> residual = {}) const {
    forward_product(be, x, y);
    if (residual.data) add_row_vector_and_residual(be, y, bias.value, residual);
    else if (bias.value) add_row_vector(be, y, bias.value);
  }
  // y = x · Wᵀ alone, for callers that add the bias in a pass of their own (Mlp: bias + GELU).
  template <class B>
  void forward_product(B& be, MatView<const T> x, MatView<T> y) const {
    MAE_ASSERT(x.cols == in && y.cols == out && x.rows == y.rows, "Linear: shape mismatch");
    be.gemm(Op::N, Op::T, x.rows, out, in, T(1), x.data, x.ld, weight.value, in, T(0), y.data, y.ld);
  }

  template <class B>
  void backward(B& be, MatView<const T> x, MatView<const T> dy, MatView<T> dx, bool accumulate_dx = true) const {
    backward_params(be, x, dy);
    if (dx.data) backward_input(be, dy, dx, accumulate_dx);
  }
  // The two halves of backward, for callers that build x only after dx is known (Mlp):
  // dW += dyᵀ · x, db += Σ_r dy;
  template <class B>
  void backward_params(B& be, MatView<const T> x, MatView<const T> dy) const {
    MAE_ASSERT(x.cols == in && dy.cols == out && x.rows == dy.rows, "Linear: shape mismatch");
    be.gemm(Op::T, Op::N, out, in, x.rows, T(1), dy.data, dy.ld, x.data, x.ld, T(1), weight.grad, in);
    if (bias.value) add_column_sums(be, dy, bias.grad);
  }
  // dx += dy · W (accumulate false: dx = dy · W).
  template <class B>
  void backward_input(B& be, MatView<const T> dy, MatView<T> dx, bool accumulate = true) const {
    MAE_ASSERT(dy.cols == out && dx.cols == in && dx.rows == dy.rows, "Linear: shape mismatch");
    be.gemm(Op::N, Op::N, dy.rows, in, out, T(1), dy.data, dy.ld, weight.value, in, accumulate ? T(1) : T(0), dx.data,
            dx.ld);
  }
};

}  // namespace mae
