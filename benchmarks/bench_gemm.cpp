// bench_gemm: how close each backend's float GEMM gets to the machine's best square sgemm, on the
// exact GEMM shapes of one MAE training step.
//
// First the best square sgemm (512, 1024, 2048; N·N) through backend::Default sets "peak"; then, for the
// configs tiny32 and base224, every Linear of a block (qkv, proj, fc1, fc2) in its three products
//   forward  y = x·Wᵀ        gemm(N, T, m = rows, n = out, k = in)
//   backward dW += dyᵀ·x     gemm(T, N, m = out,  n = in,  k = rows)
//   backward dx += dy·W      gemm(N, N, m = rows, n = in,  k = out)
// and the attention products as one gemm_batched over (samples, heads) on the fused qkv layout
// (row width 3D, head h at column offset h·Dh): S = s·Q·Kᵀ, O = P·V, dP = dO·Vᵀ, dV = Pᵀ·dO,
// dQ = s·dS·K, dK = s·dSᵀ·Q. Each row: warm-up (the first call builds oneDNN's primitive), then
// repeat until the time budget is spent; the median is printed. No asserts; a checksum of every
// output keeps the work observable. Products that OneDnn can split over k (the dW rows) get a second
// row: "nosplit" (one threaded oneDNN primitive) where splitting is on by default, "split" where
// it is off (CPUs with AVX-512, see OneDnn::split_k_pays). Products with a wide row-major B (n >
// OneDnn::kWideB, base224's fc2), narrow mid-size ones with op(A) = A (tiny32's and fmnist28's
// x·Wᵀ and dy·W) and other dy·W products likewise: "matmul" (a matmul primitive, or split C) where
// OneDnn runs them through dnnl_sgemm by default (AVX-512: OneDnn::wide_b_sgemm_pays,
// narrow_sgemm_pays, nn_sgemm_pays), "sgemm" where it does not.
//
// Usage: bench_gemm [--json] [--budget SECONDS_PER_ROW] [--filter SUBSTRING]
//   --json  one JSON object per row (backend, op, m, n, k, batch, median_ms, gflops, pct_peak),
//           then one {"checksum", "threads", "cpu"} object.
//   --filter  only the step rows whose op contains SUBSTRING (the square sgemm rows always run).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"

namespace {

using mae::Batch2;
using mae::Index;
using mae::Op;
using mae::Stride2;

// One operand of a (batched) product: item (i, j) at offset + i·s.outer + j·s.inner, rows ld apart.
struct Operand {
  Index rows = 0, cols = 0, ld = 0;
  Stride2 s;
  Index offset = 0;
  Index elements(Batch2 b) const {
    return offset + (b.outer - 1) * s.outer + (b.inner - 1) * s.inner + (rows - 1) * ld + cols;
  }
};

struct Spec {
  std::string op;
  Op ta = Op::N, tb = Op::N;
  Index m = 0, n = 0, k = 0;
  float alpha = 1, beta = 0;
  Operand a, b, c;
  Batch2 batch;
  double flops() const { return 2.0 * double(m) * double(n) * double(k) * double(batch.outer * batch.inner); }
};

Spec plain(std::string op, Op ta, Op tb, Index m, Index n, Index k, float beta) {
  Spec s;
  s.op = std::move(op), s.ta = ta, s.tb = tb, s.m = m, s.n = n, s.k = k, s.beta = beta;
  auto dense = [](Index rows, Index cols) { return Operand{rows, cols, cols, Stride2{}, 0}; };
  s.a = ta == Op::N ? dense(m, k) : dense(k, m);
  s.b = tb == Op::N ? dense(k, n) : dense(n, k);
  s.c = dense(m, n);
  return s;
}

// The three products of a Linear (in -> out) over `rows` tokens; backward accumulates (beta = 1).
void linear(std::vector<Spec>& out, const std::string& name, Index rows, Index in, Index outf) {
  out.push_back(plain(name + " fwd x*W^T", Op::N, Op::T, rows, outf, in, 0.0f));
  out.push_back(plain(name + " dW+=dy^T*x", Op::T, Op::N, outf, in, rows, 1.0f));
  out.push_back(plain(name + " dx+=dy*W", Op::N, Op::N, rows, in, outf, 1.0f));
}

// Attention of one block: N samples of T tokens, H heads of Dh, qkv rows of width 3D.
void attention(std::vector<Spec>& out, const std::string& name, Index N, Index T, Index H, Index Dh) {
  const Index D = H * Dh;
  const Batch2 batch{N, H};
  const float scale = 1.0f / std::sqrt(float(Dh));
  const Operand head{T, Dh, 3 * D, {T * 3 * D, Dh}, 0};  // q, k or v of one head in qkv (or dqkv)
  const Operand merged{T, Dh, D, {T * D, Dh}, 0};        // o or do of one head in (N*T, D)
  const Operand probs{T, T, T, {H * T * T, T * T}, 0};   // scores, P, dP, dS
  auto add = [&](const char* what, Op ta, Op tb, Index m, Index n, Index k, float alpha, Operand a, Operand b,
                 Operand c) {
    Spec s;
    s.op = name + " " + what, s.ta = ta, s.tb = tb, s.m = m, s.n = n, s.k = k, s.alpha = alpha;
    s.a = a, s.b = b, s.c = c, s.batch = batch;
    out.push_back(s);
  };
  add("S=s*Q*K^T", Op::N, Op::T, T, T, Dh, scale, head, head, probs);
  add("O=P*V", Op::N, Op::N, T, Dh, T, 1.0f, probs, head, merged);
  add("dP=dO*V^T", Op::N, Op::T, T, T, Dh, 1.0f, merged, head, probs);
  add("dV=P^T*dO", Op::T, Op::N, T, Dh, T, 1.0f, probs, merged, head);
  add("dQ=s*dS*K", Op::N, Op::N, T, Dh, T, scale, probs, head, head);
  add("dK=s*dS^T*Q", Op::T, Op::N, T, Dh, T, scale, probs, head, head);
}

struct Config {
  const char* name;
  Index N, L, K, D, heads, mlp, Dd, dheads, dmlp;
};

// heads: ViT-Tiny/Base encoders (Dh 64); MAE decoders (tiny32, fmnist28: 4 heads of 32; base224: 16 of 32).
constexpr Config kConfigs[] = {{"tiny32", 64, 64, 16, 192, 3, 768, 128, 4, 512},
                               {"fmnist28", 128, 49, 12, 192, 3, 768, 128, 4, 512},
                               {"base224", 8, 196, 49, 768, 12, 3072, 512, 16, 2048}};

std::vector<Spec> step_shapes(const Config& c) {
  std::vector<Spec> s;
  const Index te = 1 + c.K, td = 1 + c.L;  // encoder sees cls + kept tokens, decoder cls + all
  const std::string enc = std::string(c.name) + " enc", dec = std::string(c.name) + " dec";
  for (const auto& [prefix, rows, D, mlp] :
       {std::tuple{enc, c.N * te, c.D, c.mlp}, std::tuple{dec, c.N * td, c.Dd, c.dmlp}}) {
    linear(s, prefix + " qkv", rows, D, 3 * D);
    linear(s, prefix + " proj", rows, D, D);
    linear(s, prefix + " fc1", rows, D, mlp);
    linear(s, prefix + " fc2", rows, mlp, D);
  }
  attention(s, enc + " attn", c.N, te, c.heads, c.D / c.heads);
  attention(s, dec + " attn", c.N, td, c.dheads, c.Dd / c.dheads);
  return s;
}

std::vector<float> filled(Index n, unsigned seed) {
  std::vector<float> v(std::size_t(std::max<Index>(n, 1)));
  unsigned x = seed * 2654435761u + 1u;
  for (float& e : v) {
    x = x * 1664525u + 1013904223u;
    e = float(x >> 8) / float(1u << 24) - 0.5f;  // uniform in [-0.5, 0.5)
  }
  return v;
}

// OneDnn can split long-k Aᵀ·B products over the threads; such rows are also shown the other way.
template <class B, class = void>
struct has_split_k : std::false_type {};
template <class B>
struct has_split_k<B, std::void_t<decltype(std::declval<B&>().set_split_k(true))>> : std::true_type {};

struct Result {
  double ms = 0, gflops = 0;
};

double g_checksum = 0;

template <class B>
Result measure(B& be, const Spec& s, double budget_s) {
  std::vector<float> a = filled(s.a.elements(s.batch), 1), b = filled(s.b.elements(s.batch), 2),
                     c = filled(s.c.elements(s.batch), 3);
  auto call = [&] {
    const bool one = s.batch.outer == 1 && s.batch.inner == 1;
    if (one)
      be.gemm(s.ta, s.tb, s.m, s.n, s.k, s.alpha, a.data() + s.a.offset, s.a.ld, b.data() + s.b.offset, s.b.ld,
              s.beta, c.data() + s.c.offset, s.c.ld);
    else
      be.gemm_batched(s.ta, s.tb, s.m, s.n, s.k, s.alpha, a.data() + s.a.offset, s.a.ld, s.a.s,
                      b.data() + s.b.offset, s.b.ld, s.b.s, s.beta, c.data() + s.c.offset, s.c.ld, s.c.s, s.batch);
  };
  using clock = std::chrono::steady_clock;
  const auto warm_end = clock::now() + std::chrono::duration<double>(std::min(0.05, budget_s / 4));
  call();
  while (clock::now() < warm_end) call();
  std::vector<double> times;
  times.reserve(1 << 16);
  double spent = 0;
  while ((spent < budget_s || times.size() < 5) && times.size() < (1u << 16)) {
    const auto t0 = clock::now();
    call();
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    times.push_back(dt);
    spent += dt;
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  const double median = times[times.size() / 2];
  for (float x : c) g_checksum += x;
  return {median * 1e3, s.flops() / median * 1e-9};
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

struct Printer {
  bool json = false;
  double peak = 0;
  void header() const {
    if (json) return;
    std::printf("%-8s | %-36s | %5s %5s %5s %5s | %9s | %8s | %6s\n", "backend", "op", "m", "n", "k", "batch", "ms",
                "GFLOP/s", "% best");
    std::printf("%s\n", std::string(8 + 3 + 36 + 3 + 23 + 3 + 9 + 3 + 8 + 3 + 6, '-').c_str());
  }
  void row(const char* backend, const Spec& s, Result r) const {
    const double pct = peak > 0 ? 100.0 * r.gflops / peak : 100.0;
    const Index batch = s.batch.outer * s.batch.inner;
    if (json)
      std::printf("{\"backend\": \"%s\", \"op\": \"%s\", \"m\": %ld, \"n\": %ld, \"k\": %ld, \"batch\": %ld, "
                  "\"median_ms\": %.6f, \"gflops\": %.3f, \"pct_peak\": %.2f}\n",
                  backend, json_escape(s.op).c_str(), long(s.m), long(s.n), long(s.k), long(batch), r.ms, r.gflops,
                  pct);
    else
      std::printf("%-8s | %-36s | %5ld %5ld %5ld %5ld | %9.4f | %8.2f | %6.1f\n", backend, s.op.c_str(), long(s.m),
                  long(s.n), long(s.k), long(batch), r.ms, r.gflops, pct);
    std::fflush(stdout);
  }
};

}  // namespace

int main(int argc, char** argv) {
  Printer out;
  double budget = 0.3;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      out.json = true;
    } else if (std::strcmp(argv[i], "--budget") == 0 && i + 1 < argc) {
      budget = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
      filter = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--json] [--budget SECONDS_PER_ROW] [--filter SUBSTRING]\n", argv[0]);
      return 2;
    }
  }
  const int threads = omp_get_max_threads();
  const std::string cpu = cpu_model();
  if (!out.json)
    std::printf("bench_gemm: float C = alpha*op(A)*op(B) + beta*C, median of repeats, %.2f s per row\n"
                "threads %d (omp_get_max_threads) | cpu %s\n\n",
                budget, threads, cpu.c_str());

  mae::backend::Default fast;
  mae::CpuEigen eigen;
  constexpr bool two = !std::is_same_v<mae::backend::Default, mae::CpuEigen>;

  // 1. Peak: the best square sgemm of the default backend.
  out.header();
  std::vector<std::pair<Spec, Result>> squares;
  for (Index size : {Index(512), Index(1024), Index(2048)}) {
    const Spec s = plain("square sgemm N*N", Op::N, Op::N, size, size, size, 0.0f);
    squares.emplace_back(s, measure(fast, s, budget));
    out.peak = std::max(out.peak, squares.back().second.gflops);
  }
  for (const auto& [s, r] : squares) out.row(mae::backend::Default::name, s, r);
  if constexpr (two)
    for (const auto& [s, r] : squares) out.row(mae::CpuEigen::name, s, measure(eigen, s, budget));

  // 2. The GEMMs of one MAE step, per config.
  for (const Config& c : kConfigs) {
    if (!out.json)
      std::printf("\n%s: N=%ld L=%ld K=%ld D=%ld heads=%ld mlp=%ld | decoder %ld wide, %ld heads, mlp %ld\n", c.name,
                  long(c.N), long(c.L), long(c.K), long(c.D), long(c.heads), long(c.mlp), long(c.Dd), long(c.dheads),
                  long(c.dmlp));
    for (const Spec& s : step_shapes(c)) {
      if (s.op.find(filter) == std::string::npos) continue;
      out.row(mae::backend::Default::name, s, measure(fast, s, budget));
      if constexpr (has_split_k<mae::backend::Default>::value) {
        // The same call the other way: unsplit (one threaded primitive) or split, whichever the default is not.
        const bool one = s.batch.outer == 1 && s.batch.inner == 1, by_default = fast.split_k();
        fast.set_split_k(true);
        const bool splits = one && fast.split_k_slices(s.ta, s.tb, s.m, s.n, s.k) > 1;
        fast.set_split_k(!by_default);
        if (splits) out.row(by_default ? "nosplit" : "split", s, measure(fast, s, budget));
        fast.set_split_k(by_default);
        // dnnl_sgemm (wide B, narrow op(A) = A, NN) or not, whichever the default is not; the
        // three routes share a default (on where oneDNN has AVX-512) and are toggled together.
        const bool wide_default = fast.wide_b_sgemm(), narrow_default = fast.narrow_sgemm(),
                   nn_default = fast.nn_sgemm();
        const auto set_routes = [&](bool on) {
          fast.set_wide_b_sgemm(on), fast.set_narrow_sgemm(on), fast.set_nn_sgemm(on);
        };
        set_routes(true);
        const bool routes = one && !(by_default && splits) && fast.routes_to_sgemm(s.ta, s.tb, s.m, s.n, s.k);
        set_routes(!wide_default);
        if (routes) out.row(wide_default ? "matmul" : "sgemm", s, measure(fast, s, budget));
        fast.set_wide_b_sgemm(wide_default), fast.set_narrow_sgemm(narrow_default), fast.set_nn_sgemm(nn_default);
        const bool c_default = fast.split_c();
        fast.set_split_c(true);
        const bool cuts = one && fast.split_c_parts(s.ta, s.tb, s.m, s.n, s.k) > 1;
        fast.set_split_c(!c_default);
        if (cuts) out.row(c_default ? "nosplitc" : "splitc", s, measure(fast, s, budget));
        fast.set_split_c(c_default);
      }
      if constexpr (two) out.row(mae::CpuEigen::name, s, measure(eigen, s, budget));
    }
  }

  if (out.json)
    std::printf("{\"checksum\": %.9g, \"threads\": %d, \"cpu\": \"%s\"}\n", g_checksum, threads,
                json_escape(cpu).c_str());
  else
    std::printf("\nbest square sgemm (%s): %.2f GFLOP/s | checksum %.9g\n", mae::backend::Default::name, out.peak,
                g_checksum);
  return 0;
}
