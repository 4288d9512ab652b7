// The backend contract. A backend is a type chosen at compile time (it selects code) and an object
// owned by the user (it owns handles, streams, primitive caches, scratch). Layers and the model are
// written once against this contract and never see Eigen, oneDNN, cuBLAS or CUDA.
//
// A backend type B provides:
//   using memory_space = HostMemory | DeviceMemory;       where arena memory lives
//   void* allocate(std::size_t bytes);  void deallocate(void*) noexcept;
//   void to_device(void* dst, const void* host_src, std::size_t bytes);
//   void to_host(void* host_dst, const void* src, std::size_t bytes);
//   void copy(void* dst, const void* src, std::size_t bytes);           // within backend memory
//   void synchronize();
//   template <class T> void gemm(Op ta, Op tb, Index m, Index n, Index k, T alpha,
//        const T* a, Index lda, const T* b, Index ldb, T beta, T* c, Index ldc);
//        row-major C(m,n) = alpha * op(A) * op(B) + beta * C, op(X) = X or Xᵀ; like BLAS but row-major.
//   template <class T> void gemm_batched(Op ta, Op tb, Index m, Index n, Index k, T alpha,
//        const T* a, Index lda, Stride2 sa, const T* b, Index ldb, Stride2 sb,
//        T beta, T* c, Index ldc, Stride2 sc, Batch2 batch);
//        the same for every (i, j) < (batch.outer, batch.inner): A at a + i*sa.outer + j*sa.inner, ...
//        (attention: outer = samples, inner = heads; no copies to split or merge heads).
//   template <class F> void parallel_for(Index n, F f, Index work_per_item = 1);
//        f(i) for i in [0, n), any order; work_per_item is a cost hint (CPU: parallel or not). f is a
//        MAE_HOST_DEVICE functor holding only views and scalars (it is launched on the device for Cuda).
//        Each f(i) writes its own outputs: kernels are deterministic by construction.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

#include "mae/config.hpp"

namespace mae {

enum class Op { N, T };

struct HostMemory {};
struct DeviceMemory {};

struct Stride2 {
  Index outer = 0, inner = 0;
};
struct Batch2 {
  Index outer = 1, inner = 1;
};

template <class B, class = void>
struct is_backend : std::false_type {};
template <class B>
struct is_backend<B, std::void_t<typename B::memory_space, decltype(std::declval<B&>().synchronize()),
                                 decltype(std::declval<B&>().allocate(std::size_t{}))>> : std::true_type {};

template <class B>
inline constexpr bool is_host_backend_v = std::is_same_v<typename B::memory_space, HostMemory>;

// Checks shared by every gemm implementation (cheap, always on: a wrong leading dimension is a
// silent memory corruption otherwise).
inline void check_gemm_args(Op ta, Op tb, Index m, Index n, Index k, Index lda, Index ldb, Index ldc) {
  const Index acols = ta == Op::N ? k : m, bcols = tb == Op::N ? n : k;
  MAE_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=", m, " n=", n, " k=", k);
  MAE_CHECK(lda >= (acols > 0 ? acols : 1) && ldb >= (bcols > 0 ? bcols : 1) && ldc >= (n > 0 ? n : 1),
            "gemm: leading dimension too small: lda=", lda, " (needs ", acols, "), ldb=", ldb, " (needs ", bcols,
            "), ldc=", ldc, " (needs ", n, ")");
}

}  // namespace mae
