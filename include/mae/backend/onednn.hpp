// OneDnn: the CpuEigen kernels (memory, parallel_for, elementwise) with float GEMMs run as oneDNN
// matmul primitives. Coded against oneDNN 2.6 (`matmul::desc`, `matmul::primitive_desc`).
//
// float:  C = alpha·op(A)·op(B) + beta·C is one matmul primitive, created the first time a call
//         signature (ops, m, n, k, lda, ldb, ldc, batch shape and strides, alpha, beta) is seen and
//         cached in this object. Transposes and leading dimensions are memory-descriptor strides, so
//         our buffers are wrapped, never copied (op(A) = Aᵀ is dims (m, k) with strides (1, lda)).
//         alpha is the output scale, beta a sum post-op; beta == 0 has no post-op, so old C contents
//         (even NaN) are never read. gemm_batched is one primitive over 4-D descriptors
//         [outer, inner, rows, cols] with the caller's strides (a zero stride on A or B is a
//         broadcast batch dim of size 1); strides oneDNN cannot express (negative ones, a zero stride
//         on C) or that it rejects run as a loop of one cached 2-D primitive.
// double: the Eigen path (`if constexpr`): oneDNN's CPU engine has no f64 matmul.
// Split k: a plain gemm with op(A) = Aᵀ, op(B) = B and a long k (a weight gradient dW = dyᵀ·x, k =
//         the tokens of a batch) runs as one single-threaded primitive per thread over its slice of
//         k (own memory objects, stream, scratchpad); slice 0 accumulates into C with the caller's
//         alpha and beta, slice p > 0 writes alpha·A_p·B_p into its own buffer, then C adds slices
//         1, 2, ... in order. oneDNN's threaded GEMM ran these shapes at 55-80% of its square-sgemm
//         speed on the 2-core AVX2 VM; split, they run 0-15% faster (25-40% with lda % 512 == 0,
//         below). Deterministic for a given thread count (the summation order depends on it). On
//         by default only where oneDNN has no AVX-512 kernels (split_k_pays).
// Wide B: a plain gemm with op(B) = B and n > kWideB (base224's fc2 products, n = 3072) runs through
//         dnnl_sgemm, oneDNN's BLAS-style call, instead of a matmul primitive. On AVX-512 oneDNN 2.6
//         gives a matmul with dense operands to its brgemm kernels, which read such a B at 30-80%
//         of their speed on narrower ones (m 400, n 3072, k 768: 136 vs 372 GFLOP/s for dnnl_sgemm,
//         whose gemm:jit kernels pack B first); up to n = 2048 the two are within ±15% either way.
//         On by default where oneDNN has AVX-512 kernels (wide_b_sgemm_pays); elsewhere the matmul
//         runs gemm:jit already. dnnl_sgemm takes alpha and beta itself (beta == 0 never reads C)
//         and mallocs its packing workspace inside every call, as its matmul twin does.
// Split C: a plain gemm with a side <= 256 and 2^22 to 2^29 multiply-adds (not split in k, not
//         through dnnl_sgemm) runs as one single-threaded primitive per thread over its block of C's rows
//         (m >= n) or columns, each over the whole k: no partial sums, every element summed as by
//         one thread.
//         oneDNN's own threading of these mid-size products left a thread waiting: on the 2-core
//         Zen 4 VM (AVX-512) 1 → 2 threads gained only 1.1-1.7× on half of tiny32's shapes, and
//         split they ran 7-38% faster (tiny32, fmnist28 dW products +26-34%); the larger base224
//         products gained nothing or lost, hence the bounds. On by default where oneDNN has AVX-512
//         kernels (split_c_pays), measured on that Zen 4 only.
// Narrow sgemm: a product of that same narrow mid-size class with op(A) = A (a forward x·Wᵀ or an
//         input gradient dy·W; split k and split C then take only the weight gradients Aᵀ·B) runs
//         through dnnl_sgemm (oneDNN's gemm:jit kernels) instead of a brgemm matmul primitive.
//         On the 2-core AVX-512 Xeon VM of 2026-12-02 (with AMX flags) dnnl_sgemm ran tiny32's and
//         fmnist28's x·Wᵀ and dy·W products 5-20% faster than the matmul and than split C, and
//         their Aᵀ·B products no faster; on base224's wider products it won some and lost some,
//         hence the same bounds as split C. On by default where oneDNN has AVX-512 kernels
//         (narrow_sgemm_pays).
// NN sgemm: every other plain gemm with op(A) = A and op(B) = B (an input gradient dy·W) of
//         kSgemmMinMacs multiply-adds or more runs through dnnl_sgemm too. On the 2-core AVX-512
//         Xeon VM of 2026-12-03 dnnl_sgemm ran all of base224's dy·W products 5-23% faster than the
//         matmul primitive (encoder qkv 1.15×, fc1 1.16-1.23×, decoder 1.06-1.10×, two runs of a
//         harness), while its x·Wᵀ products were within ±5% except those with k >= 2048 (0.85-0.95×)
//         and its Aᵀ·B products won with k = 400 and lost with k = 1576 (0.81-0.99×): those two stay
//         matmul primitives. On by default where oneDNN has AVX-512 kernels (nn_sgemm_pays).
//
// A call on a cached signature re-points the cached dnnl::memory objects (`set_data_handle`) and
// executes through the C API with a pre-built argument array: this object allocates nothing. oneDNN
// 2.6 itself makes a few small allocations inside every dnnl_primitive_execute (its internal
// argument map); those are outside our control and are measured by tests/backend/test_gemm.cpp.
// The scratchpad is user-managed: one 64-byte-aligned buffer owned by this object, grown only when
// a new primitive needs more.
//
// Thread safety: one OneDnn object is used by one thread at a time (the cache, the memory objects
// and the scratchpad are shared by all calls). gemm_serial alone is reentrant (pure Eigen, no
// state), as batched_via_gemm calls it from inside a parallel region. Primitives size their
// scratchpad for omp_get_max_threads() at creation: keep the thread count fixed while using one
// object. The object is movable, not copyable; a moved-from object has no engine: destroy it or
// assign to it (its float GEMMs throw mae::Error).
#pragma once
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <oneapi/dnnl/dnnl_debug.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/onednn_detail.hpp"

namespace mae {


struct OneDnn : CpuKernels {
  static constexpr const char* name = "onednn";

  OneDnn() {
    try {
      engine_ = dnnl::engine(dnnl::engine::kind::cpu, 0);
      stream_ = dnnl::stream(engine_);
    } catch (const dnnl::error& e) {
      throw Error(detail::cat("OneDnn: cannot create the CPU engine and stream: oneDNN ",
                              dnnl_status2str(e.status), ": ", e.what(), " (", __FILE__, ":", __LINE__, ")"));
    }
  }
  OneDnn(const OneDnn&) = delete;
  OneDnn& operator=(const OneDnn&) = delete;
  OneDnn(OneDnn&&) = default;
  OneDnn& operator=(OneDnn&&) = default;
  ~OneDnn() = default;

  template <class T>
  void gemm(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb, T beta,
            T* c, Index ldc) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "T must be float or double");
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    if constexpr (std::is_same_v<T, float>) {
      if (m == 0 || n == 0) return;
      if (k == 0) return detail::eigen_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);  // C = beta·C
      const detail::DnnlGemmShape s = shape(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc);
      const int slices = split_k_slices(s);
      if (slices > 1) return gemm_split_k(s, slices, a, b, c);
      if (routes_to_sgemm(s)) return sgemm(s, a, b, c);
      const int parts = split_c_parts(s);
      if (parts > 1) return gemm_split_c(s, parts, a, b, c);
      execute(s, primitive_for(s), a, b, c);
    } else {
      detail::eigen_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
  }

  template <class T>
  void gemm_batched(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, Stride2 sa, const T* b,
                    Index ldb, Stride2 sb, T beta, T* c, Index ldc, Stride2 sc, Batch2 batch) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "T must be float or double");
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    MAE_CHECK(batch.outer >= 0 && batch.inner >= 0, "gemm_batched: negative batch ", batch.outer, "x", batch.inner);
    if constexpr (std::is_same_v<T, float>) {
      if (m == 0 || n == 0 || batch.outer == 0 || batch.inner == 0) return;
      if (k == 0)  // C = beta·C per item, A and B unread
        return batched_via_gemm(*this, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
      if (batch.outer == 1 && batch.inner == 1) return gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      detail::DnnlGemmShape s = shape(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc);
      s.sa = sa, s.sb = sb, s.sc = sc, s.batch = batch, s.batched = true;
      detail::DnnlMatmul& p = primitive_for(s);
      if (!p.per_item) return execute(s, p, a, b, c);
      detail::DnnlMatmul& q = primitive_for(shape(ta, tb, m, n, k, alpha, lda, ldb, beta, ldc));
      for (Index i = 0; i < batch.outer; ++i)
        for (Index j = 0; j < batch.inner; ++j)
          execute(s, q, a + i * sa.outer + j * sa.inner, b + i * sb.outer + j * sb.inner,
                  c + i * sc.outer + j * sc.inner);
    } else {
      batched_via_gemm(*this, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
    }
  }

  // Introspection for tests and benchmarks.
  std::size_t cached_primitives() const noexcept { return cache_.size(); }
  std::size_t scratchpad_bytes() const noexcept { return scratch_.empty() ? 0 : scratch_[0].bytes; }
  // Split k (see the top of this file): on by default where it pays (split_k_pays); off, every gemm
  // is one threaded primitive.
  void set_split_k(bool on) noexcept { split_k_ = on; }
  // Where oneDNN runs AVX-512 kernels, its threaded GEMM already takes these shapes at 80-97% of its
  // square-sgemm speed, and splitting cost ~1% of a step (2-core Xeon VM, 2026-12-02); without
  // AVX-512 (the 2-core AVX2 EPYC VM) splitting gained 0-15% per call, 25-40% on 512-wide ones.
  static bool split_k_pays() noexcept { return !avx512_kernels(); }
  bool split_k() const noexcept { return split_k_; }
  // How many slices a gemm signature runs as (1: not split).
  int split_k_slices(Op ta, Op tb, Index m, Index n, Index k) const {
    return split_k_slices(shape(ta, tb, m, n, k, 1.0f, ta == Op::N ? k : m, tb == Op::N ? n : k, 0.0f, n));
  }
  // Wide B through dnnl_sgemm (see the top of this file): on by default where oneDNN has AVX-512
  // kernels; off, every unsplit gemm is a matmul primitive.
  void set_wide_b_sgemm(bool on) noexcept { wide_b_sgemm_ = on; }
  static bool wide_b_sgemm_pays() noexcept { return avx512_kernels(); }
  bool wide_b_sgemm() const noexcept { return wide_b_sgemm_; }
  // Whether a gemm signature runs through dnnl_sgemm (when it is not split).
  bool routes_to_sgemm(Op ta, Op tb, Index m, Index n, Index k) const {
    return routes_to_sgemm(shape(ta, tb, m, n, k, 1.0f, ta == Op::N ? k : m, tb == Op::N ? n : k, 0.0f, n));
  }
  static constexpr Index kWideB = 2048;
  // Narrow sgemm (see the top of this file): on by default where oneDNN has AVX-512 kernels; off,
  // those products are split C (or one matmul primitive) again.
  void set_narrow_sgemm(bool on) noexcept { narrow_sgemm_ = on; }
  static bool narrow_sgemm_pays() noexcept { return avx512_kernels(); }
  bool narrow_sgemm() const noexcept { return narrow_sgemm_; }
  // NN sgemm (see the top of this file): on by default where oneDNN has AVX-512 kernels.
  void set_nn_sgemm(bool on) noexcept { nn_sgemm_ = on; }
  static bool nn_sgemm_pays() noexcept { return avx512_kernels(); }
  bool nn_sgemm() const noexcept { return nn_sgemm_; }
  static constexpr Index kSgemmMinMacs = Index(1) << 22;
  // Split C (see the top of this file): on by default where oneDNN has AVX-512 kernels (split_c_pays);
  // off, an unsplit gemm is one threaded primitive.
  void set_split_c(bool on) noexcept { split_c_ = on; }
  static bool split_c_pays() noexcept { return avx512_kernels(); }
  bool split_c() const noexcept { return split_c_; }
  // How many parts C of a gemm signature is cut into (1: not split this way).
  int split_c_parts(Op ta, Op tb, Index m, Index n, Index k) const {
    const detail::DnnlGemmShape s = shape(ta, tb, m, n, k, 1.0f, ta == Op::N ? k : m, tb == Op::N ? n : k, 0.0f, n);
    return split_k_slices(s) > 1 || routes_to_sgemm(s) ? 1 : split_c_parts(s);
  }
  // Batched signatures that run as a loop over a 2-D primitive (layout not expressible in 4-D).
  std::size_t per_item_signatures() const noexcept {
    std::size_t count = 0;
    for (const auto& entry : cache_) count += entry.second->per_item;
    return count;
  }

 private:
  using Dims = dnnl::memory::dims;

  static bool avx512_kernels() noexcept {
    const unsigned isa = unsigned(dnnl_get_effective_cpu_isa()), avx512 = unsigned(dnnl_cpu_isa_avx512_core);
    return (isa & avx512) == avx512;
  }

  static detail::DnnlGemmShape shape(Op ta, Op tb, Index m, Index n, Index k, float alpha, Index lda, Index ldb,
                                     float beta, Index ldc) {
    detail::DnnlGemmShape s;
    s.ta = ta, s.tb = tb, s.m = m, s.n = n, s.k = k, s.lda = lda, s.ldb = ldb, s.ldc = ldc;
    s.alpha = alpha, s.beta = beta;
    return s;
  }

  static dnnl::memory::desc md(const Dims& dims, const Dims& strides) {
    return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
  }

  // op(X) of shape (rows, cols) stored row-major with leading dimension ld: strides of the 2-D view.
  static Dims matrix_strides(Op op, Index ld) { return op == Op::N ? Dims{ld, 1} : Dims{1, ld}; }

  // 4-D descriptor of `batch` matrices whose (i, j) item starts at i*stride.outer + j*stride.inner.
  // A zero stride over a batch dim of extent > 1 is a broadcast (extent 1) when allowed; a batch
  // dim of extent 1 gets a nonzero stride (oneDNN's gemm-based matmul rejects zero strides).
  // Returns false when oneDNN cannot express the layout.
  static bool batch_md(Index rows, Index cols, const Dims& mat_strides, Index span, Stride2 stride, Batch2 batch,
                       bool allow_broadcast, dnnl::memory::desc& out) {
    Index dim_o = batch.outer, dim_i = batch.inner, st_o = stride.outer, st_i = stride.inner;
    if ((dim_i > 1 && st_i < 0) || (dim_o > 1 && st_o < 0)) return false;
    if (dim_i > 1 && st_i == 0) {
      if (!allow_broadcast) return false;
      dim_i = 1;
    }
    if (dim_o > 1 && st_o == 0) {
      if (!allow_broadcast) return false;
      dim_o = 1;
    }
    if (dim_i == 1) st_i = span;
    if (dim_o == 1) st_o = span * dim_i;
    out = md({dim_o, dim_i, rows, cols}, {st_o, st_i, mat_strides[0], mat_strides[1]});
    return true;
  }

  detail::DnnlMatmul& primitive_for(const detail::DnnlGemmShape& s) {
    const detail::DnnlGemmKey key(s);
    const auto it = cache_.find(key);
    if (it != cache_.end()) return *it->second;
    auto p = std::make_unique<detail::DnnlMatmul>();
    try {
      create(s, *p);
    } catch (const dnnl::error& e) {
      const bool rejected = e.status == dnnl_unimplemented || e.status == dnnl_invalid_arguments;
      if (!(s.batched && rejected))
        fail(s, detail::cat("cannot create the matmul primitive: oneDNN ", dnnl_status2str(e.status), ": ", e.what()),
             __LINE__);
      *p = detail::DnnlMatmul{};
      p->per_item = true;
    }
    if (std::size_t(s.slot) >= scratch_.size()) scratch_.resize(std::size_t(s.slot) + 1);
    scratch_[std::size_t(s.slot)].reserve(p->scratch_bytes, s, "scratchpad");  // only here, never on a cached call
    return *cache_.emplace(key, std::move(p)).first->second;
  }

  // Fills p with a primitive for s (throws dnnl::error if oneDNN rejects it; p->per_item when the
  // batched layout cannot be expressed at all).
  void create(const detail::DnnlGemmShape& s, detail::DnnlMatmul& p) {
    const Index arows = s.ta == Op::N ? s.m : s.k, brows = s.tb == Op::N ? s.k : s.n;
    dnnl::memory::desc amd, bmd, cmd;
    if (!s.batched) {
      amd = md({s.m, s.k}, matrix_strides(s.ta, s.lda));
      bmd = md({s.k, s.n}, matrix_strides(s.tb, s.ldb));
      cmd = md({s.m, s.n}, {s.ldc, 1});
    } else if (!batch_md(s.m, s.k, matrix_strides(s.ta, s.lda), arows * s.lda, s.sa, s.batch, true, amd) ||
               !batch_md(s.k, s.n, matrix_strides(s.tb, s.ldb), brows * s.ldb, s.sb, s.batch, true, bmd) ||
               !batch_md(s.m, s.n, {s.ldc, 1}, s.m * s.ldc, s.sc, s.batch, false, cmd)) {
      p.per_item = true;
      return;
    }
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (s.alpha != 1.0f) attr.set_output_scales(0, {s.alpha});
    if (s.beta != 0.0f) {
      dnnl::post_ops ops;
      ops.append_sum(s.beta);
      attr.set_post_ops(ops);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(amd, bmd, cmd), attr, engine_);
    p.prim = dnnl::matmul(pd);
    p.a = dnnl::memory(amd, engine_, nullptr);
    p.b = dnnl::memory(bmd, engine_, nullptr);
    p.c = dnnl::memory(cmd, engine_, nullptr);
    p.args[0] = {DNNL_ARG_SRC, p.a.get()};
    p.args[1] = {DNNL_ARG_WEIGHTS, p.b.get()};
    p.args[2] = {DNNL_ARG_DST, p.c.get()};
    p.nargs = 3;
    const dnnl::memory::desc smd = pd.scratchpad_desc();
    p.scratch_bytes = smd.get_size();
    if (p.scratch_bytes > 0) {
      p.scratch = dnnl::memory(smd, engine_, nullptr);
      p.args[3] = {DNNL_ARG_SCRATCHPAD, p.scratch.get()};
      p.nargs = 4;
    }
  }

  // The per-call path: re-point the cached memory objects, execute, wait. No allocation here, no
  // throw (split k calls it inside a parallel region).
  dnnl_status_t run(detail::DnnlMatmul& p, const float* a, const float* b, float* c, int slot) noexcept {
    dnnl_stream_t stream = slot == 0 ? stream_.get(true) : slot_streams_[std::size_t(slot - 1)].get(true);
    dnnl_status_t st = dnnl_memory_set_data_handle_v2(p.a.get(), const_cast<float*>(a), nullptr);
    if (st == dnnl_success) st = dnnl_memory_set_data_handle_v2(p.b.get(), const_cast<float*>(b), nullptr);
    if (st == dnnl_success) st = dnnl_memory_set_data_handle_v2(p.c.get(), c, nullptr);
    if (st == dnnl_success && p.nargs == 4)
      st = dnnl_memory_set_data_handle_v2(p.scratch.get(), scratch_[std::size_t(slot)].data.get(), nullptr);
    if (st == dnnl_success) st = dnnl_primitive_execute(p.prim.get(), stream, p.nargs, p.args.data());
    if (st == dnnl_success) st = dnnl_stream_wait(stream);
    return st;
  }
  void execute(const detail::DnnlGemmShape& s, detail::DnnlMatmul& p, const float* a, const float* b, float* c) {
    const dnnl_status_t st = run(p, a, b, c, 0);
    if (st != dnnl_success)
      fail(s, detail::cat("matmul execution failed: oneDNN ", dnnl_status2str(st)), __LINE__);
  }

  bool routes_to_sgemm(const detail::DnnlGemmShape& s) const {
    if (s.batched) return false;
    if (wide_b_sgemm_ && s.tb == Op::N && s.n > kWideB) return true;
    if (nn_sgemm_ && s.ta == Op::N && s.tb == Op::N && s.m * s.n * s.k >= kSgemmMinMacs) return true;
    return narrow_sgemm_ && s.ta == Op::N && narrow_mid_size(s);
  }
  void sgemm(const detail::DnnlGemmShape& s, const float* a, const float* b, float* c) {
    if (!engine_) fail(s, "this OneDnn object was moved from (it has no engine)", __LINE__);  // as for a matmul
    const dnnl_status_t st = dnnl_sgemm(s.ta == Op::N ? 'N' : 'T', s.tb == Op::N ? 'N' : 'T', s.m, s.n, s.k, s.alpha, a,
                                        s.lda, b, s.ldb, s.beta, c, s.ldc);
    if (st != dnnl_success) fail(s, detail::cat("dnnl_sgemm failed: oneDNN ", dnnl_status2str(st)), __LINE__);
  }

  // Split k pays for op(A) = Aᵀ, op(B) = B with at least kSplitMinK of k per thread and a C big enough
  // that a slice's start-up cost does not matter; never inside a caller's parallel region (oneDNN is
  // serial there anyway).
  static constexpr Index kSplitMinK = 128, kSplitMinC = 4096;
  int split_k_slices(const detail::DnnlGemmShape& s) const {
    if (!split_k_ || s.ta != Op::T || s.tb != Op::N || s.batched || s.m * s.n < kSplitMinC || omp_in_parallel())
      return 1;
    const Index by_k = s.k / kSplitMinK, threads = omp_get_max_threads();
    return int(by_k < threads ? by_k : threads);
  }
  // An A whose rows lie a multiple of 2 KB apart (lda % 512 floats: a 512-wide activation) maps the
  // rows oneDNN packs together onto a few cache sets; each slice copied to rows of m + 16 runs 25-40%
  // faster, copy included (m = 512, n = 128, k = 4160: 84 -> 115 GFLOP/s on the 2-core VM). The
  // same copy of B did not pay (-3%).
  // Wider A (m = 1536, 2048) gained nothing, so only m <= kStageMaxM is copied.
  static constexpr Index kAliasedLd = 512, kStagePad = 16, kStageMaxM = 1024;
  static Index staged_lda(const detail::DnnlGemmShape& s) {
    return s.lda % kAliasedLd == 0 && s.m <= kStageMaxM ? s.m + kStagePad : 0;
  }

  void gemm_split_k(const detail::DnnlGemmShape& s, int slices, const float* a, const float* b, float* c) {
    // Set-up of a new signature (serial; allocates only the first time): a primitive per slice, a
    // stream and staging buffer per slot, the slices' output buffer.
    const Index mn = s.m * s.n, lda = staged_lda(s);
    if (split_.size() < std::size_t(slices)) split_.resize(std::size_t(slices));
    partial_.reserve(std::size_t(slices - 1) * std::size_t(mn) * sizeof(float), s, "split-k slice output");
    for (int p = 0; p < slices; ++p) {
      detail::DnnlGemmShape sp = s;
      const Index k0 = s.k * p / slices, kp = s.k * (p + 1) / slices - k0;
      sp.k = kp, sp.slot = p;
      if (lda) sp.lda = lda;
      if (p > 0) sp.beta = 0, sp.ldc = s.n;
      Slice& sl = split_[std::size_t(p)];
      sl.prim = &primitive_for(sp), sl.k0 = k0, sl.k = kp, sl.status = dnnl_success;
      sl.stage.reserve(std::size_t(kp * lda) * sizeof(float), s, "split-k staging buffer");
    }
    ensure_slot_streams(slices);
    float* partial = partial_.floats();
#pragma omp parallel num_threads(slices)
    {
      for (int p = omp_get_thread_num(); p < slices; p += omp_get_num_threads()) {
        Slice& sl = split_[std::size_t(p)];
        const float* ap = a + sl.k0 * s.lda;
        if (lda) ap = stage_rows(ap, s.lda, sl.k, s.m, sl.stage.floats(), lda);
        float* out = p == 0 ? c : partial + std::size_t(p - 1) * std::size_t(mn);
        sl.status = run(*sl.prim, ap, b + sl.k0 * s.ldb, out, p);
      }
#pragma omp barrier
#pragma omp for schedule(static)
      for (Index i = 0; i < s.m; ++i) {  // C += slice 1 + slice 2 + ..., in that order
        float* ci = c + i * s.ldc;
        for (int p = 1; p < slices; ++p) {
          const float* pi = partial + std::size_t(p - 1) * std::size_t(mn) + std::size_t(i * s.n);
          for (Index j = 0; j < s.n; ++j) ci[j] += pi[j];
        }
      }
    }
    check_slices(s, slices, "split-k slice");
  }
  static const float* stage_rows(const float* x, Index ld, Index rows, Index width, float* out, Index out_ld) {
    for (Index r = 0; r < rows; ++r) std::memcpy(out + r * out_ld, x + r * ld, std::size_t(width) * sizeof(float));
    return out;
  }

  // Narrow mid-size products (some side <= kNarrowMaxSide: every GEMM of tiny32 and fmnist28, none
  // of base224's) of kNarrowMinMacs to kNarrowMaxMacs multiply-adds: the ones split C and the narrow
  // sgemm route take. Wider and larger products oneDNN's matmul threads well (base224's projections:
  // equal or up to 16% slower split).
  static constexpr Index kNarrowMinMacs = Index(1) << 22, kNarrowMaxMacs = Index(1) << 29, kNarrowMaxSide = 256;
  static bool narrow_mid_size(const detail::DnnlGemmShape& s) {
    const Index macs = s.m * s.n * s.k, narrow = std::min(s.m, std::min(s.n, s.k));
    return macs >= kNarrowMinMacs && macs <= kNarrowMaxMacs && narrow <= kNarrowMaxSide;
  }
  // Split C takes such a product when its split side leaves each thread kSplitCMinSide rows (or
  // columns) or more; never inside a caller's parallel region.
  static constexpr Index kSplitCMinSide = 64, kSplitCAlign = 16;
  int split_c_parts(const detail::DnnlGemmShape& s) const {
    if (!split_c_ || s.batched || omp_in_parallel() || !narrow_mid_size(s)) return 1;
    const Index side = s.m >= s.n ? s.m : s.n, threads = omp_get_max_threads(), by_side = side / kSplitCMinSide;
    return int(by_side < threads ? by_side : threads);
  }

  // C cut into `parts` blocks of rows (m >= n) or of columns, part p computed by thread p with a
  // single-threaded primitive over the whole k: no partial sums, alpha and beta applied as usual.
  // Part boundaries are multiples of kSplitCAlign.
  void gemm_split_c(const detail::DnnlGemmShape& s, int parts, const float* a, const float* b, float* c) {
    const bool rows = s.m >= s.n;
    const Index side = rows ? s.m : s.n;
    if (split_.size() < std::size_t(parts)) split_.resize(std::size_t(parts));
    for (int p = 0; p < parts; ++p) {
      const auto bound = [&](Index q) { return q == parts ? side : side * q / parts / kSplitCAlign * kSplitCAlign; };
      const Index o0 = bound(p), len = bound(p + 1) - o0;
      detail::DnnlGemmShape sp = s;
      sp.slot = p;
      (rows ? sp.m : sp.n) = len;
      Slice& sl = split_[std::size_t(p)];  // len >= kSplitCMinSide - kSplitCAlign > 0 (split_c_parts)
      sl.prim = &primitive_for(sp), sl.status = dnnl_success;
      if (rows) {  // rows o0.. of C: rows of A, or columns of a transposed A
        sl.a_off = s.ta == Op::N ? o0 * s.lda : o0, sl.b_off = 0, sl.c_off = o0 * s.ldc;
      } else {     // columns o0.. of C: columns of B, or rows of a transposed B
        sl.a_off = 0, sl.b_off = s.tb == Op::N ? o0 : o0 * s.ldb, sl.c_off = o0;
      }
    }
    ensure_slot_streams(parts);
#pragma omp parallel num_threads(parts)
    for (int p = omp_get_thread_num(); p < parts; p += omp_get_num_threads()) {
      Slice& sl = split_[std::size_t(p)];
      sl.status = run(*sl.prim, a + sl.a_off, b + sl.b_off, c + sl.c_off, p);
    }
    check_slices(s, parts, "split-C part");
  }

  // Split k and split C: slots 1.. run on their own streams (slot 0 on stream_).
  void ensure_slot_streams(int slots) {
    while (slot_streams_.size() + 1 < std::size_t(slots)) slot_streams_.emplace_back(engine_);
  }
  void check_slices(const detail::DnnlGemmShape& s, int count, const char* what) const {
    for (int p = 0; p < count; ++p)
      if (split_[std::size_t(p)].status != dnnl_success)
        fail(s, detail::cat("matmul execution of ", what, " ", p, " failed: oneDNN ",
                            dnnl_status2str(split_[std::size_t(p)].status)),
             __LINE__);
  }

  [[noreturn]] static void fail(const detail::DnnlGemmShape& s, const std::string& what, int line) {
    throw Error(detail::cat("OneDnn::", s.batched ? "gemm_batched" : "gemm", describe(s), ": ", what, " (",
                            __FILE__, ":", line, ")"));
  }

  dnnl::engine engine_;
  dnnl::stream stream_;
  std::unordered_map<detail::DnnlGemmKey, std::unique_ptr<detail::DnnlMatmul>, detail::DnnlGemmKeyHash> cache_;
  std::vector<detail::AlignedBuffer> scratch_;  // one user scratchpad per slot (slot 0: every unsplit call)
  // Split k: the extra slots' streams, the slices of the current call (with their staging
  // buffers), the slices' output buffer.
  struct Slice {
    detail::DnnlMatmul* prim = nullptr;
    Index k0 = 0, k = 0;
    Index a_off = 0, b_off = 0, c_off = 0;  // split C: where the part starts in A, B and C
    dnnl_status_t status = dnnl_success;
    detail::AlignedBuffer stage;
  };
  std::vector<dnnl::stream> slot_streams_;
  std::vector<Slice> split_;
  detail::AlignedBuffer partial_;
  bool split_k_ = split_k_pays();
  bool wide_b_sgemm_ = wide_b_sgemm_pays();
  bool split_c_ = split_c_pays();
  bool narrow_sgemm_ = narrow_sgemm_pays();
  bool nn_sgemm_ = nn_sgemm_pays();
};

}  // namespace mae
