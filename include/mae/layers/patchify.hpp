// patchify / unpatchify on the host, as models_mae.MaskedAutoencoderViT.patchify / .unpatchify
// (generalized from 3 channels to C): the layout of the loss target and of the prediction.
//   patchify:   x(n, l, (u*p + v)*C + c) = imgs[n, c, i*p + u, j*p + v],  l = i*g + j
//   unpatchify: its inverse, (N, L, p*p*C) -> (N, C, H, W)
// (The model builds its target on the backend with kernels::PatchifyTarget; these are for users:
// turning a prediction back into images, preparing targets, tests.)
#pragma once
#include <vector>

#include "mae/config.hpp"

namespace mae {

template <class T>
std::vector<T> patchify(const std::vector<T>& imgs, Index n, Index chans, Index img, Index p) {
  MAE_CHECK(p > 0 && img % p == 0, "patchify: patch size ", p, " does not divide image size ", img);
  MAE_CHECK(Index(imgs.size()) == n * chans * img * img, "patchify: ", imgs.size(), " values, expected (", n, ", ",
            chans, ", ", img, ", ", img, ")");
  const Index g = img / p, pd = p * p * chans;
  std::vector<T> out(imgs.size());
  for (Index s = 0; s < n; ++s)
    for (Index i = 0; i < g; ++i)
      for (Index j = 0; j < g; ++j)
        for (Index u = 0; u < p; ++u)
          for (Index v = 0; v < p; ++v)
            for (Index c = 0; c < chans; ++c)
              out[(s * g * g + i * g + j) * pd + (u * p + v) * chans + c] =
                  imgs[((s * chans + c) * img + i * p + u) * img + j * p + v];
  return out;
}

template <class T>
std::vector<T> unpatchify(const std::vector<T>& x, Index n, Index chans, Index img, Index p) {
  MAE_CHECK(p > 0 && img % p == 0, "unpatchify: patch size ", p, " does not divide image size ", img);
  MAE_CHECK(Index(x.size()) == n * chans * img * img, "unpatchify: ", x.size(), " values, expected (", n, ", ",
            (img / p) * (img / p), ", ", p * p * chans, ")");
  const Index g = img / p, pd = p * p * chans;
  std::vector<T> out(x.size());
  for (Index s = 0; s < n; ++s)
    for (Index i = 0; i < g; ++i)
      for (Index j = 0; j < g; ++j)
        for (Index u = 0; u < p; ++u)
          for (Index v = 0; v < p; ++v)
            for (Index c = 0; c < chans; ++c)
              out[((s * chans + c) * img + i * p + u) * img + j * p + v] =
                  x[(s * g * g + i * g + j) * pd + (u * p + v) * chans + c];
  return out;
}

}  // namespace mae
