// mae.cpp: image transforms on float CHW images, as in the official MAE pre-training pipeline
//   transforms.RandomResizedCrop(input_size, scale=(0.2, 1.0), interpolation=3),
//   transforms.RandomHorizontalFlip(), transforms.ToTensor(), transforms.Normalize(mean, std)
//
// RandomResizedCrop follows torchvision's get_params exactly: up to 10 attempts of
//   target_area = H*W * U(scale_min, scale_max),  aspect = exp(U(log ratio_min, log ratio_max)),
//   w = round(sqrt(target_area * aspect)),  h = round(sqrt(target_area / aspect))
// accepted when 0 < w <= W and 0 < h <= H, with top ~ U{0..H-h} and left ~ U{0..W-w}; otherwise a
// centre crop clamped to the ratio range. round() is Python's (half to even): std::nearbyint.
// Our Rng replaces torch's generator, so crops are distributed like torchvision's, not bit-equal.
//
// Resampling (the crop box is resized to out x out) is PIL's separable convolution resampler,
// which is what torchvision runs on the PIL images of the official pipeline: output pixel o has
// centre c = box0 + (o + 0.5) * scale, scale = box / out; taps are the input pixels x in the box
// with |x + 0.5 - c| < support * max(scale, 1), weighted kernel((x + 0.5 - c) / max(scale, 1)) and
// normalised to sum 1. So downscaling is antialiased (the kernel widens) and an unscaled resize is
// exactly the identity. Kernels: bilinear = triangle (support 1); bicubic = Keys cubic with a = -0.5
// (support 2, PIL's choice; torch's tensor bicubic uses a = -0.75), clamped to [0, 1] afterwards
// as PIL clips to 8 bits.
// Default: **bilinear**. The official MAE uses interpolation=3 (PIL bicubic); we default to
// bilinear because it never overshoots (no clamping, no ringing on the sharp edges of small
// datasets like Fashion-MNIST) and costs half the taps; pass Interpolation::bicubic to match the
// official recipe.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "mae/config.hpp"
#include "mae/data/image.hpp"
#include "mae/tensor/rng.hpp"

namespace mae {

enum class Interpolation { bilinear, bicubic };

struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

namespace detail {

inline double resample_kernel(Interpolation interp, double x) {
  x = std::abs(x);
  if (interp == Interpolation::bilinear) return x < 1.0 ? 1.0 - x : 0.0;
  constexpr double a = -0.5;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Taps of a 1-D resample of input span [in0, in0 + in_len) to `out` samples.
struct Taps {
  std::vector<int> first, count;  // per output: first input index, number of taps
  std::vector<float> weight;      // per output: `stride` weights, first count[o] used
  int stride = 0;
};

inline Taps resample_taps(int in0, int in_len, int out, Interpolation interp) {
  const double scale = double(in_len) / out;
  const double filter_scale = std::max(scale, 1.0);
  const double support = (interp == Interpolation::bilinear ? 1.0 : 2.0) * filter_scale;
  Taps t;
  t.stride = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out);
  t.count.resize(out);
  t.weight.assign(std::size_t(out) * t.stride, 0.0f);
  std::vector<double> w(t.stride);
  for (int o = 0; o < out; ++o) {
    const double centre = in0 + (o + 0.5) * scale;
    const int lo = std::max(int(std::floor(centre - support + 0.5)), in0);
    const int hi = std::min(int(std::floor(centre + support + 0.5)), in0 + in_len);
    const int n = std::min(std::max(hi - lo, 1), t.stride);
    double sum = 0.0;
    for (int k = 0; k < n; ++k) sum += w[k] = resample_kernel(interp, (lo + k - centre + 0.5) / filter_scale);
    t.first[o] = lo;
    t.count[o] = n;
    for (int k = 0; k < n; ++k) t.weight[std::size_t(o) * t.stride + k] = float(sum != 0.0 ? w[k] / sum : 1.0 / n);
  }
  return t;
}

}  // namespace detail

// Crops `box` from `img` and resizes it to out_h x out_w (see the resampler at the top).
inline Image resized_crop(const Image& img, CropBox box, int out_h, int out_w,
                          Interpolation interp = Interpolation::bilinear) {
  MAE_CHECK(out_h > 0 && out_w > 0, "resized_crop: output size must be positive, got ", out_h, "x", out_w);
  MAE_CHECK(box.height > 0 && box.width > 0 && box.top >= 0 && box.left >= 0 &&
                box.top + box.height <= img.height && box.left + box.width <= img.width,
            "resized_crop: box (top ", box.top, ", left ", box.left, ", ", box.height, "x", box.width,
            ") is not inside the ", img.height, "x", img.width, " image");
  const detail::Taps th = detail::resample_taps(box.left, box.width, out_w, interp);
  const detail::Taps tv = detail::resample_taps(box.top, box.height, out_h, interp);
  const int C = img.channels;
  std::vector<float> rows(std::size_t(C) * box.height * out_w);  // horizontal pass: (C, box.h, out_w)
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < box.height; ++y) {
      const float* src = &img.pixels[(std::size_t(c) * img.height + box.top + y) * img.width];
      float* dst = &rows[(std::size_t(c) * box.height + y) * out_w];
      for (int o = 0; o < out_w; ++o) {
        const float* w = &th.weight[std::size_t(o) * th.stride];
        const float* s = src + th.first[o];
        float acc = 0.0f;
        for (int k = 0; k < th.count[o]; ++k) acc += w[k] * s[k];
        dst[o] = acc;
      }
    }
  Image out(C, out_h, out_w);  // vertical pass
  const bool clamp = interp == Interpolation::bicubic;
  for (int c = 0; c < C; ++c)
    for (int o = 0; o < out_h; ++o) {
      const float* w = &tv.weight[std::size_t(o) * tv.stride];
      float* dst = &out.pixels[(std::size_t(c) * out_h + o) * out_w];
      std::fill(dst, dst + out_w, 0.0f);
      for (int k = 0; k < tv.count[o]; ++k) {
        const float* src = &rows[(std::size_t(c) * box.height + tv.first[o] - box.top + k) * out_w];
        for (int x = 0; x < out_w; ++x) dst[x] += w[k] * src[x];
      }
      if (clamp)
        for (int x = 0; x < out_w; ++x) dst[x] = std::min(std::max(dst[x], 0.0f), 1.0f);
    }
  return out;
}

// torchvision RandomResizedCrop.get_params (see top). Draws from rng: per attempt two uniforms,
// then two below() for the accepted box; nothing more for the fallback.
inline CropBox random_resized_crop_params(int height, int width, Rng& rng, double scale_min = 0.2,
                                          double scale_max = 1.0, double ratio_min = 3.0 / 4,
                                          double ratio_max = 4.0 / 3) {
  MAE_CHECK(height > 0 && width > 0, "random_resized_crop: empty image ", height, "x", width);
  MAE_CHECK(0 < scale_min && scale_min <= scale_max, "random_resized_crop: bad scale range (",
            scale_min, ", ", scale_max, ")");
  MAE_CHECK(0 < ratio_min && ratio_min <= ratio_max, "random_resized_crop: bad ratio range (",
            ratio_min, ", ", ratio_max, ")");
  const double area = double(height) * width;
  const double log_r0 = std::log(ratio_min), log_r1 = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * (scale_min + (scale_max - scale_min) * rng.uniform());
    const double aspect = std::exp(log_r0 + (log_r1 - log_r0) * rng.uniform());
    const int w = int(std::nearbyint(std::sqrt(target_area * aspect)));
    const int h = int(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top = int(rng.below(std::uint64_t(height - h + 1)));
      const int left = int(rng.below(std::uint64_t(width - w + 1)));
      return {top, left, h, w};
    }
  }
  const double in_ratio = double(width) / height;  // fallback: centre crop
  int w = width, h = height;
  if (in_ratio < ratio_min) h = int(std::nearbyint(w / ratio_min));
  else if (in_ratio > ratio_max) w = int(std::nearbyint(h * ratio_max));
  h = std::min(std::max(h, 1), height);
  w = std::min(std::max(w, 1), width);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

inline Image random_resized_crop(const Image& img, int out_size, Rng& rng, double scale_min = 0.2,
                                 double scale_max = 1.0, double ratio_min = 3.0 / 4,
                                 double ratio_max = 4.0 / 3,
                                 Interpolation interp = Interpolation::bilinear) {
  const CropBox box = random_resized_crop_params(img.height, img.width, rng, scale_min, scale_max,
                                                 ratio_min, ratio_max);
  return resized_crop(img, box, out_size, out_size, interp);
}

// Whole image to out_size x out_size (aspect ratio not kept; the identity when already that size).
inline Image resize(const Image& img, int out_size, Interpolation interp = Interpolation::bilinear) {
  return resized_crop(img, CropBox{0, 0, img.height, img.width}, out_size, out_size, interp);
}

// Mirrors every row in place: x -> width - 1 - x.
inline void horizontal_flip(Image& img) {
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < img.height; ++y) {
      float* row = &img.pixels[(std::size_t(c) * img.height + y) * img.width];
      std::reverse(row, row + img.width);
    }
}

// torchvision RandomHorizontalFlip: flips when U[0, 1) < p (one draw). Returns whether it flipped.
inline bool random_horizontal_flip(Image& img, Rng& rng, double p = 0.5) {
  const bool flip = rng.uniform() < p;
  if (flip) horizontal_flip(img);
  return flip;
}

// x[c] = (x[c] - mean[c]) / std[c] per channel, in place.
inline void normalize(Image& img, const std::vector<float>& mean, const std::vector<float>& std) {
  MAE_CHECK(mean.size() == std::size_t(img.channels) && std.size() == std::size_t(img.channels),
            "normalize: image has ", img.channels, " channels, but mean has ", mean.size(),
            " values and std ", std.size());
  const std::size_t plane = std::size_t(img.height) * img.width;
  for (int c = 0; c < img.channels; ++c) {
    MAE_CHECK(std[c] > 0.0f, "normalize: std[", c, "] must be positive, got ", std[c]);
    const float m = mean[c], inv = 1.0f / std[c];
    float* p = &img.pixels[c * plane];
    for (std::size_t i = 0; i < plane; ++i) p[i] = (p[i] - m) * inv;
  }
}

}  // namespace mae
