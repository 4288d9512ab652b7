// The one elementwise launch of the CUDA backend: Cuda::parallel_for(n, f) runs f(i) for every
// i in [0, n) as a grid-stride loop on the backend's stream. f is a layer's MAE_HOST_DEVICE functor
// (raw pointers and scalars only), passed to the kernel by value. Launches are asynchronous: a fault
// inside a kernel surfaces at the next synchronize / to_host, unless MAE_CUDA_SYNC_LAUNCHES is defined.
// Compiled only by nvcc (included from mae/backend/cuda.hpp).
#pragma once
#include <type_traits>

#include "mae/backend/cuda/check.cuh"

namespace mae {

inline constexpr int kForEachBlock = 256;

template <class F>
__global__ void __launch_bounds__(kForEachBlock) mae_for_each(Index n, F f) {
  const Index stride = Index(blockDim.x) * Index(gridDim.x);
  for (Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); i < n; i += stride) f(i);
}

namespace detail {

// What may be passed: trivially copyable functors, or nvcc's extended lambdas (--extended-lambda),
// whose host-side wrapper type is not trivially copyable but whose captures are copied by value.
template <class F>
constexpr bool device_callable_v = std::is_trivially_copyable_v<F>
#if defined(__CUDACC_EXTENDED_LAMBDA__)
                                   || __nv_is_extended_host_device_lambda_closure_type(F) ||
                                   __nv_is_extended_device_lambda_closure_type(F)
#endif
    ;

// max_blocks caps the grid (a few waves of the device); larger n loops inside the kernel.
template <class F>
void launch_for_each(Index n, const F& f, cudaStream_t stream, Index max_blocks) {
  static_assert(device_callable_v<F>,
                "parallel_for functors are copied to the device: hold raw pointers and scalars only");
  if (n <= 0) return;
  const Index want = (n + kForEachBlock - 1) / kForEachBlock;
  const unsigned blocks = static_cast<unsigned>(want < max_blocks ? want : max_blocks);
  (void)cudaGetLastError();  // report this launch's error, not an older one
  mae_for_each<F><<<blocks, kForEachBlock, 0, stream>>>(n, f);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda_error(e, cat("mae_for_each<<<", blocks, ", ", kForEachBlock, ">>>(n = ", n, ")").c_str(),
                                         __FILE__, __LINE__);
#if defined(MAE_CUDA_SYNC_LAUNCHES)  // debugging: a kernel fault is reported at its own launch
  MAE_CUDA_CHECK(cudaStreamSynchronize(stream));
#endif
}

// C := beta * C for `count` row-major (rows, cols) matrices, C_b at c + b * stride (gemm with k = 0;
// beta == 0 writes zeros without reading C, as BLAS does).
template <class T>
struct ScaleMatrices {
  T* c; Index rows, cols, ld, stride; T beta;
  MAE_HOST_DEVICE void operator()(Index i) const {
    const Index per = rows * cols, b = i / per, e = i % per;
    T& x = c[b * stride + (e / cols) * ld + e % cols];
    x = beta == T(0) ? T(0) : beta * x;
  }
};

}  // namespace detail
}  // namespace mae
