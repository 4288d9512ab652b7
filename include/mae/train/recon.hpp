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
#include "mae/layers/patchify.hpp"
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
  // the prediction mapped back to pixels (dataset-normalized units), as images (R, C, S, S)
  std::vector<double> pix(pred.begin(), pred.end());
  if (cfg.norm_pix_loss) {
    const std::vector<double> orig = patchify(std::vector<double>(imgs.begin(), imgs.end()), rows, C, S, p);
    for (Index patch = 0; patch < rows * L; ++patch) {
      const double* o = orig.data() + patch * P;
      double mu = 0, var = 0;
      for (Index k = 0; k < P; ++k) mu += o[k];
      mu /= double(P);
      for (Index k = 0; k < P; ++k) var += (o[k] - mu) * (o[k] - mu);
      var /= double(P - 1);
      for (Index k = 0; k < P; ++k) pix[patch * P + k] = pix[patch * P + k] * std::sqrt(var + 1e-6) + mu;
    }
  }
  const std::vector<double> recon = unpatchify(pix, rows, C, S, p);
  for (Index r = 0; r < rows; ++r) {
    const T* img = imgs.data() + r * C * S * S;
    const double* rec = recon.data() + r * C * S * S;
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
