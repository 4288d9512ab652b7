// mae.cpp: images in memory (float CHW in [0, 1]), decoding with stb_image and PNG writing with
// stb_image_write. This header is also the library's single home for stb: every other header that
// needs stb (idx.hpp for inflate) includes this one.
//
// stb is compiled here, into every translation unit that includes this header, with all of its
// functions `static` (STB_IMAGE_STATIC / STB_IMAGE_WRITE_STATIC), so any number of TUs link
// together. Consequences: include this header before any other stb header in a TU. If you
// already compile stb yourself (non-static, elsewhere), define MAE_STB_NO_IMPLEMENTATION before
// including this header and only the declarations are pulled in.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "mae/io/durable.hpp"
#include "mae/config.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wconversion"
#ifdef __CUDACC__  // nvcc's front end has its own numbering: 550 = set but never used
#pragma nv_diagnostic push
#pragma nv_diag_suppress 550
#endif
#ifndef MAE_STB_NO_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#ifdef __CUDACC__
#pragma nv_diagnostic pop
#endif
#pragma GCC diagnostic pop

namespace mae {

// An image as the model sees it: channels x height x width floats in [0, 1], row-major CHW.
struct Image {
  int channels = 0, height = 0, width = 0;
  std::vector<float> pixels;  // size channels * height * width

  Image() = default;
  Image(int c, int h, int w) : channels(c), height(h), width(w), pixels(std::size_t(c) * h * w) {}
  float& at(int c, int y, int x) { return pixels[(std::size_t(c) * height + y) * width + x]; }
  float at(int c, int y, int x) const { return pixels[(std::size_t(c) * height + y) * width + x]; }
};

namespace detail {
struct StbFree {
  void operator()(void* p) const noexcept { std::free(p); }  // stb's STBI_FREE is free()
};
}  // namespace detail

// Interleaved 8-bit HWC (stb's layout) -> float CHW in [0, 1], value / 255 (a division, exactly
// like torchvision's ToTensor).
inline Image image_from_hwc(const unsigned char* hwc, int width, int height, int channels) {
  Image img(channels, height, width);
  const std::size_t plane = std::size_t(height) * width;
  for (std::size_t p = 0; p < plane; ++p)
    for (int c = 0; c < channels; ++c)
      img.pixels[c * plane + p] = float(hwc[p * channels + c]) / 255.0f;
  return img;
}

// Decodes PNG, JPEG, BMP, TGA, GIF (first frame), PPM/PGM, PSD, HDR (tone-mapped) from `path`.
// channels_wanted: 1 (RGB -> gray with stb's weights 77/150/29 / 256) or 3 (gray replicated);
// alpha is dropped. 16-bit files are reduced to 8 bits by stb. Missing, unreadable, truncated or
// non-image files: mae::Error "'<path>': cannot decode image: <stb's reason>".
inline Image load_image(const std::string& path, int channels_wanted) {
  MAE_CHECK(channels_wanted == 1 || channels_wanted == 3, "'", path,
            "': load_image: channels must be 1 or 3, got ", channels_wanted);
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, detail::StbFree> data(
      stbi_load(path.c_str(), &w, &h, &n, channels_wanted));
  if (!data) {
    const char* why = stbi_failure_reason();
    throw Error(detail::cat("'", path, "': cannot decode image: ", why ? why : "unknown error"));
  }
  return image_from_hwc(data.get(), w, h, channels_wanted);
}

// Float CHW in [0, 1] -> 8-bit HWC, rounded and clamped (for write_png).
inline std::vector<unsigned char> image_to_hwc(const Image& img) {
  const std::size_t plane = std::size_t(img.height) * img.width;
  std::vector<unsigned char> hwc(plane * img.channels);
  for (int c = 0; c < img.channels; ++c)
    for (std::size_t p = 0; p < plane; ++p) {
      const float v = img.pixels[c * plane + p] * 255.0f + 0.5f;
      hwc[p * img.channels + c] = (unsigned char)(v <= 0.0f ? 0.0f : v >= 255.0f ? 255.0f : v);
    }
  return hwc;
}

// Writes 8-bit HWC pixels (channels 1 = gray, 2 = gray+alpha, 3 = RGB, 4 = RGBA) as a PNG. The
// file is written to "<path>.tmp.<pid>", flushed to disk and renamed onto `path`, so a reader never
// sees half a file.
inline void write_png(const std::string& path, const std::vector<unsigned char>& hwc, int width,
                      int height, int channels) {
  MAE_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4, "'", path,
            "': write_png: bad geometry ", width, "x", height, "x", channels);
  const std::size_t want = std::size_t(width) * height * channels;
  MAE_CHECK(hwc.size() == want, "'", path, "': write_png: expected ", want, " bytes (", width,
            "x", height, "x", channels, "), got ", hwc.size());
  std::vector<unsigned char> encoded;
  auto sink = [](void* ctx, void* bytes, int size) {
    auto* out = static_cast<std::vector<unsigned char>*>(ctx);
    const auto* b = static_cast<const unsigned char*>(bytes);
    out->insert(out->end(), b, b + size);
  };
  const int ok = stbi_write_png_to_func(sink, &encoded, width, height, channels, hwc.data(),
                                        width * channels);
  MAE_CHECK(ok != 0 && !encoded.empty(), "'", path, "': PNG encoding failed");
  const std::string tmp = io::temp_name(path);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MAE_CHECK(f.is_open(), "'", path, "': cannot open '", tmp, "' for writing");
    f.write(reinterpret_cast<const char*>(encoded.data()), std::streamsize(encoded.size()));
    f.close();
    if (!f) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);
      throw Error(detail::cat("'", path, "': writing '", tmp, "' failed (disk full?)"));
    }
  }
  std::error_code ec;
  io::sync_path(tmp);
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw Error(detail::cat("'", path, "': cannot rename '", tmp, "' onto it: ", ec.message()));
  }
}

inline void write_png(const std::string& path, const Image& img) {
  write_png(path, image_to_hwc(img), img.width, img.height, img.channels);
}

}  // namespace mae
