// MAE reconstruction loss, as models_mae.forward_loss.
//   target(n, l, (u*p + v)*C + c) = imgs[n, c, i*p + u, j*p + v],  l = i*g + j     ((u, v, c) order)
//   norm_pix_loss: target = (t − mean(t)) / sqrt(var(t) + 1e-6), var unbiased (÷ (P−1)), per patch
//   e(n, l) = mean_P (pred − target)²;   loss = Σ e · mask / Σ mask      (mask 1 = removed)
//   backward: dpred(n, l, :) = scale · mask(n, l) · 2 (pred − target) / (P · Σ mask)
// pred rows are the decoder's (N*(1+L), P) output; row 0 of each sample (cls) gets zero gradient.
// forward_rows / backward_rows: pred holds only the removed patches' rows (decoder rows `rows`,
// ascending): the same loss bit for bit (the masked sum skips only zero terms, in the same order)
// and the same dpred on those rows.
// The reduction is one sequential sum on the device: deterministic, and no host round trip.
#pragma once
#include <cstdint>

#include "mae/tensor/math.hpp"
#include "mae/tensor/view.hpp"

namespace mae {
// Patch (n, j) (index n·L + j) is decoder row n·(1+L) + 1 + j: row 0 of each sample is the cls token.
MAE_HOST_DEVICE inline Index decoder_row_of_patch(Index patch, Index l) { return patch + patch / l + 1; }
MAE_HOST_DEVICE inline Index patch_of_decoder_row(Index row, Index l) { return row - row / (1 + l) - 1; }

namespace kernels {
template <class T>
MAE_HOST_DEVICE inline T patch_error(const T* pr, const T* tr, Index pd) {  // mean_P (pred − target)²
  T s = T(0);
  for (Index k = 0; k < pd; ++k) s += (pr[k] - tr[k]) * (pr[k] - tr[k]);
  return s / T(pd);
}
template <class T>
struct PatchifyTarget {  // one patch per call
  const T* imgs; Index chans, img, p, grid; bool norm_pix; T* target;
  MAE_HOST_DEVICE void operator()(Index row) const {
    const Index pd = p * p * chans, l2 = grid * grid, n = row / l2, l = row % l2, gi = l / grid, gj = l % grid;
    T* t = target + row * pd;
    for (Index u = 0; u < p; ++u)
      for (Index v = 0; v < p; ++v)
        for (Index c = 0; c < chans; ++c)
          t[(u * p + v) * chans + c] = imgs[((n * chans + c) * img + gi * p + u) * img + gj * p + v];
    if (!norm_pix) return;
    T s = T(0);
    for (Index k = 0; k < pd; ++k) s += t[k];
    const T mean = s / T(pd);
    T ss = T(0);
    for (Index k = 0; k < pd; ++k) ss += (t[k] - mean) * (t[k] - mean);
    const T inv = T(1) / math::sqrt(ss / T(pd - 1) + T(1e-6));
    for (Index k = 0; k < pd; ++k) t[k] = (t[k] - mean) * inv;
  }
};
template <class T>
struct PatchError {  // e(n, l) = mean_P (pred − target)²; one patch per call
  const T* pred; const T* target; Index l, pd; T* err;
  MAE_HOST_DEVICE void operator()(Index patch) const {
    err[patch] = patch_error(pred + decoder_row_of_patch(patch, l) * pd, target + patch * pd, pd);
  }
};
template <class T>
struct PatchErrorRows {  // e(i) for pred row i = decoder row rows[i]; one row per call
  const T* pred; const T* target; const std::int64_t* rows; Index l, pd; T* err;
  MAE_HOST_DEVICE void operator()(Index i) const {
    err[i] = patch_error(pred + i * pd, target + patch_of_decoder_row(rows[i], l) * pd, pd);
  }
};
template <class T>
struct MaskedMean {  // stats = {Σ e·mask / Σ mask, Σ mask} (mask null: all ones); a single call
  const T* err; const T* mask; Index count; T* stats;
  MAE_HOST_DEVICE void operator()(Index) const {
    T num = T(0), den = T(0);
    for (Index i = 0; i < count; ++i) {
      num += mask ? err[i] * mask[i] : err[i];
      den += mask ? mask[i] : T(1);
    }
    stats[0] = num / den;
    stats[1] = den;
  }
};
template <class T>
struct LossGrad {  // writes dpred for every row of the decoder output; one element per call
  const T* pred; const T* target; const T* mask; const T* stats; Index l, pd; T scale; T* dpred;
  MAE_HOST_DEVICE void operator()(Index e) const {
    const Index row = e / pd, k = e % pd, n = row / (1 + l), t = row % (1 + l);
    if (t == 0) {
      dpred[e] = T(0);
      return;
    }
    const Index patch = n * l + t - 1;
    dpred[e] = mask[patch] * (T(2) * scale / (T(pd) * stats[1])) * (pred[e] - target[patch * pd + k]);
  }
};
template <class T>
struct LossGradRows {  // dpred for pred row i = decoder row rows[i] (a removed patch); one element per call
  const T* pred; const T* target; const std::int64_t* rows; const T* stats; Index l, pd; T scale; T* dpred;
  MAE_HOST_DEVICE void operator()(Index e) const {
    const Index k = e % pd, patch = patch_of_decoder_row(rows[e / pd], l);
    dpred[e] = (T(2) * scale / (T(pd) * stats[1])) * (pred[e] - target[patch * pd + k]);  // LossGrad's, mask 1
  }
};
}  // namespace kernels

template <class T>
struct MseLoss {
  Index img = 0, patch = 0, chans = 0;
  bool norm_pix = false;

  Index grid() const { return img / patch; }
  Index patch_dim() const { return patch * patch * chans; }

  // imgs (N, C, H, W) -> target (N*L, P)
  template <class B>
  void target(B& be, const T* imgs, Index n, MatView<T> target) const {
    be.parallel_for(n * grid() * grid(), kernels::PatchifyTarget<T>{imgs, chans, img, patch, grid(), norm_pix, target.data},
                    4 * patch_dim());
  }
  // pred (N*(1+L), P), mask (N*L); err: (N*L) cache; stats: 2 elements, stats[0] = loss.
  template <class B>
  void forward(B& be, MatView<const T> pred, MatView<const T> target, const T* mask, Index n, Span<T> err, Span<T> stats) const {
    const Index l = grid() * grid();
    be.parallel_for(n * l, kernels::PatchError<T>{pred.data, target.data, l, patch_dim(), err.data}, 2 * patch_dim());
    be.parallel_for(1, kernels::MaskedMean<T>{err.data, mask, n * l, stats.data});
  }
  // The same for pred (m, P) on the removed patches only: row i is decoder row rows[i] (ascending;
  // the rows whose mask is 1). err: m values.
  template <class B>
  void forward_rows(B& be, MatView<const T> pred, MatView<const T> target, const std::int64_t* rows, Span<T> err,
                    Span<T> stats) const {
    const Index l = grid() * grid();
    be.parallel_for(pred.rows, kernels::PatchErrorRows<T>{pred.data, target.data, rows, l, patch_dim(), err.data},
                    2 * patch_dim());
    be.parallel_for(1, kernels::MaskedMean<T>{err.data, nullptr, pred.rows, stats.data});
  }
  // dpred := scale · d loss / d pred (written, not accumulated: it starts the backward pass).
  template <class B>
  void backward(B& be, MatView<const T> pred, MatView<const T> target, const T* mask, Index n, Span<const T> stats,
                T scale, MatView<T> dpred) const {
    const Index l = grid() * grid();
    be.parallel_for(n * (1 + l) * patch_dim(),
                    kernels::LossGrad<T>{pred.data, target.data, mask, stats.data, l, patch_dim(), scale, dpred.data});
  }
  template <class B>
  void backward_rows(B& be, MatView<const T> pred, MatView<const T> target, const std::int64_t* rows,
                     Span<const T> stats, T scale, MatView<T> dpred) const {
    const Index l = grid() * grid();
    be.parallel_for(pred.rows * patch_dim(), kernels::LossGradRows<T>{pred.data, target.data, rows, stats.data, l,
                                                                      patch_dim(), scale, dpred.data});
  }
};

}  // namespace mae
