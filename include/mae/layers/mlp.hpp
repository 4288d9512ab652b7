// MLP, as timm `Mlp`: y = fc2(GELU(fc1(x))), hidden width Hm = int(D * mlp_ratio).
//   backward: da = dy · W2;  a = GELU(h) again;  dW2 += dyᵀ a;  dh = da ∘ GELU'(h);  dx += dh · W1 (+ fc1 grads)
// Only h (fc1's output) is kept for backward: the GELU output a is forward scratch, and backward
// rebuilds it in the same pass that applies GELU' (one erf per element, no second stored (R, Hm)).
#pragma once
#include "mae/layers/gelu.hpp"
#include "mae/layers/linear.hpp"

namespace mae {

template <class T>
struct MlpCache {
  Span<T> h;  // (R, Hm): fc1 output
};

template <class T>
struct Mlp {
  Index dim = 0, hidden = 0;
  Linear<T> fc1, fc2;  // (Hm, D), (D, Hm)

  Index cache_elems(Index rows) const { return rows * hidden; }
  Index forward_scratch_elems(Index rows) const { return rows * hidden; }
  Index scratch_elems(Index rows) const { return 2 * rows * hidden; }
  MlpCache<T> make_cache(Span<T> s, Index rows) const { return {s.sub(0, rows * hidden)}; }

  // scratch: forward_scratch_elems(rows) elements, contents irrelevant. With a residual (a matrix
  // of y's shape), y = mlp(x) + residual: fc2's bias and the residual are added in one pass, as
  // fc1's bias and the GELU are.
  template <class B>
  void forward(B& be, MatView<const T> x, MatView<T> y, MlpCache<T> c, Span<T> scratch,
               MatView<const T> residual = {}) const {
    const Index r = x.rows;
    Span<T> a = scratch.sub(0, r * hidden);
    fc1.forward_product(be, x, MatView<T>(c.h.data, r, hidden));
    Gelu<T>{}.forward_with_bias(be, c.h, fc1.bias.value, hidden, a);
    fc2.forward(be, MatView<const T>(a.data, r, hidden), y, residual);
  }

  // dx += (or, with accumulate false, =) d(mlp)/dx · dy. scratch: scratch_elems(rows) elements,
  // overwritten, never zero-filled.
  template <class B>
  void backward(B& be, MatView<const T> x, MatView<const T> dy, MlpCache<T> c, Span<T> scratch, MatView<T> dx,
                bool accumulate = true) const {
    const Index r = x.rows;
    Span<T> a = scratch.sub(0, r * hidden), dh = scratch.sub(r * hidden, r * hidden);
    fc2.backward_input(be, dy, MatView<T>(dh.data, r, hidden), false);  // da
    Gelu<T>{}.recompute_backward(be, Span<const T>(c.h), a, dh);        // a; da -> dh in place
    fc2.backward_params(be, MatView<const T>(a.data, r, hidden), dy);
    fc1.backward(be, x, MatView<const T>(dh.data, r, hidden), dx, accumulate);
  }
};

}  // namespace mae
