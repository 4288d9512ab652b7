// Pre-norm transformer block, as timm 0.4.12 `Block` (no dropout, drop-path or layer scale):
//   x1 = x + Attn(LN1(x));   y = x1 + MLP(LN2(x1))
//   backward: dx1 = dy + LN2ᵀ(MLPᵀ(dy));   dx += dx1 + LN1ᵀ(Attnᵀ(dx1))
// forward_rows / backward_rows: the same block with y wanted on m listed rows only (the decoder's
// last block in training, where the loss reads only the removed patches): attention over all rows,
// then LN2 and the MLP on the listed rows of x1; backward: dx1 is zero on the other rows.
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

  // y (m, D) = the rows rows[0..m) of forward's y, m = y.rows (rows: ascending indices into the r rows,
  // in backend memory). The cache keeps the full x1 only until those rows are gathered into its first
  // m rows; LN2's statistics and the MLP's h are kept for those m rows. Same scratch as forward.
  template <class B>
  void forward_rows(B& be, MatView<const T> x, const std::int64_t* rows, MatView<T> y, Index n, Index t, BlockCache<T> c,
                    Span<T> scratch) const {
    const Index r = n * t, m = y.rows;
    MatView<T> xn(scratch.data, r, dim), x1(c.x1.data, r, dim);
    Span<T> inner = scratch.sub(r * dim, scratch.size - r * dim);
    norm1.forward(be, x, xn, c.ln1);
    attn.forward(be, MatView<const T>(xn), x1, n, t, c.attn, inner, x);  // x1 = x + attn(...), every row
    MatView<T> x1_rows(c.x1.data, m, dim), tmp(scratch.data, m, dim);
    gather_rows(be, MatView<const T>(x1), rows, tmp);  // xn is dead: gather there, then compact x1
    copy(be, Span<const T>(tmp.span()), x1_rows.span());
    norm2.forward(be, MatView<const T>(x1_rows), tmp, c.ln2);
    mlp.forward(be, MatView<const T>(tmp), y, rows_cache(c.mlp, m), inner, MatView<const T>(x1_rows));
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
    norm2.recompute(be, x1, xn, c.ln2);
    mlp.backward(be, MatView<const T>(xn), dy, c.mlp, inner, MatView<T>(dxn.data, r, dim), false);
    norm2.backward(be, x1, MatView<const T>(dxn.data, r, dim), c.ln2, MatView<T>(dx1.data, r, dim), dy,
                   /*accumulate=*/false);  // dx1 = dy + LN2ᵀ(MLPᵀ(dy))
    backward_attention(be, x, n, t, c, scratch, dx, accumulate);
  }

  // backward for forward_rows: dy (m, D) on the listed rows; dx as in backward (every row).
  template <class B>
  void backward_rows(B& be, MatView<const T> x, MatView<const T> dy, const std::int64_t* rows, Index n, Index t,
                     BlockCache<T> c, Span<T> scratch, MatView<T> dx, bool accumulate = true) const {
    const Index r = n * t, m = dy.rows;
    MatView<T> dx1(scratch.data, r, dim), dx1_rows(scratch.data + r * dim, m, dim),
        xn_rows(scratch.data + 2 * r * dim, m, dim), dxn_rows(scratch.data, m, dim);
    Span<T> inner = scratch.sub(3 * r * dim, scratch.size - 3 * r * dim);
    const MatView<const T> x1_rows(c.x1.data, m, dim);
    norm2.recompute(be, x1_rows, xn_rows, c.ln2);
    mlp.backward(be, MatView<const T>(xn_rows), dy, rows_cache(c.mlp, m), inner, dxn_rows, false);
    norm2.backward(be, x1_rows, MatView<const T>(dxn_rows), c.ln2, dx1_rows, dy, /*accumulate=*/false);
    zero(be, dx1.span());
    scatter_rows(be, MatView<const T>(dx1_rows), rows, dx1);
    backward_attention(be, x, n, t, c, scratch, dx, accumulate);
  }

 private:
  MlpCache<T> rows_cache(MlpCache<T> c, Index m) const { return {c.h.sub(0, m * mlp.hidden)}; }  // h of m rows

  // The attention half of backward, from dx1 (the scratch's first r·D) to dx; uses the rest of the scratch.
  template <class B>
  void backward_attention(B& be, MatView<const T> x, Index n, Index t, BlockCache<T> c, Span<T> scratch, MatView<T> dx,
                          bool accumulate) const {
    const Index r = n * t;
    Span<T> dx1 = scratch.sub(0, r * dim), dxn = scratch.sub(r * dim, r * dim);
    MatView<T> xn(scratch.data + 2 * r * dim, r, dim);
    Span<T> inner = scratch.sub(3 * r * dim, scratch.size - 3 * r * dim);
    norm1.recompute(be, x, xn, c.ln1);
    attn.backward(be, MatView<const T>(xn), MatView<const T>(dx1.data, r, dim), n, t, c.attn, inner,
                  MatView<T>(dxn.data, r, dim), false);
    norm1.backward(be, x, MatView<const T>(dxn.data, r, dim), c.ln1, dx, MatView<const T>(dx1.data, r, dim),
                   accumulate);  // dx (+)= dx1 + LN1ᵀ(Attnᵀ(dx1))
  }
};

}  // namespace mae
