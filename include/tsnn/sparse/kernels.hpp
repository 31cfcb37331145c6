#pragma once
/// \file
/// \brief The three sparse kernels of a sparse layer, on batch-contiguous activations.
///
/// Layout. A weight matrix W is n_out x n_in in CSR form, or in canonical COO form (sorted by
/// row, then column), row j holding the incoming connections of output neuron j. Activations are
/// column-major Eigen matrices of shape B x n (batch B): column i is neuron i, and its B batch
/// values are contiguous. With this layout
///   forward          Y = X W^T + 1 b^T      Y(:, j) = b_j + sum_{k in row j} W_k X(:, c_k)
///   input gradient   dX = dY W              dX(:, i) = sum_{k in column i} W_k dY(:, r_k)
///   weight gradient  G_k = s * dot(X(:, c_k), dY(:, j)) for each stored k = (j, c_k)
/// every inner loop runs over B contiguous values, and each output column is written by exactly
/// one thread (rows of W for the first and third, columns of W through a TransposeIndex for the
/// second), so the kernels need no atomics and give bit-identical results for any thread count.
/// Each kernel does 2*B*nnz useful flops.
///
/// Precision. With float weights, the activations and gradients a kernel gathers may also be
/// stored in bfloat16 (BFloat16, core/activations.hpp): the forward product on bfloat16 inputs,
/// the fused backward pass on bfloat16 inputs, output gradients and input gradient, and the
/// weight gradient of bfloat16 output gradients. Values are widened to float on load (exactly)
/// and summed in float, so each result is the float kernel's on the widened values, bit for bit,
/// a stored bfloat16 result rounded once to nearest even. At widths whose rows leave the caches
/// that halves the bytes each connection-sample gathers.
///
/// Speed. The batch is cut into compile-time tiles of up to 8 vector registers; a tile's
/// accumulator stays in registers while the row's nonzeros stream past. Each nonzero jumps to an
/// unrelated neuron's input row, so the loops are bound by how fast those rows arrive from L2.
///
/// Paths. The tiles and the loops around them exist in up to three bodies, one per instruction
/// set, each in its own namespace (tsnn/sparse/arch/): generic (plain C++ vectorised for the
/// translation unit's flags), avx2 and avx512 (intrinsics). With GCC or clang on x86-64 the avx2
/// and avx512 bodies are compiled in target regions whatever the flags, and each kernel call
/// runs the body tsnn::simdPath() names (the best the CPU has, TSNN_SIMD, or setSimdPath(); see
/// tsnn/sparse/simd.hpp): one switch per call, outside the loops. A portable build therefore runs
/// AVX-512 on a CPU that has it, and a -march=native build compiles the same bodies with its own
/// flags. The paths sum each output in the same order (storage order of the nonzeros), but they
/// may round differently (fused multiply-adds, tile widths, the dot products' reduction tree):
/// results are bit for bit reproducible on one path, not across paths.
///
/// Instruction sets and the ODR. The bodies' names carry the path and, through an inline
/// namespace, the translation unit's own instruction set (TSNN_SIMD_BASELINE), so units built
/// with different -m flags never share a kernel body. The entry points below and Eigen itself
/// are still ordinary inline functions compiled with the unit's flags: as with Eigen, every
/// translation unit of one program should be compiled for the same instruction set (which a
/// portable build no longer has any speed reason to break).
///
/// Threads. Each kernel opens an OpenMP region over neurons with `num_threads(threads)` when it is
/// called outside one and allowed more than one thread (Threads, core/parallel.hpp); inside a
/// parallel region (e.g. the data-parallel trainer's) it runs serially. Every output element is
/// computed by one thread from the same operands in the same order, so the team size never
/// changes a result.

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/memory.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/sparse/arch/avx2.hpp"
#include "tsnn/sparse/arch/avx512.hpp"
#include "tsnn/sparse/arch/generic.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/simd.hpp"

namespace tsnn {

namespace detail {

/// Calls f(row, position) for every stored entry, in storage order.
template <class Scalar, class Index, class F>
void forEachEntry(const CsrMatrix<Scalar, Index>& w, F&& f) {
  for (Index r = 0; r < w.rows(); ++r)
    for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k) f(r, k);
}
template <class Scalar, class Index, class F>
void forEachEntry(const CooMatrix<Scalar, Index>& w, F&& f) {
  for (Index k = 0; k < w.nonZeros(); ++k) f(w.rowIdx()[static_cast<std::size_t>(k)], k);
}

}  // namespace detail

/// \brief Column access to a CSR pattern: for each column i, the rows that hold it and where
/// their values sit in the CSR value array. Rows come in increasing order within a column.
/// Rebuilt after every topology change; O(nnz + cols) time and memory.
template <class Index>
struct TransposeIndex {
  std::vector<Index> colPtr;    ///< cols + 1 offsets
  std::vector<Index> rowIdx;    ///< row of each entry, column by column
  std::vector<Index> valuePos;  ///< position of each entry in the CSR values
  std::uint64_t patternId = 0;  ///< CsrMatrix::patternId() of the matrix it was built from

  /// \brief Builds the index for a CsrMatrix or a canonical CooMatrix.
  template <class Matrix>
  void build(const Matrix& w) {
    patternId = w.patternId();
    const auto cols = static_cast<std::size_t>(w.cols());
    const auto nnz = static_cast<std::size_t>(w.nonZeros());
    colPtr.assign(cols + 1, 0);
    for (std::size_t k = 0; k < nnz; ++k) ++colPtr[static_cast<std::size_t>(w.colIdx()[k]) + 1];
    for (std::size_t c = 0; c < cols; ++c) colPtr[c + 1] += colPtr[c];
    assignWithHugePages(rowIdx, nnz, Index(0));
    assignWithHugePages(valuePos, nnz, Index(0));
    std::vector<Index> next(colPtr.begin(), colPtr.end() - 1);
    // Entries are visited in storage order, i.e. by increasing row, so rows come out sorted
    // within each column.
    detail::forEachEntry(w, [&](Index r, Index k) {
      const auto c = static_cast<std::size_t>(w.colIdx()[static_cast<std::size_t>(k)]);
      const auto slot = static_cast<std::size_t>(next[c]++);
      rowIdx[slot] = r;
      valuePos[slot] = k;
    });
  }
};

namespace detail {

/// Keeps a parameter out of template argument deduction (Scalar is deduced from the weights).
template <class T>
struct NoDeduce {
  using type = T;
};

/// Calls f(lo, hi) on contiguous blocks that partition [0, n): one block per thread of an
/// OpenMP region of up to threads.resolve() threads when openRegion(threads), else once on the
/// whole range, with no region at all (an `omp parallel if (false)` would still create a team of
/// one, about a microsecond per call, on every kernel call inside a trainer's region). The
/// blocks follow the team the runtime grants, which may be smaller than asked for.
template <class Index, class F>
void forThreadBlocks(Index n, Threads threads, F&& f) {
  if (!openRegion(threads)) {
    f(Index(0), n);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads.resolve())
#endif
  {
    const auto t = static_cast<long long>(threadId()), team = static_cast<long long>(teamSize());
    f(static_cast<Index>(n * t / team), static_cast<Index>(n * (t + 1) / team));
  }
}

/// Calls f(i) for i in [0, n), each index by exactly one thread (see forThreadBlocks()).
template <class Index, class F>
void forRange(Index n, Threads threads, F&& f) {
  forThreadBlocks(n, threads, [&](Index lo, Index hi) {
    for (Index i = lo; i < hi; ++i) f(i);
  });
}

/// forEachRowRunIn(w, r0, r1, f) calls f(row, begin, end) for the rows [r0, r1) of a CSR or
/// canonical COO matrix in order (see arch/kernel_loops.inl), for code outside the kernels (the
/// trainers' task lists): the generic path's copy.
using simd::generic::forEachRowRunIn;

/// Calls f(Arch{}) with the tag of the path simdPath() names (see tsnn/sparse/simd.hpp): the
/// one switch of a kernel call, before its loops and outside any OpenMP region it opens.
template <class F>
void withSimdPath(F&& f) {
  switch (simdPath()) {
#if TSNN_SIMD_HAS_AVX512
    case SimdPath::Avx512:
      f(simd::avx512::Arch{});
      return;
#endif
#if TSNN_SIMD_HAS_AVX2
    case SimdPath::Avx2:
      f(simd::avx2::Arch{});
      return;
#endif
    default:
      f(simd::generic::Arch{});
      return;
  }
}

/// Throws InvalidArgument naming \p where unless \p t was built for \p w's current pattern.
template <class Matrix, class Index>
void checkTransposeIndex(const Matrix& w, const TransposeIndex<Index>& t, const char* where) {
  if (t.patternId != w.patternId() || t.colPtr.size() != static_cast<std::size_t>(w.cols()) + 1 ||
      t.rowIdx.size() != static_cast<std::size_t>(w.nonZeros()) ||
      t.valuePos.size() != t.rowIdx.size())
    raise<InvalidArgument>(where, ": transpose index is stale (built for pattern ", t.patternId,
                           " with ", t.rowIdx.size(), " entries; weights have pattern ",
                           w.patternId(), " with ", w.nonZeros(), ")");
}

}  // namespace detail

namespace detail {

/// sparseForward() on a checked Eigen view \p x of Scalar or bfloat16 values.
template <template <class, class> class Storage, class Scalar, class Index, class XRef>
void forwardChecked(const Storage<Scalar, Index>& w, const Eigen::Matrix<Scalar, -1, 1>& bias,
                    const XRef& x, ActivationsRef<Scalar> y, Threads threads) {
  if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows() ||
      (bias.size() != 0 && bias.size() != w.rows()))
    raise<InvalidArgument>("sparseForward(): input is ", x.rows(), " x ", x.cols(), ", output ",
                           y.rows(), " x ", y.cols(), ", bias ", bias.size(),
                           ", but the weights are ", w.rows(), " x ", w.cols());
  const Scalar* b = bias.size() != 0 ? bias.data() : nullptr;
  withSimdPath([&](auto arch) {
    forThreadBlocks(w.rows(), threads, [&](Index r0, Index r1) {
      forwardRows(arch, w, b, x.data(), x.outerStride(), y.data(), y.outerStride(), x.rows(), r0,
                  r1);
    });
  });
}

}  // namespace detail

/// \brief Forward product Y = X W^T + 1 b^T (see the file comment for the layout).
/// \param w     n_out x n_in weights
/// \param bias  n_out biases (may be empty for no bias)
/// \param x     B x n_in input activations
/// \param y     B x n_out output, overwritten
/// \param threads  team for an OpenMP region over output neurons (ignored inside a region)
/// \throws InvalidArgument on mismatched shapes
template <template <class, class> class Storage, class Scalar, class Index>
void sparseForward(const Storage<Scalar, Index>& w, const Eigen::Matrix<Scalar, -1, 1>& bias,
                   const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& x,
                   typename detail::NoDeduce<ActivationsRef<Scalar>>::type y,
                   Threads threads = Threads::automatic()) {
  detail::forwardChecked(w, bias, x, y, threads);
}

/// \brief sparseForward() on bfloat16 inputs: each input value widened to float (exactly), the
/// products summed in float, so Y is bit for bit the float kernel's on the widened inputs, for
/// half the bytes of input rows gathered.
template <template <class, class> class Storage, class Index>
void sparseForward(const Storage<float, Index>& w, const Eigen::VectorXf& bias,
                   const ConstActivationsRef<BFloat16>& x, ActivationsRef<float> y,
                   Threads threads = Threads::automatic()) {
  detail::forwardChecked(w, bias, x, y, threads);
}

/// \brief Input gradient dX = dY W.
/// \param w  n_out x n_in weights, \param t its TransposeIndex (must match w's pattern)
/// \param dy B x n_out, \param dx B x n_in, overwritten
/// \param threads team for an OpenMP region over input neurons (ignored inside a region)
/// \throws InvalidArgument on mismatched shapes or a stale transpose index
template <template <class, class> class Storage, class Scalar, class Index>
void sparseBackwardInput(const Storage<Scalar, Index>& w, const TransposeIndex<Index>& t,
                         const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& dy,
                         typename detail::NoDeduce<ActivationsRef<Scalar>>::type dx,
                         Threads threads = Threads::automatic()) {
  if (dy.cols() != w.rows() || dx.cols() != w.cols() || dx.rows() != dy.rows())
    detail::raise<InvalidArgument>("sparseBackwardInput(): output gradient is ", dy.rows(), " x ",
                                   dy.cols(), ", input gradient ", dx.rows(), " x ", dx.cols(),
                                   ", but the weights are ", w.rows(), " x ", w.cols());
  detail::checkTransposeIndex(w, t, "sparseBackwardInput()");
  const Index* row = t.rowIdx.data();
  const Index* pos = t.valuePos.data();
  const Index* colPtr = t.colPtr.data();
  const Scalar* val = w.values().data();
  detail::withSimdPath([&](auto arch) {
    detail::forThreadBlocks(w.cols(), threads, [&](Index c0, Index c1) {
      backwardInputColumns(arch, colPtr, row, pos, val, dy.data(), dy.outerStride(), dx.data(),
                           dx.outerStride(), dy.rows(), c0, c1);
    });
  });
}

namespace detail {

/// sparseBackwardFused() on checked Eigen views of Scalar or bfloat16 values.
template <template <class, class> class Storage, class Scalar, class Index, class XRef, class DRef,
          class OutRef>
void backwardFusedChecked(const Storage<Scalar, Index>& w, const TransposeIndex<Index>& t,
                          const XRef& x, const DRef& dy, OutRef& dx, Scalar scale,
                          std::vector<Scalar>& grad, Threads threads) {
  if (x.cols() != w.cols() || dy.cols() != w.rows() || dx.cols() != w.cols() ||
      x.rows() != dy.rows() || dx.rows() != dy.rows())
    raise<InvalidArgument>("sparseBackwardFused(): input is ", x.rows(), " x ", x.cols(),
                           ", output gradient ", dy.rows(), " x ", dy.cols(), ", input gradient ",
                           dx.rows(), " x ", dx.cols(), ", but the weights are ", w.rows(), " x ",
                           w.cols());
  checkTransposeIndex(w, t, "sparseBackwardFused()");
  grad.resize(static_cast<std::size_t>(w.nonZeros()));
  const Index* row = t.rowIdx.data();
  const Index* pos = t.valuePos.data();
  const Index* colPtr = t.colPtr.data();
  const Scalar* val = w.values().data();
  Scalar* g = grad.data();
  withSimdPath([&](auto arch) {
    forThreadBlocks(w.cols(), threads, [&](Index c0, Index c1) {
      backwardFusedColumns(arch, colPtr, row, pos, val, x.data(), x.outerStride(), dy.data(),
                           dy.outerStride(), dx.data(), dx.outerStride(), scale, g, dy.rows(), c0,
                           c1);
    });
  });
}

}  // namespace detail

/// \brief sparseBackwardInput() and sparseWeightGradient() in one pass over the columns of W:
/// dX = dY W and grad[k] = scale * dot(X(:, c_k), dY(:, j)) for every stored k = (j, c_k).
/// Both read dY(:, j) once per connection, where the two kernels read it and X(:, c_k) once
/// each: at widths whose activations leave the caches, 8 bytes per connection-sample of 4-byte
/// values instead of 12 for the pair. Results are bit for bit those of the two kernels on the
/// same path, for any thread count.
/// \param w  n_out x n_in weights, \p t its TransposeIndex (must match w's pattern)
/// \param x  B x n_in inputs, \p dy B x n_out output gradients, \p dx B x n_in, overwritten:
/// it may be \p x itself (the same matrix, same stride: each column of x is read before that
/// column of dx is written, so the input gradient can replace the activations in place), but
/// must not overlap \p dy
/// \param grad resized to nnz and overwritten; aligned with w.values()
/// \param threads team for an OpenMP region over input neurons (ignored inside a region)
/// \throws InvalidArgument on mismatched shapes or a stale transpose index
template <template <class, class> class Storage, class Scalar, class Index>
void sparseBackwardFused(const Storage<Scalar, Index>& w, const TransposeIndex<Index>& t,
                         const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& x,
                         const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& dy,
                         typename detail::NoDeduce<ActivationsRef<Scalar>>::type dx, Scalar scale,
                         std::vector<Scalar>& grad, Threads threads = Threads::automatic()) {
  detail::backwardFusedChecked(w, t, x, dy, dx, scale, grad, threads);
}

/// \brief sparseBackwardFused() with bfloat16 inputs \p x and input gradient \p dx (which may
/// again be \p x itself), and float (the output layer's) or bfloat16 output gradients \p dy:
/// every operand widened to float exactly, the sums in float, and dX rounded to nearest even
/// once, when it is stored. dX and grad are bit for bit the float kernel's on the widened
/// operands (dX then rounded), for half the bytes of every row gathered.
template <template <class, class> class Storage, class Index>
void sparseBackwardFused(const Storage<float, Index>& w, const TransposeIndex<Index>& t,
                         const ConstActivationsRef<BFloat16>& x,
                         const ConstActivationsRef<float>& dy, ActivationsRef<BFloat16> dx,
                         float scale, std::vector<float>& grad,
                         Threads threads = Threads::automatic()) {
  detail::backwardFusedChecked(w, t, x, dy, dx, scale, grad, threads);
}
template <template <class, class> class Storage, class Index>
void sparseBackwardFused(const Storage<float, Index>& w, const TransposeIndex<Index>& t,
                         const ConstActivationsRef<BFloat16>& x,
                         const ConstActivationsRef<BFloat16>& dy, ActivationsRef<BFloat16> dx,
                         float scale, std::vector<float>& grad,
                         Threads threads = Threads::automatic()) {
  detail::backwardFusedChecked(w, t, x, dy, dx, scale, grad, threads);
}

namespace detail {

/// sparseWeightGradient() on checked Eigen views of Scalar or bfloat16 values: one block of
/// samples, by rows (weightGradientRowsOf()).
template <template <class, class> class Storage, class Scalar, class Index, class XRef, class DRef>
void weightGradientChecked(const Storage<Scalar, Index>& w, const XRef& x, const DRef& dy,
                           Scalar scale, std::vector<Scalar>& grad, Threads threads) {
  if (x.cols() != w.cols() || dy.cols() != w.rows() || x.rows() != dy.rows())
    raise<InvalidArgument>("sparseWeightGradient(): input is ", x.rows(), " x ", x.cols(),
                           ", output gradient ", dy.rows(), " x ", dy.cols(),
                           ", but the weights are ", w.rows(), " x ", w.cols());
  grad.resize(static_cast<std::size_t>(w.nonZeros()));
  Scalar* g = grad.data();
  withSimdPath([&](auto arch) {
    forThreadBlocks(w.rows(), threads, [&](Index r0, Index r1) {
      weightGradientRowsOf(arch, w, x.data(), x.outerStride(), dy.data(), dy.outerStride(),
                           x.rows(), scale, g, r0, r1);
    });
  });
}

}  // namespace detail

/// \brief Weight gradient at the stored positions only (a sampled dense-dense product):
/// grad[k] = scale * sum_b X(b, c_k) dY(b, j) for every stored k = (j, c_k).
/// \param grad resized to nnz and overwritten; aligned with w.values()
/// \param threads team for an OpenMP region over output neurons (ignored inside a region)
/// \throws InvalidArgument on mismatched shapes
template <template <class, class> class Storage, class Scalar, class Index>
void sparseWeightGradient(const Storage<Scalar, Index>& w,
                          const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& x,
                          const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& dy,
                          Scalar scale, std::vector<Scalar>& grad,
                          Threads threads = Threads::automatic()) {
  detail::weightGradientChecked(w, x, dy, scale, grad, threads);
}

/// \brief sparseWeightGradient() with bfloat16 output gradients (a first layer's delta when
/// activations are stored in bfloat16): each widened exactly, the dot products in float, so
/// grad is bit for bit the float kernel's on the widened dY.
template <template <class, class> class Storage, class Index>
void sparseWeightGradient(const Storage<float, Index>& w, const ConstActivationsRef<float>& x,
                          const ConstActivationsRef<BFloat16>& dy, float scale,
                          std::vector<float>& grad, Threads threads = Threads::automatic()) {
  detail::weightGradientChecked(w, x, dy, scale, grad, threads);
}

/// \brief sparseWeightGradient() for the rows [firstRow, lastRow) of \p w only, serially, and
/// summed over \p blocks blocks of samples (the shards of one minibatch): grad[k] = scale *
/// sum_s sum_b X_s(b, c_k) dY_s(b, j), the blocks added in order (consecutive blocks of equal
/// size lane-wise in pairs, see weightGradientRow() in arch/kernel_loops.inl). Writes the
/// entries of those rows in \p grad and no others, so threads that split one gradient by rows
/// call it side by side; which thread computes a row never changes its values. With one block
/// each entry is bit for bit what sparseWeightGradient() writes.
/// \param x, dy  \p blocks inputs (B_s x cols) and output gradients (B_s x rows)
/// \param grad   nnz values aligned with w.values() (not resized)
/// \throws InvalidArgument on mismatched shapes or a row range outside [0, rows]
template <template <class, class> class Storage, class Scalar, class Index>
void sparseWeightGradientRows(
    const Storage<Scalar, Index>& w,
    const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type* x,
    const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type* dy, std::size_t blocks,
    Scalar scale, std::vector<Scalar>& grad, Index firstRow, Index lastRow) {
  for (std::size_t s = 0; s < blocks; ++s)
    if (x[s].cols() != w.cols() || dy[s].cols() != w.rows() || x[s].rows() != dy[s].rows())
      detail::raise<InvalidArgument>("sparseWeightGradientRows(): block ", s, " has input ",
                                     x[s].rows(), " x ", x[s].cols(), " and output gradient ",
                                     dy[s].rows(), " x ", dy[s].cols(), ", but the weights are ",
                                     w.rows(), " x ", w.cols());
  if (grad.size() != static_cast<std::size_t>(w.nonZeros()))
    detail::raise<InvalidArgument>("sparseWeightGradientRows(): gradient has ", grad.size(),
                                   " entries, weights have ", w.nonZeros());
  if (firstRow < 0 || firstRow > lastRow || lastRow > w.rows())
    detail::raise<InvalidArgument>("sparseWeightGradientRows(): rows [", firstRow, ", ", lastRow,
                                   ") are not within [0, ", w.rows(), "]");
  Scalar* g = grad.data();
  detail::withSimdPath(
      [&](auto arch) { weightGradientRows(arch, w, x, dy, blocks, scale, g, firstRow, lastRow); });
}

}  // namespace tsnn
