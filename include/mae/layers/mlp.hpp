// MLP, as timm `Mlp`: y = fc2(GELU(fc1(x))), hidden width Hm = int(D * mlp_ratio).
//   backward: da = dy · W2 (+ fc2 grads);  dh = da ∘ GELU'(h);  dx += dh · W1 (+ fc1 grads)
#pragma once
#include "mae/layers/gelu.hpp"
#include "mae/layers/linear.hpp"

namespace mae {

template <class T>
struct MlpCache {
  Span<T> h, a;  // (R, Hm) each: fc1 output, GELU output
};

template <class T>
struct Mlp {
  Index dim = 0, hidden = 0;
  Linear<T> fc1, fc2;  // (Hm, D), (D, Hm)

  Index cache_elems(Index rows) const { return 2 * rows * hidden; }
  Index scratch_elems(Index rows) const { return 2 * rows * hidden; }
  MlpCache<T> make_cache(Span<T> s, Index rows) const {
    return {s.sub(0, rows * hidden), s.sub(rows * hidden, rows * hidden)};
  }

  template <class B>
  void forward(B& be, MatView<const T> x, MatView<T> y, MlpCache<T> c) const {
    const Index r = x.rows;
    fc1.forward(be, x, MatView<T>(c.h.data, r, hidden));
    Gelu<T>{}.forward(be, Span<const T>(c.h), c.a);
    fc2.forward(be, MatView<const T>(c.a.data, r, hidden), y);
  }

  template <class B>
  // dx += (or, with accumulate false, =) d(mlp)/dx · dy. Scratch is overwritten, never zero-filled.
  void backward(B& be, MatView<const T> x, MatView<const T> dy, MlpCache<T> c, Span<T> scratch, MatView<T> dx,
                bool accumulate = true) const {
    const Index r = x.rows;
    Span<T> da = scratch.sub(0, r * hidden), dh = scratch.sub(r * hidden, r * hidden);
    fc2.backward(be, MatView<const T>(c.a.data, r, hidden), dy, MatView<T>(da.data, r, hidden), false);
    Gelu<T>{}.backward(be, Span<const T>(c.h), Span<const T>(c.a), Span<const T>(da), dh, false);
    fc1.backward(be, x, MatView<const T>(dh.data, r, hidden), dx, accumulate);
  }
};

}  // namespace mae
