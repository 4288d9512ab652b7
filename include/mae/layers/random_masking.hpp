// Per-sample random masking, as MAE models_mae.random_masking, driven by given uniform noise (N, L):
//   K = int(L * (1 - mask_ratio))          (double expression, truncated: replicate it exactly)
//   ids_shuffle[n] = argsort(noise[n])     ascending; kept patches are ids_shuffle[n, 0..K-1] in that order
//   ids_restore[n] = argsort(ids_shuffle[n])   (inverse permutation: rank of patch l)
//   mask[n, l] = 1 if ids_restore[n, l] >= K (removed) else 0
// Runs on the host: it only orders N·L numbers, and the noise comes from the host anyway.
#pragma once
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "mae/config.hpp"

namespace mae {

inline Index len_keep(Index num_patches, double mask_ratio) {
  return static_cast<Index>(double(num_patches) * (1.0 - mask_ratio));
}

struct Masking {
  Index n = 0, l = 0, keep = 0;
  std::vector<std::int64_t> ids_shuffle, ids_restore;  // (N, L) each
};

// Writes into `m` (its vectors are reused: no allocation once they have the size N*L).
template <class T>
void random_masking_into(const T* noise, Index n, Index l, double mask_ratio, Masking& m) {
  m.n = n;
  m.l = l;
  m.keep = len_keep(l, mask_ratio);
  m.ids_shuffle.resize(n * l);
  m.ids_restore.resize(n * l);
  for (Index s = 0; s < n; ++s) {
    const T* row = noise + s * l;
    std::int64_t* shuf = m.ids_shuffle.data() + s * l;
    std::int64_t* rest = m.ids_restore.data() + s * l;
    for (Index i = 0; i < l; ++i)
      MAE_CHECK(std::isfinite(double(row[i])), "masking noise of sample ", s, " is not finite at patch ", i);
    std::iota(shuf, shuf + l, std::int64_t(0));
    // ascending noise; equal noise (not expected from a continuous draw) keeps patch order
    std::sort(shuf, shuf + l, [row](std::int64_t a, std::int64_t b) { return row[a] < row[b] || (row[a] == row[b] && a < b); });
    for (Index i = 0; i < l; ++i) rest[shuf[i]] = i;
  }
}

template <class T>
Masking random_masking(const T* noise, Index n, Index l, double mask_ratio) {
  Masking m;
  random_masking_into(noise, n, l, mask_ratio, m);
  return m;
}

}  // namespace mae
