// IDX reading (raw and gzip), its error messages, and the real Fashion-MNIST files when present.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/temp_dir.hpp"
#include "mae/data/idx.hpp"

namespace fs = std::filesystem;
using Catch::Contains;
using Bytes = std::vector<std::uint8_t>;

namespace {

using mae::test::TempDir;

void put_be32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(std::uint8_t(v >> s));
}
void put_le32(Bytes& b, std::uint32_t v) {
  for (int s = 0; s <= 24; s += 8) b.push_back(std::uint8_t(v >> s));
}

Bytes idx_images(std::uint32_t count, std::uint32_t rows, std::uint32_t cols) {
  Bytes b;
  put_be32(b, 0x00000803);
  put_be32(b, count);
  put_be32(b, rows);
  put_be32(b, cols);
  for (std::uint32_t i = 0; i < count * rows * cols; ++i) b.push_back(std::uint8_t(i * 37 + 5));
  return b;
}

Bytes idx_labels(std::uint32_t count) {
  Bytes b;
  put_be32(b, 0x00000801);
  put_be32(b, count);
  for (std::uint32_t i = 0; i < count; ++i) b.push_back(std::uint8_t(i % 10));
  return b;
}

// gzip member per RFC 1952 around stb_image_write's zlib stream (2-byte header and 4-byte
// Adler-32 stripped to leave raw deflate). `with_fields` adds FEXTRA, FNAME and FCOMMENT.
Bytes gzip(const Bytes& data, bool with_fields = false) {
  int zlen = 0;
  unsigned char* z = stbi_zlib_compress(const_cast<unsigned char*>(data.data()), int(data.size()), &zlen, 8);
  REQUIRE(z != nullptr);
  REQUIRE(zlen > 6);
  Bytes b = {0x1f, 0x8b, 8, std::uint8_t(with_fields ? 4 | 8 | 16 : 0), 0, 0, 0, 0, 0, 3};
  if (with_fields) {
    const std::string fields("\x03\x00" "abc"            // FEXTRA: length 3, data
                             "images.idx\0"              // FNAME
                             "a comment\0", 2 + 3 + 11 + 10);  // FCOMMENT
    for (char c : fields) b.push_back(std::uint8_t(c));
  }
  b.insert(b.end(), z + 2, z + zlen - 4);
  std::free(z);
  put_le32(b, mae::detail::crc32(data.data(), data.size()));
  put_le32(b, std::uint32_t(data.size()));
  return b;
}

void write(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

}  // namespace

TEST_CASE("crc32 matches the standard check value", "[idx]") {
  const std::string s = "123456789";
  CHECK(mae::detail::crc32(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()) == 0xCBF43926u);
  CHECK(mae::detail::crc32(nullptr, 0) == 0u);
}

TEST_CASE("IDX images and labels read back from raw and gzip files", "[idx]") {
  TempDir dir("idx_ok");
  const Bytes images = idx_images(5, 3, 4), labels = idx_labels(5);
  write(dir.file("images"), images);
  write(dir.file("images.gz"), gzip(images));
  write(dir.file("images-fields.gz"), gzip(images, true));
  write(dir.file("labels"), labels);
  write(dir.file("labels.gz"), gzip(labels));

  for (const char* name : {"images", "images.gz", "images-fields.gz"}) {
    INFO(name);
    const mae::IdxImages got = mae::read_idx_images(dir.file(name));
    CHECK(got.count == 5);
    CHECK(got.rows == 3);
    CHECK(got.cols == 4);
    CHECK(got.pixels == Bytes(images.begin() + 16, images.end()));
  }
  for (const char* name : {"labels", "labels.gz"}) {
    INFO(name);
    CHECK(mae::read_idx_labels(dir.file(name)) == Bytes(labels.begin() + 8, labels.end()));
  }
  // Every length ends the deflate stream at a different bit position (and small ones are stored
  // blocks): all must inflate.
  for (std::uint32_t n : {0u, 1u, 2u, 3u, 7u, 12u, 20u, 33u, 100u, 257u, 1000u, 4099u, 70000u}) {
    INFO("labels: " << n);
    const Bytes l = idx_labels(n);
    write(dir.file("n.gz"), gzip(l));
    CHECK(mae::read_idx_labels(dir.file("n.gz")) == Bytes(l.begin() + 8, l.end()));
  }
  // The gzip magic decides, not the name: a gzip file without ".gz" works too.
  write(dir.file("noext"), gzip(images));
  CHECK(mae::read_idx_images(dir.file("noext")).count == 5);
}

TEST_CASE("a wrong magic number is an error naming the file and both magics", "[idx]") {
  TempDir dir("idx_magic");
  write(dir.file("labels"), idx_labels(4));
  write(dir.file("images"), idx_images(2, 2, 2));
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("labels")),
                    Contains(dir.file("labels")) && Contains("0x00000803") && Contains("0x00000801"));
  CHECK_THROWS_WITH(mae::read_idx_labels(dir.file("images")),
                    Contains(dir.file("images")) && Contains("0x00000801") && Contains("0x00000803"));
  write(dir.file("tiny"), Bytes{0, 0});
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("tiny")), Contains(dir.file("tiny")));
}

TEST_CASE("truncated IDX data is an error with expected and actual byte counts", "[idx]") {
  TempDir dir("idx_trunc");
  Bytes images = idx_images(2, 3, 4);  // 24 pixel bytes
  images.resize(images.size() - 4);
  write(dir.file("images"), images);
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("images")),
                    Contains(dir.file("images")) && Contains("truncated") &&
                        Contains("expected 24 bytes, got 20"));
  write(dir.file("images.gz"), gzip(images));  // same through gzip
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("images.gz")),
                    Contains(dir.file("images.gz")) && Contains("expected 24 bytes, got 20"));

  Bytes header_only = idx_images(1, 1, 1);
  header_only.resize(10);  // dims cut short
  write(dir.file("short"), header_only);
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("short")),
                    Contains(dir.file("short")) && Contains("truncated IDX header"));

  Bytes labels = idx_labels(10);
  labels.push_back(0);  // one byte too many
  write(dir.file("labels"), labels);
  CHECK_THROWS_WITH(mae::read_idx_labels(dir.file("labels")),
                    Contains(dir.file("labels")) && Contains("expected 10 bytes, got 11"));
}

TEST_CASE("bad gzip files are errors naming the file", "[idx]") {
  TempDir dir("idx_gzip");
  const Bytes images = idx_images(20, 8, 8);
  const Bytes good = gzip(images);

  Bytes cut(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2));
  write(dir.file("cut.gz"), cut);
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("cut.gz")),
                    Contains(dir.file("cut.gz")) && Contains("bad gzip"));

  Bytes flipped = good;  // damage the deflate data: inflate fails or the CRC disagrees
  for (std::size_t i = 12; i < flipped.size() - 8; i += 7) flipped[i] ^= 0x5A;
  write(dir.file("flipped.gz"), flipped);
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("flipped.gz")),
                    Contains(dir.file("flipped.gz")) && Contains("bad gzip"));

  Bytes bad_crc = good;
  bad_crc[bad_crc.size() - 8] ^= 1;
  write(dir.file("crc.gz"), bad_crc);
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("crc.gz")),
                    Contains(dir.file("crc.gz")) && Contains("CRC32 mismatch"));

  Bytes bad_size = good;
  bad_size[bad_size.size() - 4] ^= 1;
  write(dir.file("isize.gz"), bad_size);
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("isize.gz")),
                    Contains(dir.file("isize.gz")) && Contains("trailer says"));

  Bytes bad_method = good;
  bad_method[2] = 7;
  write(dir.file("method.gz"), bad_method);
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("method.gz")),
                    Contains(dir.file("method.gz")) && Contains("compression method 7"));

  write(dir.file("stub.gz"), Bytes{0x1f, 0x8b, 8, 0});
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("stub.gz")),
                    Contains(dir.file("stub.gz")) && Contains("bad gzip"));
}

TEST_CASE("missing files and folders are errors naming them", "[idx]") {
  TempDir dir("idx_missing");
  CHECK_THROWS_WITH(mae::read_idx_images(dir.file("nope")), Contains(dir.file("nope")) && Contains("cannot open"));
  CHECK_THROWS_WITH(mae::read_idx_labels(dir.path.string()), Contains(dir.path.string()) && Contains("directory"));
  CHECK_THROWS_WITH(mae::find_fashion_mnist(dir.path.string(), true),
                    Contains(dir.path.string()) && Contains("'train-images-idx3-ubyte'") &&
                        Contains("'train-images-idx3-ubyte.gz'"));
  CHECK_THROWS_WITH(mae::find_fashion_mnist(dir.file("absent"), false), Contains(dir.file("absent")));
}

TEST_CASE("find_fashion_mnist prefers the raw file and falls back to .gz", "[idx]") {
  TempDir dir("idx_find");
  write(dir.file("t10k-images-idx3-ubyte.gz"), gzip(idx_images(1, 2, 2)));
  CHECK(mae::find_fashion_mnist(dir.path.string(), false) == dir.file("t10k-images-idx3-ubyte.gz"));
  write(dir.file("t10k-images-idx3-ubyte"), idx_images(1, 2, 2));
  CHECK(mae::find_fashion_mnist(dir.path.string(), false) == dir.file("t10k-images-idx3-ubyte"));
  CHECK_THROWS_WITH(mae::find_fashion_mnist(dir.path.string(), true), Contains("train-images-idx3-ubyte"));
  write(dir.file("t10k-labels-idx1-ubyte.gz"), gzip(idx_labels(1)));
  CHECK(mae::find_fashion_mnist(dir.path.string(), false, true) == dir.file("t10k-labels-idx1-ubyte.gz"));
}

TEST_CASE("the installed Fashion-MNIST train set reads as 60000 x 28 x 28 with labels 0..9", "[idx][dataset]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::is_directory(dir)) {
    WARN("no " << dir << ": real-data check not run");
    return;
  }
  const mae::IdxImages train = mae::read_idx_images(mae::find_fashion_mnist(dir, true));
  CHECK(train.count == 60000);
  CHECK(train.rows == 28);
  CHECK(train.cols == 28);
  REQUIRE(train.pixels.size() == std::size_t(60000) * 28 * 28);
  double mean = 0;
  for (std::uint8_t p : train.pixels) mean += p;
  mean /= double(train.pixels.size()) * 255.0;
  CHECK(mean == Approx(0.2860).margin(0.001));  // the published Fashion-MNIST mean

  const auto labels = mae::read_idx_labels(mae::find_fashion_mnist(dir, true, true));
  REQUIRE(labels.size() == 60000);
  std::vector<int> per_class(10, 0);
  for (std::uint8_t l : labels) ++per_class.at(l);  // at(): a label >= 10 throws
  for (int c : per_class) CHECK(c == 6000);  // balanced: 6000 per class

  const mae::IdxImages test = mae::read_idx_images(mae::find_fashion_mnist(dir, false));
  CHECK(test.count == 10000);
}
