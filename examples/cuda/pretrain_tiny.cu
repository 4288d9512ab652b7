// pretrain_tiny with the CUDA backend available: the same program, compiled by nvcc.
#include "../pretrain_tiny.cpp"
