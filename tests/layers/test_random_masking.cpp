// Per-sample random masking (models_mae.random_masking) driven by given noise: K = int(L·(1 − ratio))
// in double, ids_shuffle = argsort(noise) ascending, ids_restore its inverse, kept = ids_shuffle[0..K-1].
// Masking has no gradient; these tests check the permutation contract directly.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "mae/layers/random_masking.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
namespace t = mae::test;

}  // namespace

TEST_CASE("len_keep truncates in double: L=10 ratio 0.9 keeps 0, L=20 ratio 0.9 keeps 1", "[masking]") {
  CHECK(mae::len_keep(10, 0.9) == 0);  // 10 · 0.09999999999999998 = 0.9999999999999998
  CHECK(mae::len_keep(20, 0.9) == 1);
  CHECK(mae::len_keep(16, 0.75) == 4);   // the fixtures' values
  CHECK(mae::len_keep(49, 0.75) == 12);  // 12.25 truncated
  CHECK(mae::len_keep(196, 0.75) == 49);
  CHECK(mae::len_keep(7, 0.5) == 3);  // 3.5 truncated, not rounded
  CHECK(mae::len_keep(9, 0.0) == 9);
  // the same numbers come out of random_masking
  const std::vector<double> noise = t::random_uniform(20, 700);
  CHECK(mae::random_masking(noise.data(), 1, 10, 0.9).keep == 0);
  CHECK(mae::random_masking(noise.data(), 1, 20, 0.9).keep == 1);
}

TEST_CASE("random masking keeps the K smallest-noise patches in ascending-noise order and ids_restore inverts "
          "ids_shuffle",
          "[masking]") {
  SECTION("a hand-worked example") {
    const std::vector<double> noise = {0.5, 0.1, 0.9, 0.3, 0.7};
    const mae::Masking m = mae::random_masking(noise.data(), 1, 5, 0.6);  // K = int(5 · 0.4) = 2
    CHECK(m.keep == 2);
    CHECK(m.ids_shuffle == std::vector<std::int64_t>{1, 3, 0, 4, 2});
    CHECK(m.ids_restore == std::vector<std::int64_t>{2, 0, 4, 1, 3});
  }
  SECTION("3 samples of 11 patches, ratio 0.6 (K = 4), float and double noise") {
    const Index n = 3, L = 11;
    const std::vector<double> noise = t::random_uniform(n * L, 701);
    const std::vector<float> noise_f(noise.begin(), noise.end());
    const mae::Masking md = mae::random_masking(noise.data(), n, L, 0.6);
    const mae::Masking mf = mae::random_masking(noise_f.data(), n, L, 0.6);
    REQUIRE(md.keep == 4);
    CHECK(md.n == n);
    CHECK(md.l == L);
    for (const mae::Masking* m : {&md, &mf}) {
      REQUIRE(m->ids_shuffle.size() == std::size_t(n * L));
      REQUIRE(m->ids_restore.size() == std::size_t(n * L));
      for (Index s = 0; s < n; ++s) {
        const std::int64_t* shuf = m->ids_shuffle.data() + s * L;
        const std::int64_t* rest = m->ids_restore.data() + s * L;
        const double* row = noise.data() + s * L;
        std::vector<bool> seen(L, false);
        for (Index j = 0; j < L; ++j) {
          REQUIRE(shuf[j] >= 0);
          REQUIRE(shuf[j] < L);
          seen[shuf[j]] = true;
          if (j > 0) CHECK(row[shuf[j - 1]] < row[shuf[j]]);  // ascending noise
          CHECK(rest[shuf[j]] == j);                            // ids_restore ∘ ids_shuffle = id
          CHECK(shuf[rest[j]] == j);                            // ids_shuffle ∘ ids_restore = id
        }
        CHECK(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));  // a permutation
        // the kept patches are exactly the K smallest noise values; every row removes L - K
        std::vector<double> sorted(row, row + L);
        std::sort(sorted.begin(), sorted.end());
        Index removed = 0;
        for (Index l = 0; l < L; ++l) {
          const bool is_removed = rest[l] >= md.keep;
          removed += is_removed;
          CHECK(is_removed == (row[l] > sorted[md.keep - 1]));
        }
        CHECK(removed == L - md.keep);
      }
    }
  }
}

TEST_CASE("random masking: equal noise keeps patch order, non-finite noise is an error, vectors are reused",
          "[masking]") {
  const std::vector<double> ties = {0.2, 0.2, 0.1, 0.2};
  const mae::Masking m = mae::random_masking(ties.data(), 1, 4, 0.5);
  CHECK(m.ids_shuffle == std::vector<std::int64_t>{2, 0, 1, 3});

  std::vector<double> bad = t::random_uniform(8, 702);
  bad[6] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(mae::random_masking(bad.data(), 2, 4, 0.5), mae::Error);
  CHECK_THROWS_WITH(mae::random_masking(bad.data(), 2, 4, 0.5), Catch::Contains("sample 1") && Catch::Contains("patch 2"));

  const std::vector<double> a = t::random_uniform(12, 703), b = t::random_uniform(12, 704);
  mae::Masking reused;
  mae::random_masking_into(a.data(), 3, 4, 0.5, reused);
  const std::int64_t* shuf = reused.ids_shuffle.data();
  const std::int64_t* rest = reused.ids_restore.data();
  mae::random_masking_into(b.data(), 3, 4, 0.5, reused);
  CHECK(reused.ids_shuffle.data() == shuf);
  CHECK(reused.ids_restore.data() == rest);
  const mae::Masking fresh = mae::random_masking(b.data(), 3, 4, 0.5);
  CHECK(reused.ids_shuffle == fresh.ids_shuffle);
  CHECK(reused.ids_restore == fresh.ids_restore);
}
