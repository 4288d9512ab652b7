// Weight initialization, as MaskedAutoencoderViT.initialize_weights:
//   pos_embed, decoder_pos_embed: fixed 2-D sin-cos (set by the constructor)
//   patch_embed.proj.weight: xavier_uniform on its (D, C*p*p) view
//   cls_token, mask_token: normal(0, 0.02)
//   every Linear weight: xavier_uniform (bound sqrt(6 / (in + out))), Linear biases 0
//   LayerNorm: weight 1, bias 0
//   patch_embed.proj.bias: PyTorch's Conv2d default, uniform(±1/sqrt(C*p*p)) (MAE leaves it)
// Each tensor draws from its own counter-based stream Rng(seed, tensor index), so the result does
// not depend on thread count or on which tensors exist before it.
#pragma once
#include <cmath>

#include "mae/model/mae_vit.hpp"
#include "mae/tensor/rng.hpp"

namespace mae {

template <class T, class B>
void init_weights(MaeViT<T, B>& model, std::uint64_t seed) {
  const auto& entries = model.table().entries();
  for (std::size_t idx = 0; idx < entries.size(); ++idx) {
    const ParamInfo& p = entries[idx];
    if (!p.trainable) continue;
    Rng rng(seed, 0x1417, idx);
    std::vector<T> v(p.numel);
    auto ends_with = [&](const char* s) {
      const std::size_t n = std::char_traits<char>::length(s);
      return p.name.size() >= n && p.name.compare(p.name.size() - n, n, s) == 0;
    };
    auto uniform = [&](double bound) {
      for (T& x : v) x = T((2 * rng.uniform() - 1) * bound);
    };
    if (p.name == "cls_token" || p.name == "mask_token") {
      for (T& x : v) x = T(0.02 * rng.normal());
    } else if (p.name == "patch_embed.proj.bias") {
      uniform(1.0 / std::sqrt(double(model.config().patch_dim())));
    } else if (ends_with(".weight") && p.shape.size() >= 2) {  // Linear and patch-embedding weights
      const double fan_out = double(p.shape[0]), fan_in = double(p.numel) / fan_out;
      uniform(std::sqrt(6.0 / (fan_in + fan_out)));
    } else if (ends_with(".weight")) {  // LayerNorm
      std::fill(v.begin(), v.end(), T(1));
    } else {  // biases
      std::fill(v.begin(), v.end(), T(0));
    }
    model.set(p.name, v);
  }
}

}  // namespace mae
