// Backend GEMM contract: C = alpha·op(A)·op(B) + beta·C, row-major, for gemm and the two-level
// strided gemm_batched, on every CPU backend, against a naive triple loop in long double.
// Unreferenced A/B elements hold NaN (a read of padding poisons the result); C elements outside the
// written items hold a sentinel that must survive bit for bit; beta == 0 runs on a NaN-filled C.
// Tolerance: max |C - ref| <= tol · max |ref|, tol = 1e-5 (float), 1e-13 (double).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"
#if MAE_HAVE_ONEDNN
#include <omp.h>

#include "mae/backend/onednn.hpp"
#endif

// ---- counting global operator new (process-wide: counts oneDNN's and Eigen's C++ allocations too)
namespace {
std::atomic<long> g_allocations{0};
void* counted_alloc(std::size_t bytes) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(bytes ? bytes : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace
void* operator new(std::size_t bytes) { return counted_alloc(bytes); }
void* operator new[](std::size_t bytes) { return counted_alloc(bytes); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using mae::Batch2;
using mae::Index;
using mae::Op;
using mae::Stride2;

template <class B, class T>
struct Case {
  using Backend = B;
  using Scalar = T;
};
// Every backend of this build, in float and double (a macro so that test names show the types).
#if MAE_HAVE_ONEDNN
#define MAE_TEST_GEMM_CASES \
  (Case<mae::CpuEigen, float>), (Case<mae::CpuEigen, double>), (Case<mae::OneDnn, float>), (Case<mae::OneDnn, double>)
#else
#define MAE_TEST_GEMM_CASES (Case<mae::CpuEigen, float>), (Case<mae::CpuEigen, double>)
#endif

template <class T>
long double tolerance() {
  return std::is_same_v<T, float> ? 1e-5L : 1e-13L;
}

// How one operand is laid out: item (i, j) of the batch starts at offset + i*s.outer + j*s.inner
// of its buffer; rows are ld apart.
struct Operand {
  Index ld = 0;
  Stride2 s;
  Index offset = 0;
};

template <class T>
struct GemmCase {
  Op ta = Op::N, tb = Op::N;
  Index m = 1, n = 1, k = 1;
  T alpha = 1, beta = 0;
  Operand a, b, c;
  Batch2 batch;
  bool batched = false;
};

// A buffer that holds every item of one operand; ptr() is item (0, 0), `used` marks referenced elements.
template <class T>
struct Buffer {
  std::vector<T> v;
  std::vector<char> used;
  Index base = 0;
  const Operand* layout = nullptr;
  Index item(Index i, Index j) const { return base + i * layout->s.outer + j * layout->s.inner; }
  T* ptr() { return v.data() + base; }
};

template <class T>
Buffer<T> make_buffer(Index rows, Index cols, const Operand& o, Batch2 batch) {
  Buffer<T> buf;
  buf.layout = &o;
  Index lo = 0, hi = 0;
  for (Index i : {Index(0), batch.outer - 1})
    for (Index j : {Index(0), batch.inner - 1}) {
      lo = std::min(lo, i * o.s.outer + j * o.s.inner);
      hi = std::max(hi, i * o.s.outer + j * o.s.inner);
    }
  buf.base = o.offset - lo;
  const Index size = buf.base + hi + (rows > 0 ? (rows - 1) * o.ld + cols : 0) + 1;
  buf.v.assign(std::size_t(size), T(0));
  buf.used.assign(std::size_t(size), 0);
  for (Index i = 0; i < batch.outer; ++i)
    for (Index j = 0; j < batch.inner; ++j)
      for (Index r = 0; r < rows; ++r)
        for (Index col = 0; col < cols; ++col) buf.used[std::size_t(buf.item(i, j) + r * o.ld + col)] = 1;
  return buf;
}

std::string op_name(Op o) { return o == Op::N ? "N" : "T"; }

// Runs one call on a fresh set of buffers and checks it against the long-double loop.
template <class B, class T>
void run_and_check(B& be, const GemmCase<T>& g) {
  const T nan = std::numeric_limits<T>::quiet_NaN(), sentinel = T(-777.25);
  std::mt19937 rng(unsigned(g.m * 131 + g.n * 17 + g.k * 7 + Index(g.ta) * 3 + Index(g.tb)));
  std::uniform_real_distribution<double> uni(-1.0, 1.0);
  const Index arows = g.ta == Op::N ? g.m : g.k, acols = g.ta == Op::N ? g.k : g.m;
  const Index brows = g.tb == Op::N ? g.k : g.n, bcols = g.tb == Op::N ? g.n : g.k;
  Buffer<T> A = make_buffer<T>(arows, acols, g.a, g.batch), Bm = make_buffer<T>(brows, bcols, g.b, g.batch);
  Buffer<T> C = make_buffer<T>(g.m, g.n, g.c, g.batch);
  for (Buffer<T>* x : {&A, &Bm})
    for (std::size_t i = 0; i < x->v.size(); ++i) x->v[i] = x->used[i] ? T(uni(rng)) : nan;
  for (std::size_t i = 0; i < C.v.size(); ++i)
    C.v[i] = !C.used[i] ? sentinel : g.beta == T(0) ? nan : T(uni(rng));
  const std::vector<T> c0 = C.v;

  if (g.batched)
    be.gemm_batched(g.ta, g.tb, g.m, g.n, g.k, g.alpha, A.ptr(), g.a.ld, g.a.s, Bm.ptr(), g.b.ld, g.b.s, g.beta,
                    C.ptr(), g.c.ld, g.c.s, g.batch);
  else
    be.gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, A.ptr(), g.a.ld, Bm.ptr(), g.b.ld, g.beta, C.ptr(), g.c.ld);

  long double worst = 0, scale = 0;
  bool finite = true;
  for (Index i = 0; i < g.batch.outer; ++i)
    for (Index j = 0; j < g.batch.inner; ++j) {
      const T* a = A.v.data() + A.item(i, j);
      const T* b = Bm.v.data() + Bm.item(i, j);
      const Index co = C.item(i, j);
      for (Index r = 0; r < g.m; ++r)
        for (Index col = 0; col < g.n; ++col) {
          long double acc = 0;
          for (Index p = 0; p < g.k; ++p) {
            const T x = g.ta == Op::N ? a[r * g.a.ld + p] : a[p * g.a.ld + r];
            const T y = g.tb == Op::N ? b[p * g.b.ld + col] : b[col * g.b.ld + p];
            acc += (long double)x * (long double)y;
          }
          const std::size_t at = std::size_t(co + r * g.c.ld + col);
          long double ref = (long double)g.alpha * acc;
          if (g.beta != T(0)) ref += (long double)g.beta * (long double)c0[at];
          finite = finite && std::isfinite(C.v[at]);
          worst = std::max(worst, std::fabs((long double)C.v[at] - ref));
          scale = std::max(scale, std::fabs(ref));
        }
    }
  Index clobbered = 0;
  for (std::size_t i = 0; i < C.v.size(); ++i) clobbered += !C.used[i] && !(C.v[i] == sentinel);

  INFO(B::name << (std::is_same_v<T, float> ? " float" : " double") << (g.batched ? " gemm_batched" : " gemm")
               << " op=" << op_name(g.ta) << op_name(g.tb) << " m=" << g.m << " n=" << g.n << " k=" << g.k
               << " lda=" << g.a.ld << " ldb=" << g.b.ld << " ldc=" << g.c.ld << " alpha=" << g.alpha
               << " beta=" << g.beta << " batch=" << g.batch.outer << "x" << g.batch.inner << " max|err|="
               << double(worst) << " max|ref|=" << double(scale));
  CHECK(finite);
  CHECK(clobbered == 0);
  CHECK(worst <= tolerance<T>() * scale);
}

// A plain (non-batched) case: contiguous except for `pad` extra columns in every leading dimension.
template <class T>
GemmCase<T> plain(Op ta, Op tb, Index m, Index n, Index k, Index pad, T alpha, T beta) {
  GemmCase<T> g;
  g.ta = ta, g.tb = tb, g.m = m, g.n = n, g.k = k, g.alpha = alpha, g.beta = beta;
  g.a.ld = std::max<Index>(ta == Op::N ? k : m, 1) + pad;  // ld >= 1 even for an empty dimension
  g.b.ld = std::max<Index>(tb == Op::N ? n : k, 1) + pad;
  g.c.ld = std::max<Index>(n, 1) + pad;
  return g;
}

constexpr Op kOps[] = {Op::N, Op::T};

// Backends with a primitive cache report signatures that fell back to a per-item loop.
template <class B, class = void>
struct reports_per_item : std::false_type {};
template <class B>
struct reports_per_item<B, std::void_t<decltype(std::declval<const B&>().per_item_signatures())>> : std::true_type {};

}  // namespace

TEMPLATE_TEST_CASE("gemm equals a long-double loop for every (Op, Op), size, padded ld, alpha and beta",
                   "[backend][gemm]", MAE_TEST_GEMM_CASES) {
  using B = typename TestType::Backend;
  using T = typename TestType::Scalar;
  B be;
  const Index sizes[][3] = {{1, 1, 1},  {7, 7, 7},   {33, 33, 33}, {64, 64, 64}, {1, 7, 33},  {7, 1, 33},
                            {33, 7, 1}, {64, 33, 7}, {7, 64, 1},   {33, 1, 64},  {1, 64, 7}, {65, 65, 32}};
  const T alpha_beta[][2] = {{T(1), T(0)}, {T(1), T(1)}, {T(0.75), T(0.5)}, {T(-2), T(0)}};
  for (Op ta : kOps)
    for (Op tb : kOps)
      for (const auto& s : sizes)
        for (Index pad : {Index(0), Index(5)})
          for (const auto& ab : alpha_beta) run_and_check(be, plain(ta, tb, s[0], s[1], s[2], pad, ab[0], ab[1]));
}

TEMPLATE_TEST_CASE("gemm with k = 0 sets C = beta * C (beta = 0 overwrites NaN)", "[backend][gemm]",
                   MAE_TEST_GEMM_CASES) {
  using B = typename TestType::Backend;
  using T = typename TestType::Scalar;
  B be;
  for (Op ta : kOps)
    for (Op tb : kOps)
      for (T beta : {T(0), T(1), T(0.5)}) {
        run_and_check(be, plain(ta, tb, 7, 5, 0, 0, T(1), beta));
        run_and_check(be, plain(ta, tb, 7, 5, 0, 3, T(2), beta));
      }
}

// Attention on a fused qkv activation (N samples, L tokens, H heads of Dh; row width 3D, D = H·Dh):
// head h of sample s is a column block at s·L·3D + h·Dh (+0 for q, +D for k, +2D for v).
TEMPLATE_TEST_CASE("gemm_batched matches per-item loops on attention layouts (qkv column offsets)",
                   "[backend][gemm_batched]", MAE_TEST_GEMM_CASES) {
  using B = typename TestType::Backend;
  using T = typename TestType::Scalar;
  B be;
  for (const auto& dims : {std::array<Index, 4>{2, 3, 9, 5}, std::array<Index, 4>{3, 4, 17, 8},
                           std::array<Index, 4>{2, 2, 65, 32}}) {
    const Index N = dims[0], H = dims[1], L = dims[2], Dh = dims[3], D = H * Dh;
    const Batch2 batch{N, H};
    const Operand q{3 * D, {L * 3 * D, Dh}, 0}, k{3 * D, {L * 3 * D, Dh}, D}, v{3 * D, {L * 3 * D, Dh}, 2 * D};
    const Operand scores{L, {H * L * L, L * L}, 0};
    const Operand out{D + 2, {L * (D + 2), Dh}, 0};  // merged heads, 2 padding columns
    const T scale = T(1) / std::sqrt(T(Dh));
    auto make = [&](Op ta, Op tb, Index m, Index n, Index kk, T alpha, T beta, Operand a, Operand b, Operand c) {
      GemmCase<T> g;
      g.ta = ta, g.tb = tb, g.m = m, g.n = n, g.k = kk, g.alpha = alpha, g.beta = beta;
      g.a = a, g.b = b, g.c = c, g.batch = batch, g.batched = true;
      return g;
    };
    run_and_check(be, make(Op::N, Op::T, L, L, Dh, scale, T(0), q, k, scores));  // S = scale·Q·Kᵀ
    run_and_check(be, make(Op::N, Op::N, L, Dh, L, T(1), T(0), scores, v, out));  // O = P·V
    run_and_check(be, make(Op::N, Op::T, L, L, Dh, T(1), T(0), out, v, scores));  // dP = dO·Vᵀ
    run_and_check(be, make(Op::T, Op::N, L, Dh, L, T(1), T(0), scores, out, v));  // dV = Pᵀ·dO
    run_and_check(be, make(Op::N, Op::N, L, Dh, L, scale, T(1), scores, k, q));   // dQ += scale·dS·K
    run_and_check(be, make(Op::T, Op::N, L, Dh, L, scale, T(0.5), scores, q, k)); // dK = scale·dSᵀ·Q + dK/2
    run_and_check(be, make(Op::T, Op::T, Dh, L, L, T(1), T(0), out, scores, scores));  // (T, T) on the same layouts
  }
  if constexpr (reports_per_item<B>::value) CHECK(be.per_item_signatures() == 0);  // all one 4-D primitive each
}

TEMPLATE_TEST_CASE("gemm_batched handles every (Op, Op), broadcast (zero) and negative batch strides",
                   "[backend][gemm_batched]", MAE_TEST_GEMM_CASES) {
  using B = typename TestType::Backend;
  using T = typename TestType::Scalar;
  B be;
  const Index m = 6, n = 7, k = 5, pad = 2;
  for (Op ta : kOps)
    for (Op tb : kOps)
      for (int layout = 0; layout < 4; ++layout) {
        GemmCase<T> g = plain(ta, tb, m, n, k, pad, T(0.5), layout == 1 ? T(1) : T(0));
        g.batched = true;
        g.batch = {3, 2};
        const Index sa = (ta == Op::N ? m : k) * g.a.ld + 3, sb = (tb == Op::N ? k : n) * g.b.ld + 1,
                    sc = m * g.c.ld + 4;
        g.a.s = {2 * sa, sa}, g.b.s = {2 * sb, sb}, g.c.s = {2 * sc, sc};
        if (layout == 2) g.b.s = {0, sb}, g.a.s = {2 * sa, 0};             // broadcast B over outer, A over inner
        if (layout == 3) g.a.s = {-2 * sa, sa}, g.c.s = {-2 * sc, -sc};    // reversed item order
        run_and_check(be, g);
      }
}

TEMPLATE_TEST_CASE("a too-small leading dimension throws mae::Error", "[backend][gemm][errors]",
                   MAE_TEST_GEMM_CASES) {
  using B = typename TestType::Backend;
  using T = typename TestType::Scalar;
  B be;
  std::vector<T> a(64 * 64), b(64 * 64), c(64 * 64);
  // m = 4, n = 6, k = 5
  CHECK_THROWS_AS(be.gemm(Op::N, Op::N, 4, 6, 5, T(1), a.data(), 4, b.data(), 6, T(0), c.data(), 6), mae::Error);
  CHECK_THROWS_AS(be.gemm(Op::T, Op::N, 4, 6, 5, T(1), a.data(), 3, b.data(), 6, T(0), c.data(), 6), mae::Error);
  CHECK_THROWS_AS(be.gemm(Op::N, Op::N, 4, 6, 5, T(1), a.data(), 5, b.data(), 5, T(0), c.data(), 6), mae::Error);
  CHECK_THROWS_AS(be.gemm(Op::N, Op::T, 4, 6, 5, T(1), a.data(), 5, b.data(), 4, T(0), c.data(), 6), mae::Error);
  CHECK_THROWS_AS(be.gemm(Op::N, Op::N, 4, 6, 5, T(1), a.data(), 5, b.data(), 6, T(0), c.data(), 5), mae::Error);
  CHECK_THROWS_WITH(be.gemm(Op::N, Op::N, 4, 6, 5, T(1), a.data(), 5, b.data(), 6, T(0), c.data(), 5),
                    Catch::Contains("leading dimension too small") && Catch::Contains("ldc=5"));
  CHECK_THROWS_AS(be.gemm_batched(Op::N, Op::T, 4, 6, 5, T(1), a.data(), 5, Stride2{40, 20}, b.data(), 4,
                                  Stride2{60, 30}, T(0), c.data(), 6, Stride2{48, 24}, Batch2{1, 2}),
                  mae::Error);
  CHECK_NOTHROW(be.gemm(Op::N, Op::N, 4, 6, 5, T(1), a.data(), 5, b.data(), 6, T(0), c.data(), 6));
}

TEST_CASE("CPU backends align buffers to 64 bytes, and buffers of 4 MiB or more to 2 MiB huge pages",
          "[backend][memory]") {
  mae::CpuEigen be;
  CHECK(be.allocate(0) == nullptr);
  const std::size_t huge = mae::CpuKernels::kHugePage;
  for (std::size_t bytes : {std::size_t(1), std::size_t(100), huge, 2 * huge - 4, 2 * huge, 5 * huge + 12}) {
    CAPTURE(bytes);
    const std::size_t align = bytes >= 2 * huge ? huge : 64;
    CHECK(mae::CpuKernels::allocation_alignment(bytes) == align);
    auto* p = static_cast<unsigned char*>(be.allocate(bytes));
    REQUIRE(p != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % align == 0);
    std::memset(p, 0xab, bytes);  // the whole buffer is usable
    CHECK(int(p[0]) == 0xab);
    CHECK(int(p[bytes - 1]) == 0xab);
    be.deallocate(p);
  }
#if MAE_HAVE_ONEDNN
  mae::OneDnn dnnl;  // every CPU backend allocates through CpuKernels
  void* p = dnnl.allocate(3 * huge);
  CHECK(reinterpret_cast<std::uintptr_t>(p) % huge == 0);
  dnnl.deallocate(p);
#endif
}

TEMPLATE_TEST_CASE("a repeated call builds nothing and allocates nothing per call; a new shape still works",
                   "[backend][gemm][alloc]", MAE_TEST_GEMM_CASES) {
  using B = typename TestType::Backend;
  using T = typename TestType::Scalar;
  B be;
  const Index m = 33, n = 40, k = 24, N = 2, H = 3;
  std::vector<T> a(std::size_t(N * H * m * k), T(0.25)), b(std::size_t(N * H * k * n), T(0.5)),
      c(std::size_t(N * H * m * n), T(0));
  const Stride2 sa{H * m * k, m * k}, sb{H * k * n, k * n}, sc{H * m * n, m * n};
  auto plain_call = [&] { be.gemm(Op::N, Op::T, m, n, k, T(1), a.data(), k, b.data(), k, T(0), c.data(), n); };
  auto scaled_call = [&] { be.gemm(Op::T, Op::N, m, n, k, T(0.5), a.data(), m, b.data(), n, T(1), c.data(), n); };
  auto batched_call = [&] {
    be.gemm_batched(Op::N, Op::N, m, n, k, T(1), a.data(), k, sa, b.data(), n, sb, T(0), c.data(), n, sc,
                    Batch2{N, H});
  };
  auto allocations = [](auto&& call) {
    const long before = g_allocations.load();
    call();
    return g_allocations.load() - before;
  };
  const long first[3] = {allocations(plain_call), allocations(scaled_call), allocations(batched_call)};
  const long second[3] = {allocations(plain_call), allocations(scaled_call), allocations(batched_call)};
  const long third[3] = {allocations(plain_call), allocations(scaled_call), allocations(batched_call)};
  for (int i = 0; i < 3; ++i) {
    CAPTURE(i, first[i], second[i], third[i]);
    CHECK(second[i] == third[i]);  // steady state: nothing grows per call
    if (!std::is_same_v<B, mae::CpuEigen> && std::is_same_v<T, float>) {
      // The first call built a primitive, the second did not. What remains is oneDNN's own
      // execute (its internal argument map), shown to be the whole of it in the OneDnn test below.
      CHECK(second[i] < first[i]);
    } else {
      CHECK(second[i] == 0);  // Eigen path: no operator new at all
    }
  }
  // A new shape after the cached ones still gives the right numbers.
  run_and_check(be, plain(Op::T, Op::T, 19, 23, 29, 3, T(1.5), T(0.5)));
  run_and_check(be, plain(Op::N, Op::T, 33, 40, 24, 0, T(1), T(0)));  // and a cached one
}

#if MAE_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

static_assert(mae::is_backend<mae::OneDnn>::value, "OneDnn satisfies the backend contract");
static_assert(!std::is_copy_constructible_v<mae::OneDnn> && !std::is_copy_assignable_v<mae::OneDnn>,
              "OneDnn owns its cache: not copyable");
static_assert(std::is_move_constructible_v<mae::OneDnn> && std::is_move_assignable_v<mae::OneDnn>,
              "OneDnn is movable");
static_assert(std::is_same_v<mae::backend::Default, mae::OneDnn>, "MAE_HAVE_ONEDNN selects OneDnn");

namespace {
// Allocations made by one dnnl_primitive_execute of a bare 33x33x33 matmul (user scratchpad),
// measured on its second execution: oneDNN's own floor, which no wrapper can go below.
long raw_execute_allocations(float alpha, float beta) {
  const Index s = 33;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream st(eng);
  const dnnl::memory::desc md({s, s}, dnnl::memory::data_type::f32, dnnl::memory::dims{s, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md, md, md), attr, eng);
  const dnnl::matmul prim(pd);
  std::vector<float> a(s * s, 1.0f), b(s * s, 1.0f), c(s * s, 0.0f), pad(pd.scratchpad_desc().get_size() + 64);
  dnnl::memory ma(md, eng, a.data()), mb(md, eng, b.data()), mc(md, eng, c.data()),
      msp(pd.scratchpad_desc(), eng, pad.data());
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, ma.get()}, {DNNL_ARG_WEIGHTS, mb.get()}, {DNNL_ARG_DST, mc.get()},
                             {DNNL_ARG_SCRATCHPAD, msp.get()}};
  const int nargs = pd.scratchpad_desc().get_size() > 0 ? 4 : 3;
  dnnl_primitive_execute(prim.get(), st.get(), nargs, args);
  const long before = g_allocations.load();
  dnnl_primitive_execute(prim.get(), st.get(), nargs, args);
  dnnl_stream_wait(st.get());
  return g_allocations.load() - before;
}
}  // namespace

TEST_CASE("OneDnn's cached call allocates exactly what oneDNN's own execute does (the wrapper adds none)",
          "[backend][onednn][alloc]") {
  const Index s = 33;
  std::vector<float> a(s * s, 1.0f), b(s * s, 1.0f), c(s * s, 0.0f);
  mae::OneDnn be;
  for (const auto& ab : {std::array<float, 2>{1.0f, 0.0f}, std::array<float, 2>{0.5f, 1.0f}}) {
    be.gemm(Op::N, Op::N, s, s, s, ab[0], a.data(), s, b.data(), s, ab[1], c.data(), s);
    const long before = g_allocations.load();
    be.gemm(Op::N, Op::N, s, s, s, ab[0], a.data(), s, b.data(), s, ab[1], c.data(), s);
    const long ours = g_allocations.load() - before;
    const long raw = raw_execute_allocations(ab[0], ab[1]);
    CAPTURE(ab[0], ab[1], ours, raw);
    CHECK(ours == raw);
  }
}

TEST_CASE("OneDnn builds one primitive per call signature, reuses it, and stays usable after a move",
          "[backend][onednn]") {
  const Index m = 9, n = 8, k = 7;
  std::vector<float> a(512, 1.0f), b(512, 1.0f), c(512, 0.0f);
  mae::OneDnn be;
  CHECK(be.cached_primitives() == 0);
  be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data() + 3, k, b.data() + 1, n, 0.0f, c.data() + 2, n);  // other buffers
  CHECK(be.cached_primitives() == 1);
  be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f, c.data(), n);  // beta differs
  be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k + 1, b.data(), n, 1.0f, c.data(), n);  // lda differs
  be.gemm(Op::N, Op::T, m, n, k, 1.0f, a.data(), k, b.data(), k, 1.0f, c.data(), n);  // op differs
  CHECK(be.cached_primitives() == 4);
  std::vector<double> ad(4, 1.0), bd(4, 1.0), cd(4, 0.0);
  be.gemm(Op::N, Op::N, 2, 2, 2, 1.0, ad.data(), 2, bd.data(), 2, 0.0, cd.data(), 2);  // double: Eigen
  CHECK(cd[0] == 2.0);
  CHECK(be.cached_primitives() == 4);

  // A batched layout with a 4-D primitive, and one (negative strides) that runs per item.
  be.gemm_batched(Op::N, Op::N, 2, 2, 2, 1.0f, a.data(), 2, Stride2{8, 4}, b.data(), 2, Stride2{8, 4}, 0.0f,
                  c.data(), 2, Stride2{8, 4}, Batch2{2, 2});
  CHECK(be.per_item_signatures() == 0);
  be.gemm_batched(Op::N, Op::N, 2, 2, 2, 1.0f, a.data() + 12, 2, Stride2{-8, -4}, b.data(), 2, Stride2{8, 4}, 0.0f,
                  c.data(), 2, Stride2{8, 4}, Batch2{2, 2});
  CHECK(be.per_item_signatures() == 1);
  CHECK(be.scratchpad_bytes() % 64 == 0);

  mae::OneDnn moved(std::move(be));
  const std::size_t cached = moved.cached_primitives();
  run_and_check(moved, plain(Op::N, Op::N, m, n, k, 0, 1.0f, 0.0f));
  CHECK(moved.cached_primitives() == cached);
  mae::OneDnn assigned;
  assigned = std::move(moved);
  run_and_check(assigned, plain(Op::T, Op::N, 5, 4, 3, 1, 2.0f, 0.5f));
}

namespace {
// Sets the OpenMP thread count for a scope; create the OneDnn object inside it (its primitives are
// sized for the thread count at creation).
// sin(step · i), i < n: deterministic, smooth operands for bit-for-bit repeat checks.
std::vector<float> smooth_values(Index n, double step) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(std::sin(step * double(i)));
  return v;
}

// max |x - ref| and max |ref|.
std::pair<float, float> worst_and_scale(const std::vector<float>& x, const std::vector<float>& ref) {
  float worst = 0, scale = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    worst = std::max(worst, std::fabs(x[i] - ref[i]));
    scale = std::max(scale, std::fabs(ref[i]));
  }
  return {worst, scale};
}

struct ThreadCount {
  int saved = omp_get_max_threads();
  explicit ThreadCount(int n) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved); }
};
}  // namespace

TEST_CASE("OneDnn runs a long-k Aᵀ·B (a weight gradient) as one slice of k per thread, with the same numbers",
          "[backend][onednn]") {
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    const ThreadCount scoped(threads);
    mae::OneDnn be;
    CHECK(be.split_k() == mae::OneDnn::split_k_pays());  // the default depends on the CPU ...
    be.set_split_k(true);                                 // ... so force it to test the split path
    CHECK(be.split_k_slices(Op::T, Op::N, 96, 80, 600) == threads);
    CHECK(be.split_k_slices(Op::T, Op::N, 96, 80, 128 * threads - 1) == threads - 1);  // >= 128 of k per slice
    CHECK(be.split_k_slices(Op::N, Op::N, 96, 80, 600) == 1);  // only Aᵀ·B is split
    CHECK(be.split_k_slices(Op::T, Op::N, 60, 60, 600) == 1);  // C too small to pay
    run_and_check(be, plain(Op::T, Op::N, 96, 80, 600, 0, 1.0f, 0.0f));
    run_and_check(be, plain(Op::T, Op::N, 96, 80, 601, 3, 0.5f, 1.0f));    // padded lds, alpha, beta, odd k
    run_and_check(be, plain(Op::T, Op::N, 500, 16, 300, 12, 1.0f, 0.5f));  // lda 512: slices copied to m + 16
    run_and_check(be, plain(Op::T, Op::N, 512, 9, 257, 0, 2.0f, 0.0f));    // lda 512 = m
    run_and_check(be, plain(Op::T, Op::T, 96, 80, 600, 0, 1.0f, 1.0f));    // not split, same object

    // The same call twice gives the same bits; with splitting off it is one primitive again.
    const Index m = 96, n = 80, k = 600;
    std::vector<float> a(std::size_t(k * m)), b(std::size_t(k * n));
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(std::sin(0.37 * double(i)));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = float(std::cos(0.11 * double(i)));
    std::vector<float> c1(std::size_t(m * n), 0.5f), c2 = c1, c3 = c1;
    be.gemm(Op::T, Op::N, m, n, k, 1.0f, a.data(), m, b.data(), n, 1.0f, c1.data(), n);
    be.gemm(Op::T, Op::N, m, n, k, 1.0f, a.data(), m, b.data(), n, 1.0f, c2.data(), n);
    CHECK(c1 == c2);
    be.set_split_k(false);
    CHECK(be.split_k_slices(Op::T, Op::N, m, n, k) == 1);
    be.gemm(Op::T, Op::N, m, n, k, 1.0f, a.data(), m, b.data(), n, 1.0f, c3.data(), n);
    const auto [worst, scale] = worst_and_scale(c1, c3);
    CAPTURE(worst, scale);
    CHECK(worst > 0);  // the sums really ran in another order ...
    CHECK(worst <= float(tolerance<float>()) * scale);  // ... to the tolerance of every case above
    run_and_check(be, plain(Op::T, Op::N, 96, 80, 600, 0, 1.0f, 0.0f));
  }
  const ThreadCount one(1);
  mae::OneDnn serial;
  serial.set_split_k(true);
  CHECK(serial.split_k_slices(Op::T, Op::N, 96, 80, 600) == 1);
}

TEST_CASE("OneDnn cuts a mid-size gemm's C into a block of rows or columns per thread, with the same numbers",
          "[backend][onednn]") {
  for (int threads : {2, 3}) {
    CAPTURE(threads);
    const ThreadCount scoped(threads);
    mae::OneDnn be;
    CHECK(be.split_c() == mae::OneDnn::split_c_pays());  // the default depends on the CPU ...
    be.set_split_c(true);                                 // ... so force it to test the path
    be.set_split_k(false);
    be.set_wide_b_sgemm(false);
    be.set_narrow_sgemm(false);
    be.set_nn_sgemm(false);
    CHECK(be.split_c_parts(Op::N, Op::T, 256, 96, 192) == threads);  // 4.7 M multiply-adds
    CHECK(be.split_c_parts(Op::T, Op::N, 96, 256, 192) == threads);  // columns when n > m
    CHECK(be.split_c_parts(Op::N, Op::N, 100, 96, 64) == 1);         // too small to pay
    CHECK(be.split_c_parts(Op::N, Op::N, 1024, 1024, 1024) == 1);    // large: oneDNN's threads do well
    CHECK(be.split_c_parts(Op::N, Op::T, 400, 768, 768) == 1);       // no side <= 256 (base224's proj)
    CHECK(be.split_c_parts(Op::N, Op::N, 64 * threads - 1, 60, 2000) == threads - 1);  // >= 64 rows a part
    be.set_split_k(true);  // split k comes first where it applies
    CHECK(be.split_c_parts(Op::T, Op::N, 256, 96, 600) == 1);
    CHECK(be.split_c_parts(Op::N, Op::N, 256, 96, 600) == threads);
    be.set_split_k(false);
    CHECK(be.split_c_parts(Op::T, Op::N, 256, 96, 600) == threads);
    be.set_wide_b_sgemm(true);  // so does the wide-B route
    CHECK(be.split_c_parts(Op::N, Op::N, 64, mae::OneDnn::kWideB + 1, 64) == 1);
    be.set_wide_b_sgemm(false);
    CHECK(be.split_c_parts(Op::N, Op::N, 64, mae::OneDnn::kWideB + 1, 64) == threads);
    be.set_narrow_sgemm(true);  // and the narrow-sgemm route, which takes op(A) = A
    CHECK(be.split_c_parts(Op::N, Op::T, 256, 96, 192) == 1);
    CHECK(be.split_c_parts(Op::T, Op::N, 96, 256, 192) == threads);
    be.set_narrow_sgemm(false);
    be.set_nn_sgemm(true);  // and the NN-sgemm route
    CHECK(be.split_c_parts(Op::N, Op::N, 256, 96, 600) == 1);
    CHECK(be.split_c_parts(Op::N, Op::T, 256, 96, 600) == threads);
    be.set_nn_sgemm(false);
    for (Op ta : kOps)
      for (Op tb : kOps) {
        // Rows (m >= n) and columns, part boundaries on and off multiples of 16, NaN padding, alpha, beta.
        run_and_check(be, plain(ta, tb, 200, 72, 300, 0, 1.0f, 0.0f));
        run_and_check(be, plain(ta, tb, 72, 200, 300, 5, 0.75f, 0.5f));
        run_and_check(be, plain(ta, tb, 211, 213, 97, 3, -2.0f, 1.0f));
      }

    // The same call twice gives the same bits; with the split off it is one threaded primitive again.
    const Index m = 256, n = 96, k = 192;
    const std::vector<float> a = smooth_values(m * k, 0.37), b = smooth_values(k * n, 0.11);
    std::vector<float> c1(std::size_t(m * n), 0.5f), c2 = c1, c3 = c1;
    be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f, c1.data(), n);
    be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f, c2.data(), n);
    CHECK(c1 == c2);
    const std::size_t prims = be.cached_primitives();
    be.set_split_c(false);
    CHECK(be.split_c_parts(Op::N, Op::N, m, n, k) == 1);
    be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f, c3.data(), n);
    CHECK(be.cached_primitives() == prims + 1);  // the whole-C primitive
    const auto [worst, scale] = worst_and_scale(c1, c3);
    CAPTURE(worst, scale);
    CHECK(worst <= float(tolerance<float>()) * scale);
  }
  const ThreadCount one(1);
  mae::OneDnn serial;
  serial.set_split_c(true);
  CHECK(serial.split_c_parts(Op::N, Op::T, 256, 96, 192) == 1);
}

TEST_CASE("OneDnn runs a gemm with a wide row-major B (op(B) = B, n > kWideB) through dnnl_sgemm",
          "[backend][onednn]") {
  mae::OneDnn be;
  CHECK(be.wide_b_sgemm() == mae::OneDnn::wide_b_sgemm_pays());  // the default depends on the CPU ...
  be.set_wide_b_sgemm(true);                                     // ... so force it to test the path
  const Index wide = mae::OneDnn::kWideB + 3;
  CHECK(be.routes_to_sgemm(Op::N, Op::N, 7, wide, 5));
  CHECK(be.routes_to_sgemm(Op::T, Op::N, 7, wide, 5));
  CHECK_FALSE(be.routes_to_sgemm(Op::N, Op::T, 7, wide, 5));  // op(B) = Bᵀ: a matmul primitive
  CHECK_FALSE(be.routes_to_sgemm(Op::N, Op::N, 7, mae::OneDnn::kWideB, 5));
  for (Op ta : kOps) {
    run_and_check(be, plain(ta, Op::N, 5, wide, 9, 0, 1.0f, 0.0f));   // beta 0 over a NaN-filled C
    run_and_check(be, plain(ta, Op::N, 6, wide, 4, 5, 0.75f, 0.5f));  // NaN padding in every ld, alpha, beta
    run_and_check(be, plain(ta, Op::N, 3, wide, 1, 2, -2.0f, 1.0f));
  }
  CHECK(be.cached_primitives() == 0);  // none of them was a matmul

  // The same call twice gives the same bits; with the route off it is a matmul primitive again.
  const Index m = 4, n = wide, k = 6;
  std::vector<float> a(std::size_t(m * k)), b(std::size_t(k * n));
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = float(std::sin(0.37 * double(i)));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = float(std::cos(0.11 * double(i)));
  std::vector<float> c1(std::size_t(m * n), 0.5f), c2 = c1;
  be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f, c1.data(), n);
  be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 1.0f, c2.data(), n);
  CHECK(c1 == c2);
  be.set_wide_b_sgemm(false);
  CHECK_FALSE(be.routes_to_sgemm(Op::N, Op::N, m, n, k));
  run_and_check(be, plain(Op::N, Op::N, 5, wide, 9, 0, 1.0f, 0.0f));
  CHECK(be.cached_primitives() == 1);

  be.set_wide_b_sgemm(true);
  mae::OneDnn taken(std::move(be));  // a moved-from object fails on this path too, with the same kind of message
  CHECK_THROWS_WITH(be.gemm(Op::N, Op::N, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c1.data(), n),
                    Catch::Contains("OneDnn::gemm(ta=N, tb=N, m=4, n=" + std::to_string(n)) &&
                        Catch::Contains("moved from"));
}

// For a product (op(A) = A, op(B) = tb) that `be` sends through dnnl_sgemm: the same call twice
// gives the same bits; after `route_off` it is a matmul primitive (or split C) again, equal within
// the float tolerance.
template <class Off>
void check_sgemm_route_off(mae::OneDnn& be, Op tb, Index m, Index n, Index k, Off route_off) {
  REQUIRE(be.routes_to_sgemm(Op::N, tb, m, n, k));
  const Index ldb = tb == Op::N ? n : k;
  const std::vector<float> a = smooth_values(m * k, 0.37), b = smooth_values(k * n, 0.11);
  std::vector<float> c1(std::size_t(m * n), 0.5f), c2 = c1, c3 = c1;
  be.gemm(Op::N, tb, m, n, k, 1.0f, a.data(), k, b.data(), ldb, 1.0f, c1.data(), n);
  be.gemm(Op::N, tb, m, n, k, 1.0f, a.data(), k, b.data(), ldb, 1.0f, c2.data(), n);
  CHECK(c1 == c2);
  route_off();
  CHECK_FALSE(be.routes_to_sgemm(Op::N, tb, m, n, k));
  be.gemm(Op::N, tb, m, n, k, 1.0f, a.data(), k, b.data(), ldb, 1.0f, c3.data(), n);
  CHECK(be.cached_primitives() >= 1);
  const auto [worst, scale] = worst_and_scale(c1, c3);
  CAPTURE(worst, scale);
  CHECK(worst <= float(tolerance<float>()) * scale);
}

TEST_CASE("OneDnn runs a narrow mid-size gemm with op(A) = A through dnnl_sgemm, with the same numbers",
          "[backend][onednn]") {
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    const ThreadCount scoped(threads);
    mae::OneDnn be;
    CHECK(be.narrow_sgemm() == mae::OneDnn::narrow_sgemm_pays());  // the default depends on the CPU ...
    be.set_narrow_sgemm(true);                                     // ... so force it to test the path
    be.set_wide_b_sgemm(false);
    be.set_nn_sgemm(false);
    be.set_split_c(true);
    for (Op tb : kOps) {
      CHECK(be.routes_to_sgemm(Op::N, tb, 256, 96, 192));          // 4.7 M multiply-adds, a side <= 256
      CHECK_FALSE(be.routes_to_sgemm(Op::T, tb, 256, 96, 192));    // op(A) = Aᵀ: split C or a matmul
      CHECK_FALSE(be.routes_to_sgemm(Op::N, tb, 100, 96, 64));     // too small
      CHECK_FALSE(be.routes_to_sgemm(Op::N, tb, 1024, 1024, 1024));  // large
      CHECK_FALSE(be.routes_to_sgemm(Op::N, tb, 400, 768, 768));   // no side <= 256 (base224's proj)
      CHECK(be.split_c_parts(Op::N, tb, 256, 96, 192) == 1);
      // NaN padding in every ld and a NaN-filled C under beta 0, alpha, beta, unaligned sizes.
      run_and_check(be, plain(Op::N, tb, 200, 72, 300, 0, 1.0f, 0.0f));
      run_and_check(be, plain(Op::N, tb, 72, 200, 300, 5, 0.75f, 0.5f));
      run_and_check(be, plain(Op::N, tb, 211, 213, 97, 3, -2.0f, 1.0f));
    }
    CHECK(be.cached_primitives() == 0);  // none of them was a matmul

    check_sgemm_route_off(be, Op::T, 256, 96, 192, [&] { be.set_narrow_sgemm(false); });
  }
}

TEST_CASE("OneDnn runs a dy·W gemm (op(A) = A, op(B) = B) of any size past the minimum through dnnl_sgemm",
          "[backend][onednn]") {
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    const ThreadCount scoped(threads);
    mae::OneDnn be;
    CHECK(be.nn_sgemm() == mae::OneDnn::nn_sgemm_pays());  // the default depends on the CPU ...
    be.set_nn_sgemm(true);                                 // ... so force it to test the path
    be.set_narrow_sgemm(false);
    be.set_wide_b_sgemm(false);
    be.set_split_c(true);
    CHECK(be.routes_to_sgemm(Op::N, Op::N, 300, 300, 300));        // 27 M multiply-adds, no side <= 256
    CHECK(be.routes_to_sgemm(Op::N, Op::N, 400, 768, 2304));       // base224's qkv dx
    CHECK(be.routes_to_sgemm(Op::N, Op::N, 256, 96, 192));         // also the narrow ones
    CHECK_FALSE(be.routes_to_sgemm(Op::N, Op::N, 100, 96, 64));    // below kSgemmMinMacs
    CHECK_FALSE(be.routes_to_sgemm(Op::N, Op::T, 300, 300, 300));  // x·Wᵀ: a matmul primitive
    CHECK_FALSE(be.routes_to_sgemm(Op::T, Op::N, 300, 300, 300));  // Aᵀ·B: a matmul primitive
    CHECK_FALSE(be.routes_to_sgemm(Op::T, Op::T, 300, 300, 300));
    // NaN padding in every ld and a NaN-filled C under beta 0, alpha, beta, unaligned sizes.
    run_and_check(be, plain(Op::N, Op::N, 300, 290, 310, 0, 1.0f, 0.0f));
    run_and_check(be, plain(Op::N, Op::N, 257, 301, 263, 5, 0.75f, 0.5f));
    run_and_check(be, plain(Op::N, Op::N, 311, 270, 97, 3, -2.0f, 1.0f));
    CHECK(be.cached_primitives() == 0);  // none of them was a matmul

    check_sgemm_route_off(be, Op::N, 300, 280, 320, [&] { be.set_nn_sgemm(false); });
  }
}

TEST_CASE("OneDnn turns oneDNN failures into mae::Error naming the call, the shape and the status",
          "[backend][onednn][errors]") {
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
  mae::OneDnn be;
  be.gemm(Op::N, Op::N, 4, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4);
  mae::OneDnn taken(std::move(be));  // `be` now has no engine and no stream
  for (Index m : {4, 5}) {           // the shape used before the move, and a new one
    CAPTURE(m);
    CHECK_THROWS_WITH(be.gemm(Op::N, Op::N, m, 4, 4, 1.0f, a.data(), 4, b.data(), 4, 0.0f, c.data(), 4),
                      Catch::Contains("OneDnn::gemm(ta=N, tb=N, m=" + std::to_string(m) + ", n=4, k=4") &&
                          Catch::Contains("oneDNN invalid_arguments") && Catch::Contains("onednn.hpp:"));
  }
  CHECK_THROWS_AS(be.gemm_batched(Op::N, Op::N, 2, 2, 2, 1.0f, a.data(), 2, Stride2{8, 4}, b.data(), 2,
                                  Stride2{8, 4}, 0.0f, c.data(), 2, Stride2{8, 4}, Batch2{2, 2}),
                  mae::Error);
  std::vector<double> ad(4, 1.0), bd(4, 1.0), cd(4, 0.0);
  be.gemm(Op::N, Op::N, 2, 2, 2, 1.0, ad.data(), 2, bd.data(), 2, 0.0, cd.data(), 2);  // double needs no engine
  CHECK(cd[3] == 2.0);
}
#else
static_assert(std::is_same_v<mae::backend::Default, mae::CpuEigen>, "without oneDNN the default is CpuEigen");
#endif
