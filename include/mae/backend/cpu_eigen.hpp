// CpuEigen: the reference backend. Host memory, GEMMs through Eigen, kernels as OpenMP loops.
// Always available; every other backend is tested against it.
#pragma once
#include <omp.h>

#include <Eigen/Core>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "mae/backend/policy.hpp"

namespace mae {

namespace detail {
template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstRowMap = Eigen::Map<const RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using RowMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// row-major C(m,n) = alpha * op(A) * op(B) + beta * C with Eigen; beta == 0 ignores C's old values.
template <class T>
void eigen_gemm(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
                T beta, T* c, Index ldc) {
  if (m == 0 || n == 0) return;
  RowMap<T> C(c, m, n, Eigen::OuterStride<>(ldc));
  if (k == 0) {
    if (beta == T(0)) C.setZero(); else C *= beta;
    return;
  }
  const ConstRowMap<T> A(a, ta == Op::N ? m : k, ta == Op::N ? k : m, Eigen::OuterStride<>(lda));
  const ConstRowMap<T> B(b, tb == Op::N ? k : n, tb == Op::N ? n : k, Eigen::OuterStride<>(ldb));
  auto run = [&](const auto& opa, const auto& opb) {
    if (beta == T(0)) {
      C.noalias() = alpha * opa * opb;
    } else {
      if (beta != T(1)) C *= beta;
      C.noalias() += alpha * opa * opb;
    }
  };
  if (ta == Op::N && tb == Op::N) run(A, B);
  else if (ta == Op::N) run(A, B.transpose());
  else if (tb == Op::N) run(A.transpose(), B);
  else run(A.transpose(), B.transpose());
}

// Work below this many units (≈ one multiply-add each) runs on the calling thread: a parallel
// region costs more than it saves.
inline constexpr Index kParallelGrain = 16384;
}  // namespace detail

// Host memory + OpenMP loops; shared by every CPU backend (they differ only in gemm).
struct CpuKernels {
  using memory_space = HostMemory;

  // Buffers of kHugePageMin bytes or more (a model's parameters, moments, activations, scratch)
  // start on a 2 MiB boundary, are a whole number of 2 MiB pages long and are offered to the
  // kernel's transparent huge pages (madvise: in THP's "madvise" mode, as on the machines measured
  // here, only such regions get them). Every kernel of a step streams through megabytes of them,
  // and 4 KiB pages cost a TLB miss every 1024 floats per stream: on the 2-core AVX-512 Xeon of
  // 2026-12-03, tiny32 and fmnist28 train steps ran 2-3.4% faster (base224 within noise), peak RSS
  // unchanged. Smaller buffers are 64-byte aligned. Advice only: without THP nothing changes.
  static constexpr std::size_t kHugePage = std::size_t(2) << 20, kHugePageMin = 2 * kHugePage;
  static constexpr std::size_t allocation_alignment(std::size_t bytes) noexcept {
    return bytes >= kHugePageMin ? kHugePage : 64;
  }
  void* allocate(std::size_t bytes) {
    const std::size_t align = allocation_alignment(bytes), rounded = (bytes + align - 1) / align * align;
    void* p = rounded ? std::aligned_alloc(align, rounded) : nullptr;
    MAE_CHECK(p || !rounded, "CPU backend: cannot allocate ", bytes, " bytes");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == kHugePage) ::madvise(p, rounded, MADV_HUGEPAGE);  // refused advice is harmless
#endif
    return p;
  }
  void deallocate(void* p) noexcept { std::free(p); }
  void to_device(void* dst, const void* src, std::size_t bytes) { if (bytes) std::memcpy(dst, src, bytes); }
  void to_host(void* dst, const void* src, std::size_t bytes) { if (bytes) std::memcpy(dst, src, bytes); }
  void copy(void* dst, const void* src, std::size_t bytes) { if (bytes) std::memmove(dst, src, bytes); }
  void synchronize() {}

  // work_per_item: rough cost of one f(i) (a row kernel passes its row length), to decide whether
  // the loop is worth a parallel region.
  template <class F>
  void parallel_for(Index n, F f, Index work_per_item = 1) {
    if (n < 2 || n * work_per_item < detail::kParallelGrain) {
      run_range(f, 0, n);
      return;
    }
#pragma omp parallel
    {
      const Index threads = omp_get_num_threads(), t = omp_get_thread_num();
      run_range(f, n * t / threads, n * (t + 1) / threads);
    }
  }

 private:
  // The functor is copied into a local so the compiler sees its pointers cannot change while the
  // loop stores through them: that is what lets elementwise loops vectorize.
  // A functor that declares `static constexpr bool kWideVectors = true` runs in a loop that may use
  // 512-bit vectors (MAE_WIDE_VECTORS); lane for lane the same operations, so the same bits.
  template <class F, class = void>
  struct WantsWideVectors : std::false_type {};
  template <class F>
  struct WantsWideVectors<F, std::enable_if_t<F::kWideVectors>> : std::true_type {};

  template <class F>
  static void run_range(const F& f, Index begin, Index end) {
    if constexpr (WantsWideVectors<F>::value) {
      run_range_wide(f, begin, end);
    } else {
      const F local = f;
      for (Index i = begin; i < end; ++i) local(i);
    }
  }
  template <class F>
  MAE_WIDE_VECTORS static void run_range_wide(const F& f, Index begin, Index end) {
    const F local = f;
    for (Index i = begin; i < end; ++i) local(i);
  }

 public:

  // One product on the calling thread, safe inside a parallel region (Eigen then stays serial):
  // what batched_via_gemm runs per batch item, for every CPU backend.
  template <class T>
  void gemm_serial(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
                   T beta, T* c, Index ldc) {
    detail::eigen_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }

  // The batched product is a loop of gemm calls on the derived backend, in parallel over the batch
  // when the single products are too small to use the threads themselves.
  template <class Self, class T>
  static void batched_via_gemm(Self& self, Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda,
                               Stride2 sa, const T* b, Index ldb, Stride2 sb, T beta, T* c, Index ldc, Stride2 sc,
                               Batch2 batch) {
    const Index count = batch.outer * batch.inner;
    auto one = [&](Index t) {
      const Index i = t / batch.inner, j = t % batch.inner;
      self.gemm_serial(ta, tb, m, n, k, alpha, a + i * sa.outer + j * sa.inner, lda, b + i * sb.outer + j * sb.inner,
                       ldb, beta, c + i * sc.outer + j * sc.inner, ldc);
    };
    if (count > 1 && m * n * k < (Index(1) << 21)) {
#pragma omp parallel for schedule(static)
      for (Index t = 0; t < count; ++t) one(t);
    } else {
      for (Index t = 0; t < count; ++t) one(t);
    }
  }
};

struct CpuEigen : CpuKernels {
  static constexpr const char* name = "eigen";

  template <class T>
  void gemm(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb, T beta,
            T* c, Index ldc) {
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    detail::eigen_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  template <class T>
  void gemm_batched(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, Stride2 sa, const T* b,
                    Index ldb, Stride2 sb, T beta, T* c, Index ldc, Stride2 sc, Batch2 batch) {
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    batched_via_gemm(*this, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch);
  }
};

}  // namespace mae
