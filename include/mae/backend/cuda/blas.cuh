// Typed cuBLAS calls (column-major, as cuBLAS sees them) for float and double. Cuda::gemm turns the
// library's row-major products into these: row-major C = op(A)·op(B) is column-major
// Cᵀ = op(B)ᵀ·op(A)ᵀ, i.e. the same call with the operands and m, n swapped and the flags kept.
// Compiled only by nvcc (included from mae/backend/cuda.hpp).
#pragma once
#include <climits>
#include <type_traits>

#include "mae/backend/cuda/check.cuh"
#include "mae/backend/policy.hpp"

namespace mae::detail {

inline cublasOperation_t cublas_op(Op op) { return op == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

// cuBLAS takes int sizes; larger ones are an error, not a silent truncation.
inline int cublas_int(Index v, const char* what) {
  MAE_CHECK(v >= 0 && v <= INT_MAX, "Cuda gemm: ", what, " = ", v, " does not fit cuBLAS's int");
  return static_cast<int>(v);
}

template <class T>
void cublas_gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha,
                 const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Cuda gemm: T must be float or double");
  if constexpr (std::is_same_v<T, float>)
    MAE_CUBLAS_CHECK(cublasSgemm(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
  else
    MAE_CUBLAS_CHECK(cublasDgemm(h, ta, tb, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
}

template <class T>
void cublas_gemm_strided(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha,
                         const T* a, int lda, long long sa, const T* b, int ldb, long long sb, T beta, T* c, int ldc,
                         long long sc, int count) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "Cuda gemm: T must be float or double");
  if constexpr (std::is_same_v<T, float>)
    MAE_CUBLAS_CHECK(
        cublasSgemmStridedBatched(h, ta, tb, m, n, k, &alpha, a, lda, sa, b, ldb, sb, &beta, c, ldc, sc, count));
  else
    MAE_CUBLAS_CHECK(
        cublasDgemmStridedBatched(h, ta, tb, m, n, k, &alpha, a, lda, sa, b, ldb, sb, &beta, c, ldc, sc, count));
}

}  // namespace mae::detail
