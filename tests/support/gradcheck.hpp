#pragma once
// Central finite differences in double precision, and the small helpers the gradient tests
// share (seed, error measures). Test support only: nothing here is part of the library.
//
// The central difference  (f(x + h) - f(x - h)) / (2h)  has truncation error h^2 f'''/6 and a
// rounding error of about eps |f| / h. With h = 1e-6 in double both are around 1e-10 for the
// O(1) functions of the tests, well inside the 1e-6 tolerances the tests use.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

namespace tsnn {
namespace test {

/// Seed for random test data: \p fallback unless the environment variable TSNN_TEST_SEED holds
/// a number, so that a failure seen with another seed can be reproduced.
inline std::uint64_t testSeed(std::uint64_t fallback) {
  if (const char* s = std::getenv("TSNN_TEST_SEED")) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (end != s) return static_cast<std::uint64_t>(v);
  }
  return fallback;
}

/// Default step of the central differences.
constexpr double kFiniteDifferenceStep = 1e-6;

/// d f / d x at the current value of \p x by a central difference with step \p h. \p x is
/// perturbed in place and restored exactly before returning; \p f reads it through whatever
/// state it closes over.
template <class T, class F>
double centralDifference(F&& f, T& x, double h = kFiniteDifferenceStep) {
  const T saved = x;
  x = static_cast<T>(static_cast<double>(saved) + h);
  const double up = static_cast<double>(f());
  x = static_cast<T>(static_cast<double>(saved) - h);
  const double down = static_cast<double>(f());
  x = saved;
  return (up - down) / (2.0 * h);
}

/// The central-difference gradient of \p f with respect to the \p n parameters at \p params
/// (each perturbed in turn and restored).
template <class T, class F>
std::vector<double> numericalGradient(F&& f, T* params, std::size_t n,
                                      double h = kFiniteDifferenceStep) {
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i) g[i] = centralDifference(f, params[i], h);
  return g;
}

/// Largest weight(y) * |a[i] - b[i]| over i, with y = b[i]; +infinity if any entry of either is
/// NaN or infinite (so that a NaN gradient can never pass a tolerance check), or if the lengths
/// differ. The two public measures below differ only in the weight.
template <class A, class B, class Weight>
double maxWeightedDifference(const A& a, const B& b, Weight weight) {
  const auto n = static_cast<std::size_t>(a.size());
  if (n != static_cast<std::size_t>(b.size())) return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(a[static_cast<decltype(a.size())>(i)]);
    const double y = static_cast<double>(b[static_cast<decltype(b.size())>(i)]);
    if (!std::isfinite(x) || !std::isfinite(y)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::abs(x - y) * weight(y));
  }
  return worst;
}

/// Largest |a[i] - b[i]| (see maxWeightedDifference() for non-finite entries).
template <class A, class B>
double maxAbsDifference(const A& a, const B& b) {
  return maxWeightedDifference(a, b, [](double) { return 1.0; });
}

/// Largest |a[i] - b[i]| / max(1, |b[i]|): absolute for small reference values, relative for
/// large ones. Non-finite entries give +infinity as in maxAbsDifference().
template <class A, class B>
double maxMixedDifference(const A& a, const B& b) {
  return maxWeightedDifference(a, b, [](double y) { return 1.0 / std::max(1.0, std::abs(y)); });
}

/// Largest |a(i, j) - b(i, j)| of two Eigen matrices of equal shape; +infinity on a shape
/// mismatch or any non-finite entry.
template <class A, class B>
double maxAbsDifferenceMatrix(const A& a, const B& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (decltype(a.cols()) j = 0; j < a.cols(); ++j)
    for (decltype(a.rows()) i = 0; i < a.rows(); ++i) {
      const double x = static_cast<double>(a(i, j));
      const double y = static_cast<double>(b(i, j));
      if (!std::isfinite(x) || !std::isfinite(y)) return std::numeric_limits<double>::infinity();
      const double d = std::abs(x - y);
      if (d > worst) worst = d;
    }
  return worst;
}

}  // namespace test
}  // namespace tsnn
