// Patch embedding (timm PatchEmbed on the kept patches + MAE's token assembly) and the two patch
// layouts: the embedding reads a patch in (c, u, v) order, the loss target in (u, v, c) order.
// Layouts are checked index by index on an image whose pixel values encode their position;
// gradients (proj weight, proj bias, cls token) vs central differences in double on CpuEigen, f = <out, g>.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/mse_loss.hpp"
#include "mae/layers/patch_embed.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// pixel (n, c, y, x) holds n·1000 + c·100 + y·10 + x: every value says where it came from.
double pixel_code(Index n, Index c, Index y, Index x) { return double(n * 1000 + c * 100 + y * 10 + x); }

struct EmbedCase {
  // img 6, patch 2, 2 channels: grid 3, L 9, P 8; width 5; batch 2 keeping 4 patches each
  Index img = 6, p = 2, chans = 2, dim = 5, n = 2, keep = 4, grid = 3, L = 9, P = 8;
  Vec imgs, w, b, cls, pos, dw, db, dcls, patches, tok, out, g, dtok;
  std::vector<std::int64_t> ids;  // (n, L): a permutation per sample; the first `keep` are embedded
  mae::CpuEigen be;
  mae::PatchEmbed<double> pe;

  explicit EmbedCase(bool coded_pixels) {
    imgs.resize(n * chans * img * img);
    if (coded_pixels) {
      for (Index s = 0; s < n; ++s)
        for (Index c = 0; c < chans; ++c)
          for (Index y = 0; y < img; ++y)
            for (Index x = 0; x < img; ++x) imgs[((s * chans + c) * img + y) * img + x] = pixel_code(s, c, y, x);
    } else {
      imgs = t::random_normal(imgs.size(), 401);
    }
    ids = {7, 2, 4, 0, 1, 3, 5, 6, 8,   // sample 0 keeps 7, 2, 4, 0 in this order
           3, 8, 1, 5, 0, 2, 4, 6, 7};  // sample 1 keeps 3, 8, 1, 5
    w = t::random_normal(dim * P, 402, 0.5);
    b = t::random_normal(dim, 403, 0.3);
    cls = t::random_normal(dim, 404, 0.3);
    pos = t::random_normal((1 + L) * dim, 405, 0.5);  // row 0 non-zero here: it must be added to cls
    dw.assign(w.size(), t::kSentinel);
    db.assign(b.size(), t::kSentinel);
    dcls.assign(cls.size(), t::kSentinel);
    patches.assign(n * keep * P, kNaN);
    tok.assign(n * keep * dim, kNaN);
    out.assign(n * (1 + keep) * dim, kNaN);
    dtok.assign(n * keep * dim, kNaN);
    g = t::random_normal(out.size(), 406);
    pe.img = img;
    pe.patch = p;
    pe.chans = chans;
    pe.dim = dim;
    pe.proj = {P, dim, {w.data(), dw.data(), Index(w.size())}, {b.data(), db.data(), dim}};
    pe.cls = {cls.data(), dcls.data(), dim};
    pe.pos = pos.data();
  }
  double objective() {
    t::prefill_nan(patches);
    t::prefill_nan(tok);
    t::prefill_nan(out);
    pe.forward(be, imgs.data(), ids.data(), L, n, keep, MatView<double>(patches.data(), n * keep, P),
               MatView<double>(tok.data(), n * keep, dim), MatView<double>(out.data(), n * (1 + keep), dim));
    return t::dot(out, g);
  }
  void backward() {
    t::prefill_nan(dtok);  // scratch
    pe.backward(be, n, keep, MatView<const double>(patches.data(), n * keep, P),
                MatView<const double>(g.data(), n * (1 + keep), dim), MatView<double>(dtok.data(), n * keep, dim));
  }
};

}  // namespace

TEST_CASE("patch embedding reads patches in (c,u,v) order and the target in (u,v,c)", "[patch_embed][layout]") {
  EmbedCase ec(true);
  ec.objective();
  // embedding input: row n*K + j is patch l = ids[n, j] flattened channel-slowest, column-fastest
  Vec expect_cuv;
  for (Index s = 0; s < ec.n; ++s)
    for (Index j = 0; j < ec.keep; ++j) {
      const Index l = ec.ids[s * ec.L + j], gi = l / ec.grid, gj = l % ec.grid;
      for (Index c = 0; c < ec.chans; ++c)
        for (Index u = 0; u < ec.p; ++u)
          for (Index v = 0; v < ec.p; ++v) expect_cuv.push_back(pixel_code(s, c, gi * ec.p + u, gj * ec.p + v));
    }
  REQUIRE(expect_cuv.size() == ec.patches.size());
  for (std::size_t i = 0; i < expect_cuv.size(); ++i) {
    INFO("embedding input element " << i);
    CHECK(ec.patches[i] == expect_cuv[i]);
  }
  // a spot check written out: sample 1's second kept patch is l = 8 (grid row 2, column 2);
  // its element (c=1, u=0, v=1) is pixel (1, 1, 4, 5) = 1145
  CHECK(ec.patches[(1 * 4 + 1) * 8 + (1 * 4 + 0 * 2 + 1)] == 1145.0);

  // loss target: every patch in natural order, row-in-patch slowest, channel fastest
  mae::MseLoss<double> loss{ec.img, ec.p, ec.chans, false};
  Vec target(ec.n * ec.L * ec.P, kNaN);
  loss.target(ec.be, ec.imgs.data(), ec.n, MatView<double>(target.data(), ec.n * ec.L, ec.P));
  Vec expect_uvc;
  for (Index s = 0; s < ec.n; ++s)
    for (Index l = 0; l < ec.L; ++l) {
      const Index gi = l / ec.grid, gj = l % ec.grid;
      for (Index u = 0; u < ec.p; ++u)
        for (Index v = 0; v < ec.p; ++v)
          for (Index c = 0; c < ec.chans; ++c) expect_uvc.push_back(pixel_code(s, c, gi * ec.p + u, gj * ec.p + v));
    }
  REQUIRE(expect_uvc.size() == target.size());
  for (std::size_t i = 0; i < expect_uvc.size(); ++i) {
    INFO("target element " << i);
    CHECK(target[i] == expect_uvc[i]);
  }
  // patch l = 5 (grid row 1, column 2) of sample 0, element (u=1, v=0, c=1): pixel (0, 1, 3, 4) = 134
  CHECK(target[5 * 8 + (1 * 2 + 0) * 2 + 1] == 134.0);
}

TEST_CASE("patch embedding assembles x(n,0) = cls + pos[0] and x(n,1+j) = patch·Wᵀ + b + pos[1 + ids[n,j]]",
          "[patch_embed]") {
  EmbedCase ec(false);
  ec.objective();
  Vec xp;  // the kept patches, (c, u, v) order, built independently
  for (Index s = 0; s < ec.n; ++s)
    for (Index j = 0; j < ec.keep; ++j) {
      const Index l = ec.ids[s * ec.L + j], gi = l / ec.grid, gj = l % ec.grid;
      for (Index c = 0; c < ec.chans; ++c)
        for (Index u = 0; u < ec.p; ++u)
          for (Index v = 0; v < ec.p; ++v)
            xp.push_back(ec.imgs[((s * ec.chans + c) * ec.img + gi * ec.p + u) * ec.img + gj * ec.p + v]);
    }
  const Vec tok = t::naive::linear(xp, ec.n * ec.keep, ec.P, ec.dim, ec.w, ec.b);
  CHECK(t::max_abs_diff(ec.tok, tok) <= 1e-14);
  double worst = 0;
  for (Index s = 0; s < ec.n; ++s)
    for (Index j = 0; j <= ec.keep; ++j)
      for (Index d = 0; d < ec.dim; ++d) {
        const double expect = j == 0 ? ec.cls[d] + ec.pos[d]
                                     : tok[(s * ec.keep + j - 1) * ec.dim + d] +
                                           ec.pos[(1 + ec.ids[s * ec.L + j - 1]) * ec.dim + d];
        worst = std::max(worst, std::abs(ec.out[(s * (1 + ec.keep) + j) * ec.dim + d] - expect));
      }
  CHECK(worst <= 1e-14);
}

TEST_CASE("patch embedding backward adds the proj weight, proj bias and cls token gradients (central differences)",
          "[patch_embed][grad]") {
  EmbedCase ec(false);
  ec.objective();
  ec.backward();
  auto f = [&](const Vec&) { return ec.objective(); };
  t::require_fd("patch_embed.proj.weight", t::fd_check(f, ec.w, t::minus_sentinel(ec.dw)));
  t::require_fd("patch_embed.proj.bias", t::fd_check(f, ec.b, t::minus_sentinel(ec.db)));
  t::require_fd("cls_token", t::fd_check(f, ec.cls, t::minus_sentinel(ec.dcls)));
  // the cls gradient is the sum over samples of the cls rows of g
  for (Index d = 0; d < ec.dim; ++d)
    CHECK(ec.dcls[d] - t::kSentinel == Approx(ec.g[d] + ec.g[(1 + ec.keep) * ec.dim + d]).epsilon(1e-15));
}

TEST_CASE("patch embedding backward twice adds twice (the += rule)", "[patch_embed]") {
  EmbedCase ec(false);
  ec.objective();
  ec.backward();
  const Vec w1 = t::minus_sentinel(ec.dw), b1 = t::minus_sentinel(ec.db), c1 = t::minus_sentinel(ec.dcls);
  ec.backward();
  const Vec w2 = t::minus_sentinel(ec.dw), b2 = t::minus_sentinel(ec.db), c2 = t::minus_sentinel(ec.dcls);
  double worst = 0;
  for (std::size_t i = 0; i < w1.size(); ++i) worst = std::max(worst, std::abs(w2[i] - 2 * w1[i]));
  for (std::size_t i = 0; i < b1.size(); ++i) worst = std::max(worst, std::abs(b2[i] - 2 * b1[i]));
  for (std::size_t i = 0; i < c1.size(); ++i) worst = std::max(worst, std::abs(c2[i] - 2 * c1[i]));
  CHECK(worst <= 1e-13);
}
