// One comparison rule for every test against reference numbers: the worst absolute difference
// relative to the reference tensor's largest magnitude, with one tolerance per scalar type.
#pragma once
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace mae::test {

struct Comparison {
  double max_abs = 0, ref_max = 0, rel = 0, nmse = 0;
  std::size_t worst = 0;
  double expected = 0, actual = 0;
  std::string report(const std::string& name) const {
    std::ostringstream s;
    s.precision(6);
    s << name << ": max|diff| " << max_abs << " (" << rel << " of max|ref| " << ref_max << ") at index " << worst
      << ": expected " << expected << ", got " << actual << "; NMSE " << nmse;
    return s.str();
  }
};

template <class A, class E>
Comparison compare(const std::vector<A>& actual, const std::vector<E>& expected) {
  REQUIRE(actual.size() == expected.size());
  Comparison c;
  double err2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double e = double(expected[i]), a = double(actual[i]), d = std::abs(a - e);
    c.ref_max = std::max(c.ref_max, std::abs(e));
    if (!(d <= c.max_abs)) {  // also catches NaN
      c.max_abs = std::isnan(d) ? INFINITY : d;
      c.worst = i;
      c.expected = e;
      c.actual = a;
    }
    err2 += d * d;
    ref2 += e * e;
  }
  c.rel = c.max_abs / std::max(c.ref_max, 1e-30);
  c.nmse = err2 / std::max(ref2, 1e-300);
  return c;
}

// Parity tolerances (issue #2): relative to each tensor's max |value|.
template <class T>
constexpr double parity_tolerance() { return sizeof(T) == 8 ? 1e-9 : 2e-5; }

}  // namespace mae::test
