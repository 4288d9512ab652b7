// Non-owning views of memory that lives in an arena (host or device). A view is a pointer plus
// sizes; it never allocates and never frees. Layers see only views, so the same layer code runs on
// host memory (CPU backends) and device memory (CUDA backend): element access happens inside
// backend kernels, never in the layer itself.
#pragma once
#include <type_traits>

#include "mae/config.hpp"

namespace mae {

// A contiguous 1-D range of n elements.
template <class T>
struct Span {
  T* data = nullptr;
  Index size = 0;
  MAE_HOST_DEVICE T& operator[](Index i) const { return data[i]; }
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  operator Span<const U>() const { return {data, size}; }
  Span sub(Index offset, Index n) const { return {data + offset, n}; }
};

// A row-major matrix: element (r, c) at data[r * ld + c]; ld >= cols. ld > cols views a column
// block of a wider matrix (e.g. the q, k or v third of a fused qkv activation).
template <class T>
struct MatView {
  T* data = nullptr;
  Index rows = 0, cols = 0, ld = 0;
  MatView() = default;
  MAE_HOST_DEVICE MatView(T* d, Index r, Index c) : data(d), rows(r), cols(c), ld(c) {}
  MAE_HOST_DEVICE MatView(T* d, Index r, Index c, Index l) : data(d), rows(r), cols(c), ld(l) {}
  MAE_HOST_DEVICE T& operator()(Index r, Index c) const { return data[r * ld + c]; }
  template <class U = T, class = std::enable_if_t<!std::is_const_v<U>>>
  operator MatView<const U>() const { return {data, rows, cols, ld}; }
  Index size() const { return rows * cols; }
  bool contiguous() const { return ld == cols; }
  MatView row_block(Index r0, Index n) const { return {data + r0 * ld, n, cols, ld}; }
  MatView col_block(Index c0, Index n) const { return {data + c0, rows, n, ld}; }
  Span<T> span() const { return {data, rows * cols}; }   // only meaningful when contiguous()
};

template <class T>
MatView<T> as_mat(Span<T> s, Index rows, Index cols) {
  MAE_CHECK(rows * cols == s.size, "as_mat: span of ", s.size, " elements viewed as (", rows, ", ", cols, ")");
  return {s.data, rows, cols};
}

}  // namespace mae
