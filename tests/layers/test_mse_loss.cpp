// MAE reconstruction loss (models_mae.forward_loss): (u, v, c) target, optional per-patch
// normalization (unbiased variance, eps inside the sqrt), mean over removed patches only.
// The forward is the scalar loss itself (f = loss); backward's dpred vs central differences on pred,
// in double on CpuEigen. Closed forms are computed here in long double from the images.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/mse_loss.hpp"
#include "mae/layers/random_masking.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using mae::Span;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct LossCase {
  // img 6, patch 2, 2 channels: grid 3, L 9, P 8; batch 2; mask ratio 0.5 keeps 4, removes 5 per sample
  Index img = 6, p = 2, chans = 2, n = 2, grid = 3, L = 9, P = 8;
  Vec imgs, pred, target, mask, err, stats, dpred;
  mae::Masking m;
  mae::CpuEigen be;
  mae::MseLoss<double> loss;

  explicit LossCase(bool norm_pix, std::uint64_t seed = 600) {
    imgs = t::random_normal(n * chans * img * img, seed, 1.5, 0.3);
    pred = t::random_normal(n * (1 + L) * P, seed + 1);
    const Vec noise = t::random_uniform(n * L, seed + 2);
    m = mae::random_masking(noise.data(), n, L, 0.5);
    mask.resize(n * L);
    for (Index i = 0; i < n * L; ++i) mask[i] = m.ids_restore[i] >= m.keep ? 1.0 : 0.0;
    loss = {img, p, chans, norm_pix};
    target.assign(n * L * P, kNaN);
    err.assign(n * L, kNaN);
    stats.assign(2, kNaN);
    dpred.assign(pred.size(), kNaN);  // backward writes (=) every element, cls rows included
    make_target();
  }
  void make_target() {
    t::prefill_nan(target);
    loss.target(be, imgs.data(), n, MatView<double>(target.data(), n * L, P));
  }
  double objective() {
    t::prefill_nan(err);
    t::prefill_nan(stats);
    loss.forward(be, MatView<const double>(pred.data(), n * (1 + L), P), MatView<const double>(target.data(), n * L, P),
                 mask.data(), n, Span<double>{err.data(), n * L}, Span<double>{stats.data(), 2});
    return stats[0];
  }
  void backward(double scale) {
    t::prefill_nan(dpred);
    loss.backward(be, MatView<const double>(pred.data(), n * (1 + L), P), MatView<const double>(target.data(), n * L, P),
                  mask.data(), n, Span<const double>{stats.data(), 2}, scale, MatView<double>(dpred.data(), n * (1 + L), P));
  }
  // patch l of sample s in (u, v, c) order, raw pixels, long double
  std::vector<long double> raw_patch(Index s, Index l) const {
    std::vector<long double> v;
    const Index gi = l / grid, gj = l % grid;
    for (Index u = 0; u < p; ++u)
      for (Index w = 0; w < p; ++w)
        for (Index c = 0; c < chans; ++c) v.push_back(imgs[((s * chans + c) * img + gi * p + u) * img + gj * p + w]);
    return v;
  }
};

std::vector<long double> normalize(std::vector<long double> v, long double var_divisor_offset, bool eps_inside) {
  const long double k = v.size();
  long double mean = 0, ss = 0;
  for (long double x : v) mean += x;
  mean /= k;
  for (long double x : v) ss += (x - mean) * (x - mean);
  const long double var = ss / (k - var_divisor_offset);
  const long double denom = eps_inside ? std::sqrt(var + 1e-6L) : std::sqrt(var) + 1e-6L;
  for (long double& x : v) x = (x - mean) / denom;
  return v;
}

}  // namespace

TEST_CASE("norm_pix target uses unbiased variance and eps inside the sqrt", "[mse_loss]") {
  LossCase lc(true);
  // patch 4 of sample 0: variance ~1e-6, the size of eps; patch 0 of sample 1: constant (variance 0)
  for (Index c = 0; c < lc.chans; ++c)
    for (Index u = 0; u < 2; ++u)
      for (Index v = 0; v < 2; ++v) {
        lc.imgs[((0 * 2 + c) * 6 + 2 + u) * 6 + 2 + v] = 0.7 + 1e-3 * double((c * 4 + u * 2 + v) % 3) - 1e-3;
        lc.imgs[((1 * 2 + c) * 6 + u) * 6 + v] = 2.5;
      }
  lc.make_target();
  double worst = 0;
  for (Index s = 0; s < lc.n; ++s)
    for (Index l = 0; l < lc.L; ++l) {
      const auto ref = normalize(lc.raw_patch(s, l), 1, true);
      for (Index k = 0; k < lc.P; ++k)
        worst = std::max(worst, std::abs(lc.target[(s * lc.L + l) * lc.P + k] - double(ref[k])) /
                                    double(std::max(1.0L, std::abs(ref[k]))));
    }
  // 1e-11, not 1e-13: on the small-variance patch x - mean cancels three digits and the result is
  // divided by sqrt(var + eps) ~ 1.3e-3, so double rounding of the mean shows up at ~1e-13 there
  CHECK(worst <= 1e-11);
  // the constant patch becomes exactly zero (eps keeps it finite)
  for (Index k = 0; k < lc.P; ++k) CHECK(lc.target[(1 * lc.L + 0) * lc.P + k] == 0.0);
  // and the wrong conventions would give clearly different numbers on the small-variance patch
  const Index row = 0 * lc.L + 4;
  const auto biased = normalize(lc.raw_patch(0, 4), 0, true), outside = normalize(lc.raw_patch(0, 4), 1, false);
  double d_biased = 0, d_outside = 0;
  for (Index k = 0; k < lc.P; ++k) {
    d_biased = std::max(d_biased, std::abs(lc.target[row * lc.P + k] - double(biased[k])));
    d_outside = std::max(d_outside, std::abs(lc.target[row * lc.P + k] - double(outside[k])));
  }
  CHECK(d_biased > 1e-2);
  CHECK(d_outside > 1e-2);
}

TEST_CASE("without norm_pix the target is the raw (u,v,c) patch", "[mse_loss]") {
  LossCase lc(false);
  for (Index s = 0; s < lc.n; ++s)
    for (Index l = 0; l < lc.L; ++l) {
      const auto ref = lc.raw_patch(s, l);
      for (Index k = 0; k < lc.P; ++k) CHECK(lc.target[(s * lc.L + l) * lc.P + k] == double(ref[k]));
    }
}

TEST_CASE("MSE loss averages only over removed patches", "[mse_loss]") {
  for (bool norm_pix : {false, true}) {
    INFO("norm_pix " << norm_pix);
    LossCase lc(norm_pix);
    const double l0 = lc.objective();
    // closed form: mean over removed (n, l) of the per-patch mean squared error; pred skips the cls rows
    long double num = 0;
    Index removed = 0;
    for (Index s = 0; s < lc.n; ++s)
      for (Index l = 0; l < lc.L; ++l) {
        if (lc.m.ids_restore[s * lc.L + l] < lc.m.keep) continue;
        ++removed;
        const auto tgt = norm_pix ? normalize(lc.raw_patch(s, l), 1, true) : lc.raw_patch(s, l);
        long double e = 0;
        for (Index k = 0; k < lc.P; ++k) {
          const long double d = lc.pred[(s * (1 + lc.L) + 1 + l) * lc.P + k] - tgt[k];
          e += d * d;
        }
        num += e / lc.P;
      }
    CHECK(removed == lc.n * (lc.L - lc.m.keep));
    CHECK(l0 == Approx(double(num / removed)).epsilon(1e-13));
    CHECK(lc.stats[1] == double(removed));
    // per-patch errors are cached for every patch
    CHECK(t::all_finite(lc.err));
    // changing the prediction of a kept patch or of a cls row leaves the loss bit for bit unchanged
    Index kept_l = 0;
    while (lc.m.ids_restore[1 * lc.L + kept_l] >= lc.m.keep) ++kept_l;
    for (Index k = 0; k < lc.P; ++k) {
      lc.pred[(1 * (1 + lc.L) + 1 + kept_l) * lc.P + k] += 10.0;
      lc.pred[(0 * (1 + lc.L)) * lc.P + k] -= 10.0;
    }
    CHECK(lc.objective() == l0);
  }
}

TEST_CASE("MSE loss backward writes dpred = scale·dloss/dpred, zero on kept patches and cls rows, matching central "
          "differences",
          "[mse_loss][grad]") {
  for (bool norm_pix : {false, true}) {
    INFO("norm_pix " << norm_pix);
    LossCase lc(norm_pix, 610);
    lc.objective();
    lc.backward(1.0);
    REQUIRE(t::all_finite(lc.dpred));
    const Vec d1 = lc.dpred;
    auto f = [&](const Vec&) { return lc.objective(); };
    t::require_fd("pred", t::fd_check(f, lc.pred, d1));  // all 160 elements, cls rows included
    for (Index s = 0; s < lc.n; ++s) {
      for (Index k = 0; k < lc.P; ++k) CHECK(d1[(s * (1 + lc.L)) * lc.P + k] == 0.0);
      for (Index l = 0; l < lc.L; ++l)
        if (lc.m.ids_restore[s * lc.L + l] < lc.m.keep)
          for (Index k = 0; k < lc.P; ++k) CHECK(d1[(s * (1 + lc.L) + 1 + l) * lc.P + k] == 0.0);
    }
    // the scale multiplies the gradient (loss scaling); backward writes, it does not accumulate
    lc.objective();
    lc.backward(0.25);
    double worst = 0;
    for (std::size_t i = 0; i < d1.size(); ++i) worst = std::max(worst, std::abs(lc.dpred[i] - 0.25 * d1[i]));
    CHECK(worst <= 1e-16);
  }
}

TEMPLATE_TEST_CASE("MseLoss forward_rows / backward_rows on the removed patches' rows only: the same loss and dpred, "
                   "bit for bit",
                   "[mse_loss]", float, double) {
  using T = TestType;
  for (const bool norm_pix : {false, true}) {
    INFO("norm_pix " << norm_pix);
    LossCase lc(norm_pix, 610);
    const Index n = lc.n, L = lc.L, P = lc.P;
    std::vector<T> imgs(lc.imgs.begin(), lc.imgs.end()), pred(lc.pred.begin(), lc.pred.end());
    std::vector<T> mask(lc.mask.begin(), lc.mask.end()), target(n * L * P), err(n * L), stats(2), dpred(pred.size());
    mae::MseLoss<T> loss{lc.img, lc.p, lc.chans, norm_pix};
    loss.target(lc.be, imgs.data(), n, MatView<T>(target.data(), n * L, P));
    loss.forward(lc.be, MatView<const T>(pred.data(), n * (1 + L), P), MatView<const T>(target.data(), n * L, P),
                 mask.data(), n, Span<T>{err.data(), n * L}, Span<T>{stats.data(), 2});
    loss.backward(lc.be, MatView<const T>(pred.data(), n * (1 + L), P), MatView<const T>(target.data(), n * L, P),
                  mask.data(), n, Span<const T>{stats.data(), 2}, T(0.5), MatView<T>(dpred.data(), n * (1 + L), P));

    std::vector<std::int64_t> rows;  // decoder rows of the removed patches, ascending
    for (Index i = 0; i < n * L; ++i)
      if (mask[i] != T(0)) rows.push_back(i + i / L + 1);
    const Index m = Index(rows.size());
    REQUIRE(m == n * 5);
    std::vector<T> pred_rows(m * P), err_rows(m), stats_rows(2), dpred_rows(m * P);
    for (Index j = 0; j < m; ++j)
      std::copy(pred.begin() + rows[j] * P, pred.begin() + (rows[j] + 1) * P, pred_rows.begin() + j * P);
    loss.forward_rows(lc.be, MatView<const T>(pred_rows.data(), m, P), MatView<const T>(target.data(), n * L, P),
                      rows.data(), Span<T>{err_rows.data(), m}, Span<T>{stats_rows.data(), 2});
    CHECK(stats_rows == stats);
    loss.backward_rows(lc.be, MatView<const T>(pred_rows.data(), m, P), MatView<const T>(target.data(), n * L, P),
                       rows.data(), Span<const T>{stats_rows.data(), 2}, T(0.5), MatView<T>(dpred_rows.data(), m, P));
    bool same = true;
    for (Index j = 0; j < m; ++j)
      same = same && std::equal(dpred_rows.begin() + j * P, dpred_rows.begin() + (j + 1) * P, dpred.begin() + rows[j] * P);
    CHECK(same);
    T left_out = 0;  // the rows left out (cls, kept patches) are those backward gives zero gradient
    for (Index r = 0, j = 0; r < n * (1 + L); ++r)
      if (j < m && rows[j] == r) ++j;
      else for (Index k = 0; k < P; ++k) left_out += std::abs(dpred[r * P + k]);
    CHECK(left_out == T(0));
  }
}
