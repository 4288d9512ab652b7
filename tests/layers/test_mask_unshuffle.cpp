// Decoder input (MAE forward_decoder): latent rows back in natural patch order, one shared mask token
// for every removed patch, plus the decoder position embedding. Forward vs a hand-built expectation;
// backward (latent and mask token gradients) vs central differences in double on CpuEigen, f = <z, g>.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/mask_unshuffle.hpp"
#include "mae/layers/random_masking.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct UnshuffleCase {
  Index n, L, keep, dim;
  Vec noise, y, mask_token, pos, z, g, dy, dmask;
  mae::Masking m;
  mae::CpuEigen be;
  mae::MaskUnshuffle<double> mu;

  UnshuffleCase(Index n_, Index L_, double ratio, Index dim_, std::uint64_t seed = 500) : n(n_), L(L_), dim(dim_) {
    noise = t::random_uniform(n * L, seed);
    m = mae::random_masking(noise.data(), n, L, ratio);
    keep = m.keep;
    y = t::random_normal(n * (1 + keep) * dim, seed + 1);
    mask_token = t::random_normal(dim, seed + 2);
    pos = t::random_normal((1 + L) * dim, seed + 3, 0.5);  // row 0 non-zero: it must be added to the cls row
    g = t::random_normal(n * (1 + L) * dim, seed + 4);
    z.assign(g.size(), kNaN);
    dy.assign(y.size(), t::kSentinel);
    dmask.assign(dim, t::kSentinel);
    mu.dim = dim;
    mu.mask_token = {mask_token.data(), dmask.data(), dim};
    mu.pos = pos.data();
  }
  double objective() {
    t::prefill_nan(z);
    mu.forward(be, MatView<const double>(y.data(), n * (1 + keep), dim), m.ids_restore.data(), n, L, keep,
               MatView<double>(z.data(), n * (1 + L), dim));
    return t::dot(z, g);
  }
  void backward() {
    mu.backward(be, MatView<const double>(g.data(), n * (1 + L), dim), m.ids_shuffle.data(), m.ids_restore.data(), n, L,
                keep, MatView<double>(dy.data(), n * (1 + keep), dim));
  }
  // removed[s][l]: patch l is among the L - keep largest noise values of sample s (from the noise alone)
  std::vector<std::vector<bool>> removed() const {
    std::vector<std::vector<bool>> r(n, std::vector<bool>(L, false));
    for (Index s = 0; s < n; ++s) {
      std::vector<double> row(noise.begin() + s * L, noise.begin() + (s + 1) * L), sorted = row;
      std::sort(sorted.begin(), sorted.end());
      for (Index l = 0; l < L; ++l) r[s][l] = keep == 0 || row[l] > sorted[keep - 1];
    }
    return r;
  }
};

}  // namespace

TEST_CASE("unshuffle puts latent row 1+j at patch ids_shuffle[j], the mask token at removed patches, and adds dpos",
          "[mask_unshuffle]") {
  UnshuffleCase uc(2, 7, 0.5, 5);
  REQUIRE(uc.keep == 3);
  uc.objective();
  const auto removed = uc.removed();
  // hand-built: start every patch as the mask token, then scatter the kept latent rows
  for (Index s = 0; s < uc.n; ++s) {
    std::vector<Vec> rows(uc.L, uc.mask_token);
    for (Index j = 0; j < uc.keep; ++j) {
      const Index l = uc.m.ids_shuffle[s * uc.L + j];
      REQUIRE_FALSE(removed[s][l]);
      rows[l] = Vec(uc.y.begin() + (s * (1 + uc.keep) + 1 + j) * uc.dim, uc.y.begin() + (s * (1 + uc.keep) + 2 + j) * uc.dim);
    }
    for (Index d = 0; d < uc.dim; ++d)
      CHECK(uc.z[(s * (1 + uc.L)) * uc.dim + d] == uc.y[s * (1 + uc.keep) * uc.dim + d] + uc.pos[d]);
    for (Index l = 0; l < uc.L; ++l)
      for (Index d = 0; d < uc.dim; ++d) {
        INFO("sample " << s << " patch " << l << " column " << d);
        CHECK(uc.z[(s * (1 + uc.L) + 1 + l) * uc.dim + d] == rows[l][d] + uc.pos[(1 + l) * uc.dim + d]);
      }
  }
}

TEST_CASE("mask token gradient sums over every removed patch of every sample", "[mask_unshuffle][grad]") {
  const Index width = GENERATE(Index(5), Index(71));  // 71: two full chunks of 32 columns and a partial one
  CAPTURE(width);
  UnshuffleCase uc(2, 7, 0.5, width);
  uc.objective();
  uc.backward();
  const auto removed = uc.removed();
  Index count = 0;
  for (Index d = 0; d < uc.dim; ++d) {
    long double s = 0;
    for (Index smp = 0; smp < uc.n; ++smp)
      for (Index l = 0; l < uc.L; ++l)
        if (removed[smp][l]) {
          s += uc.g[(smp * (1 + uc.L) + 1 + l) * uc.dim + d];
          count += d == 0;
        }
    CHECK(uc.dmask[d] - t::kSentinel == Approx(double(s)).epsilon(1e-14));
  }
  CHECK(count == uc.n * (uc.L - uc.keep));
}

TEST_CASE("unshuffle backward adds the latent and mask token gradients that match central differences",
          "[mask_unshuffle][grad]") {
  SECTION("batch 2, 7 patches, ratio 0.5 (keep 3), width 5") {
    UnshuffleCase uc(2, 7, 0.5, 5);
    uc.objective();
    uc.backward();
    auto f = [&](const Vec&) { return uc.objective(); };
    t::require_fd("latent", t::fd_check(f, uc.y, t::minus_sentinel(uc.dy)));
    t::require_fd("mask_token", t::fd_check(f, uc.mask_token, t::minus_sentinel(uc.dmask)));
  }
  SECTION("batch 2, 6 patches, ratio 0.5 (keep 3), width 71 (columns in chunks of 32)") {
    UnshuffleCase uc(2, 6, 0.5, 71, 520);
    uc.objective();
    uc.backward();
    auto f = [&](const Vec&) { return uc.objective(); };
    t::require_fd("latent", t::fd_check(f, uc.y, t::minus_sentinel(uc.dy)));
    t::require_fd("mask_token", t::fd_check(f, uc.mask_token, t::minus_sentinel(uc.dmask)));
  }
  SECTION("batch 3, 9 patches, ratio 0.75 (keep 2), width 4") {
    UnshuffleCase uc(3, 9, 0.75, 4, 510);
    REQUIRE(uc.keep == 2);
    uc.objective();
    uc.backward();
    auto f = [&](const Vec&) { return uc.objective(); };
    t::require_fd("latent", t::fd_check(f, uc.y, t::minus_sentinel(uc.dy)));
    t::require_fd("mask_token", t::fd_check(f, uc.mask_token, t::minus_sentinel(uc.dmask)));
  }
}

TEST_CASE("unshuffle backward twice adds twice (the += rule)", "[mask_unshuffle]") {
  UnshuffleCase uc(2, 7, 0.5, 5);
  uc.objective();
  uc.backward();
  const Vec y1 = t::minus_sentinel(uc.dy), m1 = t::minus_sentinel(uc.dmask);
  uc.backward();
  const Vec y2 = t::minus_sentinel(uc.dy), m2 = t::minus_sentinel(uc.dmask);
  double worst = 0;
  for (std::size_t i = 0; i < y1.size(); ++i) worst = std::max(worst, std::abs(y2[i] - 2 * y1[i]));
  for (std::size_t i = 0; i < m1.size(); ++i) worst = std::max(worst, std::abs(m2[i] - 2 * m1[i]));
  CHECK(worst <= 1e-13);
}
