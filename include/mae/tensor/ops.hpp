// Elementwise helpers shared by the layers: fill, copy, accumulate. Each is a functor launched
// through Backend::parallel_for, so it runs on whichever memory the backend owns.
#pragma once
#include "mae/backend/policy.hpp"
#include "mae/tensor/view.hpp"

namespace mae {
namespace kernels {
template <class T>
struct Fill {
  T* x; T value;
  MAE_HOST_DEVICE void operator()(Index i) const { x[i] = value; }
};
template <class T>
struct AddTo {  // y += x
  const T* x; T* y;
  MAE_HOST_DEVICE void operator()(Index i) const { y[i] += x[i]; }
};
template <class T>
struct Copy {
  const T* x; T* y;
  MAE_HOST_DEVICE void operator()(Index i) const { y[i] = x[i]; }
};
template <class T>
struct AddRowVector {  // y(r, c) += v(c) for a (rows, cols) matrix with leading dimension ld
  T* y; Index cols, ld; const T* v;
  MAE_HOST_DEVICE void operator()(Index i) const { y[(i / cols) * ld + i % cols] += v[i % cols]; }
};
template <class T>
struct AddColumnSums {  // out(c) += sum_r x(r, c); one column per call: deterministic
  const T* x; Index rows, ld; T* out;
  MAE_HOST_DEVICE void operator()(Index c) const {
    T s = T(0);
    for (Index r = 0; r < rows; ++r) s += x[r * ld + c];
    out[c] += s;
  }
};
}  // namespace kernels

template <class B, class T>
void fill(B& be, Span<T> x, T value) { be.parallel_for(x.size, kernels::Fill<T>{x.data, value}); }
template <class B, class T>
void zero(B& be, Span<T> x) { fill(be, x, T(0)); }
template <class B, class T>
void add_to(B& be, Span<const T> x, Span<T> y) {  // y += x
  MAE_ASSERT(x.size == y.size, "add_to: sizes differ");
  be.parallel_for(y.size, kernels::AddTo<T>{x.data, y.data});
}
template <class B, class T>
void copy(B& be, Span<const T> x, Span<T> y) {
  MAE_ASSERT(x.size == y.size, "copy: sizes differ");
  be.parallel_for(y.size, kernels::Copy<T>{x.data, y.data});
}
template <class B, class T>
void add_row_vector(B& be, MatView<T> y, const T* v) {
  be.parallel_for(y.rows * y.cols, kernels::AddRowVector<T>{y.data, y.cols, y.ld, v});
}
template <class B, class T>
void add_column_sums(B& be, MatView<const T> x, T* out) {
  be.parallel_for(x.cols, kernels::AddColumnSums<T>{x.data, x.rows, x.ld, out});
}

}  // namespace mae
