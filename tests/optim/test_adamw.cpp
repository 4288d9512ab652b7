// AdamW against an independent long-double recurrence (m_hat / v_hat form), the lr = 0 first step,
// decay groups, zero gradients, the step count in the bias correction, and no allocation in step().
#include <mae/backend/cpu_eigen.hpp>
#include <mae/optim/adamw.hpp>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <vector>

// Counting global operator new for this executable: step() must not allocate.
namespace {
std::atomic<long> g_allocations{0};
void* counted_alloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using mae::Index;
using LD = long double;

namespace {

constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEps = 1e-8, kWd = 0.05;

// Written from the textbook form p -= lr * m_hat / (sqrt(v_hat) + eps), in long double, with the
// decay as p -= lr * wd * p on the old value. Shares no code with the library.
struct Reference {
  std::vector<LD> p, m, v;
  void step(const std::vector<LD>& g, LD lr, LD wd, Index t) {
    const LD b1 = kBeta1, b2 = kBeta2, eps = kEps;
    const LD bc1 = 1 - std::pow(b1, LD(t)), bc2 = 1 - std::pow(b2, LD(t));
    for (std::size_t i = 0; i < p.size(); ++i) {
      p[i] -= lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const LD m_hat = m[i] / bc1, v_hat = v[i] / bc2;
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
};

// One tensor: our storage in T and the reference in long double, started from the same values.
template <class T>
struct Tensor {
  std::vector<T> p, g, m, v;
  bool decay;
  Reference ref;
  Tensor(Index n, bool decay_, std::mt19937& rng) : p(n), g(n), m(n, T(0)), v(n, T(0)), decay(decay_) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (auto& x : p) x = static_cast<T>(u(rng));
    ref.p.assign(p.begin(), p.end());
    ref.m.assign(n, 0);
    ref.v.assign(n, 0);
  }
  typename mae::AdamW<T>::Segment segment() { return {p.data(), g.data(), m.data(), v.data(), Index(p.size()), decay}; }
  // Gradients over many magnitudes (1 .. 1e-8, near eps too) with both signs; every zero_every-th
  // entry is exactly 0.
  void new_gradient(std::mt19937& rng, Index zero_every) {
    std::uniform_real_distribution<double> mag(-8.0, 0.0), u(0.0, 1.0);
    for (std::size_t i = 0; i < g.size(); ++i) {
      const double x = std::pow(10.0, mag(rng)) * (u(rng) < 0.5 ? -1.0 : 1.0);
      g[i] = (zero_every > 0 && Index(i) % zero_every == 0) ? T(0) : static_cast<T>(x);
    }
  }
  void reference_step(double lr, Index t) {
    ref.step(std::vector<LD>(g.begin(), g.end()), lr, decay ? kWd : 0.0, t);
  }
};

template <class T>
constexpr double tol() {
  return std::is_same<T, double>::value ? 4e-15 : 2e-6;  // observed: 4e-16, 2e-7
}

template <class T>
void check_against_reference(const Tensor<T>& x, const char* what) {
  LD m_max = 0, v_max = 0;
  for (std::size_t i = 0; i < x.p.size(); ++i) {
    m_max = std::max(m_max, std::fabs(x.ref.m[i]));
    v_max = std::max(v_max, std::fabs(x.ref.v[i]));
  }
  double worst_p = 0, worst_m = 0, worst_v = 0;
  for (std::size_t i = 0; i < x.p.size(); ++i) {
    worst_p = std::max(worst_p, double(std::fabs(LD(x.p[i]) - x.ref.p[i]) / std::max(LD(1), std::fabs(x.ref.p[i]))));
    if (m_max > 0) worst_m = std::max(worst_m, double(std::fabs(LD(x.m[i]) - x.ref.m[i]) / m_max));
    if (v_max > 0) worst_v = std::max(worst_v, double(std::fabs(LD(x.v[i]) - x.ref.v[i]) / v_max));
  }
  INFO(what << ": worst p error " << worst_p << ", m " << worst_m << ", v " << worst_v << " (tol " << tol<T>() << ")");
  CHECK(worst_p <= tol<T>());
  CHECK(worst_m <= tol<T>());
  CHECK(worst_v <= tol<T>());
}

}  // namespace

TEMPLATE_TEST_CASE("adamw: several steps with varying lr match the long-double recurrence, lr = 0 first",
                   "[adamw]", float, double) {
  using T = TestType;
  std::mt19937 rng(1234);
  mae::CpuEigen be;
  // Small (serial loop) and large (OpenMP loop, >= kParallelGrain) segments in both groups.
  std::vector<Tensor<T>> ts;
  ts.emplace_back(37, true, rng);
  ts.emplace_back(3001, false, rng);
  ts.emplace_back(2500, true, rng);
  ts.emplace_back(19, false, rng);
  mae::AdamW<T> opt(kBeta1, kBeta2, kEps, kWd);
  const double lrs[] = {0.0, 1e-3, 5e-4, 2e-3, 9.336825748732972e-4, 0.0, 1e-3};
  Index t = 0;
  for (double lr : lrs) {
    for (auto& x : ts) x.new_gradient(rng, 7);
    std::vector<std::vector<T>> before;
    for (auto& x : ts) before.push_back(x.p);
    std::vector<typename mae::AdamW<T>::Segment> segs;
    for (auto& x : ts) segs.push_back(x.segment());
    opt.step(be, segs, lr);
    ++t;
    REQUIRE(opt.step_count() == t);
    for (std::size_t s = 0; s < ts.size(); ++s) {
      ts[s].reference_step(lr, t);
      INFO("step " << t << ", lr " << lr << ", segment " << s << (ts[s].decay ? " (decay)" : " (no decay)"));
      check_against_reference(ts[s], "after step");
      if (lr == 0.0) CHECK(std::memcmp(before[s].data(), ts[s].p.data(), ts[s].p.size() * sizeof(T)) == 0);
    }
  }
}

TEMPLATE_TEST_CASE("adamw: an lr = 0 first step leaves p bit-identical, sets m = (1-beta1) g, counts the step",
                   "[adamw]", float, double) {
  using T = TestType;
  std::mt19937 rng(7);
  mae::CpuEigen be;
  Tensor<T> a(100, true, rng), b(100, false, rng);
  a.new_gradient(rng, 5);
  b.new_gradient(rng, 5);
  const std::vector<T> pa = a.p, pb = b.p;
  mae::AdamW<T> opt;
  opt.step(be, {a.segment(), b.segment()}, 0.0);
  CHECK(opt.step_count() == 1);
  CHECK(a.p == pa);
  CHECK(b.p == pb);
  const T one_minus_beta1 = static_cast<T>(1.0 - 0.9);  // 0.09999999999999998 in double
  for (const Tensor<T>* x : {&a, &b})
    for (std::size_t i = 0; i < x->g.size(); ++i) {
      INFO("i = " << i);
      CHECK(x->m[i] == x->g[i] * one_minus_beta1);  // one rounding, as PyTorch's 0 + (1-beta1) * g
      const LD v_exact = (1 - LD(0.95)) * LD(x->g[i]) * LD(x->g[i]);
      CHECK(double(std::fabs(LD(x->v[i]) - v_exact)) <= 4 * std::numeric_limits<T>::epsilon() * double(v_exact));
    }
}

TEMPLATE_TEST_CASE("adamw: decay shrinks only decay segments, multiplicatively; zero gradients do not move p",
                   "[adamw]", float, double) {
  using T = TestType;
  std::mt19937 rng(99);
  mae::CpuEigen be;
  Tensor<T> d(64, true, rng), nd(64, false, rng);
  std::fill(d.g.begin(), d.g.end(), T(0));
  std::fill(nd.g.begin(), nd.g.end(), T(0));
  const std::vector<T> p_nd = nd.p;
  std::vector<T> p_d = d.p;
  mae::AdamW<T> opt;
  for (double lr : {1e-3, 2e-2, 0.5}) {
    opt.step(be, {d.segment(), nd.segment()}, lr);
    const T factor = static_cast<T>(1.0 - lr * kWd);
    for (auto& x : p_d) x = x * factor;  // the update is (-step_size * 0) / eps = -0
    CHECK(d.p == p_d);
    CHECK(nd.p == p_nd);
  }
  CHECK(std::all_of(d.m.begin(), d.m.end(), [](T x) { return x == T(0); }));
  CHECK(std::all_of(d.v.begin(), d.v.end(), [](T x) { return x == T(0); }));
  // Decay applies to the value before the update: compare with the reference (which decays first).
  d.new_gradient(rng, 0);
  d.ref.p.assign(d.p.begin(), d.p.end());
  opt.set_step_count(0);
  opt.step(be, {d.segment()}, 0.3);
  d.reference_step(0.3, 1);
  check_against_reference(d, "large lr decay segment");
}

TEMPLATE_TEST_CASE("adamw: bias correction uses the optimizer's step count (set_step_count resumes)", "[adamw]",
                   float, double) {
  using T = TestType;
  std::mt19937 rng(5);
  mae::CpuEigen be;
  Tensor<T> x(257, true, rng);
  x.new_gradient(rng, 11);
  // Start from non-zero moments, as after a resumed run.
  std::uniform_real_distribution<double> u(0.0, 1e-2);
  for (std::size_t i = 0; i < x.m.size(); ++i) {
    x.m[i] = static_cast<T>(u(rng) - 5e-3);
    x.v[i] = static_cast<T>(u(rng) * 1e-2);
  }
  x.ref.m.assign(x.m.begin(), x.m.end());
  x.ref.v.assign(x.v.begin(), x.v.end());
  Tensor<T> fresh = x;
  mae::AdamW<T> opt;
  opt.set_step_count(9);
  opt.step(be, {x.segment()}, 1e-3);
  CHECK(opt.step_count() == 10);
  x.reference_step(1e-3, 10);
  check_against_reference(x, "resumed at t = 9");
  // The same state stepped as t = 1 lands elsewhere: bc1 = 0.1 instead of 1 - 0.9^10.
  mae::AdamW<T> opt1;
  opt1.step(be, {fresh.segment()}, 1e-3);
  double diff = 0;
  for (std::size_t i = 0; i < x.p.size(); ++i) diff = std::max(diff, double(std::fabs(x.p[i] - fresh.p[i])));
  CHECK(diff > 1e-4);
}

TEMPLATE_TEST_CASE("adamw: step() performs no heap allocation", "[adamw]", float, double) {
  using T = TestType;
  std::mt19937 rng(3);
  mae::CpuEigen be;
  Tensor<T> a(5000, true, rng), b(33, false, rng);
  a.new_gradient(rng, 0);
  b.new_gradient(rng, 0);
  const std::vector<typename mae::AdamW<T>::Segment> segs = {a.segment(), b.segment()};
  mae::AdamW<T> opt;
  opt.step(be, segs, 1e-3);  // warm up (OpenMP thread pool)
  const long before = g_allocations.load();
  opt.step(be, segs, 1e-3);
  opt.step(be, segs, 0.0);
  CHECK(g_allocations.load() - before == 0);
  CHECK(opt.step_count() == 3);
}

TEST_CASE("adamw: bad arguments throw mae::Error and leave the state untouched", "[adamw]") {
  using Catch::Matchers::Contains;
  mae::CpuEigen be;
  std::vector<double> p(4, 1.0), g(4, 1.0), m(4, 0.0), v(4, 0.0);
  mae::AdamW<double> opt;
  using Seg = mae::AdamW<double>::Segment;
  const Seg good{p.data(), g.data(), m.data(), v.data(), 4, true};
  CHECK_THROWS_WITH(opt.step(be, {good}, -1e-3), Contains("lr"));
  CHECK_THROWS_WITH(opt.step(be, {good}, std::nan("")), Contains("lr"));
  CHECK_THROWS_WITH(opt.step(be, {good, Seg{p.data(), nullptr, m.data(), v.data(), 4, true}}, 1e-3),
                    Contains("segment 1") && Contains("null"));
  CHECK_THROWS_WITH(opt.step(be, {Seg{p.data(), g.data(), m.data(), v.data(), -1, true}}, 1e-3),
                    Contains("negative size"));
  CHECK(opt.step_count() == 0);
  CHECK(m == std::vector<double>(4, 0.0));
  CHECK_NOTHROW(opt.step(be, {Seg{nullptr, nullptr, nullptr, nullptr, 0, true}}, 1e-3));  // empty segment
  CHECK(opt.step_count() == 1);
  CHECK_THROWS_WITH(mae::AdamW<double>(1.0), Contains("beta1"));
  CHECK_THROWS_WITH(mae::AdamW<double>(0.9, -0.1), Contains("beta2"));
  CHECK_THROWS_WITH(mae::AdamW<double>(0.9, 0.95, -1.0), Contains("eps"));
  CHECK_THROWS_WITH(mae::AdamW<double>(0.9, 0.95, 1e-8, -0.05), Contains("weight_decay"));
  CHECK_THROWS_WITH(opt.set_step_count(-1), Contains("step count"));
}

TEST_CASE("adamw: the kernel's host scalars are PyTorch's Python doubles cast to T", "[adamw]") {
  double p = 0, g = 0, m = 0, v = 0;
  const auto k = mae::adamw_kernel<double>(&p, &g, &m, &v, 1e-3, 0.05, 0.9, 0.95, 1e-8, 3);
  CHECK(k.decay_factor == 1 - 1e-3 * 0.05);
  CHECK(k.one_minus_beta1 == 0.09999999999999998);
  CHECK(k.one_minus_beta2 == 0.050000000000000044);
  CHECK(k.step_size == 1e-3 / (1 - std::pow(0.9, 3.0)));
  CHECK(k.sqrt_bc2 == std::sqrt(1 - std::pow(0.95, 3.0)));
  float pf = 0, gf = 0, mf = 0, vf = 0;
  const auto kf = mae::adamw_kernel<float>(&pf, &gf, &mf, &vf, 1e-3, 0.05, 0.9, 0.95, 1e-8, 3);
  CHECK(kf.step_size == static_cast<float>(1e-3 / (1 - std::pow(0.9, 3.0))));
  CHECK(kf.eps == 1e-8f);
  CHECK_THROWS_AS(mae::adamw_kernel<double>(&p, &g, &m, &v, 1e-3, 0.0, 0.9, 0.95, 1e-8, 0), mae::Error);
}

TEST_CASE("adamw: begin_step then apply on each part is step() bit for bit; apply before any step throws",
          "[adamw]") {
  mae::CpuEigen be;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> nd;
  const Index n = 301;
  std::vector<double> p(n), g(n);
  for (Index i = 0; i < n; ++i) p[i] = nd(rng), g[i] = nd(rng);
  std::vector<double> p1 = p, m1(n, 0), v1(n, 0), p2 = p, m2(n, 0), v2(n, 0);
  using Seg = mae::AdamW<double>::Segment;
  mae::AdamW<double> whole, parts;
  const std::vector<Seg> all{{p1.data(), g.data(), m1.data(), v1.data(), n, true}};
  const std::vector<Seg> head{{p2.data(), g.data(), m2.data(), v2.data(), 100, true}};
  const std::vector<Seg> tail{{p2.data() + 100, g.data() + 100, m2.data() + 100, v2.data() + 100, n - 100, true}};
  CHECK_THROWS_WITH(parts.apply(be, head, 1e-3), Catch::Contains("begin_step"));
  for (int s = 0; s < 3; ++s) {
    const double lr = 1e-3 * (s + 1);
    whole.step(be, all, lr);
    parts.begin_step();
    parts.apply(be, tail, lr);  // any order: elements are independent
    parts.apply(be, head, lr);
  }
  CHECK(parts.step_count() == whole.step_count());
  CHECK(p1 == p2);
  CHECK(m1 == m2);
  CHECK(v1 == v2);
}

TEMPLATE_TEST_CASE("adamw: a segment with clear = g steps bit for bit as without it and leaves g zero",
                   "[adamw]", float, double) {
  using T = TestType;
  std::mt19937 rng(21);
  mae::CpuEigen be;  // parallel_for of every CPU backend: the serial (small) and the OpenMP (large) loop
  for (const Index n : {Index(41), Index(70001)}) {
    Tensor<T> plain(n, true, rng);
    Tensor<T> cleared = plain;
    mae::AdamW<T> a, b;
    for (int s = 0; s < 3; ++s) {
      plain.new_gradient(rng, 5);
      cleared.g = plain.g;
      auto seg = cleared.segment();
      seg.clear = cleared.g.data();
      a.step(be, {plain.segment()}, 1e-3 * (s + 1));
      b.step(be, {seg}, 1e-3 * (s + 1));
      INFO("n " << n << ", step " << s + 1);
      CHECK(std::memcmp(plain.p.data(), cleared.p.data(), sizeof(T) * n) == 0);
      CHECK(std::memcmp(plain.m.data(), cleared.m.data(), sizeof(T) * n) == 0);
      CHECK(std::memcmp(plain.v.data(), cleared.v.data(), sizeof(T) * n) == 0);
      CHECK(std::count(cleared.g.begin(), cleared.g.end(), T(0)) == n);
      CHECK(std::count(plain.g.begin(), plain.g.end(), T(0)) < n);  // the plain step leaves g alone
    }
  }
  std::vector<T> p(4, T(1)), g(4, T(1)), m(4, T(0)), v(4, T(0)), other(4, T(1));
  typename mae::AdamW<T>::Segment bad{p.data(), g.data(), m.data(), v.data(), 4, true, other.data()};
  mae::AdamW<T> opt;
  CHECK_THROWS_WITH(opt.step(be, {bad}, 1e-3), Catch::Contains("segment 0") && Catch::Contains("clear"));
  CHECK(opt.step_count() == 0);
  CHECK(other == std::vector<T>(4, T(1)));
}
