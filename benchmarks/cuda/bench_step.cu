// bench_step with the CUDA backend available (--backend cuda): the same program, compiled by nvcc.
#include "../bench_step.cpp"
