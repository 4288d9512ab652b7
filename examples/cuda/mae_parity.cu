// mae_parity with the CUDA backend available: the same program, compiled by nvcc.
#include "../mae_parity.cpp"
