// Linear (torch.nn.Linear): y = x · Wᵀ + b with W (out, in); backward adds dW, db, dx.
// Gradient checks in double on CpuEigen, f = <y, g> for a fixed random g (STYLE.md §7).
#include <catch2/catch.hpp>

#include <limits>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/layers/linear.hpp"
#include "support/gradcheck.hpp"

namespace {

using mae::Index;
using mae::MatView;
using Vec = std::vector<double>;
namespace t = mae::test;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// A Linear on `rows` rows whose x, y, dy and dx views may be column blocks of wider matrices
// (ld > cols). Padding of inputs holds NaN (must never be read); padding of outputs holds a
// sentinel (must never be written).
struct LinearCase {
  Index rows, in, out, ldx, ldy, lddx;
  bool has_bias;
  Vec x, w, b, g, y, gw, gb, dx;
  mae::CpuEigen be;
  mae::Linear<double> lin;

  LinearCase(Index rows_, Index in_, Index out_, bool bias, Index pad)
      : rows(rows_), in(in_), out(out_), ldx(in_ + pad), ldy(out_ + pad), lddx(in_ + pad), has_bias(bias) {
    x.assign(rows * ldx, kNaN);
    g.assign(rows * ldy, kNaN);
    const Vec xv = t::random_normal(rows * in, 11), gv = t::random_normal(rows * out, 12);
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < in; ++c) x[r * ldx + c] = xv[r * in + c];
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < out; ++c) g[r * ldy + c] = gv[r * out + c];
    w = t::random_normal(out * in, 13, 0.5);
    b = t::random_normal(out, 14, 0.5);
    gw.assign(w.size(), t::kSentinel);
    gb.assign(b.size(), t::kSentinel);
    dx.assign(rows * lddx, t::kSentinel);
    y.assign(rows * ldy, t::kSentinel);
    lin.in = in;
    lin.out = out;
    lin.weight = {w.data(), gw.data(), Index(w.size())};
    lin.bias = {has_bias ? b.data() : nullptr, gb.data(), Index(b.size())};
  }
  MatView<const double> xv() const { return {x.data(), rows, in, ldx}; }
  MatView<double> yv() { return {y.data(), rows, out, ldy}; }
  double objective() {
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < out; ++c) y[r * ldy + c] = kNaN;  // forward must write every element of y
    lin.forward(be, xv(), yv());
    double f = 0;
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < out; ++c) f += y[r * ldy + c] * g[r * ldy + c];
    return f;
  }
  void backward(bool with_dx) {
    lin.backward(be, xv(), MatView<const double>(g.data(), rows, out, ldy),
                 with_dx ? MatView<double>(dx.data(), rows, in, lddx) : MatView<double>());
  }
  // dx without padding, minus the sentinel.
  Vec dx_added() const {
    Vec v(rows * in);
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < in; ++c) v[r * in + c] = dx[r * lddx + c] - t::kSentinel;
    return v;
  }
};

void check_gradients(LinearCase& lc) {
  lc.objective();
  lc.backward(true);
  auto f = [&](const Vec&) { return lc.objective(); };
  // x with padding: check only the real elements (the padding holds NaN and gets no gradient)
  Vec dx_full(lc.x.size(), 0.0);
  std::vector<std::size_t> x_idx;
  const Vec dxa = lc.dx_added();
  for (Index r = 0; r < lc.rows; ++r)
    for (Index c = 0; c < lc.in; ++c) {
      x_idx.push_back(std::size_t(r * lc.ldx + c));
      dx_full[r * lc.ldx + c] = dxa[r * lc.in + c];
    }
  t::require_fd("x", t::fd_check(f, lc.x, dx_full, x_idx));
  t::require_fd("weight", t::fd_check(f, lc.w, t::minus_sentinel(lc.gw)));
  if (lc.has_bias) t::require_fd("bias", t::fd_check(f, lc.b, t::minus_sentinel(lc.gb)));
}

}  // namespace

TEST_CASE("Linear forward is y = x·Wᵀ + b with W stored (out, in) row-major", "[linear]") {
  LinearCase lc(7, 5, 6, true, 0);
  lc.objective();
  const Vec ref = t::naive::linear(lc.x, 7, 5, 6, lc.w, lc.b);
  CHECK(t::max_abs_diff(lc.y, ref) <= 1e-14);
  // one element by hand: y(2, 3) = Σ_i x(2, i) W(3, i) + b(3)
  double y23 = lc.b[3];
  for (Index i = 0; i < 5; ++i) y23 += lc.x[2 * 5 + i] * lc.w[3 * 5 + i];
  CHECK(lc.y[2 * 6 + 3] == Approx(y23).epsilon(1e-14));
}

TEST_CASE("Linear backward adds dW, db and dx that match central differences", "[linear][grad]") {
  LinearCase lc(7, 5, 6, true, 0);
  check_gradients(lc);
}

TEST_CASE("Linear backward on one row, a wide output and a wide input matches central differences", "[linear][grad]") {
  SECTION("one row") {
    LinearCase lc(1, 3, 4, true, 0);
    check_gradients(lc);
  }
  SECTION("in 7, out 35, ld 40: bias sums span three column chunks, the last one partial") {
    LinearCase lc(6, 7, 35, true, 5);
    check_gradients(lc);
  }
  SECTION("in 33, out 9: the weight is sampled") {
    LinearCase lc(5, 33, 9, true, 0);
    check_gradients(lc);
  }
}

TEST_CASE("Linear on strided views (ld > cols) matches central differences and leaves the padding alone",
          "[linear][grad]") {
  LinearCase lc(7, 5, 6, true, 3);
  check_gradients(lc);
  for (Index r = 0; r < lc.rows; ++r) {
    for (Index c = lc.out; c < lc.ldy; ++c) CHECK(lc.y[r * lc.ldy + c] == t::kSentinel);
    for (Index c = lc.in; c < lc.lddx; ++c) CHECK(lc.dx[r * lc.lddx + c] == t::kSentinel);
  }
}

TEST_CASE("Linear without bias adds nothing to the bias gradient, and a null dx skips the input gradient",
          "[linear][grad]") {
  LinearCase lc(7, 5, 6, false, 0);
  lc.objective();
  const Vec ref = t::naive::linear(lc.x, 7, 5, 6, lc.w, {});
  CHECK(t::max_abs_diff(lc.y, ref) <= 1e-14);
  lc.backward(false);
  for (double v : lc.gb) CHECK(v == t::kSentinel);
  for (double v : lc.dx) CHECK(v == t::kSentinel);
  auto f = [&](const Vec&) { return lc.objective(); };
  t::require_fd("weight", t::fd_check(f, lc.w, t::minus_sentinel(lc.gw)));
}

TEST_CASE("Linear backward twice adds twice (the += rule)", "[linear]") {
  LinearCase lc(7, 5, 6, true, 0);
  lc.objective();
  lc.backward(true);
  const Vec gw1 = t::minus_sentinel(lc.gw), gb1 = t::minus_sentinel(lc.gb), dx1 = lc.dx_added();
  lc.backward(true);
  const Vec gw2 = t::minus_sentinel(lc.gw), gb2 = t::minus_sentinel(lc.gb), dx2 = lc.dx_added();
  for (std::size_t i = 0; i < gw1.size(); ++i) CHECK(gw2[i] == Approx(2 * gw1[i]).margin(1e-14));
  for (std::size_t i = 0; i < gb1.size(); ++i) CHECK(gb2[i] == Approx(2 * gb1[i]).margin(1e-14));
  for (std::size_t i = 0; i < dx1.size(); ++i) CHECK(dx2[i] == Approx(2 * dx1[i]).margin(1e-14));
}
