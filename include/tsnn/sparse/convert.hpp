#pragma once
/// \file
/// \brief Conversions between CsrMatrix, CooMatrix, Eigen::SparseMatrix and dense matrices.

#include <Eigen/Core>
#include <Eigen/SparseCore>
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"

namespace tsnn {

/// \brief CSR to canonical COO (sorted by row then column). O(nnz).
template <class Scalar, class Index>
CooMatrix<Scalar, Index> toCoo(const CsrMatrix<Scalar, Index>& a) {
  CooMatrix<Scalar, Index> out(a.rows(), a.cols());
  out.reserve(static_cast<std::size_t>(a.nonZeros()));
  for (Index r = 0; r < a.rows(); ++r)
    for (Index k = a.rowBegin(r); k < a.rowEnd(r); ++k)
      out.push(r, a.colIdx()[static_cast<std::size_t>(k)], a.values()[static_cast<std::size_t>(k)]);
  return out;
}

/// \brief COO (any order) to CSR by a counting sort on rows and a sort within each row.
/// O(nnz log(row length)).
/// \throws InvalidArgument if two entries share a position (call sumDuplicates() first to add
/// them) or an entry is out of bounds.
template <class Scalar, class Index>
CsrMatrix<Scalar, Index> toCsr(const CooMatrix<Scalar, Index>& a) {
  const std::size_t nnz = a.values().size();
  std::vector<Index> rowPtr(static_cast<std::size_t>(a.rows()) + 1, 0);
  for (std::size_t k = 0; k < nnz; ++k) {
    const Index r = a.rowIdx()[k], c = a.colIdx()[k];
    if (r < 0 || r >= a.rows() || c < 0 || c >= a.cols())
      detail::raise<InvalidArgument>("toCsr(): entry (", r, ", ", c, ") outside shape ", a.rows(),
                                     " x ", a.cols());
    ++rowPtr[static_cast<std::size_t>(r) + 1];
  }
  for (std::size_t r = 0; r < static_cast<std::size_t>(a.rows()); ++r) rowPtr[r + 1] += rowPtr[r];
  std::vector<Index> next(rowPtr.begin(), rowPtr.end() - 1);
  std::vector<std::pair<Index, Scalar>> entries(nnz);
  for (std::size_t k = 0; k < nnz; ++k) {
    const auto r = static_cast<std::size_t>(a.rowIdx()[k]);
    entries[static_cast<std::size_t>(next[r]++)] = {a.colIdx()[k], a.values()[k]};
  }
  std::vector<Index> colIdx(nnz);
  std::vector<Scalar> values(nnz);
  for (Index r = 0; r < a.rows(); ++r) {
    const auto b = entries.begin() + rowPtr[static_cast<std::size_t>(r)];
    const auto e = entries.begin() + rowPtr[static_cast<std::size_t>(r) + 1];
    std::stable_sort(b, e, [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto it = b; it != e; ++it) {
      if (it != b && it->first == (it - 1)->first)
        detail::raise<InvalidArgument>("toCsr(): duplicate entry at (", r, ", ", it->first,
                                       "); call CooMatrix::sumDuplicates() to add duplicates");
      const auto k = static_cast<std::size_t>(it - entries.begin());
      colIdx[k] = it->first;
      values[k] = it->second;
    }
  }
  CsrMatrix<Scalar, Index> out;
  out.assignUnchecked(a.rows(), a.cols(), std::move(rowPtr), std::move(colIdx), std::move(values));
  return out;
}

/// \brief CSR to a compressed row-major Eigen::SparseMatrix with the same pattern (explicitly
/// stored zeros are kept, so positions stay aligned).
template <class Scalar, class Index>
Eigen::SparseMatrix<Scalar, Eigen::RowMajor, Index> toEigen(const CsrMatrix<Scalar, Index>& a) {
  Eigen::SparseMatrix<Scalar, Eigen::RowMajor, Index> m(a.rows(), a.cols());
  m.resizeNonZeros(a.nonZeros());
  std::copy(a.rowPtr().begin(), a.rowPtr().end(), m.outerIndexPtr());
  std::copy(a.colIdx().begin(), a.colIdx().end(), m.innerIndexPtr());
  std::copy(a.values().begin(), a.values().end(), m.valuePtr());
  return m;
}

/// \brief Any Eigen sparse matrix to CSR. Works for both storage orders and uncompressed input;
/// explicitly stored zeros are kept.
template <class Scalar, class Index, int Options, class EigenIndex>
CsrMatrix<Scalar, Index> fromEigen(const Eigen::SparseMatrix<Scalar, Options, EigenIndex>& m) {
  Eigen::SparseMatrix<Scalar, Eigen::RowMajor, EigenIndex> rm(m);
  rm.makeCompressed();
  if (rm.rows() > std::numeric_limits<Index>::max() ||
      rm.cols() > std::numeric_limits<Index>::max() ||
      rm.nonZeros() > std::numeric_limits<Index>::max())
    detail::raise<InvalidArgument>("fromEigen(): ", rm.rows(), " x ", rm.cols(), " with ",
                                   rm.nonZeros(), " nonzeros does not fit the index type");
  const auto rows = static_cast<std::size_t>(rm.rows());
  const auto nnz = static_cast<std::size_t>(rm.nonZeros());
  std::vector<Index> rowPtr(rm.outerIndexPtr(), rm.outerIndexPtr() + rows + 1);
  std::vector<Index> colIdx(rm.innerIndexPtr(), rm.innerIndexPtr() + nnz);
  std::vector<Scalar> values(rm.valuePtr(), rm.valuePtr() + nnz);
  return CsrMatrix<Scalar, Index>(static_cast<Index>(rm.rows()), static_cast<Index>(rm.cols()),
                                  std::move(rowPtr), std::move(colIdx), std::move(values));
}

/// \brief The dense equivalent, for tests and small debugging only: O(rows * cols) memory.
template <class Scalar, class Index>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> toDense(const CsrMatrix<Scalar, Index>& a) {
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> d =
      Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>::Zero(a.rows(), a.cols());
  for (Index r = 0; r < a.rows(); ++r)
    for (Index k = a.rowBegin(r); k < a.rowEnd(r); ++k)
      d(r, a.colIdx()[static_cast<std::size_t>(k)]) = a.values()[static_cast<std::size_t>(k)];
  return d;
}

}  // namespace tsnn
