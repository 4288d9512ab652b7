// GELU built for this CPU (-march=native, as the benchmarks and examples are): on AVX-512 its loops
// run with 512-bit vectors (MAE_WIDE_VECTORS), elsewhere as in every other build. Either way the
// results must be the bits of the same functor applied one index at a time in a plain loop (which
// GCC vectorizes with its default width, 256-bit on AVX-512 CPUs): forward, backward and the
// rebuild in backward, on lengths that end in every vector tail and run serial and in parallel.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/gelu.hpp"

namespace {
using mae::Index;
using mae::Span;

std::vector<float> inputs(Index n) {
  std::vector<float> x(static_cast<std::size_t>(n));
  const float special[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 9.0f, -9.0f, 30.0f, -30.0f, 100.0f, -100.0f};
  for (Index i = 0; i < n; ++i)
    x[std::size_t(i)] = i < 10 ? special[i] : float(12.0 * std::sin(0.731 * double(i)) * std::cos(0.05 * double(i)));
  return x;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("GELU's kernels give the same bits through parallel_for (wide vectors here) as one index at a time",
          "[layers][gelu]") {
#if defined(__AVX512F__)
  INFO("built with AVX-512: parallel_for runs GELU with 512-bit vectors");
#endif
  mae::CpuKernels be;
  const mae::Gelu<float> gelu;
  for (Index n : {Index(1), Index(7), Index(15), Index(16), Index(17), Index(33), Index(1000), Index(40013)}) {
    CAPTURE(n);
    const std::vector<float> x = inputs(n);
    std::vector<float> dy(x.size());
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = float(std::cos(0.3 * double(i)));
    const Span<const float> xs{x.data(), n};

    std::vector<float> y(x.size()), y_ref(x.size());
    gelu.forward(be, xs, Span<float>{y.data(), n});
    const mae::kernels::GeluForward<float> fwd{x.data(), y_ref.data()};
    for (Index i = 0; i < n; ++i) fwd(i);
    CHECK(same_bits(y, y_ref));

    std::vector<float> dx(x.size(), 0.25f), dx_ref = dx;
    gelu.backward(be, xs, Span<const float>{dy.data(), n}, Span<float>{dx.data(), n});
    const mae::kernels::GeluBackward<float, true> bwd{x.data(), dy.data(), dx_ref.data()};
    for (Index i = 0; i < n; ++i) bwd(i);
    CHECK(same_bits(dx, dx_ref));

    std::vector<float> y2(x.size()), y2_ref(x.size()), d = dy, d_ref = dy;
    gelu.recompute_backward(be, xs, Span<float>{y2.data(), n}, Span<float>{d.data(), n});
    const mae::kernels::GeluRecompute<float> rec{x.data(), y2_ref.data(), d_ref.data()};
    for (Index i = 0; i < n; ++i) rec(i);
    CHECK(same_bits(y2, y2_ref));
    CHECK(same_bits(d, d_ref));
    CHECK(same_bits(y2, y));  // the rebuild is the forward's output
    bool finite = true;
    for (float v : y) finite = finite && std::isfinite(v);
    CHECK(finite);
  }
}
