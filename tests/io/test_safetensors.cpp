// Tests for mae/io/safetensors.hpp: round trips, layout, conversions, and that every malformed file
// is a mae::Error naming the file (never a crash). Each test writes its own files to a fresh temp dir.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "mae/io/safetensors.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using mae::Index;
using mae::io::DType;
using mae::io::SafeTensorsFile;
using mae::io::SafeTensorsWriter;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  fs::path dir;
  TempDir() {
    static int counter = 0;
    std::random_device rd;
    dir = fs::temp_directory_path() /
          ("mae_test_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) +
           "_" + std::to_string(rd()));
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }
};

// The message of the mae::Error that f throws, or "<no exception>". Other exception types
// propagate, so Catch reports them as failures.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mae::Error& e) {
    return e.what();
  }
  return "<no exception>";
}

std::string load_error(const std::string& path) {
  return error_of([&] { SafeTensorsFile::load(path); });
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

// Rewrites a file of the same size in place (no truncation: fast on file systems with discard).
void overwrite(const std::string& path, const std::string& bytes) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

// A hand-made safetensors file: length prefix + given JSON header + given data bytes.
std::string make_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

std::uint64_t header_length(const std::string& bytes) {
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[std::size_t(i)]);
  return n;
}

// A valid file with a few tensors of different dtypes; the last tensor in data order is non-empty.
void write_sample(const std::string& path) {
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-3f};
  const std::vector<double> b = {0.1, 0.2, 0.3};
  const std::vector<std::int64_t> c = {3, -1, 4, 1};
  SafeTensorsWriter w;
  w.add("a", {2, 3}, a.data());
  w.add("b", {3}, b.data());
  w.add("c", {2, 2}, c.data());
  w.set_metadata("format", "pt");
  w.write(path);
}

}  // namespace

TEST_CASE("dtype names and sizes, shape strings", "[safetensors]") {
  CHECK(std::string(mae::io::dtype_name(DType::F32)) == "F32");
  CHECK(std::string(mae::io::dtype_name(DType::BF16)) == "BF16");
  CHECK(mae::io::dtype_size(DType::F64) == 8);
  CHECK(mae::io::dtype_size(DType::I64) == 8);
  CHECK(mae::io::dtype_size(DType::I32) == 4);
  CHECK(mae::io::dtype_size(DType::F16) == 2);
  CHECK(mae::io::dtype_size(DType::U8) == 1);
  CHECK(mae::io::shape_string({3, 4}) == "(3, 4)");
  CHECK(mae::io::shape_string({384}) == "(384)");
  CHECK(mae::io::shape_string({}) == "()");
  mae::io::TensorInfo ti;
  CHECK(ti.numel() == 1);   // scalar
  ti.shape = {2, 0, 5};
  CHECK(ti.numel() == 0);
}

TEST_CASE("F32, F64, I64 tensors incl. a 0-d scalar and an empty tensor round-trip bit-exactly",
          "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("round.safetensors");
  const std::vector<float> f = {1.0f, -0.0f, 3.5f, std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::infinity(), 1e30f};
  const std::vector<double> d = {0.1, -2.5e-300, 42.0, std::numeric_limits<double>::max()};
  const std::vector<std::int64_t> i = {std::numeric_limits<std::int64_t>::min(), -1, 0, 7,
                                       std::numeric_limits<std::int64_t>::max(), 123456789012345LL};
  const double scalar = 2.718281828459045;
  SafeTensorsWriter w;
  w.add("f", {2, 3}, f.data());
  w.add("d", {4}, d.data());
  w.add("i", {3, 2}, i.data());
  w.add("loss", {}, &scalar);
  w.add("empty", {0, 3}, static_cast<const float*>(nullptr));
  w.write(path);

  const SafeTensorsFile st = SafeTensorsFile::load(path);
  CHECK(st.path() == path);
  CHECK(st.names() == std::vector<std::string>{"d", "empty", "f", "i", "loss"});
  CHECK(st.info("f").dtype == DType::F32);
  CHECK(st.info("f").shape == std::vector<Index>{2, 3});
  CHECK(st.info("d").dtype == DType::F64);
  CHECK(st.info("i").dtype == DType::I64);
  CHECK(st.info("loss").shape.empty());
  CHECK(st.info("loss").numel() == 1);
  CHECK(st.info("empty").numel() == 0);
  CHECK(st.info("empty").shape == std::vector<Index>{0, 3});

  const auto f2 = st.read_as<float>("f", {2, 3});
  REQUIRE(f2.size() == f.size());
  CHECK(std::memcmp(f2.data(), f.data(), f.size() * sizeof(float)) == 0);
  const auto d2 = st.read_as<double>("d", {4});
  REQUIRE(d2.size() == d.size());
  CHECK(std::memcmp(d2.data(), d.data(), d.size() * sizeof(double)) == 0);
  CHECK(st.read_as<std::int64_t>("i", {3, 2}) == i);
  CHECK(st.read_as<double>("loss", {}) == std::vector<double>{scalar});
  CHECK(st.read_as<float>("empty", {0, 3}).empty());
  CHECK(std::memcmp(st.raw("d"), d.data(), d.size() * sizeof(double)) == 0);
  CHECK(st.contains("f"));
  CHECK_FALSE(st.contains("__metadata__"));
  CHECK_FALSE(st.contains("g"));
}

TEST_CASE("metadata round-trips and __metadata__ is always written", "[safetensors]") {
  TempDir tmp;
  SECTION("with entries") {
    SafeTensorsWriter w;
    w.set_metadata("fixture", "rgb16_p4");
    w.set_metadata("note", "unicode \xc3\xa9 and \"quotes\"");
    w.set_metadata("fixture", "gray8_p2");   // last value wins
    const float x = 1;
    w.add("x", {1}, &x);
    w.write(tmp.file("m.safetensors"));
    const auto st = SafeTensorsFile::load(tmp.file("m.safetensors"));
    CHECK(st.metadata() == std::map<std::string, std::string>{{"fixture", "gray8_p2"},
                                                               {"note", "unicode \xc3\xa9 and \"quotes\""}});
    CHECK(st.names() == std::vector<std::string>{"x"});
  }
  SECTION("empty writer: empty metadata object, no tensors") {
    SafeTensorsWriter().write(tmp.file("e.safetensors"));
    const std::string bytes = slurp(tmp.file("e.safetensors"));
    const std::uint64_t n = header_length(bytes);
    REQUIRE(bytes.size() == 8 + n);
    const auto h = nlohmann::json::parse(bytes.substr(8, n));
    CHECK(h == nlohmann::json{{"__metadata__", nlohmann::json::object()}});
    const auto st = SafeTensorsFile::load(tmp.file("e.safetensors"));
    CHECK(st.metadata().empty());
    CHECK(st.names().empty());
  }
  SECTION("a file without __metadata__ loads with empty metadata") {
    write_raw(tmp.file("n.safetensors"),
              make_file(R"({"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", std::string(4, '\0')));
    CHECK(SafeTensorsFile::load(tmp.file("n.safetensors")).metadata().empty());
  }
}

TEST_CASE("writer stores tensors in sorted-name order, back to back, data 8-byte aligned", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("order.safetensors");
  const std::vector<double> z = {1, 2, 3};
  const std::vector<float> a = {4, 5, 6, 7, 8};   // 20 bytes: the next tensor starts unaligned
  const std::vector<std::int64_t> m = {9};
  SafeTensorsWriter w;
  w.add("zeta", {3}, z.data());
  w.add("alpha", {5}, a.data());
  w.add("mid", {1, 1}, m.data());
  w.set_metadata("k", "odd length value");
  w.write(path);

  const std::string bytes = slurp(path);
  const std::uint64_t n = header_length(bytes);
  CHECK((8 + n) % 8 == 0);
  CHECK(bytes.size() == 8 + n + 20 + 8 + 24);
  const std::string header = bytes.substr(8, n);
  CHECK(header.find_last_not_of(' ') == header.rfind('}'));   // padded with spaces only

  const auto st = SafeTensorsFile::load(path);
  CHECK(st.names() == std::vector<std::string>{"alpha", "mid", "zeta"});
  CHECK(st.info("alpha").begin == 0);
  CHECK(st.info("alpha").end == 20);
  CHECK(st.info("mid").begin == 20);
  CHECK(st.info("mid").end == 28);
  CHECK(st.info("zeta").begin == 28);
  CHECK(st.info("zeta").end == 52);
  double first;
  std::memcpy(&first, bytes.data() + 8 + n + 28, 8);
  CHECK(first == 1.0);
}

TEST_CASE("read_as converts between dtypes and refuses floating -> int64", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("conv.safetensors");
  const std::vector<float> f = {1.5f, -2.25f};
  const std::vector<double> d = {0.1, 1e10};
  const std::vector<std::int64_t> i = {-3, 1ll << 40};
  const std::vector<std::int32_t> i32 = {-7, 2147483647};
  const std::vector<std::uint8_t> u8 = {0, 255};
  const std::vector<std::uint16_t> f16 = {0x3c00, 0xc000, 0x0001, 0x7c00};   // 1, -2, 2^-24, inf
  const std::vector<std::uint16_t> bf16 = {0x3f80, 0xc0a0};                   // 1, -5
  SafeTensorsWriter w;
  w.add("f", {2}, f.data());
  w.add("d", {2}, d.data());
  w.add("i", {2}, i.data());
  w.add("i32", DType::I32, {2}, i32.data());
  w.add("u8", DType::U8, {2}, u8.data());
  w.add("f16", DType::F16, {4}, f16.data());
  w.add("bf16", DType::BF16, {2}, bf16.data());
  w.write(path);
  const auto st = SafeTensorsFile::load(path);

  CHECK(st.read_as<double>("f") == std::vector<double>{1.5, -2.25});
  CHECK(st.read_as<float>("d") == std::vector<float>{0.1f, 1e10f});
  CHECK(st.read_as<double>("i") == std::vector<double>{-3.0, double(1ll << 40)});
  CHECK(st.read_as<std::int64_t>("i32") == std::vector<std::int64_t>{-7, 2147483647});
  CHECK(st.read_as<float>("u8") == std::vector<float>{0.0f, 255.0f});
  CHECK(st.read_as<std::int64_t>("u8") == std::vector<std::int64_t>{0, 255});
  CHECK(st.read_as<float>("f16") ==
        std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24), std::numeric_limits<float>::infinity()});
  CHECK(st.read_as<double>("bf16") == std::vector<double>{1.0, -5.0});
  CHECK(st.info("i32").dtype == DType::I32);

  const std::string msg = error_of([&] { st.read_as<std::int64_t>("f"); });
  CHECK_THAT(msg, Contains(path) && Contains("'f'") && Contains("F32") && Contains("int64"));
}

TEST_CASE("shape mismatch names the file, the tensor and both shapes", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("run1.safetensors");
  const std::vector<float> g(384, 1.0f);
  SafeTensorsWriter w;
  w.add("blocks.0.norm1.weight", {384}, g.data());
  w.write(path);
  const auto st = SafeTensorsFile::load(path);
  CHECK(error_of([&] { st.read_as<float>("blocks.0.norm1.weight", {192}); }) ==
        "'" + path + "': tensor 'blocks.0.norm1.weight' has shape (384), expected (192)");
  CHECK_THAT(error_of([&] { st.read_as<double>("blocks.0.norm1.weight", {}); }),
             Contains("has shape (384), expected ()"));
  CHECK(st.read_as<float>("blocks.0.norm1.weight", {384}).size() == 384);
}

TEST_CASE("a missing tensor names the file and lists what it has", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("few.safetensors");
  write_sample(path);
  const auto st = SafeTensorsFile::load(path);
  CHECK(error_of([&] { st.info("x"); }) == "'" + path + "': no tensor 'x' (file has 3 tensors: a, b, c)");
  CHECK_THAT(error_of([&] { st.read_as<float>("x"); }), Contains("no tensor 'x'"));
  CHECK_THAT(error_of([&] { st.raw("x"); }), Contains("no tensor 'x'"));

  SafeTensorsWriter w;   // long lists are cut after 10 names
  const float v = 0;
  for (int k = 0; k < 25; ++k) w.add("t" + std::to_string(100 + k), {}, &v);
  w.write(tmp.file("many.safetensors"));
  const std::string msg = error_of([&] { SafeTensorsFile::load(tmp.file("many.safetensors")).info("x"); });
  CHECK_THAT(msg, Contains("file has 25 tensors: t100, t101") && Contains("t109, ...)"));
  CHECK_THAT(msg, !Contains("t110"));
}

TEST_CASE("every malformed file is a mae::Error naming the file", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("bad.safetensors");
  const std::string ok_entry = R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string data8(8, '\0');
  struct Case { const char* what; std::string bytes; const char* expect; };
  const std::vector<Case> cases = {
      {"empty file", "", "at least 8"},
      {"7 bytes", std::string(7, '\0'), "at least 8"},
      {"header length past end", le64(100) + "{}", "past the end"},
      {"absurd header length", le64(std::uint64_t(1) << 62) + "{}", "absurd"},
      {"absurd header length just over 100 MB", le64(100000001) + "{}", "absurd"},
      {"header not JSON", make_file("{not json", ""), "not valid JSON"},
      {"header truncated JSON", make_file("{\"x\":{\"dtype\":", ""), "not valid JSON"},
      {"header is an array", make_file("[1,2]", ""), "expected an object"},
      {"header is a string", make_file("\"x\"", ""), "expected an object"},
      {"entry not an object", make_file(R"({"x":3})", ""), "'x'"},
      {"missing dtype", make_file(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", data8), "missing 'dtype'"},
      {"missing shape", make_file(R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", data8), "missing 'shape'"},
      {"missing data_offsets", make_file(R"({"x":{"dtype":"F32","shape":[2]}})", data8), "missing 'data_offsets'"},
      {"dtype not a string", make_file(R"({"x":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", data8), "'dtype'"},
      {"unknown dtype", make_file(R"({"x":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", data8), "unknown dtype 'Q7'"},
      {"shape not an array", make_file(R"({"x":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", data8), "'shape'"},
      {"shape with a float", make_file(R"({"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data8), "'shape'"},
      {"shape with a string", make_file(R"({"x":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", data8), "'shape'"},
      {"negative dim", make_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8), "negative"},
      {"dim above int64", make_file(R"({"x":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", data8), "'shape'"},
      {"overflowing dims", make_file(R"({"x":{"dtype":"F64","shape":[4611686018427387904,4611686018427387904,4],"data_offsets":[0,8]}})", data8), "overflows"},
      {"offsets not an array", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":8}})", data8), "'data_offsets'"},
      {"one offset", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data8), "'data_offsets'"},
      {"three offsets", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", data8), "'data_offsets'"},
      {"negative offset", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", data8), "'data_offsets'"},
      {"string offset", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":["0",8]}})", data8), "'data_offsets'"},
      {"begin > end", make_file(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8), "begin > end"},
      {"end past data", make_file(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data8), "past the data buffer"},
      {"huge end", make_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", data8), "past the data buffer"},
      {"size mismatch", make_file(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", data8), "expected 16"},
      {"metadata not an object", make_file("{\"__metadata__\":\"x\"," + ok_entry + "}", data8), "'__metadata__'"},
      {"metadata value not a string", make_file("{\"__metadata__\":{\"a\":1}," + ok_entry + "}", data8), "'__metadata__' key 'a'"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    write_raw(path, c.bytes);
    const std::string msg = load_error(path);
    CHECK_THAT(msg, Contains("'" + path + "'") && Contains(c.expect));
  }
  // Sanity: the template the cases break is itself valid.
  write_raw(path, make_file("{\"__metadata__\":{\"a\":\"b\"}," + ok_entry + "}", data8));
  CHECK(SafeTensorsFile::load(path).read_as<float>("x", {2}) == std::vector<float>{0, 0});

  CHECK_THAT(load_error(tmp.file("missing.safetensors")), Contains(tmp.file("missing.safetensors")));
  CHECK_THAT(load_error(tmp.dir.string()), Contains(tmp.dir.string()) && Contains("not a regular file"));
}

TEST_CASE("a file truncated at any byte throws mae::Error naming the file", "[safetensors]") {
  TempDir tmp;
  const std::string good = tmp.file("good.safetensors"), cut = tmp.file("cut.safetensors");
  write_sample(good);
  const std::string bytes = slurp(good);
  REQUIRE(bytes.size() > 8 + header_length(bytes));
  REQUIRE_NOTHROW(SafeTensorsFile::load(good));
  int failures = 0;
  write_raw(cut, bytes);
  for (std::size_t len = bytes.size(); len-- > 0;) {   // shrink in place: cheap, same prefix
    fs::resize_file(cut, len);
    REQUIRE(fs::file_size(cut) == len);
    const std::string msg = load_error(cut);
    if (msg.find("'" + cut + "'") == std::string::npos) {
      ++failures;
      INFO("cut at " << len << " of " << bytes.size() << ": " << msg);
      CHECK(false);
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("corrupting any header byte gives a valid file or a mae::Error, never a crash", "[safetensors]") {
  TempDir tmp;
  const std::string good = tmp.file("good.safetensors"), bad = tmp.file("bad.safetensors");
  write_sample(good);
  const std::string bytes = slurp(good);
  const std::size_t end = std::size_t(8 + header_length(bytes));
  write_raw(bad, bytes);
  for (std::size_t pos = 0; pos < end; ++pos) {
    for (int v : {0x00, 0x22, 0x2d, 0x31, 0x39, 0x5d, 0x7b, 0xff}) {
      std::string b = bytes;
      b[pos] = char(v);
      overwrite(bad, b);
      try {
        const auto st = SafeTensorsFile::load(bad);
        for (const auto& name : st.names()) {   // whatever loaded must be readable in bounds
          const auto& ti = st.info(name);
          if (ti.dtype == DType::F32 || ti.dtype == DType::F64) (void)st.read_as<double>(name);
          else (void)st.read_as<std::int64_t>(name);
        }
      } catch (const mae::Error& e) {
        if (std::string(e.what()).find(bad) == std::string::npos) FAIL("error without file name: " << e.what());
      }
    }
  }
}

TEST_CASE("writer rejects duplicates, reserved names and bad shapes", "[safetensors]") {
  SafeTensorsWriter w;
  const float x[2] = {1, 2};
  w.add("x", {2}, x);
  CHECK_THAT(error_of([&] { w.add("x", {2}, x); }), Contains("duplicate tensor 'x'"));
  CHECK_THAT(error_of([&] { w.add("__metadata__", {2}, x); }), Contains("reserved"));
  CHECK_THAT(error_of([&] { w.add("neg", {-1, 2}, x); }), Contains("'neg'") && Contains("(-1, 2)"));
  CHECK_THAT(error_of([&] { w.add("null", {2}, static_cast<const float*>(nullptr)); }), Contains("null data"));
}

TEST_CASE("writing into a missing directory throws naming the path and leaves nothing behind",
          "[safetensors]") {
  TempDir tmp;
  const std::string path = (tmp.dir / "no_such_dir" / "out.safetensors").string();
  SafeTensorsWriter w;
  const double v = 1;
  w.add("v", {}, &v);
  CHECK_THAT(error_of([&] { w.write(path); }), Contains("'" + path + "'"));
  CHECK_FALSE(fs::exists(tmp.dir / "no_such_dir"));
  CHECK(fs::is_empty(tmp.dir));
}

TEST_CASE("a failed rename (target is a directory) removes the temp file and names the path",
          "[safetensors]") {
  TempDir tmp;
  const fs::path target = tmp.dir / "is_a_dir.safetensors";
  fs::create_directory(target);
  SafeTensorsWriter w;
  const double v = 1;
  w.add("v", {}, &v);
  CHECK_THAT(error_of([&] { w.write(target.string()); }), Contains("'" + target.string() + "'"));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.dir)) left.push_back(e.path().filename().string());
  CHECK(left == std::vector<std::string>{"is_a_dir.safetensors"});
  CHECK(fs::is_directory(target));
}

TEST_CASE("overwriting an existing file replaces it by rename, not in place", "[safetensors]") {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.safetensors");
  const std::vector<float> old_v = {1, 2, 3}, new_v = {9, 8, 7, 6, 5};
  SafeTensorsWriter w1, w2;
  w1.add("w", {3}, old_v.data());
  w1.set_metadata("step", "1");
  w1.write(path);
  const std::string old_bytes = slurp(path);

  std::ifstream reader(path, std::ios::binary);   // opened before the overwrite
  REQUIRE(reader);
  w2.add("w", {5}, new_v.data());
  w2.set_metadata("step", "2");
  w2.write(path);

  // A reader that had the old file open still sees the complete old contents (new inode).
  const std::string seen((std::istreambuf_iterator<char>(reader)), std::istreambuf_iterator<char>());
  CHECK(seen == old_bytes);
  const auto st = SafeTensorsFile::load(path);
  CHECK(st.read_as<float>("w", {5}) == new_v);
  CHECK(st.metadata().at("step") == "2");
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.dir)) left.push_back(e.path().filename().string());
  CHECK(left == std::vector<std::string>{"ckpt.safetensors"});   // no temp file left over
}

TEST_CASE("every fixture safetensors file loads; expected.safetensors has loss () F64, ids_restore I64",
          "[safetensors][fixtures]") {
  const fs::path root = fs::path(MAE_FIXTURES_DIR) / "mae_parity";
  if (!fs::is_directory(root)) {
    WARN("fixture directory " << root.string() << " not found; nothing to check");
    return;
  }
  int files = 0, expected_files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".safetensors") continue;
    INFO(entry.path().string());
    const auto st = SafeTensorsFile::load(entry.path().string());
    ++files;
    CHECK_FALSE(st.names().empty());
    for (const auto& name : st.names()) {   // every tensor is readable and sized consistently
      const auto& ti = st.info(name);
      CHECK(ti.end - ti.begin == std::size_t(ti.numel()) * mae::io::dtype_size(ti.dtype));
      if (ti.dtype == DType::I64) CHECK(st.read_as<std::int64_t>(name, ti.shape).size() == std::size_t(ti.numel()));
      else CHECK(st.read_as<double>(name, ti.shape).size() == std::size_t(ti.numel()));
    }
    if (entry.path().filename() == "expected.safetensors") {
      ++expected_files;
      REQUIRE(st.contains("loss"));
      CHECK(st.info("loss").dtype == DType::F64);
      CHECK(st.info("loss").shape.empty());
      const double loss = st.read_as<double>("loss", {})[0];
      CHECK(std::isfinite(loss));
      CHECK(loss > 0);
      REQUIRE(st.contains("ids_restore"));
      const auto& ir = st.info("ids_restore");
      CHECK(ir.dtype == DType::I64);
      REQUIRE(ir.shape.size() == 2);
      auto ids = st.read_as<std::int64_t>("ids_restore", ir.shape);   // each row a permutation of 0..L-1
      for (Index n = 0; n < ir.shape[0]; ++n) {
        std::vector<std::int64_t> row(ids.begin() + n * ir.shape[1], ids.begin() + (n + 1) * ir.shape[1]);
        std::sort(row.begin(), row.end());
        for (Index l = 0; l < ir.shape[1]; ++l) CHECK(row[std::size_t(l)] == l);
      }
    }
  }
  CHECK(files > 0);
  CHECK(expected_files > 0);
}
