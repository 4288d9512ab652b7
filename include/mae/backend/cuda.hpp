// Cuda: the GPU backend. Device memory (plain cudaMalloc, never managed memory), GEMMs through cuBLAS,
// every other kernel is a layer's MAE_HOST_DEVICE functor launched by parallel_for. All work is issued
// in order on the backend's own stream (non-blocking: it does not wait for the legacy default stream);
// the host waits only where it needs data (to_host, synchronize, to_device from pinned memory), so a
// training step has no host round trip except reading the loss.
//
//   row-major C(m,n) = alpha·op(A)·op(B) + beta·C   is issued as column-major
//   Cᵀ(n,m) = alpha·op(B)ᵀ·op(A)ᵀ + beta·Cᵀ:  cublasXgemm(op_b, op_a, n, m, k, B, ldb, A, lda, C, ldc)
//   (a row-major matrix with leading dimension ld is its transpose in column-major with the same ld).
//
// Float GEMMs run in full FP32 by default (CUBLAS_DEFAULT_MATH: no TF32, needed for the parity
// tolerances); CudaOptions::allow_tf32 / set_allow_tf32(true) switches to CUBLAS_TF32_TENSOR_OP_MATH
// (about 10 mantissa bits in the products, much faster on Ampere and later).
//
// The object owns a stream and a cuBLAS handle bound to it (RAII; movable, not copyable; a moved-from
// Cuda may only be destroyed or assigned to). It binds its device at construction; use it from a host
// thread whose current device is that device. Only nvcc compiles this header (link mae::cuda);
// mae/mae.hpp never includes it.
#pragma once
#if !defined(__CUDACC__)
#error "mae/backend/cuda.hpp must be compiled by nvcc: put the code that uses mae::Cuda in a .cu file and link mae::cuda"
#endif

#include <cstddef>
#include <memory>
#include <type_traits>

#include "mae/backend/cuda/blas.cuh"
#include "mae/backend/cuda/check.cuh"
#include "mae/backend/cuda/for_each.cuh"
#include "mae/backend/policy.hpp"

namespace mae {

struct CudaOptions {
  int device = 0;           // CUDA device ordinal
  bool allow_tf32 = false;  // float GEMMs may use TF32 tensor cores
};

struct Cuda {
  using memory_space = DeviceMemory;
  static constexpr const char* name = "cuda";

  Cuda() : Cuda(CudaOptions{}) {}
  explicit Cuda(CudaOptions opt) : device_(opt.device) {
    MAE_CUDA_CHECK(cudaSetDevice(device_));
    int sms = 0;
    MAE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device_));
    max_blocks_ = Index(sms > 0 ? sms : 1) * 32;  // a few waves; grid-stride loops cover the rest
    cudaStream_t s = nullptr;
    MAE_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    stream_.reset(s);
    cublasHandle_t h = nullptr;
    MAE_CUBLAS_CHECK(cublasCreate(&h));
    blas_.reset(h);
    MAE_CUBLAS_CHECK(cublasSetStream(h, s));
    set_allow_tf32(opt.allow_tf32);
  }
  Cuda(Cuda&&) noexcept = default;
  Cuda& operator=(Cuda&&) noexcept = default;
  Cuda(const Cuda&) = delete;
  Cuda& operator=(const Cuda&) = delete;
  ~Cuda() = default;  // the handle is destroyed before the stream (reverse member order)

  // True when a CUDA device can be used (a driver and at least one device); never throws.
  static bool device_available() noexcept {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return count > 0;
  }

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_.get(); }
  cublasHandle_t cublas() const { return blas_.get(); }
  bool allow_tf32() const { return allow_tf32_; }
  void set_allow_tf32(bool on) {
    MAE_CUBLAS_CHECK(cublasSetMathMode(blas_.get(), on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    allow_tf32_ = on;
  }

  // ---- memory ------------------------------------------------------------------------------------
  void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess)
      detail::throw_cuda_error(e, detail::cat("cudaMalloc(", bytes, " bytes)").c_str(), __FILE__, __LINE__);
    return p;
  }
  void deallocate(void* p) noexcept {
    if (p && cudaFree(p) != cudaSuccess) (void)cudaGetLastError();  // nothing to do about it here
  }
  // Returns when `src` may be reused: pageable memory is staged by the copy call itself, pinned
  // memory is read asynchronously, so that case waits for the stream.
  void to_device(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    MAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
    if (is_pinned(src)) synchronize();
  }
  // Waits for every earlier operation on the stream, then copies: `dst` is ready on return.
  void to_host(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
    MAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
    synchronize();
  }
  // Device to device, in stream order; the ranges must not overlap.
  void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0 || dst == src) return;
    const char *d = static_cast<const char*>(dst), *s = static_cast<const char*>(src);
    MAE_CHECK(d + bytes <= s || s + bytes <= d, "Cuda::copy: source and destination of ", bytes, " bytes overlap");
    MAE_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
  }
  void synchronize() { MAE_CUDA_CHECK(cudaStreamSynchronize(stream())); }

  // ---- kernels -----------------------------------------------------------------------------------
  // work_per_item (the contract's cost hint) does not change the launch: one thread per item,
  // grid-stride beyond a few waves.
  template <class F>
  void parallel_for(Index n, F f, Index work_per_item = 1) {
    (void)work_per_item;
    detail::launch_for_each(n, f, stream(), max_blocks_);
  }

  template <class T>
  void gemm(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb, T beta,
            T* c, Index ldc) {
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    if (m == 0 || n == 0) return;
    if (k == 0) return scale(c, m, n, ldc, 0, 1, beta);
    detail::cublas_gemm<T>(blas_.get(), detail::cublas_op(tb), detail::cublas_op(ta), detail::cublas_int(n, "n"),
                           detail::cublas_int(m, "m"), detail::cublas_int(k, "k"), alpha, b,
                           detail::cublas_int(ldb, "ldb"), a, detail::cublas_int(lda, "lda"), beta, c,
                           detail::cublas_int(ldc, "ldc"));
  }

  // One strided-batched call when the (outer, inner) batch is one arithmetic progression for A, B
  // and C (outer stride == inner count · inner stride, or one of the levels has a single entry);
  // otherwise one strided-batched call over `inner` per outer index (attention: per sample, heads
  // batched, since a sample's heads are Dh apart but samples are T·3D apart).
  template <class T>
  void gemm_batched(Op ta, Op tb, Index m, Index n, Index k, T alpha, const T* a, Index lda, Stride2 sa, const T* b,
                    Index ldb, Stride2 sb, T beta, T* c, Index ldc, Stride2 sc, Batch2 batch) {
    check_gemm_args(ta, tb, m, n, k, lda, ldb, ldc);
    MAE_CHECK(batch.outer >= 0 && batch.inner >= 0, "gemm_batched: negative batch (", batch.outer, ", ",
              batch.inner, ")");
    if (m == 0 || n == 0 || batch.outer == 0 || batch.inner == 0) return;
    auto run = [&](const T* a0, const T* b0, T* c0, Index as, Index bs, Index cs, Index count) {
      if (k == 0) return scale(c0, m, n, ldc, cs, count, beta);
      const cublasOperation_t opa = detail::cublas_op(tb), opb = detail::cublas_op(ta);
      const int mm = detail::cublas_int(n, "n"), nn = detail::cublas_int(m, "m"), kk = detail::cublas_int(k, "k");
      const int la = detail::cublas_int(ldb, "ldb"), lb = detail::cublas_int(lda, "lda"),
                lc = detail::cublas_int(ldc, "ldc");
      for (Index done = 0; done < count; done += kMaxBatch) {
        const int now = int(count - done < kMaxBatch ? count - done : kMaxBatch);
        detail::cublas_gemm_strided<T>(blas_.get(), opa, opb, mm, nn, kk, alpha, b0 + done * bs, la, bs,
                                       a0 + done * as, lb, as, beta, c0 + done * cs, lc, cs, now);
      }
    };
    auto flat = [&](Stride2 s) { return s.outer == batch.inner * s.inner; };
    if (batch.outer == 1) {
      run(a, b, c, sa.inner, sb.inner, sc.inner, batch.inner);
    } else if (batch.inner == 1) {
      run(a, b, c, sa.outer, sb.outer, sc.outer, batch.outer);
    } else if (flat(sa) && flat(sb) && flat(sc)) {
      run(a, b, c, sa.inner, sb.inner, sc.inner, batch.outer * batch.inner);
    } else {
      for (Index i = 0; i < batch.outer; ++i)
        run(a + i * sa.outer, b + i * sb.outer, c + i * sc.outer, sa.inner, sb.inner, sc.inner, batch.inner);
    }
  }

 private:
  static constexpr Index kMaxBatch = 65535;  // products per cuBLAS call (batch counts are grid dimensions)

  struct StreamDeleter {
    void operator()(cudaStream_t s) const noexcept {
      if (cudaStreamDestroy(s) != cudaSuccess) (void)cudaGetLastError();
    }
  };
  struct BlasDeleter {
    void operator()(cublasHandle_t h) const noexcept { (void)cublasDestroy(h); }
  };

  // C_b := beta · C_b for count (m, n) matrices b · stride apart (gemm with k = 0).
  template <class T>
  void scale(T* c, Index m, Index n, Index ldc, Index stride, Index count, T beta) {
    parallel_for(count * m * n, detail::ScaleMatrices<T>{c, m, n, ldc, stride, beta});
  }

  static bool is_pinned(const void* p) {
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return attr.type == cudaMemoryTypeHost;
  }

  int device_ = 0;
  Index max_blocks_ = 1;
  bool allow_tf32_ = false;
  std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter> stream_;
  std::unique_ptr<std::remove_pointer_t<cublasHandle_t>, BlasDeleter> blas_;
};

static_assert(is_backend<Cuda>::value, "Cuda must satisfy mae/backend/policy.hpp");

}  // namespace mae
