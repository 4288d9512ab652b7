// Multi-head self-attention, as timm 0.4.12 `Attention` (fused qkv, no masking).
// x: (N*T, D) = N samples of T tokens; H heads of Dh = D / H; qkv column s*D + h*Dh + d holds
// component s (0 q, 1 k, 2 v) of head h, element d (the official layout).
//   forward:  qkv = x · Wqkvᵀ + bqkv;  per (n, h): P = softmax_rows(Q Kᵀ · Dh^-½);  O = P V
//             y = O · Wprojᵀ + bproj       (O: heads concatenated in head order, (N*T, D))
//   backward: dO = dy · Wproj (+ proj grads);  dP = dO Vᵀ;  dV = Pᵀ dO;
//             dS = P ∘ (dP − rowsum(dP ∘ P));  dQ = Dh^-½ · dS K;  dK = Dh^-½ · dSᵀ Q;
//             dx += dqkv · Wqkv (+ qkv grads)
// Heads are never split or merged by copies: the batched GEMMs address them by strides.
#pragma once
#include "mae/layers/linear.hpp"
#include "mae/tensor/math.hpp"

namespace mae {

template <class T>
struct AttentionCache {
  Span<T> qkv;          // (N*T, 3D)
  Span<T> probs, o;     // (N, H, T, T), (N*T, D) with keep_probs; empty otherwise (rebuilt in backward)
};

namespace kernels {
template <class T>
struct SoftmaxRows {  // in place, one row of length `cols` per call
  T* x; Index cols;
  MAE_HOST_DEVICE void operator()(Index r) const {
    T* row = x + r * cols;
    const T m = math::lane_max(row, cols);
    for (Index c = 0; c < cols; ++c) row[c] = math::exp(row[c] - m);
    const T inv = T(1) / math::lane_sum<T>(cols, [row](Index c) { return row[c]; });
    for (Index c = 0; c < cols; ++c) row[c] *= inv;
  }
};
template <class T>
struct SoftmaxRowsBackward {  // dp := p ∘ (dp − Σ dp ∘ p), in place, one row per call
  const T* p; T* dp; Index cols;
  MAE_HOST_DEVICE void operator()(Index r) const {
    const T* pr = p + r * cols;
    T* dr = dp + r * cols;
    const T s = math::lane_sum<T>(cols, [pr, dr](Index c) { return dr[c] * pr[c]; });
    for (Index c = 0; c < cols; ++c) dr[c] = pr[c] * (dr[c] - s);
  }
};
}  // namespace kernels

template <class T>
struct Attention {
  Index dim = 0, heads = 1;
  Linear<T> qkv, proj;  // (3D, D), (D, D)
  // true (the default): P and O are cached for backward. false: they are forward scratch and backward
  // rebuilds them from q, k, v (two batched GEMMs and a softmax, ~4-6% of a base224 step) instead of holding
  // N·H·T² + N·T·D per block.
  bool keep_probs = true;

  Index head_dim() const { return dim / heads; }
  Index probs_elems(Index n, Index t) const { return n * heads * t * t; }
  // for_backward false (inference): nothing is read back, so P and O are always scratch.
  bool caches_probs(bool for_backward) const { return keep_probs && for_backward; }
  Index cache_elems(Index n, Index t, bool for_backward = true) const {
    return n * t * 3 * dim + (caches_probs(for_backward) ? probs_elems(n, t) + n * t * dim : 0);
  }
  Index forward_scratch_elems(Index n, Index t, bool for_backward = true) const {
    return caches_probs(for_backward) ? 0 : probs_elems(n, t) + n * t * dim;
  }
  // dO, dqkv, dP (+ the rebuilt P and O)
  Index scratch_elems(Index n, Index t) const {
    return n * t * 4 * dim + probs_elems(n, t) + forward_scratch_elems(n, t);
  }
  AttentionCache<T> make_cache(Span<T> s, Index n, Index t, bool for_backward = true) const {
    const bool keep = caches_probs(for_backward);
    const Index r = n * t, np = keep ? probs_elems(n, t) : 0;
    return {s.sub(0, r * 3 * dim), s.sub(r * 3 * dim, np), s.sub(r * 3 * dim + np, keep ? r * dim : 0)};
  }

  // scratch: forward_scratch_elems(n, t) elements, contents irrelevant. With a residual (a matrix of
  // y's shape), y = attn(x) + residual (added in the pass that adds proj's bias).
  template <class B>
  void forward(B& be, MatView<const T> x, MatView<T> y, Index n, Index t, AttentionCache<T> c, Span<T> scratch,
               MatView<const T> residual = {}) const {
    const bool cached = c.probs.size > 0;
    MAE_ASSERT(cached || scratch.size >= probs_elems(n, t) + n * t * dim, "Attention: forward scratch too small");
    T* p = cached ? c.probs.data : scratch.data;
    T* o = cached ? c.o.data : scratch.data + probs_elems(n, t);
    qkv.forward(be, x, MatView<T>(c.qkv.data, n * t, 3 * dim));
    core(be, n, t, c.qkv.data, p, o);
    proj.forward(be, MatView<const T>(o, n * t, dim), y, residual);
  }

  // scratch: scratch_elems(n, t) elements, contents irrelevant.
  // accumulate false: dx is overwritten instead of added to.
  template <class B>
  void backward(B& be, MatView<const T> x, MatView<const T> dy, Index n, Index t, AttentionCache<T> c, Span<T> scratch,
                MatView<T> dx, bool accumulate = true) const {
    const Index D = dim, H = heads, Dh = head_dim(), r = n * t;
    const T scale = T(1) / math::sqrt(T(Dh));
    T* d_o = scratch.data;
    T* dqkv = d_o + r * D;
    T* dp = dqkv + r * 3 * D;
    const T* q = c.qkv.data;
    const T* p = c.probs.data;
    const T* o = c.o.data;
    if (c.probs.size == 0) {
      MAE_ASSERT(!keep_probs, "Attention: backward of a forward made for inference (make_cache(..., false))");
      T* p_new = dp + probs_elems(n, t);
      T* o_new = p_new + probs_elems(n, t);
      core(be, n, t, q, p_new, o_new);
      p = p_new;
      o = o_new;
    }
    proj.backward(be, MatView<const T>(o, r, D), dy, MatView<T>(d_o, r, D), false);
    const Stride2 s_qkv{t * 3 * D, Dh}, s_p{H * t * t, t * t}, s_o{t * D, Dh};
    const Batch2 nh{n, H};
    be.gemm_batched(Op::N, Op::T, t, t, Dh, T(1), d_o, D, s_o, q + 2 * D, 3 * D, s_qkv, T(0), dp, t, s_p, nh);
    be.gemm_batched(Op::T, Op::N, t, Dh, t, T(1), p, t, s_p, d_o, D, s_o, T(0), dqkv + 2 * D, 3 * D, s_qkv, nh);
    be.parallel_for(n * H * t, kernels::SoftmaxRowsBackward<T>{p, dp, t}, 4 * t);
    be.gemm_batched(Op::N, Op::N, t, Dh, t, scale, dp, t, s_p, q + D, 3 * D, s_qkv, T(0), dqkv, 3 * D, s_qkv, nh);
    be.gemm_batched(Op::T, Op::N, t, Dh, t, scale, dp, t, s_p, q, 3 * D, s_qkv, T(0), dqkv + D, 3 * D, s_qkv, nh);
    qkv.backward(be, x, MatView<const T>(dqkv, r, 3 * D), dx, accumulate);
  }

 private:
  // P = softmax_rows(Q Kᵀ · Dh^-½) per (sample, head), O = P V with heads concatenated.
  template <class B>
  void core(B& be, Index n, Index t, const T* q, T* p, T* o) const {
    const Index D = dim, H = heads, Dh = head_dim();
    const T scale = T(1) / math::sqrt(T(Dh));
    const Stride2 s_qkv{t * 3 * D, Dh}, s_p{H * t * t, t * t}, s_o{t * D, Dh};
    const Batch2 nh{n, H};
    be.gemm_batched(Op::N, Op::T, t, t, Dh, scale, q, 3 * D, s_qkv, q + D, 3 * D, s_qkv, T(0), p, t, s_p, nh);
    be.parallel_for(n * H * t, kernels::SoftmaxRows<T>{p, t}, 8 * t);
    be.gemm_batched(Op::N, Op::N, t, Dh, t, T(1), p, t, s_p, q + 2 * D, 3 * D, s_qkv, T(0), o, D, s_o, nh);
  }
};

}  // namespace mae
