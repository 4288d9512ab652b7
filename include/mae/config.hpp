// mae.cpp: common definitions shared by every header.
// Index type, the library's error type, checks, and the host/device function marker.
#pragma once
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#define MAE_VERSION_MAJOR 0
#define MAE_VERSION_MINOR 1
#define MAE_VERSION_PATCH 0

#if defined(__CUDACC__)
#define MAE_HOST_DEVICE __host__ __device__
#else
#define MAE_HOST_DEVICE
#endif

// On a function: let GCC vectorize its loops with 512-bit registers where the target has AVX-512
// (its tuning for AVX-512 CPUs prefers 256-bit ones). noinline: inlined, the loop would take its
// caller's options. A no-op elsewhere. Only for loops of pure arithmetic per element (GELU): a
// reduction or a short row loop ran slower with them.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && defined(__AVX512F__)
#define MAE_WIDE_VECTORS __attribute__((target("prefer-vector-width=512"), noinline))
#else
#define MAE_WIDE_VECTORS
#endif

namespace mae {

using Index = std::ptrdiff_t;

inline constexpr const char* version_string = "0.1.0";

// Every failure the library reports is a mae::Error whose message names the thing (file, tensor,
// field) and says what was expected and what was found.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... A>
std::string cat(const A&... a) {
  std::ostringstream s;
  s.precision(17);
  (s << ... << a);
  return s.str();
}
}  // namespace detail

}  // namespace mae

// Stays on in release builds: API boundaries (shapes, configs, files).
#define MAE_CHECK(cond, ...)                                       \
  do {                                                             \
    if (!(cond)) throw ::mae::Error(::mae::detail::cat(__VA_ARGS__)); \
  } while (0)

// Debug-only, for inner loops.
#ifndef NDEBUG
#define MAE_ASSERT(cond, ...) MAE_CHECK(cond, __FILE__, ":", __LINE__, ": ", __VA_ARGS__)
#else
#define MAE_ASSERT(cond, ...) ((void)0)
#endif
