// Pre-norm transformer block, as timm 0.4.12 `Block` (no dropout, drop-path or layer scale):
//   x1 = x + Attn(LN1(x));   y = x1 + MLP(LN2(x1))
//   backward: dx1 = dy + LN2ᵀ(MLPᵀ(dy));   dx += dx1 + LN1ᵀ(Attnᵀ(dx1))
#pragma once
#include <algorithm>

#include "mae/layers/attention.hpp"
#include "mae/layers/layer_norm.hpp"
#include "mae/layers/mlp.hpp"

namespace mae {

template <class T>
struct BlockCache {
  LayerNormCache<T> ln1, ln2;
  Span<T> x1;  // (R, D): the stream after the attention residual
  AttentionCache<T> attn;
  MlpCache<T> mlp;
};

// What a block keeps for backward: its input (the caller's), x1, the LayerNorm statistics, qkv and
// the MLP's fc1 output. The LayerNorm outputs, the GELU output and (unless attn.keep_probs) the
// attention probabilities are forward scratch and rebuilt by backward from what is kept.
template <class T>
struct Block {
  Index dim = 0;
  LayerNorm<T> norm1, norm2;
  Attention<T> attn;
  Mlp<T> mlp;

  // for_backward false: a cache for inference (the attention probabilities are scratch then).
  Index cache_elems(Index n, Index t, bool for_backward = true) const {
    const Index r = n * t;
    return 2 * LayerNorm<T>::cache_elems(r) + r * dim + attn.cache_elems(n, t, for_backward) + mlp.cache_elems(r);
  }
  Index forward_scratch_elems(Index n, Index t, bool for_backward = true) const {
    const Index r = n * t;
    return r * dim + std::max(attn.forward_scratch_elems(n, t, for_backward), mlp.forward_scratch_elems(r));
  }
  Index scratch_elems(Index n, Index t) const {
    const Index r = n * t;
    return 3 * r * dim + std::max(attn.scratch_elems(n, t), mlp.scratch_elems(r));
  }
  BlockCache<T> make_cache(Span<T> s, Index n, Index t, bool for_backward = true) const {
    const Index r = n * t;
    BlockCache<T> c;
    Index o = 0;
    auto take = [&](Index k) { Span<T> v = s.sub(o, k); o += k; return v; };
    c.ln1 = LayerNorm<T>::make_cache(take(2 * r), r);
    c.ln2 = LayerNorm<T>::make_cache(take(2 * r), r);
    c.x1 = take(r * dim);
    c.attn = attn.make_cache(take(attn.cache_elems(n, t, for_backward)), n, t, for_backward);
    c.mlp = mlp.make_cache(take(mlp.cache_elems(r)), r);
    return c;
  }

  // scratch: forward_scratch_elems(n, t) elements, contents irrelevant.
  template <class B>
  void forward(B& be, MatView<const T> x, MatView<T> y, Index n, Index t, BlockCache<T> c, Span<T> scratch) const {
    const Index r = n * t;
    MatView<T> xn(scratch.data, r, dim), x1(c.x1.data, r, dim);
    Span<T> inner = scratch.sub(r * dim, scratch.size - r * dim);
    norm1.forward(be, x, xn, c.ln1);
    attn.forward(be, MatView<const T>(xn), x1, n, t, c.attn, inner, x);       // x1 = x + attn(...)
    norm2.forward(be, MatView<const T>(x1), xn, c.ln2);
    mlp.forward(be, MatView<const T>(xn), y, c.mlp, inner, MatView<const T>(x1));  // y = x1 + mlp(...)
  }

  // dx += d(block)/dx · dy (accumulate false: dx = ..., so the caller needs no zero fill);
  // scratch: scratch_elems(n, t) elements, contents irrelevant.
  template <class B>
  void backward(B& be, MatView<const T> x, MatView<const T> dy, Index n, Index t, BlockCache<T> c, Span<T> scratch,
                MatView<T> dx, bool accumulate = true) const {
    const Index r = n * t;
    Span<T> dx1 = scratch.sub(0, r * dim), dxn = scratch.sub(r * dim, r * dim);
    MatView<T> xn(scratch.data + 2 * r * dim, r, dim);
    Span<T> inner = scratch.sub(3 * r * dim, scratch.size - 3 * r * dim);
    const MatView<const T> x1(c.x1.data, r, dim);
    copy(be, dy.span(), dx1);
    norm2.recompute(be, x1, xn, c.ln2);
    mlp.backward(be, MatView<const T>(xn), dy, c.mlp, inner, MatView<T>(dxn.data, r, dim), false);
    norm2.backward(be, x1, MatView<const T>(dxn.data, r, dim), c.ln2, MatView<T>(dx1.data, r, dim));
    norm1.recompute(be, x, xn, c.ln1);
    attn.backward(be, MatView<const T>(xn), MatView<const T>(dx1.data, r, dim), n, t, c.attn, inner,
                  MatView<T>(dxn.data, r, dim), false);
    if (accumulate) add_to(be, Span<const T>(dx1), dx.span());
    else copy(be, Span<const T>(dx1), dx.span());
    norm1.backward(be, x, MatView<const T>(dxn.data, r, dim), c.ln1, dx);
  }
};

}  // namespace mae
