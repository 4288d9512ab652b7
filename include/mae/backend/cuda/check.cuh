// CUDA and cuBLAS status checks: every failing call becomes a mae::Error naming the call, the
// status and file:line, e.g.
//   include/mae/backend/cuda.hpp:97: cudaMalloc(&p, bytes) failed: cudaErrorMemoryAllocation (out of memory)
// Compiled only by nvcc (included from mae/backend/cuda.hpp).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "mae/config.hpp"

namespace mae::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* call, const char* file, int line) {
  (void)cudaGetLastError();  // a non-sticky error must not resurface at the next launch check
  throw Error(cat(file, ":", line, ": ", call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"));
}

[[noreturn]] inline void throw_cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  throw Error(cat(file, ":", line, ": ", call, " failed: ", cublasGetStatusName(s), " (", cublasGetStatusString(s),
                  ")"));
}

}  // namespace mae::detail

#define MAE_CUDA_CHECK(call)                                                                  \
  do {                                                                                        \
    const cudaError_t mae_cuda_status_ = (call);                                              \
    if (mae_cuda_status_ != cudaSuccess)                                                      \
      ::mae::detail::throw_cuda_error(mae_cuda_status_, #call, __FILE__, __LINE__);           \
  } while (0)

#define MAE_CUBLAS_CHECK(call)                                                                \
  do {                                                                                        \
    const cublasStatus_t mae_cublas_status_ = (call);                                         \
    if (mae_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                          \
      ::mae::detail::throw_cublas_error(mae_cublas_status_, #call, __FILE__, __LINE__);       \
  } while (0)
