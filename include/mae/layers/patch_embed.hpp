// Patch embedding, as timm PatchEmbed (Conv2d kernel = stride = p) applied only to the patches the
// encoder sees, followed by MAE's token assembly (position embedding, cls token prepended).
//   X(n*K + j, (c,u,v)) = imgs[n, c, i*p + u, j'*p + v]   for patch l = ids[n, j] = i*g + j'
//   tok = X · Wᵀ + b          (W: (D, C, p, p) viewed as (D, C*p*p), i.e. (c, u, v) order)
//   x(n, 0) = cls + pos[0];   x(n, 1 + j) = tok(n*K + j) + pos[1 + ids[n, j]]         x: (N*(1+K), D)
//   backward: dcls += Σ_n dx(n, 0);  dtok(n*K + j) = dx(n, 1 + j);  dW += dtokᵀ X;  db += Σ dtok
// The embedding is per patch, so embedding only the kept ones is exact and saves (L-K)/L of the work.
#pragma once
#include "mae/layers/linear.hpp"

namespace mae {
namespace kernels {
// One image row of one patch, or one token row, per call: the index arithmetic runs once per run of
// contiguous values, and the copies over those runs vectorize.
template <class T>
struct GatherPatchesCUV {  // X(row, (c, u, 0..p-1)) for call e = (row * C + c) * p + u
  const T* imgs; const std::int64_t* ids; Index ids_ld, keep, chans, img, p, grid; T* x;
  MAE_HOST_DEVICE void operator()(Index e) const {
    const Index row = e / (chans * p), c = (e / p) % chans, u = e % p;
    const Index n = row / keep, j = row % keep;
    const Index l = ids[n * ids_ld + j], gi = l / grid, gj = l % grid;
    const T* src = imgs + ((n * chans + c) * img + gi * p + u) * img + gj * p;
    T* dst = x + e * p;  // row * C*p*p + (c * p + u) * p
    for (Index v = 0; v < p; ++v) dst[v] = src[v];
  }
};
template <class T>
struct AssembleTokens {  // x(row, :) for row = n * (1 + K) + j
  const T* tok; const T* cls; const T* pos; const std::int64_t* ids; Index ids_ld, keep, dim; T* x;
  MAE_HOST_DEVICE void operator()(Index row) const {
    const Index n = row / (1 + keep), j = row % (1 + keep);
    const T* src = j == 0 ? cls : tok + (n * keep + j - 1) * dim;
    const T* p = j == 0 ? pos : pos + (1 + ids[n * ids_ld + j - 1]) * dim;
    T* out = x + row * dim;
    for (Index d = 0; d < dim; ++d) out[d] = src[d] + p[d];
  }
};
template <class T>
struct TokenGrad {  // dtok(n*K + j, :) = dx(n, 1 + j, :); one row per call
  const T* dx; Index keep, dim; T* dtok;
  MAE_HOST_DEVICE void operator()(Index row) const {
    const Index n = row / keep, j = row % keep;
    const T* in = dx + (n * (1 + keep) + 1 + j) * dim;
    T* out = dtok + row * dim;
    for (Index d = 0; d < dim; ++d) out[d] = in[d];
  }
};
template <class T>
struct ClsGrad {  // dcls(d) += Σ_n dx(n, 0, d); one column per call
  const T* dx; Index n, rows_per_sample, dim; T* dcls;
  MAE_HOST_DEVICE void operator()(Index d) const {
    T s = T(0);
    for (Index i = 0; i < n; ++i) s += dx[i * rows_per_sample * dim + d];
    dcls[d] += s;
  }
};
}  // namespace kernels

template <class T>
struct PatchEmbed {
  Index img = 0, patch = 0, chans = 0, dim = 0;
  Linear<T> proj;  // (D, C*p*p)
  Param<T> cls;    // (D): `cls_token`
  const T* pos = nullptr;  // (1 + L, D): fixed `pos_embed`

  Index grid() const { return img / patch; }
  Index patch_dim() const { return chans * patch * patch; }

  // imgs: (N, C, H, W); ids: (N, ids_ld), the first `keep` of each row are embedded in that order.
  // x_patches (N*K, C*p*p) and tok (N*K, D) are caches; out: (N*(1+K), D).
  template <class B>
  void forward(B& be, const T* imgs, const std::int64_t* ids, Index ids_ld, Index n, Index keep, MatView<T> x_patches,
               MatView<T> tok, MatView<T> out) const {
    be.parallel_for(n * keep * chans * patch,
                    kernels::GatherPatchesCUV<T>{imgs, ids, ids_ld, keep, chans, img, patch, grid(), x_patches.data},
                    patch);
    proj.forward(be, MatView<const T>(x_patches), tok);
    be.parallel_for(n * (1 + keep), kernels::AssembleTokens<T>{tok.data, cls.value, pos, ids, ids_ld, keep, dim, out.data},
                    dim);
  }

  // dtok: scratch (N*K, D). Images get no gradient.
  template <class B>
  void backward(B& be, Index n, Index keep, MatView<const T> x_patches, MatView<const T> dout, MatView<T> dtok) const {
    be.parallel_for(n * keep, kernels::TokenGrad<T>{dout.data, keep, dim, dtok.data}, dim);
    be.parallel_for(dim, kernels::ClsGrad<T>{dout.data, n, 1 + keep, dim, cls.grad}, n);
    proj.backward(be, x_patches, MatView<const T>(dtok), MatView<T>());
  }
};

}  // namespace mae
