// Counter-based Rng: known answers, determinism by key, independence from call order, moments.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "mae/tensor/rng.hpp"

using mae::Rng;

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors", "[rng]") {
  struct Kat { std::uint32_t ctr[4], key[2], out[4]; };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    std::uint32_t out[4];
    mae::philox4x32_10(k.ctr, k.key, out);
    for (int i = 0; i < 4; ++i) CHECK(out[i] == k.out[i]);
  }
}

TEST_CASE("the same (seed, a, b) gives the same stream; any other key a different one", "[rng]") {
  Rng x(42, 7, 3), y(42, 7, 3);
  for (int i = 0; i < 100; ++i) REQUIRE(x.next_u64() == y.next_u64());

  const std::uint64_t first = Rng(42, 7, 3).next_u64();
  CHECK(Rng(43, 7, 3).next_u64() != first);
  CHECK(Rng(42, 8, 3).next_u64() != first);
  CHECK(Rng(42, 7, 4).next_u64() != first);
  CHECK(Rng(42, 3, 7).next_u64() != first);  // (a, b) is ordered

  std::set<std::uint64_t> seen;  // 1000 streams x 4 values: no repeats
  for (std::uint64_t s = 0; s < 1000; ++s) {
    Rng r(1, 0, s);
    for (int i = 0; i < 4; ++i) seen.insert(r.next_u64());
  }
  CHECK(seen.size() == 4000);
}

TEST_CASE("values depend only on the key, not on the order streams are drawn in", "[rng]") {
  const int n = 64;
  std::vector<double> forward(n), backward(n);
  for (int s = 0; s < n; ++s) forward[s] = Rng(5, 1, std::uint64_t(s)).uniform();
  for (int s = n - 1; s >= 0; --s) backward[s] = Rng(5, 1, std::uint64_t(s)).uniform();
  CHECK(forward == backward);

  // Interleaving draws of two streams does not change either.
  Rng a(9, 0, 0), b(9, 0, 1), a2(9, 0, 0), b2(9, 0, 1);
  std::vector<std::uint64_t> sa, sb, sa2, sb2;
  for (int i = 0; i < 10; ++i) { sa.push_back(a.next_u64()); sb.push_back(b.next_u64()); }
  for (int i = 0; i < 10; ++i) sa2.push_back(a2.next_u64());
  for (int i = 0; i < 10; ++i) sb2.push_back(b2.next_u64());
  CHECK(sa == sa2);
  CHECK(sb == sb2);
}

TEST_CASE("a copied Rng continues the same stream", "[rng]") {
  Rng r(3, 1, 4);
  r.next_u64();  // odd position: the copy must carry the buffered half-block
  Rng c = r;
  for (int i = 0; i < 9; ++i) CHECK(r.next_u64() == c.next_u64());
  CHECK(r.position() == 10);
}

TEST_CASE("uniform, uniform_float and normal have the right range and moments", "[rng]") {
  const int n = 400000;
  Rng r(2024, 1, 2);
  double s = 0, s2 = 0, sf = 0, sn = 0, sn2 = 0, sn4 = 0;
  double lo = 1, hi = 0;
  float flo = 1, fhi = 0;
  bool finite = true;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform();
    const float f = r.uniform_float();
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    flo = std::min(flo, f);
    fhi = std::max(fhi, f);
    s += u; s2 += u * u; sf += f;
    const double z = r.normal();
    finite = finite && std::isfinite(z);
    sn += z; sn2 += z * z; sn4 += z * z * z * z;
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(flo >= 0.0f);
  CHECK(fhi < 1.0f);
  CHECK(finite);
  const double mean = s / n, var = s2 / n - mean * mean;
  CHECK(mean == Approx(0.5).margin(0.003));        // sd of the mean: 0.00046
  CHECK(var == Approx(1.0 / 12).margin(0.002));
  CHECK(sf / n == Approx(0.5).margin(0.003));
  CHECK(lo < 1e-4);
  CHECK(hi > 1 - 1e-4);
  CHECK(sn / n == Approx(0.0).margin(0.01));       // sd of the mean: 0.0016
  CHECK(sn2 / n == Approx(1.0).margin(0.01));
  CHECK(sn4 / n == Approx(3.0).margin(0.06));      // kurtosis of a Gaussian
}

TEST_CASE("below(n) stays in [0, n) and hits every value about equally", "[rng]") {
  Rng r(11);
  for (int i = 0; i < 100; ++i) CHECK(r.below(1) == 0);
  std::vector<int> counts(7, 0);
  const int n = 70000;
  for (int i = 0; i < n; ++i) ++counts.at(r.below(7));  // at(): out of range would throw
  for (int c : counts) CHECK(c == Approx(n / 7.0).margin(400));  // sd ~ 90
  const std::uint64_t big = (std::uint64_t(1) << 63) + 12345;    // rejection path matters here
  bool in_range = true;
  for (int i = 0; i < 1000; ++i) in_range = in_range && r.below(big) < big;
  CHECK(in_range);
  CHECK_THROWS_AS(r.below(0), mae::Error);
}

TEST_CASE("shuffle is a permutation determined by the key", "[rng]") {
  std::vector<int> base(100);
  std::iota(base.begin(), base.end(), 0);
  auto shuffled = [&](std::uint64_t seed, std::uint64_t epoch) {
    std::vector<int> v = base;
    Rng r(seed, epoch, 0);
    mae::shuffle(v.begin(), v.end(), r);
    return v;
  };
  const auto p = shuffled(1, 0);
  CHECK(p == shuffled(1, 0));
  CHECK(p != shuffled(1, 1));
  CHECK(p != base);
  auto sorted = p;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == base);

  // Position 0 of a 4-element shuffle is uniform over the 4 values.
  std::vector<int> first(4, 0);
  for (std::uint64_t s = 0; s < 8000; ++s) {
    std::vector<int> v = {0, 1, 2, 3};
    Rng r(s);
    mae::shuffle(v.begin(), v.end(), r);
    ++first[v[0]];
  }
  for (int c : first) CHECK(c == Approx(2000).margin(200));
  std::vector<int> empty;
  Rng r(0);
  mae::shuffle(empty.begin(), empty.end(), r);  // no-op, no crash
}
