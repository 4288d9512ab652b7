// Shared by the training tests (tests/train, tests/io/test_checkpoint.cpp): a temp folder, tiny
// data sets written on the spot (raw IDX files, ImageFolder PNGs), a tiny model and run config,
// and small helpers for errors and bytes. Everything is deterministic and runs in milliseconds.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "mae/backend/default.hpp"
#include "mae/data/image.hpp"
#include "mae/io/safetensors.hpp"
#include "mae/train/config.hpp"

namespace mae_test {

namespace fs = std::filesystem;
using Backend = mae::backend::Default;

// A fresh folder under the system temp dir, removed with its contents at scope exit.
struct TempDir {
  fs::path dir;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    dir = fs::temp_directory_path() /
          ("mae_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

// The message of the mae::Error that f throws, or "<no exception>". Other exceptions propagate.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mae::Error& e) {
    return e.what();
  }
  return "<no exception>";
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

inline std::string be32(std::uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

// Raw (uncompressed) IDX image file: magic 0x00000803, (count, rows, cols), smooth random-ish pixels.
inline std::string idx_images_bytes(std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
                                    std::uint32_t seed = 1) {
  std::string b = be32(0x00000803u) + be32(count) + be32(rows) + be32(cols);
  std::mt19937 gen(seed);
  for (std::uint32_t n = 0; n < count; ++n) {
    const int a = int(gen() % 200), fx = 1 + int(gen() % 3), fy = 1 + int(gen() % 3);
    for (std::uint32_t y = 0; y < rows; ++y)
      for (std::uint32_t x = 0; x < cols; ++x)
        b.push_back(char((a + 20 * fx * int(x) + 15 * fy * int(y) + int(gen() % 16)) % 256));
  }
  return b;
}

// <dir>/train-images-idx3-ubyte (the Fashion-MNIST layout open_dataset looks for).
inline std::string write_idx_folder(const std::string& dir, std::uint32_t count, std::uint32_t side = 8) {
  const std::string file = (fs::path(dir) / "train-images-idx3-ubyte").string();
  write_bytes(file, idx_images_bytes(count, side, side));
  return dir;
}

// root/<class>/<k>.png: `per_class` RGB (or gray) PNGs of side x side in each of two classes.
// Returns the paths written, sorted as ImageFolder lists them.
inline std::vector<std::string> write_image_folder(const std::string& root, int per_class, int side,
                                                   int channels = 3) {
  std::vector<std::string> out;
  std::mt19937 gen(7);
  for (const char* cls : {"a_class", "b_class"}) {
    for (int k = 0; k < per_class; ++k) {
      std::vector<unsigned char> px(std::size_t(side * side * channels));
      for (auto& v : px) v = static_cast<unsigned char>(gen() % 256);
      const fs::path p = fs::path(root) / cls / ("img_" + std::to_string(k) + ".png");
      fs::create_directories(p.parent_path());
      mae::write_png(p.string(), px, side, side, channels);
      out.push_back(p.string());
    }
  }
  return out;
}

// A model small enough that a whole run takes milliseconds: 8 x 8 gray, patch 2 (16 patches),
// encoder 16 x 1 (2 heads), decoder 8 x 1 (2 heads), norm_pix_loss.
inline mae::MaeConfig tiny_model(mae::Index img = 8, mae::Index patch = 2, mae::Index chans = 1) {
  mae::MaeConfig m;
  m.img_size = img, m.patch_size = patch, m.in_chans = chans;
  m.embed_dim = 16, m.depth = 1, m.num_heads = 2;
  m.decoder_embed_dim = 8, m.decoder_depth = 1, m.decoder_num_heads = 2;
  m.mlp_ratio = 4, m.norm_pix_loss = true, m.mask_ratio = 0.75;
  return m;
}

// Run config for tiny_model on `data`, writing into `out`: batch 4, 3 epochs (1 warmup), a lr
// large enough that every step visibly changes the weights, augmentation on (so resuming must
// reproduce the crop and flip streams too), one log record per iteration, one OpenMP thread.
inline mae::TrainConfig tiny_run(const std::string& data, const std::string& out) {
  mae::TrainConfig c = mae::preset_config("fmnist_tiny");
  c.model = tiny_model();
  c.data = data;
  c.out = out;
  c.epochs = 3, c.warmup_epochs = 1, c.batch = 4, c.accum_iter = 1;
  c.lr = 1e-3;
  c.seed = 11;
  c.log_every = 1;
  c.recon_images = 2;
  c.decode_threads = 2;
  c.threads = 1;  // tiny GEMMs: a second OpenMP thread only spins (slow on a loaded machine)
  return c;
}

// Every tensor of a safetensors file: name -> (dtype, shape, raw bytes).
struct RawTensor {
  mae::io::DType dtype = mae::io::DType::F32;
  std::vector<mae::Index> shape;
  std::string bytes;
  bool operator==(const RawTensor& o) const { return dtype == o.dtype && shape == o.shape && bytes == o.bytes; }
};
inline std::map<std::string, RawTensor> raw_tensors(const std::string& path) {
  const auto f = mae::io::SafeTensorsFile::load(path);
  std::map<std::string, RawTensor> out;
  for (const std::string& n : f.names()) {
    const auto& ti = f.info(n);
    out[n] = {ti.dtype, ti.shape, std::string(reinterpret_cast<const char*>(f.raw(n)), ti.end - ti.begin)};
  }
  return out;
}

}  // namespace mae_test
