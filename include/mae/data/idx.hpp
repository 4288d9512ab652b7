// mae.cpp: IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
//
// IDX (http://yann.lecun.com/exdb/mnist/): big-endian u32 magic 0x000008DD (0x08 = unsigned byte,
// DD = number of dimensions), one big-endian u32 per dimension, then the bytes, last dimension
// fastest. Images: magic 0x00000803, dims (count, rows, cols). Labels: 0x00000801, dims (count).
//
// gzip (RFC 1952): 1f 8b, method 8 (deflate), flags (FHCRC 2, FEXTRA 4, FNAME 8, FCOMMENT 16),
// mtime, xfl, os, optional fields, raw deflate data, then CRC32 and ISIZE (size mod 2^32), both
// little-endian. We parse the header, inflate with stb_image's stbi_zlib_decode_noheader_malloc
// (no zlib needed) and check both ISIZE and CRC32. The gzip magic decides, not the file name.
// Single-member files only (what gzip and the dataset mirrors produce).
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "mae/config.hpp"
#include "mae/data/image.hpp"  // the library's single home for stb (inflate)

namespace mae {

struct IdxImages {
  Index count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // (count, rows, cols), row-major, 0..255
};

namespace detail {

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) as used by gzip and PNG.
inline std::uint32_t crc32(const std::uint8_t* data, std::size_t n, std::uint32_t crc = 0) {
  static const auto table = [] {
    std::vector<std::uint32_t> t(256);
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

inline std::string hex32(std::uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", unsigned(v));
  return buf;
}

inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
inline std::uint32_t load_le32(const std::uint8_t* p) {
  return (std::uint32_t(p[3]) << 24) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[1]) << 8) | p[0];
}

// A file's bytes, inflated when it is gzip. `data`/`size` point into `raw` or `inflated`.
struct FileBytes {
  std::vector<std::uint8_t> raw;
  std::unique_ptr<std::uint8_t, StbFree> inflated;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

inline std::vector<std::uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  MAE_CHECK(!std::filesystem::is_directory(path, ec), "'", path, "': is a directory, not a file");
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  MAE_CHECK(f.is_open(), "'", path, "': cannot open file");
  const std::streamoff n = f.tellg();
  MAE_CHECK(n >= 0, "'", path, "': cannot determine file size");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(n));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), n);
  MAE_CHECK(f.gcount() == n, "'", path, "': read ", f.gcount(), " of ", n, " bytes");
  return bytes;
}

inline void gunzip(FileBytes& fb, const std::string& path) {
  const std::uint8_t* b = fb.raw.data();
  const std::size_t n = fb.raw.size();
  const std::string bad = "'" + path + "': bad gzip: ";
  MAE_CHECK(n >= 18, bad, "file is ", n, " bytes, shorter than the 18-byte minimum");
  MAE_CHECK(b[2] == 8, bad, "compression method ", int(b[2]), ", expected 8 (deflate)");
  const unsigned flags = b[3];
  MAE_CHECK((flags & 0xE0u) == 0, bad, "reserved header flags set (", flags, ")");
  std::size_t pos = 10;
  if (flags & 4u) {  // FEXTRA: u16 length + data
    MAE_CHECK(pos + 2 <= n, bad, "header truncated");
    pos += 2 + (std::size_t(b[pos]) | std::size_t(b[pos + 1]) << 8);
  }
  for (unsigned zero_terminated : {8u, 16u}) {  // FNAME, FCOMMENT
    if (!(flags & zero_terminated)) continue;
    while (pos < n && b[pos] != 0) ++pos;
    ++pos;
  }
  if (flags & 2u) pos += 2;  // FHCRC
  MAE_CHECK(pos + 8 <= n, bad, "header runs past the end of the file");
  // The 8 trailer bytes are passed along: stb's inflate reads up to 16 bits ahead and reports
  // "bad huffman code" when the buffer ends right after the last code; it stops at the final block.
  const std::size_t deflate_len = n - pos;
  MAE_CHECK(deflate_len <= 0x7FFFFFFFu, bad, "compressed data over 2 GiB is not supported");
  const std::uint32_t want_crc = load_le32(b + n - 8), want_size = load_le32(b + n - 4);
  int out_len = 0;
  char* out = stbi_zlib_decode_noheader_malloc(reinterpret_cast<const char*>(b + pos),
                                               int(deflate_len), &out_len);
  if (!out) {
    const char* why = stbi_failure_reason();
    throw Error(detail::cat(bad, "deflate data is corrupt or truncated (", why ? why : "?", ")"));
  }
  fb.inflated.reset(reinterpret_cast<std::uint8_t*>(out));
  fb.data = fb.inflated.get();
  fb.size = std::size_t(out_len);
  MAE_CHECK(std::uint32_t(fb.size) == want_size, bad, "inflated ", fb.size,
            " bytes but the trailer says ", want_size, " (truncated or multi-member file?)");
  const std::uint32_t crc = crc32(fb.data, fb.size);
  MAE_CHECK(crc == want_crc, bad, "CRC32 mismatch: computed ", hex32(crc), ", trailer says ",
            hex32(want_crc));
  fb.raw = {};
}

inline FileBytes read_maybe_gzip(const std::string& path) {
  FileBytes fb;
  fb.raw = read_file(path);
  if (fb.raw.size() >= 2 && fb.raw[0] == 0x1F && fb.raw[1] == 0x8B) {
    gunzip(fb, path);
  } else {
    fb.data = fb.raw.data();
    fb.size = fb.raw.size();
  }
  return fb;
}

// Checks magic and dimensions, returns the dims and the offset of the data.
inline std::vector<std::uint32_t> idx_header(const FileBytes& fb, const std::string& path,
                                             std::uint32_t magic, const char* what) {
  MAE_CHECK(fb.size >= 4, "'", path, "': not an IDX ", what, " file: ", fb.size,
            " bytes, too short for the magic number");
  const std::uint32_t got = load_be32(fb.data);
  MAE_CHECK(got == magic, "'", path, "': not an IDX ", what, " file: magic ", hex32(got),
            ", expected ", hex32(magic));
  const std::size_t rank = magic & 0xFFu;
  MAE_CHECK(fb.size >= 4 + 4 * rank, "'", path, "': truncated IDX header: expected ",
            4 + 4 * rank, " bytes, got ", fb.size);
  std::vector<std::uint32_t> dims(rank);
  for (std::size_t d = 0; d < rank; ++d) dims[d] = load_be32(fb.data + 4 + 4 * d);
  return dims;
}

inline void check_idx_payload(const FileBytes& fb, const std::string& path, std::size_t header,
                              std::uint64_t items, std::uint64_t per_item, const std::string& shape) {
  const std::uint64_t have = fb.size - header;
  MAE_CHECK(per_item == 0 || items <= have / per_item, "'", path, "': truncated IDX data: header says ",
            shape, ", expected ", items * per_item, " bytes, got ", have);
  MAE_CHECK(items * per_item == have, "'", path, "': IDX data size mismatch: header says ", shape,
            ", expected ", items * per_item, " bytes, got ", have);
}

}  // namespace detail

// Reads an IDX image file (magic 0x00000803), raw or gzip.
inline IdxImages read_idx_images(const std::string& path) {
  const detail::FileBytes fb = detail::read_maybe_gzip(path);
  const auto dims = detail::idx_header(fb, path, 0x00000803u, "image");
  const std::string shape = detail::cat(dims[0], "x", dims[1], "x", dims[2]);
  detail::check_idx_payload(fb, path, 16, dims[0], std::uint64_t(dims[1]) * dims[2], shape);
  IdxImages out;
  out.count = Index(dims[0]);
  out.rows = Index(dims[1]);
  out.cols = Index(dims[2]);
  out.pixels.assign(fb.data + 16, fb.data + fb.size);
  return out;
}

// Reads an IDX label file (magic 0x00000801), raw or gzip.
inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  const detail::FileBytes fb = detail::read_maybe_gzip(path);
  const auto dims = detail::idx_header(fb, path, 0x00000801u, "label");
  detail::check_idx_payload(fb, path, 8, dims[0], 1, detail::cat(dims[0], " labels"));
  return std::vector<std::uint8_t>(fb.data + 8, fb.data + fb.size);
}

// Finds the Fashion-MNIST (or MNIST) file in `dir`: "train-" or "t10k-" + "images-idx3-ubyte"
// (or "labels-idx1-ubyte" when labels is true), uncompressed first, then ".gz".
inline std::string find_fashion_mnist(const std::string& dir, bool train, bool labels = false) {
  namespace fs = std::filesystem;
  std::error_code ec;
  MAE_CHECK(fs::is_directory(dir, ec), "'", dir, "': Fashion-MNIST folder does not exist or is not a directory");
  const std::string base = std::string(train ? "train-" : "t10k-") +
                           (labels ? "labels-idx1-ubyte" : "images-idx3-ubyte");
  for (const std::string& name : {base, base + ".gz"}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  throw Error(detail::cat("'", dir, "': no Fashion-MNIST ", train ? "train" : "test", " ",
                          labels ? "labels" : "images", ": looked for '", base, "' and '", base,
                          ".gz'"));
}

}  // namespace mae
