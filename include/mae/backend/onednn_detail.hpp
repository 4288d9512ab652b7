// The pieces of OneDnn (backend/onednn.hpp) that are not the GEMM logic: a call signature and its
// hash key, the cached primitive with its memory objects, and the grow-only aligned buffer behind
// the scratchpads and split-k's staging.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "mae/backend/cpu_eigen.hpp"

namespace mae {

namespace detail {

// One gemm / gemm_batched call signature. batched = false: a 2-D primitive (strides and batch unused).
struct DnnlGemmShape {
  Op ta = Op::N, tb = Op::N;
  Index m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  Stride2 sa, sb, sc;
  Batch2 batch;
  float alpha = 1, beta = 0;
  bool batched = false;
  int slot = 0;  // split k: which thread's slice (each slot has its own primitive and memory objects)
};

struct DnnlGemmKey {
  std::array<std::int64_t, 20> v{};
  explicit DnnlGemmKey(const DnnlGemmShape& s) {
    std::uint32_t ab = 0, bb = 0;
    std::memcpy(&ab, &s.alpha, sizeof ab);
    std::memcpy(&bb, &s.beta, sizeof bb);
    v = {std::int64_t(s.ta), std::int64_t(s.tb), std::int64_t(s.batched), s.m, s.n, s.k, s.lda, s.ldb, s.ldc,
         s.sa.outer, s.sa.inner, s.sb.outer, s.sb.inner, s.sc.outer, s.sc.inner, s.batch.outer, s.batch.inner,
         std::int64_t(ab), std::int64_t(bb), std::int64_t(s.slot)};
  }
  bool operator==(const DnnlGemmKey& o) const { return v == o.v; }
};

struct DnnlGemmKeyHash {
  std::size_t operator()(const DnnlGemmKey& key) const noexcept {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a over the 64-bit fields
    for (std::int64_t x : key.v) {
      h ^= std::uint64_t(x);
      h *= 1099511628211ull;
      h ^= h >> 29;
    }
    return std::size_t(h);
  }
};

inline std::string describe(const DnnlGemmShape& s) {
  auto op = [](Op o) { return o == Op::N ? "N" : "T"; };
  std::string text = cat("(ta=", op(s.ta), ", tb=", op(s.tb), ", m=", s.m, ", n=", s.n, ", k=", s.k, ", lda=", s.lda,
                         ", ldb=", s.ldb, ", ldc=", s.ldc, ", alpha=", s.alpha, ", beta=", s.beta);
  if (s.slot > 0) text += cat(", split-k slice ", s.slot);
  if (s.batched)
    text += cat(", batch=", s.batch.outer, "x", s.batch.inner, ", sa=(", s.sa.outer, ", ", s.sa.inner, "), sb=(",
                s.sb.outer, ", ", s.sb.inner, "), sc=(", s.sc.outer, ", ", s.sc.inner, ")");
  return text + ")";
}

// A cached primitive with its memory objects (handles re-pointed per call) and argument array.
// per_item: the batched signature has no 4-D primitive; the call loops over the 2-D one.
struct DnnlMatmul {
  dnnl::matmul prim;
  dnnl::memory a, b, c, scratch;
  std::array<dnnl_exec_arg_t, 4> args{};
  int nargs = 0;
  std::size_t scratch_bytes = 0;
  bool per_item = false;
};

// A grow-only, 64-byte-aligned buffer (scratchpads, split-k staging and slice outputs): grows only
// when a new signature needs more, so cached calls never allocate.
struct AlignedBuffer {
  struct FreeDeleter {
    void operator()(void* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<void, FreeDeleter> data;
  std::size_t bytes = 0;

  // Makes the buffer hold at least `need` bytes (old contents are not kept); `what` names it in the error.
  void reserve(std::size_t need, const DnnlGemmShape& s, const char* what) {
    if (need <= bytes) return;
    const std::size_t size = (need + 63) / 64 * 64;
    data.reset(std::aligned_alloc(64, size));
    bytes = data ? size : 0;
    MAE_CHECK(data, "OneDnn: cannot allocate a ", size, "-byte ", what, " for ", describe(s));
  }
  float* floats() const noexcept { return static_cast<float*>(data.get()); }
};

}  // namespace detail

}  // namespace mae
