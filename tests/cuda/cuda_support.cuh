// Helpers of the CUDA tests: named tensors uploaded to a backend from one host set, so the same
// layer code runs on CpuEigen and on Cuda from identical inputs and every tensor is compared after.
#pragma once
// nvcc warns that Span<const T>'s conversion to Span<const T> is never used (tensor/view.hpp); harmless.
#pragma nv_diag_suppress 554

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/cuda.hpp"
#include "mae/tensor/param.hpp"
#include "mae/tensor/view.hpp"
#include "support/compare.hpp"

namespace mae::test {

template <class T>
std::vector<T> random_vector(Index n, std::uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (T& x : v) x = T(u(gen));
  return v;
}

template <class T>
std::vector<T> nan_vector(Index n) {
  return std::vector<T>(static_cast<std::size_t>(n), std::numeric_limits<T>::quiet_NaN());
}

// Host inputs of one layer case: floating tensors and index tensors, by name. Tensors whose name
// starts with "scratch" are uploaded but not compared (their contents are unspecified).
template <class T>
struct HostSet {
  std::map<std::string, std::vector<T>> values;
  std::map<std::string, std::vector<std::int64_t>> ids;
};

// The tensors of a HostSet, in memory of backend B (one allocation each, freed on destruction).
template <class T, class B>
class Tensors {
 public:
  Tensors(B& be, const HostSet<T>& h) : be_(be) {
    for (const auto& [name, v] : h.values) upload(name, v.data(), v.size() * sizeof(T), vals_);
    for (const auto& [name, v] : h.ids) upload(name, v.data(), v.size() * sizeof(std::int64_t), ids_);
  }
  Tensors(const Tensors&) = delete;
  Tensors& operator=(const Tensors&) = delete;
  ~Tensors() {
    for (auto& kv : vals_) be_.deallocate(kv.second.p);
    for (auto& kv : ids_) be_.deallocate(kv.second.p);
  }

  T* operator[](const std::string& name) const { return static_cast<T*>(find(vals_, name).p); }
  Span<T> span(const std::string& name) const { return {(*this)[name], Index(find(vals_, name).bytes / sizeof(T))}; }
  const std::int64_t* ids(const std::string& name) const { return static_cast<const std::int64_t*>(find(ids_, name).p); }
  Param<T> param(const std::string& name) const { return {(*this)[name], (*this)["d" + name], span(name).size}; }

  // Every compared tensor, copied to the host.
  std::map<std::string, std::vector<T>> download() const {
    be_.synchronize();
    std::map<std::string, std::vector<T>> out;
    for (const auto& [name, e] : vals_) {
      if (name.rfind("scratch", 0) == 0) continue;
      std::vector<T> v(e.bytes / sizeof(T));
      be_.to_host(v.data(), e.p, e.bytes);
      out[name] = std::move(v);
    }
    return out;
  }

 private:
  struct Entry {
    void* p = nullptr;
    std::size_t bytes = 0;
  };
  void upload(const std::string& name, const void* src, std::size_t bytes, std::map<std::string, Entry>& into) {
    Entry e{be_.allocate(bytes), bytes};
    into[name] = e;
    be_.to_device(e.p, src, bytes);
  }
  static const Entry& find(const std::map<std::string, Entry>& m, const std::string& name) {
    const auto it = m.find(name);
    MAE_CHECK(it != m.end(), "test tensor '", name, "' was not set up");
    return it->second;
  }
  B& be_;
  std::map<std::string, Entry> vals_, ids_;
};

// Runs `run(backend, tensors)` on CpuEigen and on Cuda from the same host set and compares every
// tensor (outputs, caches, gradients, and inputs, which must come back unchanged) by the parity rule.
template <class T, class Run>
void expect_same_on_both(const HostSet<T>& inputs, Run run) {
  CpuEigen cpu;
  Cuda gpu;
  std::map<std::string, std::vector<T>> ref, got;
  {
    Tensors<T, CpuEigen> t(cpu, inputs);
    run(cpu, t);
    ref = t.download();
  }
  {
    Tensors<T, Cuda> t(gpu, inputs);
    run(gpu, t);
    got = t.download();
  }
  const double tol = parity_tolerance<T>();
  for (const auto& [name, r] : ref) {
    const Comparison c = compare(got.at(name), r);
    INFO(c.report(name + " (cuda vs eigen)"));
    CHECK(c.rel <= tol);
  }
}

// The permutation of each row of (n, l) uniform noise, as random masking draws it.
inline std::vector<std::int64_t> random_permutations(Index n, Index l, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<std::int64_t> out(static_cast<std::size_t>(n * l));
  for (Index s = 0; s < n; ++s) {
    for (Index i = 0; i < l; ++i) out[s * l + i] = i;
    std::shuffle(out.begin() + s * l, out.begin() + (s + 1) * l, gen);
  }
  return out;
}

}  // namespace mae::test
