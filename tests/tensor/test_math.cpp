// mae/tensor/math.hpp: the float exp and normal CDF written without branches (so loops over them
// vectorize on every ISA) against the same formulas written the plain way with `?:`, bit for bit;
// their accuracy against libm in double; and the lane reductions against an explicit model of their
// summation order.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "mae/tensor/math.hpp"

namespace {

float from_bits(std::uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
std::uint32_t to_bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
bool same_bits(float a, float b) { return to_bits(a) == to_bits(b) || (std::isnan(a) && std::isnan(b)); }

// The formulas of math.hpp with ordinary branches: what the branch-free versions must equal.
float reference_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-06f;
  float p = 1.0f / 5040.0f;
  for (float c : {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f}) p = p * r + c;
  const std::int32_t bits = (std::int32_t(to_bits(shifted)) - 0x4B400000 + 127) << 23;
  return p * from_bits(std::uint32_t(bits));
}
struct ReferenceCdfPdf {
  float cdf, pdf;
};
ReferenceCdfPdf reference_normal_cdf_pdf(float x) {
  const float z = x * 0.707106781186547524f, a = z < 0 ? -z : z;
  const float t = 1.0f / (1.0f + 0.5f * a);
  float q = -0.058847334f;
  for (float c : {0.28348873f, -0.48493910f, 0.27546543f, -0.024821194f, 0.20191736f, 0.24330004f, 0.28234804f,
                  0.28208799f})
    q = q * t + c;
  const float g = reference_exp(-(a * a));
  const float half_erfc = (0.5f * t) * (q * g);
  return {z < 0 ? half_erfc : 1.0f - half_erfc, 0.398942280f * g};
}

std::vector<float> probe_values() {
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, -1.0f, 88.3f, -87.3f, 88.4f, -87.4f, 1e-45f, -1e-45f, 1e30f, -1e30f,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), std::nextafter(88.3f, 100.0f),
                           std::nextafter(-87.3f, -100.0f)};
  for (std::uint64_t b = 0; b < (1ull << 32); b += 4099) xs.push_back(from_bits(std::uint32_t(b)));  // every sign, exponent
  for (int i = -20000; i <= 20000; ++i) xs.push_back(float(i) * 1e-3f);  // the range GELU sees, densely
  return xs;
}

}  // namespace

TEST_CASE("float exp and normal_cdf_pdf without branches equal the branchy formulas bit for bit", "[math]") {
  long checked = 0;
  for (float x : probe_values()) {
    INFO("x = " << x << " (bits 0x" << std::hex << to_bits(x) << ")");
    REQUIRE(same_bits(mae::math::exp(x), reference_exp(x)));
    const ReferenceCdfPdf want = reference_normal_cdf_pdf(x);
    const mae::math::CdfPdf<float> got = mae::math::normal_cdf_pdf(x);
    REQUIRE(same_bits(got.cdf, want.cdf));
    REQUIRE(same_bits(got.pdf, want.pdf));
    REQUIRE(same_bits(mae::math::normal_cdf(x), want.cdf));
    ++checked;
  }
  CHECK(checked > 1000000);
}

// normal_cdf_pdf's error budget: the erfc fit (4.2e-8 relative), exp (1 ulp) and a few float
// roundings, plus the rounding of the argument −a² (a = |x|/√2, ~3 roundings of 6e-8 relative each),
// which exp turns into a relative error of ~1.8e-7 · a²: 5e-7 + 2e-7 · a² in all (relative below 0.5,
// where the erfc form has no cancellation; absolute above). φ shares the exp: the same budget.
TEST_CASE("float exp is within 2 ulp of libm's on [-87, 88]; normal_cdf_pdf within its error budget on [-9, 9]",
          "[math]") {
  double worst_exp = 0, worst_cdf = 0, worst_pdf = 0;
  for (int i = -870000; i <= 880000; i += 7) {
    const float x = float(i) * 1e-4f;
    const double e = std::exp(double(x));
    const double ulp = std::nextafter(float(e), std::numeric_limits<float>::infinity()) - float(e);
    worst_exp = std::max(worst_exp, std::abs(double(mae::math::exp(x)) - e) / ulp);
    if (std::abs(x) < 9) {
      const double c = 0.5 * std::erfc(-double(x) / std::sqrt(2.0));
      const double pdf = std::exp(-0.5 * double(x) * double(x)) / std::sqrt(2.0 * 3.14159265358979323846);
      const mae::math::CdfPdf<float> got = mae::math::normal_cdf_pdf(x);
      const double budget = 5e-7 + 2e-7 * double(x) * double(x) / 2;
      worst_cdf = std::max(worst_cdf, std::abs(double(got.cdf) - c) / (c < 0.5 ? c : 1.0) / budget);  // in budgets
      worst_pdf = std::max(worst_pdf, std::abs(double(got.pdf) - pdf) / pdf / budget);
    }
  }
  INFO("worst exp error " << worst_exp << " ulp, worst normal_cdf error " << worst_cdf << " and pdf error "
                          << worst_pdf << " of their budgets");
  CHECK(worst_exp <= 2.0);
  CHECK(worst_cdf <= 1.0);
  CHECK(worst_pdf <= 1.0);
}

// The explicit model of lane_sum's order for `lanes` lanes: lane i % lanes, then pairwise halves.
static float modelled_lane_sum(const std::vector<float>& x, mae::Index n, int lanes) {
  std::vector<float> lane(std::size_t(lanes), 0.0f);
  for (mae::Index i = 0; i < n; ++i) lane[std::size_t(i % lanes)] += x[std::size_t(i)];
  for (int w = lanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lane[std::size_t(j)] += lane[std::size_t(j + w)];
  return lane[0];
}

TEST_CASE("lane_sum adds term i into lane i % Lanes in order, then the lanes pairwise (8 and 16 lanes)", "[math]") {
  static_assert(mae::math::kLanes == 8 && mae::math::kWideLanes == 16, "the lane counts the model is run for");
  std::vector<float> x(83);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::ldexp(float((i * 37) % 101) - 50.0f, -int(i % 13)) + 1e-3f;
  auto term = [&](mae::Index i) { return x[std::size_t(i)]; };
  bool orders_differ = false;
  for (mae::Index n = 0; n <= mae::Index(x.size()); ++n) {
    INFO("n = " << n);
    CHECK(same_bits(mae::math::lane_sum<float>(n, term), modelled_lane_sum(x, n, 8)));
    CHECK(same_bits(mae::math::lane_sum<float, mae::math::kWideLanes>(n, term), modelled_lane_sum(x, n, 16)));
    orders_differ = orders_differ || !same_bits(modelled_lane_sum(x, n, 8), modelled_lane_sum(x, n, 16));
  }
  CHECK(orders_differ);  // the data tell the two orders apart, so both checks mean something
  // and it is a sum: exact on small integers whatever the order
  CHECK(mae::math::lane_sum<double>(100, [](mae::Index i) { return double(i); }) == 4950.0);
  CHECK(mae::math::lane_sum<double, mae::math::kWideLanes>(100, [](mae::Index i) { return double(i); }) == 4950.0);
}

TEST_CASE("lane_max is the maximum for every length and position of the maximum", "[math]") {
  for (mae::Index n = 1; n <= 37; ++n)
    for (mae::Index at = 0; at < n; ++at) {
      std::vector<float> x(static_cast<std::size_t>(n));
      for (mae::Index i = 0; i < n; ++i) x[std::size_t(i)] = -100.0f - float((i * 7) % 11);
      x[std::size_t(at)] = -3.5f;
      CHECK(mae::math::lane_max(x.data(), n) == -3.5f);
    }
}
