// Bounds-checked reader and writer for the safetensors format.
//
// File layout:  [u64 n, little-endian] [n bytes: UTF-8 JSON object] [data buffer]
//   JSON: { "__metadata__": {"key": "value", ...},                       (optional, string -> string)
//           "<tensor name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ... }
//   Offsets are byte offsets into the data buffer, end - begin = numel * dtype size; shape [] is a
//   scalar (one element). Data is little-endian and C-contiguous (last index fastest).
// Our writer stores tensors back to back in sorted-name order, always writes __metadata__, and pads
// the JSON with spaces so the data buffer starts at an 8-byte aligned file offset.
//
// Loading reads the whole file into memory and validates every header field against the file before
// any tensor is touched; any inconsistency is a mae::Error that starts with "'<path>': ".
// Endianness: the host must be little-endian (x86, ARM); this is a static_assert, there is no byte
// swapping. Element reads go through memcpy, so the data buffer need not be aligned in memory.
#pragma once
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>  // getpid, for the temporary file name

#include <nlohmann/json.hpp>

#include "mae/config.hpp"
#include "mae/io/durable.hpp"

namespace mae::io {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "mae/io/safetensors.hpp assumes a little-endian host (no byte swapping)");

enum class DType { F32, F64, I64, I32, F16, BF16, U8 };

inline std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::U8: return 1;
  }
  throw Error("dtype_size: invalid DType value");
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";   case DType::F64: return "F64";
    case DType::I64: return "I64";   case DType::I32: return "I32";
    case DType::F16: return "F16";   case DType::BF16: return "BF16";
    case DType::U8: return "U8";
  }
  throw Error("dtype_name: invalid DType value");
}

inline std::string shape_string(const std::vector<Index>& s) {   // (3, 4); (384); scalar ()
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<Index> shape;
  std::size_t begin = 0, end = 0;   // byte range inside the data buffer
  Index numel() const {
    Index n = 1;
    for (Index d : shape) n *= d;
    return n;
  }
};

namespace detail {

// Bytes of a tensor of this shape, or false if a dim is negative or the product overflows `limit`.
inline bool checked_nbytes(const std::vector<Index>& shape, DType t, std::size_t limit,
                           std::size_t& bytes) {
  for (Index d : shape) if (d < 0) return false;
  for (Index d : shape) if (d == 0) { bytes = 0; return true; }   // empty: never overflows
  std::size_t n = dtype_size(t);
  for (Index d : shape) {
    if (n > limit / std::size_t(d)) return false;
    n *= std::size_t(d);
  }
  bytes = n;
  return true;
}

inline bool parse_dtype(const std::string& s, DType& t) {
  for (DType c : {DType::F32, DType::F64, DType::I64, DType::I32, DType::F16, DType::BF16, DType::U8})
    if (s == dtype_name(c)) { t = c; return true; }
  return false;
}

inline float float_from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float half_to_float(std::uint16_t h) {   // IEEE binary16 -> binary32, exact
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16, mant = h & 0x3ffu;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  if (exp == 0x1f) return float_from_bits(sign | 0x7f800000u | (mant << 13));           // inf, nan
  if (exp != 0) return float_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));     // 127 - 15
  const float v = std::ldexp(float(mant), -24);                                        // 0, subnormal
  return sign ? -v : v;
}

inline float bf16_to_float(std::uint16_t h) { return float_from_bits(std::uint32_t(h) << 16); }

template <class Src, class T>
void convert(const unsigned char* p, std::size_t n, T* out) {
  for (std::size_t i = 0; i < n; ++i) {
    Src v;
    std::memcpy(&v, p + i * sizeof(Src), sizeof(Src));
    out[i] = static_cast<T>(v);
  }
}

}  // namespace detail

class SafeTensorsFile {
 public:
  static constexpr std::uint64_t max_header_bytes = 100u * 1000u * 1000u;

  static SafeTensorsFile load(const std::string& path) {
    SafeTensorsFile f;
    f.path_ = path;
    f.read_bytes();
    f.parse_header();
    return f;
  }

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }

  const TensorInfo& info(const std::string& name) const {
    const auto it = tensors_.find(name);
    if (it != tensors_.end()) return it->second;
    std::string list;
    std::size_t shown = 0;
    for (const auto& kv : tensors_) {
      if (shown == 10) { list += ", ..."; break; }
      list += (shown++ ? ", " : "") + kv.first;
    }
    throw Error(mae::detail::cat("'", path_, "': no tensor '", name, "' (file has ", tensors_.size(),
                                 " tensors", tensors_.empty() ? "" : ": ", list, ")"));
  }

  std::vector<std::string> names() const {   // sorted (std::map order)
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& kv : tensors_) out.push_back(kv.first);
    return out;
  }

  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  const unsigned char* raw(const std::string& name) const {
    return bytes_.data() + data_start_ + info(name).begin;
  }

  // Converts F32/F64/I64/I32/U8/F16/BF16 to float or double, and I64/I32/U8 to int64. Floating
  // tensors are not read as int64 (lossy; almost certainly a mistake) and say so.
  template <class T>
  std::vector<T> read_as(const std::string& name) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> ||
                      std::is_same_v<T, std::int64_t>,
                  "read_as<T>: T must be float, double or std::int64_t");
    const TensorInfo& ti = info(name);
    const bool floating = ti.dtype == DType::F32 || ti.dtype == DType::F64 ||
                          ti.dtype == DType::F16 || ti.dtype == DType::BF16;
    MAE_CHECK(!(std::is_integral_v<T> && floating), "'", path_, "': tensor '", name, "' has dtype ",
              dtype_name(ti.dtype), ", expected an integer dtype (I64, I32, U8) to read as int64");
    const std::size_t n = std::size_t(ti.numel());
    std::vector<T> out(n);
    const unsigned char* p = raw(name);
    switch (ti.dtype) {
      case DType::F32: detail::convert<float>(p, n, out.data()); break;
      case DType::F64: detail::convert<double>(p, n, out.data()); break;
      case DType::I64: detail::convert<std::int64_t>(p, n, out.data()); break;
      case DType::I32: detail::convert<std::int32_t>(p, n, out.data()); break;
      case DType::U8: detail::convert<std::uint8_t>(p, n, out.data()); break;
      case DType::F16: case DType::BF16: {
        std::vector<std::uint16_t> h(n);
        detail::convert<std::uint16_t>(p, n, h.data());
        for (std::size_t i = 0; i < n; ++i)
          out[i] = T(ti.dtype == DType::F16 ? detail::half_to_float(h[i]) : detail::bf16_to_float(h[i]));
        break;
      }
    }
    return out;
  }

  template <class T>
  std::vector<T> read_as(const std::string& name, const std::vector<Index>& expected_shape) const {
    const TensorInfo& ti = info(name);
    MAE_CHECK(ti.shape == expected_shape, "'", path_, "': tensor '", name, "' has shape ",
              shape_string(ti.shape), ", expected ", shape_string(expected_shape));
    return read_as<T>(name);
  }

 private:
  std::string path_;
  std::vector<unsigned char> bytes_;   // the whole file
  std::size_t data_start_ = 0;         // 8 + header length
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;

  template <class... A>
  [[noreturn]] void fail(const A&... a) const {
    throw Error(mae::detail::cat("'", path_, "': ", a...));
  }

  void read_bytes() {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(path_, ec);
    if (ec || !fs::exists(st)) fail("cannot open safetensors file: ", ec ? ec.message() : "no such file");
    if (!fs::is_regular_file(st)) fail("not a regular file");
    const std::uintmax_t size = fs::file_size(path_, ec);
    if (ec) fail("cannot read file size: ", ec.message());
    std::ifstream in(path_, std::ios::binary);
    if (!in) fail("cannot open for reading: ", std::strerror(errno));
    bytes_.resize(std::size_t(size));
    in.read(reinterpret_cast<char*>(bytes_.data()), std::streamsize(size));
    if (in.gcount() != std::streamsize(size))
      fail("read ", in.gcount(), " bytes, expected ", size, " (file changed or unreadable)");
  }

  void parse_header() {
    using nlohmann::json;
    if (bytes_.size() < 8)
      fail("file is ", bytes_.size(), " bytes, expected at least 8 (the header length)");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | bytes_[std::size_t(i)];
    if (n > max_header_bytes)
      fail("header length ", n, " bytes is absurd (limit ", max_header_bytes, "); not a safetensors file?");
    if (n > bytes_.size() - 8)
      fail("header length ", n, " bytes runs past the end of the file (", bytes_.size() - 8,
           " bytes after the length field)");
    data_start_ = 8 + std::size_t(n);
    const std::size_t data_size = bytes_.size() - data_start_;

    const char* h = reinterpret_cast<const char*>(bytes_.data() + 8);
    const json header = json::parse(h, h + n, nullptr, /*allow_exceptions=*/false);
    if (header.is_discarded()) fail("header is not valid JSON");
    if (!header.is_object()) fail("header is JSON ", header.type_name(), ", expected an object");

    for (const auto& [name, e] : header.items()) {
      if (name == "__metadata__") { parse_metadata(e); continue; }
      const std::string where = "tensor '" + name + "': ";
      if (!e.is_object()) fail(where, "entry is ", e.type_name(), ", expected an object");
      for (const char* key : {"dtype", "shape", "data_offsets"})
        if (!e.contains(key)) fail(where, "missing '", key, "'");
      TensorInfo ti;
      ti.name = name;

      const json& dt = e.at("dtype");
      if (!dt.is_string()) fail(where, "'dtype' is ", dt.type_name(), ", expected a string");
      if (!detail::parse_dtype(dt.get<std::string>(), ti.dtype))
        fail(where, "unknown dtype '", dt.get<std::string>(), "' (supported: F32, F64, I64, I32, F16, BF16, U8)");

      const json& sh = e.at("shape");
      if (!sh.is_array()) fail(where, "'shape' is ", sh.type_name(), ", expected an array of integers");
      for (const json& d : sh) {
        if (!d.is_number_integer()) fail(where, "'shape' has a ", d.type_name(), " entry, expected integers");
        if (d.is_number_unsigned() ? d.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<Index>::max())
                                   : d.get<std::int64_t>() < 0)
          fail(where, "'shape' ", sh.dump(), " has a negative or huge dimension, expected dims >= 0");
        ti.shape.push_back(Index(d.get<std::int64_t>()));
      }

      const json& off = e.at("data_offsets");
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        fail(where, "'data_offsets' is ", off.dump(), ", expected [begin, end] with non-negative integers");
      const std::uint64_t b = off[0].get<std::uint64_t>(), en = off[1].get<std::uint64_t>();
      if (b > en) fail(where, "data_offsets [", b, ", ", en, "] has begin > end");
      if (en > data_size)
        fail(where, "data_offsets [", b, ", ", en, "] ends past the data buffer (", data_size,
             " bytes; file truncated?)");
      std::size_t want = 0;
      if (!detail::checked_nbytes(ti.shape, ti.dtype, std::numeric_limits<std::size_t>::max(), want))
        fail(where, "shape ", shape_string(ti.shape), " of ", dtype_name(ti.dtype),
             " overflows a 64-bit byte count");
      if (en - b != want)
        fail(where, "data_offsets [", b, ", ", en, "] span ", en - b, " bytes, expected ", want,
             " for shape ", shape_string(ti.shape), " of ", dtype_name(ti.dtype));
      ti.begin = std::size_t(b);
      ti.end = std::size_t(en);
      tensors_.emplace(name, std::move(ti));
    }
  }

  void parse_metadata(const nlohmann::json& m) {
    if (!m.is_object()) fail("'__metadata__' is ", m.type_name(), ", expected an object of strings");
    for (const auto& [k, v] : m.items()) {
      if (!v.is_string())
        fail("'__metadata__' key '", k, "' is ", v.type_name(), ", expected a string");
      metadata_[k] = v.get<std::string>();
    }
  }
};

class SafeTensorsWriter {
 public:
  void add(const std::string& name, DType dtype, std::vector<Index> shape, const void* data) {
    MAE_CHECK(name != "__metadata__", "SafeTensorsWriter: '__metadata__' is reserved, not a tensor name");
    MAE_CHECK(tensors_.count(name) == 0, "SafeTensorsWriter: duplicate tensor '", name, "'");
    std::size_t bytes = 0;
    MAE_CHECK(detail::checked_nbytes(shape, dtype, std::numeric_limits<std::size_t>::max() / 2, bytes),
              "SafeTensorsWriter: tensor '", name, "' has invalid shape ", shape_string(shape),
              ", expected dims >= 0 with a representable size");
    MAE_CHECK(bytes == 0 || data != nullptr, "SafeTensorsWriter: tensor '", name, "' has null data");
    Entry& e = tensors_[name];
    e.dtype = dtype;
    e.shape = std::move(shape);
    const auto* p = static_cast<const unsigned char*>(data);
    e.bytes.assign(p, p + bytes);
  }
  void add(const std::string& name, std::vector<Index> shape, const float* data) {
    add(name, DType::F32, std::move(shape), static_cast<const void*>(data));
  }
  void add(const std::string& name, std::vector<Index> shape, const double* data) {
    add(name, DType::F64, std::move(shape), static_cast<const void*>(data));
  }
  void add(const std::string& name, std::vector<Index> shape, const std::int64_t* data) {
    add(name, DType::I64, std::move(shape), static_cast<const void*>(data));
  }

  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // Writes "<path>.tmp.<pid>", then renames it over <path> (atomic on POSIX within one file
  // system): readers see the old file or the new one, never a half-written one. No fsync: after a
  // power loss the new file may be missing, but <path> is never torn by this process.
  void write(const std::string& path) const {
    std::string header;
    try {
      header = header_json();
    } catch (const nlohmann::json::exception& e) {   // e.g. a name that is not valid UTF-8
      throw Error(mae::detail::cat("'", path, "': cannot encode safetensors header: ", e.what()));
    }
    header.append((8 - header.size() % 8) % 8, ' ');   // data starts at 8 + header.size(), aligned
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(std::uint64_t(header.size()) >> (8 * i));

    const std::string tmp = temp_name(path);
    struct RemoveTemp {   // removes the temporary file on every exit but a successful rename
      const std::string& file;
      bool keep = false;
      ~RemoveTemp() { if (!keep) std::remove(file.c_str()); }
    } guard{tmp};
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out)
        throw Error(mae::detail::cat("'", path, "': cannot create '", tmp, "' for writing: ",
                                     std::strerror(errno), " (does the directory exist and is it writable?)"));
      out.write(reinterpret_cast<const char*>(len), 8);
      out.write(header.data(), std::streamsize(header.size()));
      for (const auto& kv : tensors_)
        out.write(reinterpret_cast<const char*>(kv.second.bytes.data()), std::streamsize(kv.second.bytes.size()));
      out.close();
      if (out.fail())
        throw Error(mae::detail::cat("'", path, "': writing '", tmp, "' failed: ", std::strerror(errno)));
    }
    if (!sync_path(tmp))
      throw Error(mae::detail::cat("'", path, "': cannot flush '", tmp, "' to disk: ", std::strerror(errno)));
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
      throw Error(mae::detail::cat("'", path, "': cannot rename '", tmp, "' to it: ", std::strerror(errno)));
    guard.keep = true;
    sync_path(parent_dir(path), true);  // best effort: the rename itself is already atomic
  }

 private:
  struct Entry {
    DType dtype = DType::F32;
    std::vector<Index> shape;
    std::vector<unsigned char> bytes;
  };
  std::map<std::string, Entry> tensors_;   // sorted by name: the order of the data buffer
  std::map<std::string, std::string> metadata_;

  std::string header_json() const {
    using nlohmann::json;
    json h = json::object();
    json meta = json::object();
    for (const auto& kv : metadata_) meta[kv.first] = kv.second;
    h["__metadata__"] = std::move(meta);
    std::uint64_t offset = 0;
    for (const auto& [name, e] : tensors_) {
      json shape = json::array();
      for (Index d : e.shape) shape.push_back(std::int64_t(d));
      h[name] = {{"dtype", dtype_name(e.dtype)}, {"shape", std::move(shape)},
                 {"data_offsets", {offset, offset + e.bytes.size()}}};
      offset += e.bytes.size();
    }
    return h.dump();
  }
};

}  // namespace mae::io
