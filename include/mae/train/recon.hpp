// Reconstruction grids, as the official visualization demo: one row per image,
//   original | masked (removed patches grey) | reconstruction | reconstruction with visible patches pasted
// With norm_pix_loss the prediction lives in per-patch normalized space; it is mapped back with the
// original patch's mean and (unbiased) variance: pix = pred * sqrt(var + 1e-6) + mean.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mae/data/image.hpp"
#include "mae/model/config.hpp"

namespace mae {

// imgs: (R, C, S, S) as the model saw them (dataset-normalized); pred: (R, L, P) in (u, v, c) order;
// mask: (R, L), 1 = removed. mean/std: the dataset normalization to undo for display.
template <class T>
void write_recon_grid(const std::string& path, const MaeConfig& cfg, Index rows, const std::vector<T>& imgs,
                      const std::vector<T>& pred, const std::vector<T>& mask, const std::vector<double>& mean,
                      const std::vector<double>& std) {
  const Index C = cfg.in_chans, S = cfg.img_size, p = cfg.patch_size, g = cfg.grid_size(), L = g * g, P = cfg.patch_dim();
  const Index scale = std::max<Index>(1, 112 / S), cell = S * scale, gap = 2;
  const Index W = 4 * cell + 5 * gap, H = rows * cell + (rows + 1) * gap;
  std::vector<unsigned char> out(std::size_t(W * H * C), 255);
  auto to_byte = [&](double v, Index c) {
    const double x = v * (std.empty() ? 1.0 : std[c]) + (mean.empty() ? 0.0 : mean[c]);
    return static_cast<unsigned char>(std::lround(std::clamp(x, 0.0, 1.0) * 255.0));
  };
  for (Index r = 0; r < rows; ++r) {
    const T* img = imgs.data() + r * C * S * S;
    // reconstructed image (C, S, S) in dataset-normalized units
    std::vector<double> rec(C * S * S);
    for (Index l = 0; l < L; ++l) {
      const Index gi = l / g, gj = l % g;
      double mu = 0, var = 0;
      if (cfg.norm_pix_loss) {
        for (Index u = 0; u < p; ++u)
          for (Index v = 0; v < p; ++v)
            for (Index c = 0; c < C; ++c) mu += img[(c * S + gi * p + u) * S + gj * p + v];
        mu /= double(P);
        for (Index u = 0; u < p; ++u)
          for (Index v = 0; v < p; ++v)
            for (Index c = 0; c < C; ++c) var += std::pow(img[(c * S + gi * p + u) * S + gj * p + v] - mu, 2);
        var /= double(P - 1);
      }
      for (Index u = 0; u < p; ++u)
        for (Index v = 0; v < p; ++v)
          for (Index c = 0; c < C; ++c) {
            double x = pred[(r * L + l) * P + (u * p + v) * C + c];
            if (cfg.norm_pix_loss) x = x * std::sqrt(var + 1e-6) + mu;
            rec[(c * S + gi * p + u) * S + gj * p + v] = x;
          }
    }
    for (Index col = 0; col < 4; ++col) {
      for (Index y = 0; y < cell; ++y) {
        for (Index x = 0; x < cell; ++x) {
          const Index sy = y / scale, sx = x / scale, l = (sy / p) * g + sx / p;
          const bool removed = mask[r * L + l] > 0.5;
          const Index oy = gap + r * (cell + gap) + y, ox = gap + col * (cell + gap) + x;
          for (Index c = 0; c < C; ++c) {
            const double orig = img[(c * S + sy) * S + sx], re = rec[(c * S + sy) * S + sx];
            unsigned char b;
            if (col == 0) b = to_byte(orig, c);
            else if (col == 1) b = removed ? 128 : to_byte(orig, c);
            else if (col == 2) b = to_byte(re, c);
            else b = to_byte(removed ? re : orig, c);
            out[std::size_t((oy * W + ox) * C + c)] = b;
          }
        }
      }
    }
  }
  write_png(path, out, int(W), int(H), int(C));
}

}  // namespace mae
