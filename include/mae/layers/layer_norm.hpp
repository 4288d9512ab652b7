// LayerNorm over the last dimension, as torch.nn.LayerNorm(D, eps=1e-6) in timm's Block and MAE.
//   forward:  y = xhat * gamma + beta,  xhat = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps),
//             var = Σ (x - mean)² / D   (biased: divide by D)                         x, y: (R, D)
//   backward: dgamma += Σ_r dy * xhat;   dbeta += Σ_r dy;
//             dx += rstd * (g - mean_D(g) - xhat * mean_D(g * xhat)),  g = dy * gamma
#pragma once
#include "mae/tensor/math.hpp"
#include "mae/tensor/ops.hpp"
#include "mae/tensor/param.hpp"

namespace mae {

template <class T>
struct LayerNormCache {
  Span<T> mean, rstd;  // (R) each
};

namespace kernels {
template <class T>
struct LayerNormForward {  // one row per call
  const T* x; Index ldx; T* y; Index ldy; const T* gamma; const T* beta; Index dim; T eps; T* mean; T* rstd;
  MAE_HOST_DEVICE void operator()(Index r) const {
    const T* xr = x + r * ldx;
    T* yr = y + r * ldy;
    const T mu = math::lane_sum<T, math::kWideLanes>(dim, [xr](Index c) { return xr[c]; }) / T(dim);
    const T v = math::lane_sum<T, math::kWideLanes>(dim, [xr, mu](Index c) { return (xr[c] - mu) * (xr[c] - mu); });
    const T rs = T(1) / math::sqrt(v / T(dim) + eps);
    normalize_row(xr, yr, gamma, beta, dim, mu, rs);
    mean[r] = mu;
    rstd[r] = rs;
  }
  MAE_HOST_DEVICE static void normalize_row(const T* xr, T* yr, const T* gamma, const T* beta, Index dim, T mu, T rs) {
    for (Index c = 0; c < dim; ++c) yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
  }
};
template <class T>
struct LayerNormRecompute {  // y again from the cached mean and rstd, one row per call
  const T* x; Index ldx; T* y; Index ldy; const T* gamma; const T* beta; Index dim; const T* mean; const T* rstd;
  MAE_HOST_DEVICE void operator()(Index r) const {
    LayerNormForward<T>::normalize_row(x + r * ldx, y + r * ldy, gamma, beta, dim, mean[r], rstd[r]);
  }
};
// dx += v (base null), dx = (dx + base) + v (base, keep_dx) or dx = base + v (base, !keep_dx), with v
// the LayerNorm's input gradient: the residual stream's add folded into this pass, same roundings as
// adding base in a pass of its own first. One row per call.
template <class T>
struct LayerNormBackwardInput {
  const T* x; Index ldx; const T* dy; Index lddy; T* dx; Index lddx; const T* gamma; Index dim;
  const T* mean; const T* rstd; const T* base = nullptr; Index ldbase = 0; bool keep_dx = true;
  MAE_HOST_DEVICE void operator()(Index r) const {
    const T* xr = x + r * ldx;
    const T* dyr = dy + r * lddy;
    T* dxr = dx + r * lddx;
    const T* br = base + r * ldbase;
    const T mu = mean[r], rs = rstd[r];
    const T* gm = gamma;  // locals, for the lambdas to capture
    const T sg = math::lane_sum<T, math::kWideLanes>(dim, [dyr, gm](Index c) { return dyr[c] * gm[c]; });
    const T sgx = math::lane_sum<T, math::kWideLanes>(dim, [dyr, gm, xr, mu, rs](Index c) { return dyr[c] * gm[c] * (xr[c] - mu) * rs; });
    const T mg = sg / T(dim), mgx = sgx / T(dim);
    auto v = [=](Index c) { return rs * (dyr[c] * gm[c] - mg - (xr[c] - mu) * rs * mgx); };
    if (!base)
      for (Index c = 0; c < dim; ++c) dxr[c] += v(c);
    else if (keep_dx)
      for (Index c = 0; c < dim; ++c) dxr[c] = (dxr[c] + br[c]) + v(c);
    else
      for (Index c = 0; c < dim; ++c) dxr[c] = br[c] + v(c);
  }
};
template <class T>
struct LayerNormBackwardParams {  // one chunk of columns per call (see AddColumnSums): sums over rows in order
  const T* x; Index ldx; const T* dy; Index lddy; Index rows, dim; const T* mean; const T* rstd; T* dgamma; T* dbeta;
  MAE_HOST_DEVICE void operator()(Index chunk) const {
    const Index c0 = chunk * kColumnChunk, nc = dim - c0 < kColumnChunk ? dim - c0 : kColumnChunk;
    with_chunk_width(nc, [&](auto width) {
      T sgm[kColumnChunk] = {}, sb[kColumnChunk] = {};
      for (Index r = 0; r < rows; ++r) {
        const T* xr = x + r * ldx + c0;
        const T* dr = dy + r * lddy + c0;
        const T mu = mean[r], rs = rstd[r];
        for (Index j = 0; j < Index(width); ++j) {
          sgm[j] += dr[j] * ((xr[j] - mu) * rs);
          sb[j] += dr[j];
        }
      }
      for (Index j = 0; j < Index(width); ++j) {
        dgamma[c0 + j] += sgm[j];
        dbeta[c0 + j] += sb[j];
      }
    });
  }
};
}  // namespace kernels

template <class T>
struct LayerNorm {
  Index dim = 0;
  T eps = T(1e-6);
  Param<T> gamma, beta;  // (D) each: state_dict names `.weight`, `.bias`

  static Index cache_elems(Index rows) { return 2 * rows; }
  static LayerNormCache<T> make_cache(Span<T> s, Index rows) { return {s.sub(0, rows), s.sub(rows, rows)}; }

  template <class B>
  void forward(B& be, MatView<const T> x, MatView<T> y, LayerNormCache<T> c) const {
    MAE_ASSERT(x.cols == dim && y.cols == dim && x.rows == y.rows && c.mean.size >= x.rows, "LayerNorm: shapes");
    be.parallel_for(x.rows, kernels::LayerNormForward<T>{x.data, x.ld, y.data, y.ld, gamma.value, beta.value, dim, eps,
                                                         c.mean.data, c.rstd.data}, 4 * dim);
  }

  // y exactly as forward wrote it, from x and the cache (so callers need not keep y for backward).
  template <class B>
  void recompute(B& be, MatView<const T> x, MatView<T> y, LayerNormCache<T> c) const {
    MAE_ASSERT(x.cols == dim && y.cols == dim && x.rows == y.rows && c.mean.size >= x.rows, "LayerNorm: shapes");
    be.parallel_for(x.rows, kernels::LayerNormRecompute<T>{x.data, x.ld, y.data, y.ld, gamma.value, beta.value, dim,
                                                           c.mean.data, c.rstd.data}, 2 * dim);
  }

  // dx += d(LN)/dx · dy. With a residual (a matrix of dx's shape): dx = [dx +] residual + d(LN)/dx · dy,
  // the stream's gradient joined in the same pass (accumulate false: dx's old values are not read).
  template <class B>
  void backward(B& be, MatView<const T> x, MatView<const T> dy, LayerNormCache<T> c, MatView<T> dx,
                MatView<const T> residual = {}, bool accumulate = true) const {
    MAE_ASSERT(residual.data || accumulate, "LayerNorm backward: accumulate false needs a residual");
    MAE_ASSERT(!residual.data || (residual.rows == dx.rows && residual.cols == dx.cols), "LayerNorm backward: residual");
    be.parallel_for(x.rows, kernels::LayerNormBackwardInput<T>{x.data, x.ld, dy.data, dy.ld, dx.data, dx.ld, gamma.value,
                                                               dim, c.mean.data, c.rstd.data, residual.data, residual.ld,
                                                               accumulate}, 7 * dim);
    be.parallel_for(kernels::column_chunks(dim),
                    kernels::LayerNormBackwardParams<T>{x.data, x.ld, dy.data, dy.ld, x.rows, dim, c.mean.data,
                                                        c.rstd.data, gamma.grad, beta.grad},
                    x.rows * kernels::kColumnChunk);
  }
};

}  // namespace mae
