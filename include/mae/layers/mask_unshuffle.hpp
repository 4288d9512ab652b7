// Decoder input, as MAE forward_decoder: the embedded latent y (N*(1+K), Dd), one shared mask token
// per removed patch, unshuffled to natural patch order, plus the fixed decoder position embedding:
//   z(n, 0) = y(n, 0) + dpos[0]
//   z(n, 1 + l) = (r < K ? y(n, 1 + r) : mask_token) + dpos[1 + l],   r = ids_restore[n, l]
//   backward: dy(n, 0) += dz(n, 0);  dy(n, 1 + j) += dz(n, 1 + ids_shuffle[n, j]);
//             dmask_token += Σ over removed (n, l) of dz(n, 1 + l)
#pragma once
#include "mae/tensor/param.hpp"
#include "mae/tensor/view.hpp"

namespace mae {
namespace kernels {
template <class T>
struct UnshuffleForward {  // one output element per call
  const T* y; const T* mask_token; const T* dpos; const std::int64_t* ids_restore; Index l, keep, dim; T* z;
  MAE_HOST_DEVICE void operator()(Index e) const {
    const Index row = e / dim, d = e % dim, n = row / (1 + l), t = row % (1 + l);
    T v;
    if (t == 0) {
      v = y[n * (1 + keep) * dim + d];
    } else {
      const Index r = ids_restore[n * l + t - 1];
      v = r < keep ? y[(n * (1 + keep) + 1 + r) * dim + d] : mask_token[d];
    }
    z[e] = v + dpos[t * dim + d];
  }
};
template <class T>
struct UnshuffleBackwardLatent {  // one element of dy per call
  const T* dz; const std::int64_t* ids_shuffle; Index l, keep, dim; T* dy;
  MAE_HOST_DEVICE void operator()(Index e) const {
    const Index row = e / dim, d = e % dim, n = row / (1 + keep), j = row % (1 + keep);
    const Index t = j == 0 ? 0 : 1 + ids_shuffle[n * l + j - 1];
    dy[e] += dz[(n * (1 + l) + t) * dim + d];
  }
};
template <class T>
struct UnshuffleBackwardMaskToken {  // one column per call: Σ over removed patches of all samples
  const T* dz; const std::int64_t* ids_restore; Index n, l, keep, dim; T* dmask;
  MAE_HOST_DEVICE void operator()(Index d) const {
    T s = T(0);
    for (Index i = 0; i < n; ++i)
      for (Index t = 0; t < l; ++t)
        if (ids_restore[i * l + t] >= keep) s += dz[(i * (1 + l) + 1 + t) * dim + d];
    dmask[d] += s;
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
    be.parallel_for(n * (1 + l) * dim, kernels::UnshuffleForward<T>{y.data, mask_token.value, pos, ids_restore, l, keep, dim, z.data});
  }
  template <class B>
  void backward(B& be, MatView<const T> dz, const std::int64_t* ids_shuffle, const std::int64_t* ids_restore, Index n,
                Index l, Index keep, MatView<T> dy) const {
    be.parallel_for(n * (1 + keep) * dim, kernels::UnshuffleBackwardLatent<T>{dz.data, ids_shuffle, l, keep, dim, dy.data});
    be.parallel_for(dim, kernels::UnshuffleBackwardMaskToken<T>{dz.data, ids_restore, n, l, keep, dim, mask_token.grad},
                    n * l);
  }
};

}  // namespace mae
