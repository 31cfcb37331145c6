#pragma once
/// \file
/// \brief Compressed sparse row storage.

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/pattern_id.hpp"

namespace tsnn {

/// \brief A sparse matrix in compressed sparse row (CSR) form.
///
/// Invariants (checked by validate()): rowPtr has rows()+1 entries, starts at 0, never
/// decreases and ends at nonZeros(); within each row the column indices are strictly increasing
/// (sorted, no duplicates) and lie in [0, cols()). Values are stored in the same order as the
/// column indices, so every per-connection array that the library keeps (momentum, gradients)
/// is aligned with values() by position.
///
/// \tparam Scalar value type (float or double)
/// \tparam Index  signed integer type for indices (std::int32_t or std::int64_t)
template <class Scalar, class Index = std::int32_t>
class CsrMatrix {
  static_assert(std::is_floating_point<Scalar>::value, "CsrMatrix: Scalar must be floating point");
  static_assert(std::is_integral<Index>::value && std::is_signed<Index>::value,
                "CsrMatrix: Index must be a signed integer type");

 public:
  using ScalarType = Scalar;
  using IndexType = Index;

  CsrMatrix() : m_rowPtr(1, 0), m_patternId(detail::nextPatternId()) {}

  /// \brief An empty (all-zero) rows x cols matrix.
  /// \throws InvalidArgument if a dimension is negative.
  CsrMatrix(Index rows, Index cols)
      : m_rows(rows), m_cols(cols), m_patternId(detail::nextPatternId()) {
    if (rows < 0 || cols < 0)
      detail::raise<InvalidArgument>("CsrMatrix::CsrMatrix(): negative shape ", rows, " x ", cols);
    m_rowPtr.assign(static_cast<std::size_t>(rows) + 1, 0);
  }

  /// \brief Adopts the three CSR arrays and validates them.
  /// \throws InvalidArgument if the arrays break an invariant (see validate()).
  CsrMatrix(Index rows, Index cols, std::vector<Index> rowPtr, std::vector<Index> colIdx,
            std::vector<Scalar> values)
      : m_rows(rows),
        m_cols(cols),
        m_rowPtr(std::move(rowPtr)),
        m_colIdx(std::move(colIdx)),
        m_values(std::move(values)),
        m_patternId(detail::nextPatternId()) {
    validate("CsrMatrix::CsrMatrix()");
  }

  Index rows() const { return m_rows; }
  Index cols() const { return m_cols; }
  Index nonZeros() const { return static_cast<Index>(m_values.size()); }
  /// \brief nonZeros() / (rows() * cols()), 0 for an empty shape.
  double density() const {
    const double total = static_cast<double>(m_rows) * static_cast<double>(m_cols);
    return total > 0 ? static_cast<double>(nonZeros()) / total : 0.0;
  }
  /// \brief Bytes held by the index and value arrays.
  std::size_t bytes() const {
    return m_rowPtr.size() * sizeof(Index) + m_colIdx.size() * sizeof(Index) +
           m_values.size() * sizeof(Scalar);
  }

  /// \brief Identifies the sparsity pattern: a fresh value whenever the structure is set, kept by
  /// copies (which share the pattern). Indexes derived from the pattern (TransposeIndex) record
  /// it, so a stale one is detected instead of silently giving wrong results.
  std::uint64_t patternId() const { return m_patternId; }

  const std::vector<Index>& rowPtr() const { return m_rowPtr; }
  const std::vector<Index>& colIdx() const { return m_colIdx; }
  const std::vector<Scalar>& values() const { return m_values; }
  /// \brief Mutable values; the pattern stays fixed, so invariants cannot be broken through it.
  std::vector<Scalar>& values() { return m_values; }

  Index rowBegin(Index r) const { return m_rowPtr[static_cast<std::size_t>(r)]; }
  Index rowEnd(Index r) const { return m_rowPtr[static_cast<std::size_t>(r) + 1]; }
  Index rowNonZeros(Index r) const { return rowEnd(r) - rowBegin(r); }

  /// \brief Position of (r, c) in values(), or -1 if it is not stored. O(log row length).
  Index find(Index r, Index c) const {
    Index lo = rowBegin(r), hi = rowEnd(r);
    while (lo < hi) {
      const Index mid = lo + (hi - lo) / 2;
      const Index v = m_colIdx[static_cast<std::size_t>(mid)];
      if (v == c) return mid;
      if (v < c)
        lo = mid + 1;
      else
        hi = mid;
    }
    return -1;
  }

  /// \brief Value at (r, c); zero where nothing is stored.
  Scalar coeff(Index r, Index c) const {
    const Index k = find(r, c);
    return k < 0 ? Scalar(0) : m_values[static_cast<std::size_t>(k)];
  }

  /// \brief Checks every invariant; returns an empty string if valid, else what is wrong.
  std::string check() const {
    if (m_rows < 0 || m_cols < 0) return "negative shape";
    if (m_rowPtr.size() != static_cast<std::size_t>(m_rows) + 1)
      return "rowPtr has " + std::to_string(m_rowPtr.size()) + " entries, expected " +
             std::to_string(static_cast<long long>(m_rows) + 1);
    if (m_colIdx.size() != m_values.size())
      return "colIdx has " + std::to_string(m_colIdx.size()) + " entries but values has " +
             std::to_string(m_values.size());
    if (m_rowPtr.front() != 0) return "rowPtr[0] is " + std::to_string(m_rowPtr.front());
    if (static_cast<std::size_t>(m_rowPtr.back()) != m_values.size())
      return "rowPtr[rows] is " + std::to_string(m_rowPtr.back()) + ", expected nnz " +
             std::to_string(m_values.size());
    // Monotone offsets first: only then are the column scans below guaranteed in bounds.
    for (Index r = 0; r < m_rows; ++r)
      if (rowEnd(r) < rowBegin(r)) return "rowPtr decreases at row " + std::to_string(r);
    for (Index r = 0; r < m_rows; ++r) {
      const Index b = rowBegin(r), e = rowEnd(r);
      for (Index k = b; k < e; ++k) {
        const Index c = m_colIdx[static_cast<std::size_t>(k)];
        if (c < 0 || c >= m_cols)
          return "column index " + std::to_string(c) + " out of range in row " + std::to_string(r);
        if (k > b && c <= m_colIdx[static_cast<std::size_t>(k) - 1])
          return "column indices not strictly increasing in row " + std::to_string(r);
      }
    }
    return {};
  }

  /// \brief Throws InvalidArgument naming \p caller if any invariant is broken.
  void validate(const char* caller = "CsrMatrix::validate()") const {
    const std::string problem = check();
    if (!problem.empty()) detail::raise<InvalidArgument>(caller, ": invalid CSR matrix: ", problem);
  }

  /// \brief Replaces the whole structure; the caller guarantees the invariants (checked with
  /// TSNN_ASSERT-level cost only by validate() when the caller asks).
  void assignUnchecked(Index rows, Index cols, std::vector<Index> rowPtr, std::vector<Index> colIdx,
                       std::vector<Scalar> values) {
    m_rows = rows;
    m_cols = cols;
    m_rowPtr = std::move(rowPtr);
    m_colIdx = std::move(colIdx);
    m_values = std::move(values);
    m_patternId = detail::nextPatternId();
  }

 private:
  Index m_rows = 0;
  Index m_cols = 0;
  std::vector<Index> m_rowPtr;
  std::vector<Index> m_colIdx;
  std::vector<Scalar> m_values;
  std::uint64_t m_patternId = 0;
};

using CsrMatrixf = CsrMatrix<float, std::int32_t>;
using CsrMatrixd = CsrMatrix<double, std::int32_t>;

}  // namespace tsnn
