#pragma once
/// \file
/// \brief Helpers shared by the tsnn tests: the seed, random dense data, a NaN-aware difference,
/// random CSR matrices and exception messages.
///
/// Every random test draws from testRng(stream): the base seed is fixed (kDefaultSeed) so a run
/// is reproducible, and TSNN_TEST_SEED overrides it to explore other draws. Each test passes its
/// own stream constant, so its data do not depend on which other tests ran before it.

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/init.hpp"

namespace tsnn {
namespace test {

/// Base seed used when TSNN_TEST_SEED is not set.
inline constexpr std::uint64_t kDefaultSeed = 20240611ull;

/// \brief The base seed: TSNN_TEST_SEED (decimal, or hex with 0x) if set, else kDefaultSeed.
/// \throws std::invalid_argument if the variable is set but is not a number, so that a typo
/// does not silently rerun the default draw.
inline std::uint64_t testSeed() {
  const char* s = std::getenv("TSNN_TEST_SEED");
  if (s == nullptr || *s == '\0') return kDefaultSeed;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 0);
  if (end == s || *end != '\0')
    throw std::invalid_argument(std::string("TSNN_TEST_SEED is not a number: '") + s + "'");
  return static_cast<std::uint64_t>(v);
}

/// \brief The seed of one test's random stream: the base seed mixed with \p stream.
inline std::uint64_t streamSeed(std::uint64_t stream) { return mix64(testSeed() ^ mix64(stream)); }

/// \brief A generator for one test, independent of the other tests' streams.
inline Rng testRng(std::uint64_t stream) { return Rng(streamSeed(stream)); }

/// Column-major dense matrix, the layout of tsnn activations.
template <class Scalar>
using Dense = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// \brief A rows x cols matrix of independent U(lo, hi) values, filled column by column.
template <class Scalar>
Dense<Scalar> randomDense(Eigen::Index rows, Eigen::Index cols, Rng& rng, double lo = -1.0,
                          double hi = 1.0) {
  Dense<Scalar> m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = static_cast<Scalar>(rng.uniform(lo, hi));
  return m;
}

/// \brief A vector of n independent U(lo, hi) values.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, 1> randomVector(Eigen::Index n, Rng& rng, double lo = -1.0,
                                                      double hi = 1.0) {
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> v(n);
  for (Eigen::Index i = 0; i < n; ++i) v[i] = static_cast<Scalar>(rng.uniform(lo, hi));
  return v;
}

namespace detail {
/// |a - b| in double, or +inf if either is NaN or the difference is not finite.
inline double absDiff(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<double>::infinity();
  const double d = std::abs(a - b);
  return std::isfinite(d) ? d : std::numeric_limits<double>::infinity();
}
}  // namespace detail

/// \brief max |a - b| over all entries, computed in double. Returns +inf if the shapes differ
/// or any entry of either side is NaN or infinite, so that a comparison `<= tol` fails on them.
template <class A, class B>
double maxAbsDiff(const Eigen::DenseBase<A>& a, const Eigen::DenseBase<B>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return std::numeric_limits<double>::infinity();
  double m = 0.0;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i) {
      const double d = detail::absDiff(static_cast<double>(a.derived().coeff(i, j)),
                                       static_cast<double>(b.derived().coeff(i, j)));
      if (d > m) m = d;
    }
  return m;
}

/// \brief max |a[k] - b[k]|, with the same NaN / size rules as the matrix version.
template <class S, class T>
double maxAbsDiff(const std::vector<S>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double m = 0.0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const double d = detail::absDiff(static_cast<double>(a[k]), static_cast<double>(b[k]));
    if (d > m) m = d;
  }
  return m;
}

/// \brief max |a| over all entries in double; +inf if any entry is NaN or infinite.
template <class A>
double maxAbs(const Eigen::DenseBase<A>& a) {
  double m = 0.0;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i) {
      const double d = detail::absDiff(static_cast<double>(a.derived().coeff(i, j)), 0.0);
      if (d > m) m = d;
    }
  return m;
}

/// \brief True if both have the same shape and every entry has the same bit pattern.
template <class A, class B>
bool bitIdentical(const Eigen::DenseBase<A>& a, const Eigen::DenseBase<B>& b) {
  using Scalar = typename A::Scalar;
  static_assert(std::is_same<Scalar, typename B::Scalar>::value,
                "bitIdentical: scalar types differ");
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i) {
      const Scalar x = a.derived().coeff(i, j), y = b.derived().coeff(i, j);
      if (std::memcmp(&x, &y, sizeof(Scalar)) != 0) return false;
    }
  return true;
}

/// \brief True if both vectors have the same length and bit patterns.
template <class Scalar>
bool bitIdentical(const std::vector<Scalar>& a, const std::vector<Scalar>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(Scalar)) == 0);
}

/// \brief Kernel tolerance relative to the magnitude of the summed terms: float 1e-4,
/// double 1e-10 (both far above the rounding of sums of a few hundred terms).
template <class Scalar>
constexpr double relTolerance() {
  return std::is_same<Scalar, float>::value ? 1e-4 : 1e-10;
}

/// \brief A rows x cols Erdos-Renyi CSR matrix of the given density with He-uniform values
/// (fan-in cols, fan-out rows).
template <class Scalar, class Index>
CsrMatrix<Scalar, Index> randomCsr(Index rows, Index cols, double density, Rng& rng) {
  return erdosRenyi<Scalar, Index>(rows, cols, density, rng, WeightInit::HeUniform,
                                   static_cast<long long>(cols), static_cast<long long>(rows));
}

/// \brief \p a with every entry in the listed rows and columns removed (the shape is kept), to
/// make matrices with empty rows and columns.
template <class Scalar, class Index>
CsrMatrix<Scalar, Index> withoutLines(const CsrMatrix<Scalar, Index>& a,
                                      const std::vector<Index>& dropRows,
                                      const std::vector<Index>& dropCols) {
  auto listed = [](const std::vector<Index>& v, Index x) {
    for (Index y : v)
      if (y == x) return true;
    return false;
  };
  std::vector<Index> rowPtr(1, 0), colIdx;
  std::vector<Scalar> values;
  for (Index r = 0; r < a.rows(); ++r) {
    if (!listed(dropRows, r)) {
      for (Index k = a.rowBegin(r); k < a.rowEnd(r); ++k) {
        const Index c = a.colIdx()[static_cast<std::size_t>(k)];
        if (listed(dropCols, c)) continue;
        colIdx.push_back(c);
        values.push_back(a.values()[static_cast<std::size_t>(k)]);
      }
    }
    rowPtr.push_back(static_cast<Index>(colIdx.size()));
  }
  return CsrMatrix<Scalar, Index>(a.rows(), a.cols(), std::move(rowPtr), std::move(colIdx),
                                  std::move(values));
}

/// \brief The message of the \p E that f() throws, or "<no exception>" if it returns.
/// Exceptions of other types propagate and so fail the test.
template <class E = InvalidArgument, class F>
std::string messageOf(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const E& e) {
    return e.what();
  }
  return "<no exception>";
}

/// Scalar and index type of one instantiation, for TEMPLATE_TEST_CASE over both.
template <class S, class I>
struct Types {
  using Scalar = S;
  using Index = I;
};

}  // namespace test
}  // namespace tsnn
