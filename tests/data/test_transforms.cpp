// Transforms: RandomResizedCrop parameters and resampling, flip, normalize, resize.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mae/data/transforms.hpp"

using mae::Image;
using mae::Interpolation;
using mae::Rng;

namespace {

Image pattern(int c, int h, int w) {  // distinct values everywhere
  Image img(c, h, w);
  for (int k = 0; k < c; ++k)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) img.at(k, y, x) = float((k * 131 + y * 17 + x * 7) % 97) / 96.0f;
  return img;
}

Image constant(int c, int h, int w, float v) {
  Image img(c, h, w);
  img.pixels.assign(img.pixels.size(), v);
  return img;
}

}  // namespace

TEST_CASE("a crop of a constant image stays constant, for every size and both kernels", "[transforms]") {
  for (Interpolation interp : {Interpolation::bilinear, Interpolation::bicubic}) {
    for (int s : {5, 16, 33, 100}) {
      const Image img = constant(3, 37, 50, 0.375f);
      for (std::uint64_t k = 0; k < 20; ++k) {
        Rng rng(1, 0, k);
        const Image out = mae::random_resized_crop(img, s, rng, 0.2, 1.0, 3.0 / 4, 4.0 / 3, interp);
        REQUIRE(out.channels == 3);
        REQUIRE(out.height == s);
        REQUIRE(out.width == s);
        REQUIRE(out.pixels.size() == std::size_t(3 * s * s));
        float worst = 0;
        for (float v : out.pixels) worst = std::max(worst, std::abs(v - 0.375f));
        REQUIRE(worst < 1e-6f);
      }
    }
  }
}

TEST_CASE("the same Rng key gives the same crop; other keys give other crops", "[transforms]") {
  const Image img = pattern(3, 64, 48);
  Rng a(7, 3, 11), b(7, 3, 11);
  const Image x = mae::random_resized_crop(img, 24, a);
  const Image y = mae::random_resized_crop(img, 24, b);
  CHECK(x.pixels == y.pixels);
  int different = 0;
  for (std::uint64_t k = 0; k < 10; ++k) {
    Rng r(7, 3, 100 + k);
    different += mae::random_resized_crop(img, 24, r).pixels != x.pixels;
  }
  CHECK(different == 10);
}

TEST_CASE("crop parameters follow torchvision: inside the image, area and ratio in range", "[transforms]") {
  const int H = 120, W = 90;
  double area_sum = 0;
  const int n = 2000;
  for (int k = 0; k < n; ++k) {
    Rng rng(3, 1, std::uint64_t(k));
    const mae::CropBox b = mae::random_resized_crop_params(H, W, rng, 0.2, 1.0, 3.0 / 4, 4.0 / 3);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.height >= 1);
    REQUIRE(b.width >= 1);
    REQUIRE(b.top + b.height <= H);
    REQUIRE(b.left + b.width <= W);
    const double frac = double(b.height) * b.width / (H * W);
    REQUIRE(frac >= 0.2 * 0.95);  // rounding of w and h
    REQUIRE(frac <= 1.0);
    const double ratio = double(b.width) / b.height;
    REQUIRE(ratio >= 0.75 * 0.97);
    REQUIRE(ratio <= 4.0 / 3 * 1.03);
    area_sum += frac;
  }
  // Accepted draws are biased to small areas (big ones fall outside a 3:4 image more often);
  // the mean must lie inside (0.2, 1) well away from the ends.
  CHECK(area_sum / n > 0.4);
  CHECK(area_sum / n < 0.65);
}

TEST_CASE("when no attempt fits, the crop falls back to a centre crop clamped to the ratio", "[transforms]") {
  Rng rng(0);
  // Full area at ratio >= 2 never fits a square image: fallback w = W, h = round(W / 2).
  const mae::CropBox b = mae::random_resized_crop_params(40, 40, rng, 1.0, 1.0, 2.0, 3.0);
  CHECK(b.width == 40);
  CHECK(b.height == 20);
  CHECK(b.top == 10);
  CHECK(b.left == 0);
  // A very wide image with ratio <= 1: h = H, w = round(H * 1), centred.
  const mae::CropBox c = mae::random_resized_crop_params(10, 100, rng, 1.0, 1.0, 0.5, 1.0);
  CHECK(c.height == 10);
  CHECK(c.width == 10);
  CHECK(c.left == 45);
  CHECK_THROWS_AS(mae::random_resized_crop_params(10, 10, rng, 0.5, 0.2), mae::Error);
}

TEST_CASE("resize to the same size is the identity; bilinear upsampling keeps a ramp linear", "[transforms]") {
  const Image img = pattern(3, 28, 28);
  CHECK(mae::resize(img, 28).pixels == img.pixels);
  CHECK(mae::resize(img, 28, Interpolation::bicubic).pixels == img.pixels);

  Image ramp(1, 1, 8);  // value = x at pixel centre x + 0.5
  for (int x = 0; x < 8; ++x) ramp.at(0, 0, x) = float(x) / 8;
  const Image up = mae::resized_crop(ramp, {0, 0, 1, 8}, 1, 16);
  for (int o = 1; o < 15; ++o)  // interior: sample at (o + 0.5) / 2 - 0.5 in pixel units
    CHECK(up.at(0, 0, o) == Approx(((o + 0.5) / 2 - 0.5) / 8).margin(1e-6));
}

TEST_CASE("downscaling is antialiased: 1-pixel stripes average to grey", "[transforms]") {
  Image stripes(1, 30, 30);
  for (int y = 0; y < 30; ++y)
    for (int x = 0; x < 30; ++x) stripes.at(0, y, x) = float(x % 2);
  const Image small = mae::resize(stripes, 10);  // 3x down: point sampling would give 0 or 1
  for (int x = 1; x < 9; ++x) CHECK(small.at(0, 5, x) == Approx(0.5).margin(0.2));
}

TEST_CASE("bicubic output is clamped to [0, 1] like PIL's 8-bit result", "[transforms]") {
  Image step(1, 4, 8);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 8; ++x) step.at(0, y, x) = x < 4 ? 0.0f : 1.0f;
  const Image out = mae::resize(step, 32, Interpolation::bicubic);
  float lo = 1, hi = 0;
  for (float v : out.pixels) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo == 0.0f);
  CHECK(hi == 1.0f);
}

TEST_CASE("horizontal flip mirrors each row and twice is the identity", "[transforms]") {
  const Image img = pattern(3, 5, 7);
  Image f = img;
  mae::horizontal_flip(f);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 7; ++x) CHECK(f.at(c, y, x) == img.at(c, y, 6 - x));
  mae::horizontal_flip(f);
  CHECK(f.pixels == img.pixels);

  int flips = 0;
  for (std::uint64_t k = 0; k < 1000; ++k) {
    Image g = img;
    Rng rng(5, 0, k);
    flips += mae::random_horizontal_flip(g, rng);
  }
  CHECK(flips == Approx(500).margin(60));
}

TEST_CASE("normalize subtracts mean and divides by std per channel", "[transforms]") {
  Image img = constant(2, 3, 3, 0.5f);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x) img.at(1, y, x) = 0.25f;
  mae::normalize(img, {0.5f, 0.125f}, {0.25f, 0.5f});
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 3; ++x) {
      CHECK(img.at(0, y, x) == 0.0f);
      CHECK(img.at(1, y, x) == 0.25f);
    }
  CHECK_THROWS_WITH(mae::normalize(img, {0.5f}, {0.25f}), Catch::Contains("2 channels"));
  CHECK_THROWS_AS(mae::normalize(img, {0.5f, 0.5f}, {0.25f, 0.0f}), mae::Error);
}
