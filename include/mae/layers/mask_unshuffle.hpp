// Decoder input, as MAE forward_decoder: the embedded latent y (N*(1+K), Dd), one shared mask token
// per removed patch, unshuffled to natural patch order, plus the fixed decoder position embedding:
//   z(n, 0) = y(n, 0) + dpos[0]
//   z(n, 1 + l) = (r < K ? y(n, 1 + r) : mask_token) + dpos[1 + l],   r = ids_restore[n, l]
//   backward: dy(n, 0) += dz(n, 0);  dy(n, 1 + j) += dz(n, 1 + ids_shuffle[n, j]);
//             dmask_token += Σ over removed (n, l) of dz(n, 1 + l)
#pragma once
#include "mae/tensor/ops.hpp"
#include "mae/tensor/param.hpp"
#include "mae/tensor/view.hpp"

namespace mae {
namespace kernels {
// One row per call (a row's source is found once; the loop over its dim values vectorizes).
template <class T>
struct UnshuffleForward {  // z(row, :) for row = n * (1 + L) + t
  const T* y; const T* mask_token; const T* dpos; const std::int64_t* ids_restore; Index l, keep, dim; T* z;
  MAE_HOST_DEVICE void operator()(Index row) const {
    const Index n = row / (1 + l), t = row % (1 + l);
    const Index r = t == 0 ? -1 : ids_restore[n * l + t - 1];
    const T* src = r >= keep ? mask_token : y + (n * (1 + keep) + 1 + r) * dim;  // r = -1: the cls row
    const T* pos = dpos + t * dim;
    T* out = z + row * dim;
    for (Index d = 0; d < dim; ++d) out[d] = src[d] + pos[d];
  }
};
template <class T>
struct UnshuffleBackwardLatent {  // dy(row, :) for row = n * (1 + K) + j
  const T* dz; const std::int64_t* ids_shuffle; Index l, keep, dim; T* dy;
  MAE_HOST_DEVICE void operator()(Index row) const {
    const Index n = row / (1 + keep), j = row % (1 + keep);
    const Index t = j == 0 ? 0 : 1 + ids_shuffle[n * l + j - 1];
    const T* in = dz + (n * (1 + l) + t) * dim;
    T* out = dy + row * dim;
    for (Index d = 0; d < dim; ++d) out[d] += in[d];
  }
};
template <class T>
struct UnshuffleBackwardMaskToken {  // kColumnChunk columns per call: Σ over removed patches of all samples
  const T* dz; const std::int64_t* ids_restore; Index n, l, keep, dim; T* dmask;
  MAE_HOST_DEVICE void operator()(Index chunk) const {
    const Index c0 = chunk * kColumnChunk, nc = dim - c0 < kColumnChunk ? dim - c0 : kColumnChunk;
    with_chunk_width(nc, [&](auto width) {
      T s[kColumnChunk] = {};
      for (Index i = 0; i < n; ++i)
        for (Index t = 0; t < l; ++t)
          if (ids_restore[i * l + t] >= keep) {
            const T* in = dz + (i * (1 + l) + 1 + t) * dim + c0;
            for (Index j = 0; j < Index(width); ++j) s[j] += in[j];
          }
      for (Index j = 0; j < Index(width); ++j) dmask[c0 + j] += s[j];
    });
  }
};
}  // namespace kernels

template <class T>
struct MaskUnshuffle {
  Index dim = 0;
  Param<T> mask_token;      // (Dd)
  const T* pos = nullptr;   // (1 + L, Dd): fixed `decoder_pos_embed`

  template <class B>
  void forward(B& be, MatView<const T> y, const std::int64_t* ids_restore, Index n, Index l, Index keep, MatView<T> z) const {
    be.parallel_for(n * (1 + l), kernels::UnshuffleForward<T>{y.data, mask_token.value, pos, ids_restore, l, keep, dim, z.data},
                    dim);
  }
  template <class B>
  void backward(B& be, MatView<const T> dz, const std::int64_t* ids_shuffle, const std::int64_t* ids_restore, Index n,
                Index l, Index keep, MatView<T> dy) const {
    be.parallel_for(n * (1 + keep), kernels::UnshuffleBackwardLatent<T>{dz.data, ids_shuffle, l, keep, dim, dy.data}, dim);
    be.parallel_for(kernels::column_chunks(dim),
                    kernels::UnshuffleBackwardMaskToken<T>{dz.data, ids_restore, n, l, keep, dim, mask_token.grad},
                    n * l * kernels::kColumnChunk);
  }
};

}  // namespace mae
