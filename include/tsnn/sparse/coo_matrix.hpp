#pragma once
/// \file
/// \brief Coordinate (triplet) storage.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/pattern_id.hpp"

namespace tsnn {

/// \brief A sparse matrix as three parallel arrays (row, column, value).
///
/// A CooMatrix may be built in any order; canonical() form is sorted by (row, column) with no
/// duplicates, which is what validate() checks and what the conversions produce.
template <class Scalar, class Index = std::int32_t>
class CooMatrix {
  static_assert(std::is_floating_point<Scalar>::value, "CooMatrix: Scalar must be floating point");
  static_assert(std::is_integral<Index>::value && std::is_signed<Index>::value,
                "CooMatrix: Index must be a signed integer type");

 public:
  using ScalarType = Scalar;
  using IndexType = Index;

  CooMatrix() : m_patternId(detail::nextPatternId()) {}
  /// \throws InvalidArgument if a dimension is negative.
  CooMatrix(Index rows, Index cols)
      : m_rows(rows), m_cols(cols), m_patternId(detail::nextPatternId()) {
    if (rows < 0 || cols < 0)
      detail::raise<InvalidArgument>("CooMatrix::CooMatrix(): negative shape ", rows, " x ", cols);
  }

  Index rows() const { return m_rows; }
  Index cols() const { return m_cols; }
  Index nonZeros() const { return static_cast<Index>(m_values.size()); }
  double density() const {
    const double total = static_cast<double>(m_rows) * static_cast<double>(m_cols);
    return total > 0 ? static_cast<double>(nonZeros()) / total : 0.0;
  }
  std::size_t bytes() const {
    return (m_rowIdx.size() + m_colIdx.size()) * sizeof(Index) + m_values.size() * sizeof(Scalar);
  }

  /// \brief Identifies the sparsity pattern (see CsrMatrix::patternId()); every structural
  /// change (push, sort, sumDuplicates) gives a new one.
  std::uint64_t patternId() const { return m_patternId; }

  const std::vector<Index>& rowIdx() const { return m_rowIdx; }
  const std::vector<Index>& colIdx() const { return m_colIdx; }
  const std::vector<Scalar>& values() const { return m_values; }
  std::vector<Scalar>& values() { return m_values; }

  void reserve(std::size_t n) {
    m_rowIdx.reserve(n);
    m_colIdx.reserve(n);
    m_values.reserve(n);
  }

  /// \brief Appends an entry. Bounds are checked; order and duplicates are not (see sort()).
  /// \throws InvalidArgument if (r, c) lies outside the shape.
  void push(Index r, Index c, Scalar v) {
    if (r < 0 || r >= m_rows || c < 0 || c >= m_cols)
      detail::raise<InvalidArgument>("CooMatrix::push(): entry (", r, ", ", c, ") outside shape ",
                                     m_rows, " x ", m_cols);
    m_rowIdx.push_back(r);
    m_colIdx.push_back(c);
    m_values.push_back(v);
    m_patternId = detail::nextPatternId();
  }

  /// \brief Sorts entries by (row, column), stably, so equal positions keep insertion order.
  void sort() {
    std::vector<std::size_t> perm(m_values.size());
    std::iota(perm.begin(), perm.end(), std::size_t{0});
    std::stable_sort(perm.begin(), perm.end(), [&](std::size_t a, std::size_t b) {
      return m_rowIdx[a] != m_rowIdx[b] ? m_rowIdx[a] < m_rowIdx[b] : m_colIdx[a] < m_colIdx[b];
    });
    applyPermutation(perm);
    m_patternId = detail::nextPatternId();
  }

  /// \brief Sorts and then sums entries that share a position (the usual triplet semantics).
  void sumDuplicates() {
    sort();
    std::size_t out = 0;
    for (std::size_t k = 0; k < m_values.size(); ++k) {
      if (out > 0 && m_rowIdx[out - 1] == m_rowIdx[k] && m_colIdx[out - 1] == m_colIdx[k]) {
        m_values[out - 1] += m_values[k];
      } else {
        m_rowIdx[out] = m_rowIdx[k];
        m_colIdx[out] = m_colIdx[k];
        m_values[out] = m_values[k];
        ++out;
      }
    }
    m_rowIdx.resize(out);
    m_colIdx.resize(out);
    m_values.resize(out);
    m_patternId = detail::nextPatternId();
  }

  /// \brief Empty if the matrix is canonical (sorted by row then column, no duplicates, in
  /// bounds), else a description of the first problem.
  std::string check() const {
    if (m_rowIdx.size() != m_values.size() || m_colIdx.size() != m_values.size())
      return "index and value arrays differ in length";
    for (std::size_t k = 0; k < m_values.size(); ++k) {
      const Index r = m_rowIdx[k], c = m_colIdx[k];
      if (r < 0 || r >= m_rows || c < 0 || c >= m_cols)
        return "entry " + std::to_string(k) + " at (" + std::to_string(r) + ", " +
               std::to_string(c) + ") is out of bounds";
      if (k > 0) {
        const Index pr = m_rowIdx[k - 1], pc = m_colIdx[k - 1];
        if (r < pr || (r == pr && c <= pc))
          return "entry " + std::to_string(k) + " at (" + std::to_string(r) + ", " +
                 std::to_string(c) + ") is out of order or duplicated";
      }
    }
    return {};
  }

  /// \brief Throws InvalidArgument naming \p caller unless the matrix is canonical.
  void validate(const char* caller = "CooMatrix::validate()") const {
    const std::string problem = check();
    if (!problem.empty()) detail::raise<InvalidArgument>(caller, ": invalid COO matrix: ", problem);
  }

 private:
  void applyPermutation(const std::vector<std::size_t>& perm) {
    std::vector<Index> r(perm.size()), c(perm.size());
    std::vector<Scalar> v(perm.size());
    for (std::size_t k = 0; k < perm.size(); ++k) {
      r[k] = m_rowIdx[perm[k]];
      c[k] = m_colIdx[perm[k]];
      v[k] = m_values[perm[k]];
    }
    m_rowIdx.swap(r);
    m_colIdx.swap(c);
    m_values.swap(v);
  }

  Index m_rows = 0;
  Index m_cols = 0;
  std::vector<Index> m_rowIdx;
  std::vector<Index> m_colIdx;
  std::vector<Scalar> m_values;
  std::uint64_t m_patternId = 0;
};

using CooMatrixf = CooMatrix<float, std::int32_t>;
using CooMatrixd = CooMatrix<double, std::int32_t>;

}  // namespace tsnn
