# The CUDA backend (MAE_WITH_CUDA=ON): target mae::cuda = mae + cuBLAS + the CUDA runtime, defining
# MAE_HAVE_CUDA=1. Code that uses mae::Cuda (mae/backend/cuda.hpp) must be compiled by nvcc (.cu files).
# Included from the top-level CMakeLists.txt, so it shares its scope (MAE_EXPORT_TARGETS).

# Ampere and Hopper unless the user chose (-DCMAKE_CUDA_ARCHITECTURES=native, 89, ... or $CUDAARCHS).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
  set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures to build for")
endif()
# One CUDA runtime in the process: the shared one that CUDA::cudart and cuBLAS use (CMake's default
# for CUDA targets would add the static runtime as well).
if(NOT DEFINED CMAKE_CUDA_RUNTIME_LIBRARY)
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
endif()
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)

enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

add_library(mae_cuda INTERFACE)
add_library(mae::cuda ALIAS mae_cuda)
set_target_properties(mae_cuda PROPERTIES EXPORT_NAME cuda)
target_link_libraries(mae_cuda INTERFACE mae CUDA::cublas CUDA::cudart)
target_compile_definitions(mae_cuda INTERFACE MAE_HAVE_CUDA=1)
target_compile_features(mae_cuda INTERFACE cuda_std_17)
# --expt-relaxed-constexpr: constexpr host functions (std::numeric_limits, ...) callable in device code;
# --extended-lambda: __host__ __device__ lambdas may be passed to Cuda::parallel_for.
# OpenMP's flags are CXX-only; -fopenmp for the host part of .cu files keeps the CPU backends parallel
# in translation units that use both.
target_compile_options(mae_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr --extended-lambda>)
if(OpenMP_CXX_FLAGS)
  target_compile_options(mae_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=${OpenMP_CXX_FLAGS}>)
endif()
list(APPEND MAE_EXPORT_TARGETS mae_cuda)
