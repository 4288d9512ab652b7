// mae.cpp: counter-based random numbers (Philox-4x32-10, Salmon et al. 2011, "Parallel random
// numbers: as easy as 1, 2, 3"). A value depends only on its keys and its position in the stream,
// never on thread count, scheduling or what other streams drew, so init, masking and augmentation
// are reproducible: Rng(seed, step, sample) is the same stream on every run and every machine.
//
// Stream layout. The keys (seed, a, b) are hashed once by Philox itself:
//   h = philox(counter = (a.lo, a.hi, b.lo, b.hi), key = (seed.lo, seed.hi))        (128 bits)
// and the stream's i-th block (two u64 values) is
//   philox(counter = (i.lo, i.hi, h2, h3), key = (h0, h1)).
// For one seed, philox is a bijection of the counter, so distinct (a, b) give distinct h and
// streams that never overlap. next_u64 returns the low half of a block, then the high half.
//
// Conversions: uniform() = top 53 bits * 2^-53 in [0, 1); uniform_float() = top 24 bits * 2^-24;
// normal() = Box-Muller, sqrt(-2 ln(1 - u1)) * cos(2 pi u2), two u64 per value, no cached spare;
// below(n) = rejection sampling (no modulo bias); shuffle = Fisher-Yates from the back with below().
#pragma once
#include <cmath>
#include <cstdint>
#include <iterator>
#include <utility>

#include "mae/config.hpp"

namespace mae {

// One Philox-4x32-10 block: out = philox(ctr, key). Known answer (Random123 kat_vectors):
// ctr = 0, key = 0 -> (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8).
MAE_HOST_DEVICE inline void philox4x32_10(const std::uint32_t ctr[4], const std::uint32_t key[2],
                                          std::uint32_t out[4]) {
  std::uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  std::uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {            // Weyl key schedule: golden ratio and sqrt(3) - 1
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const std::uint64_t p0 = std::uint64_t(0xD2511F53u) * c0;
    const std::uint64_t p1 = std::uint64_t(0xCD9E8D57u) * c2;
    const std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
    const std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

// A stream of random numbers determined by (seed, a, b), e.g. (seed, step, sample). Small and
// copyable (40 bytes); a copy continues the same stream independently.
class Rng {
 public:
  MAE_HOST_DEVICE explicit Rng(std::uint64_t seed, std::uint64_t a = 0, std::uint64_t b = 0) {
    const std::uint32_t ctr[4] = {lo(a), hi(a), lo(b), hi(b)};
    const std::uint32_t key[2] = {lo(seed), hi(seed)};
    std::uint32_t h[4];
    philox4x32_10(ctr, key, h);
    key_[0] = h[0]; key_[1] = h[1];
    ctr_hi_[0] = h[2]; ctr_hi_[1] = h[3];
  }

  MAE_HOST_DEVICE std::uint64_t next_u64() {
    if (pos_ & 1u) { ++pos_; return spare_; }
    const std::uint64_t block = pos_ >> 1;
    const std::uint32_t ctr[4] = {lo(block), hi(block), ctr_hi_[0], ctr_hi_[1]};
    std::uint32_t r[4];
    philox4x32_10(ctr, key_, r);
    spare_ = (std::uint64_t(r[3]) << 32) | r[2];
    ++pos_;
    return (std::uint64_t(r[1]) << 32) | r[0];
  }

  MAE_HOST_DEVICE double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  MAE_HOST_DEVICE float uniform_float() { return float(next_u64() >> 40) * 0x1.0p-24f; }

  MAE_HOST_DEVICE double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }

  // Uniform integer in [0, n), n > 0. Rejects the lowest (2^64 mod n) values so every residue is
  // equally likely; expected draws < 2.
  std::uint64_t below(std::uint64_t n) {
    MAE_CHECK(n > 0, "Rng::below: n must be positive, got 0");
    const std::uint64_t threshold = (0 - n) % n;  // = 2^64 mod n
    for (;;) {
      const std::uint64_t x = next_u64();
      if (x >= threshold) return x % n;
    }
  }

  // Number of u64 values drawn so far (the stream position).
  MAE_HOST_DEVICE std::uint64_t position() const { return pos_; }

 private:
  MAE_HOST_DEVICE static std::uint32_t lo(std::uint64_t v) { return std::uint32_t(v); }
  MAE_HOST_DEVICE static std::uint32_t hi(std::uint64_t v) { return std::uint32_t(v >> 32); }

  std::uint32_t key_[2];
  std::uint32_t ctr_hi_[2];
  std::uint64_t pos_ = 0;
  std::uint64_t spare_ = 0;
};

// Fisher-Yates: for i = n-1 .. 1, swap element i with a uniform j in [0, i].
template <class It>
void shuffle(It first, It last, Rng& rng) {
  const auto n = std::distance(first, last);
  for (auto i = n - 1; i > 0; --i) {
    const auto j = static_cast<decltype(i)>(rng.below(static_cast<std::uint64_t>(i) + 1));
    using std::swap;
    swap(first[i], first[j]);
  }
}

}  // namespace mae
