// Fixed 2-D sin-cos position embedding, as MAE util/pos_embed.get_2d_sincos_pos_embed(E, g, cls_token=True).
// Row 0 (cls) is zero. Patch at grid row i, column j is row 1 + i*g + j; with q = E/4, ω_k = 10000^(-k/q):
//   [0, q): sin(j ω_k)   [q, 2q): cos(j ω_k)   [2q, 3q): sin(i ω_k)   [3q, 4q): cos(i ω_k)
// (the first half encodes the column, the second the row). Values are computed in double and rounded
// to float32, exactly as the official float32 parameter holds them.
#pragma once
#include <cmath>
#include <vector>

#include "mae/config.hpp"

namespace mae {

template <class T>
std::vector<T> sincos_pos_embed_2d(Index embed_dim, Index grid) {
  MAE_CHECK(embed_dim % 4 == 0, "sin-cos position embedding: width ", embed_dim, " is not a multiple of 4");
  const Index q = embed_dim / 4;
  std::vector<T> out((1 + grid * grid) * embed_dim, T(0));
  for (Index i = 0; i < grid; ++i) {
    for (Index j = 0; j < grid; ++j) {
      T* row = out.data() + (1 + i * grid + j) * embed_dim;
      for (Index k = 0; k < q; ++k) {
        // as numpy: omega = 1 / 10000**(arange(q) / q), then out = pos * omega
        const double omega = 1.0 / std::pow(10000.0, double(k) / double(q));
        const double aj = double(j) * omega, ai = double(i) * omega;
        row[k] = T(float(std::sin(aj)));
        row[q + k] = T(float(std::cos(aj)));
        row[2 * q + k] = T(float(std::sin(ai)));
        row[3 * q + k] = T(float(std::cos(ai)));
      }
    }
  }
  return out;
}

}  // namespace mae
