// patchify / unpatchify (host utilities) against the official layout and the model's own target.
#include <catch2/catch.hpp>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/mse_loss.hpp"
#include "mae/layers/patchify.hpp"

TEST_CASE("patchify lays each patch out in (u, v, c) order, row-major over the grid", "[patchify]") {
  const mae::Index n = 2, C = 3, H = 6, p = 3, g = H / p;
  std::vector<double> imgs(n * C * H * H);
  for (mae::Index s = 0; s < n; ++s)
    for (mae::Index c = 0; c < C; ++c)
      for (mae::Index y = 0; y < H; ++y)
        for (mae::Index x = 0; x < H; ++x) imgs[((s * C + c) * H + y) * H + x] = double(s * 1000 + c * 100 + y * 10 + x);
  const auto t = mae::patchify(imgs, n, C, H, p);
  for (mae::Index s = 0; s < n; ++s)
    for (mae::Index i = 0; i < g; ++i)
      for (mae::Index j = 0; j < g; ++j)
        for (mae::Index u = 0; u < p; ++u)
          for (mae::Index v = 0; v < p; ++v)
            for (mae::Index c = 0; c < C; ++c)
              CHECK(t[((s * g * g) + i * g + j) * p * p * C + (u * p + v) * C + c] ==
                    double(s * 1000 + c * 100 + (i * p + u) * 10 + (j * p + v)));
}

TEST_CASE("unpatchify inverts patchify exactly, and patchify equals the model's target without norm_pix", "[patchify]") {
  const mae::Index n = 3, C = 2, H = 8, p = 4;
  std::vector<float> imgs(n * C * H * H);
  for (std::size_t i = 0; i < imgs.size(); ++i) imgs[i] = float(std::sin(0.7 * double(i)));
  const auto t = mae::patchify(imgs, n, C, H, p);
  CHECK(mae::unpatchify(t, n, C, H, p) == imgs);
  mae::CpuEigen be;
  std::vector<float> target(t.size(), -1.f);
  mae::MseLoss<float>{H, p, C, false}.target(be, imgs.data(), n, mae::MatView<float>(target.data(), n * 4, p * p * C));
  CHECK(target == t);
  CHECK_THROWS_WITH(mae::patchify(imgs, n, C, H, 3), Catch::Contains("does not divide"));
  CHECK_THROWS_AS(mae::unpatchify(std::vector<float>(5), n, C, H, p), mae::Error);
}
