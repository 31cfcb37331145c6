#pragma once
/// \file
/// \brief The three sparse kernels of a sparse layer, on batch-contiguous activations.
///
/// Layout. A weight matrix W is n_out x n_in in CSR form, or in canonical COO form (sorted by
/// row, then column), row j holding the incoming connections of output neuron j. Activations are column-major Eigen matrices of shape B x n (batch B): column i
/// is neuron i, and its B batch values are contiguous. With this layout
///   forward          Y = X W^T + 1 b^T      Y(:, j) = b_j + sum_{k in row j} W_k X(:, c_k)
///   input gradient   dX = dY W              dX(:, i) = sum_{k in column i} W_k dY(:, r_k)
///   weight gradient  G_k = s * dot(X(:, c_k), dY(:, j)) for each stored k = (j, c_k)
/// every inner loop runs over B contiguous values, and each output column is written by exactly
/// one thread (rows of W for the first and third, columns of W through a TransposeIndex for the
/// second), so the kernels need no atomics and give bit-identical results for any thread count.
/// Each kernel does 2*B*nnz useful flops.
///
/// Speed. The batch is cut into compile-time tiles of up to 8 vector registers; a tile's
/// accumulator stays in registers while the row's nonzeros stream past. Each nonzero jumps to an
/// unrelated neuron's input row, so the loops are bound by how fast those rows arrive from L2.
/// Two paths, chosen at compile time from the compiler's macros:
/// - AVX-512 (`__AVX512F__`, e.g. `-march=native` on a machine that has it): the tiles written
///   with intrinsics, no software prefetch (the out-of-order core already keeps enough row loads
///   in flight once the accumulators are pinned to registers; the prefetches cost load slots and
///   measured slower), and the weight gradient's dot products reduced four at a time with
///   shuffles instead of one full horizontal sum each. About 15% faster than the generic path
///   on the 1000 x 1000, density 0.04, batch 128 benchmark (BENCHMARKS.md).
/// - Generic: plain C++ that the compiler vectorises for SSE2, AVX2 or AVX-512, with a software
///   prefetch of the input rows a few nonzeros ahead. Here the prefetch is what keeps the
///   accumulators in registers (without it GCC 12 spills them and the loop runs 10x slower),
///   see ../shared/PERFORMANCE.md.
/// Both paths sum each output in the same order (storage order of the nonzeros), but they may
/// round differently (fused multiply-adds, the dot products' reduction tree). As with Eigen,
/// every translation unit of one program that includes tsnn must be compiled for the same
/// instruction set: the two paths are different bodies of the same inline functions.
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
#include "tsnn/core/parallel.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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
    rowIdx.resize(nnz);
    valuePos.resize(nnz);
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

/// Bytes in one SIMD register of the target the compiler was asked for.
#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
#else
inline constexpr int kVectorBytes = 16;
#endif

/// Lanes per register, and the largest batch tile: 8 registers of accumulators, which leaves
/// the rest of the register file for the streamed operand and addresses.
template <class Scalar>
inline constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(Scalar));
template <class Scalar>
inline constexpr int kMaxTile = 8 * kLanes<Scalar>;

/// How many nonzeros ahead the input rows are prefetched.
inline constexpr int kPrefetchAhead = 4;

/// Keeps a parameter out of template argument deduction (Scalar is deduced from the weights).
template <class T>
struct NoDeduce {
  using type = T;
};

template <int N>
using TileTag = std::integral_constant<int, N>;

/// Calls f(TileTag<T>, b0) over [b0, batch) with the largest tiles first (TB, TB/2, ..., 1), so a
/// batch of any size is covered and full tiles dominate.
template <int TB, class F>
inline void forEachTile(std::ptrdiff_t b0, std::ptrdiff_t batch, F&& f) {
  for (; b0 + TB <= batch; b0 += TB) f(TileTag<TB>{}, b0);
  if constexpr (TB > 1) {
    if (b0 < batch) forEachTile<TB / 2>(b0, batch, f);
  }
}

/// Prefetches the TB values of one input tile (one prefetch per 64-byte line).
template <int TB, class Scalar>
inline void prefetchTile(const Scalar* p) {
  constexpr int kLine = 64 / static_cast<int>(sizeof(Scalar));
  for (int t = 0; t < TB; t += kLine) TSNN_PREFETCH(p + t);
}

#if defined(__AVX512F__)
/// The kernels' vector path for Scalar (float or double) with AVX-512; see the file comment.
inline constexpr const char* kSimdPath = "avx512";

template <class Scalar>
struct Avx512;
template <>
struct Avx512<float> {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static Reg set1(float v) { return _mm512_set1_ps(v); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  /// Horizontal sum by folding 256-bit halves, 128-bit lanes, then within a lane (GCC 12's
  /// _mm512_reduce_add_ps trips -Wmaybe-uninitialized in user code).
  static float sum(Reg v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
    return _mm512_cvtss_f32(v);
  }
};
template <>
struct Avx512<double> {
  using Reg = __m512d;
  static constexpr int kLanes = 8;
  static Reg set1(double v) { return _mm512_set1_pd(v); }
  static Reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, Reg v) { _mm512_storeu_pd(p, v); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  static double sum(Reg v) {
    v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, 0x4E));
    v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, 0xB1));
    v = _mm512_add_pd(v, _mm512_permute_pd(v, 0x55));
    return _mm512_cvtsd_f64(v);
  }
};

/// Tiles that the AVX-512 path handles: whole registers of float or double.
template <int TB, class Scalar>
inline constexpr bool kAvx512Tile =
    (std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>) &&
    TB % (64 / static_cast<int>(sizeof(Scalar))) == 0;

/// gatherAxpyTile() on R = TB / lanes registers.
template <int TB, class Scalar, class Index, class ValueAt>
inline void gatherAxpyTileAvx512(const Index* TSNN_RESTRICT index, Index begin, Index end,
                                 ValueAt value, const Scalar* TSNN_RESTRICT base,
                                 std::ptrdiff_t ld, Scalar init, Scalar* TSNN_RESTRICT out) {
  using V = Avx512<Scalar>;
  constexpr int R = TB / V::kLanes;
  typename V::Reg acc[R];
  for (int r = 0; r < R; ++r) acc[r] = V::set1(init);
  for (Index k = begin; k < end; ++k) {
    const Scalar* TSNN_RESTRICT x = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
    const typename V::Reg w = V::set1(value(k));
    for (int r = 0; r < R; ++r) acc[r] = V::fma(w, V::load(x + r * V::kLanes), acc[r]);
  }
  for (int r = 0; r < R; ++r) V::store(out + r * V::kLanes, acc[r]);
}

/// The lane-wise products d * x summed over the tile's R registers, in two independent chains.
template <int R, class V, class Scalar>
inline typename V::Reg tileProducts(const typename V::Reg* d, const Scalar* TSNN_RESTRICT x) {
  static_assert(R == 1 || R % 2 == 0, "tiles are powers of two registers");
  typename V::Reg a = V::mul(d[0], V::load(x));
  if constexpr (R == 1) {
    return a;
  } else {
    typename V::Reg b = V::mul(d[1], V::load(x + V::kLanes));
    for (int r = 2; r < R; r += 2) {
      a = V::fma(d[r], V::load(x + r * V::kLanes), a);
      b = V::fma(d[r + 1], V::load(x + (r + 1) * V::kLanes), b);
    }
    return V::add(a, b);
  }
}

/// The four horizontal sums of v0..v3 (16 floats each), in order. Two 128-bit-lane folds bring
/// each vector's 16 partial sums down to 4 (one lane per vector), then two in-lane folds finish
/// them: 6 shuffles and 4 adds for four sums, against about 4 + 4 per sum one at a time.
inline __m128 horizontalSums4(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
  // a: 128-bit lanes [v0 lo+hi 256 halves..., v1 ...]: 8 partials of v0 then 8 of v1.
  const __m512 a = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44), _mm512_shuffle_f32x4(v0, v1, 0xEE));
  const __m512 b = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44), _mm512_shuffle_f32x4(v2, v3, 0xEE));
  // c: lane i holds 4 partials of v_i.
  const __m512 c = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
  const __m512 s1 = _mm512_add_ps(c, _mm512_permute_ps(c, 0x4E));
  const __m512 s2 = _mm512_add_ps(s1, _mm512_permute_ps(s1, 0xB1));
  // Every element of lane i now holds the sum of v_i; gather element 0 of each lane.
  return _mm512_castps512_ps128(
      _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), s2));
}

/// gatherDotTile() on R = TB / lanes registers.
template <int TB, class Scalar, class Index>
inline void gatherDotTileAvx512(const Index* TSNN_RESTRICT index, Index begin, Index end,
                                const Scalar* TSNN_RESTRICT dy, const Scalar* TSNN_RESTRICT base,
                                std::ptrdiff_t ld, Scalar* TSNN_RESTRICT grad) {
  using V = Avx512<Scalar>;
  constexpr int R = TB / V::kLanes;
  typename V::Reg d[R];
  for (int r = 0; r < R; ++r) d[r] = V::load(dy + r * V::kLanes);
  auto row = [&](Index k) { return base + static_cast<std::ptrdiff_t>(index[k]) * ld; };
  Index k = begin;
  if constexpr (std::is_same_v<Scalar, float>) {
    for (; k + 4 <= end; k += 4) {
      const __m128 s = horizontalSums4(tileProducts<R, V>(d, row(k)), tileProducts<R, V>(d, row(k + 1)),
                                       tileProducts<R, V>(d, row(k + 2)), tileProducts<R, V>(d, row(k + 3)));
      _mm_storeu_ps(grad + k, _mm_add_ps(_mm_loadu_ps(grad + k), s));
    }
  }
  for (; k < end; ++k) grad[k] += V::sum(tileProducts<R, V>(d, row(k)));
}

/// gatherDotTile2() on R = TB / lanes registers per block.
template <int TB, class Scalar, class Index>
inline void gatherDotTile2Avx512(const Index* TSNN_RESTRICT index, Index begin, Index end,
                                 const Scalar* TSNN_RESTRICT dy0, const Scalar* TSNN_RESTRICT base0,
                                 std::ptrdiff_t ld0, const Scalar* TSNN_RESTRICT dy1,
                                 const Scalar* TSNN_RESTRICT base1, std::ptrdiff_t ld1,
                                 Scalar* TSNN_RESTRICT grad) {
  using V = Avx512<Scalar>;
  constexpr int R = TB / V::kLanes;
  typename V::Reg d0[R], d1[R];
  for (int r = 0; r < R; ++r) {
    d0[r] = V::load(dy0 + r * V::kLanes);
    d1[r] = V::load(dy1 + r * V::kLanes);
  }
  auto both = [&](Index k) {
    const std::ptrdiff_t c = index[k];
    return V::add(tileProducts<R, V>(d0, base0 + c * ld0), tileProducts<R, V>(d1, base1 + c * ld1));
  };
  Index k = begin;
  if constexpr (std::is_same_v<Scalar, float>) {
    for (; k + 4 <= end; k += 4) {
      const __m128 s = horizontalSums4(both(k), both(k + 1), both(k + 2), both(k + 3));
      _mm_storeu_ps(grad + k, _mm_add_ps(_mm_loadu_ps(grad + k), s));
    }
  }
  for (; k < end; ++k) grad[k] += V::sum(both(k));
}
#else
/// The kernels' vector path: generic C++ (see the file comment).
inline constexpr const char* kSimdPath = "generic";
template <int TB, class Scalar>
inline constexpr bool kAvx512Tile = false;
#endif

/// out[0..TB) = init + sum_{k in [begin, end)} value(k) * base[index[k] * ld + (0..TB)].
template <int TB, class Scalar, class Index, class ValueAt>
inline void gatherAxpyTile(const Index* TSNN_RESTRICT index, Index begin, Index end,
                           ValueAt value, const Scalar* TSNN_RESTRICT base, std::ptrdiff_t ld,
                           Scalar init, Scalar* TSNN_RESTRICT out) {
#if defined(__AVX512F__)
  if constexpr (kAvx512Tile<TB, Scalar>) {
    gatherAxpyTileAvx512<TB>(index, begin, end, value, base, ld, init, out);
    return;
  }
#endif
  Scalar acc[TB];
  for (int t = 0; t < TB; ++t) acc[t] = init;
  for (Index k = begin; k < end; ++k) {
    if (k + kPrefetchAhead < end)
      prefetchTile<TB>(base + static_cast<std::ptrdiff_t>(index[k + kPrefetchAhead]) * ld);
    const Scalar* TSNN_RESTRICT x = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
    const Scalar w = value(k);
    for (int t = 0; t < TB; ++t) acc[t] += w * x[t];
  }
  for (int t = 0; t < TB; ++t) out[t] = acc[t];
}

/// grad[k] += dot(dy[0..TB), base[index[k] * ld + (0..TB)]) for k in [begin, end).
/// The dot product goes through an Eigen fixed-size array: Eigen reduces it with a tree of
/// vector adds, which measured about twice as fast here as a loop of per-lane partial sums that
/// the compiler must then add up in order.
template <int TB, class Scalar, class Index>
inline void gatherDotTile(const Index* TSNN_RESTRICT index, Index begin, Index end,
                          const Scalar* TSNN_RESTRICT dy, const Scalar* TSNN_RESTRICT base,
                          std::ptrdiff_t ld, Scalar* TSNN_RESTRICT grad) {
#if defined(__AVX512F__)
  if constexpr (kAvx512Tile<TB, Scalar>) {
    gatherDotTileAvx512<TB>(index, begin, end, dy, base, ld, grad);
    return;
  }
#endif
  using Tile = Eigen::Array<Scalar, TB, 1>;
  const Tile d = Eigen::Map<const Tile>(dy);
  for (Index k = begin; k < end; ++k) {
    if (k + kPrefetchAhead < end)
      prefetchTile<TB>(base + static_cast<std::ptrdiff_t>(index[k + kPrefetchAhead]) * ld);
    grad[k] += (d * Eigen::Map<const Tile>(base + static_cast<std::ptrdiff_t>(index[k]) * ld)).sum();
  }
}

/// gatherDotTile() for two blocks of samples (the same tile of two shards of a minibatch):
/// grad[k] += dot(dy0, row c_k of base0) + dot(dy1, row c_k of base1). The two products are
/// added lane-wise before one horizontal sum, which halves the reductions and the updates of
/// grad[k] against two gatherDotTile() calls (measured on a 1000x1000 layer at density 0.04 with
/// AVX-512: two 64-row shards 368 us as a pair, 403 us one after the other, one 128-row block
/// 316 us; BENCHMARKS.md).
template <int TB, class Scalar, class Index>
inline void gatherDotTile2(const Index* TSNN_RESTRICT index, Index begin, Index end,
                           const Scalar* TSNN_RESTRICT dy0, const Scalar* TSNN_RESTRICT base0,
                           std::ptrdiff_t ld0, const Scalar* TSNN_RESTRICT dy1,
                           const Scalar* TSNN_RESTRICT base1, std::ptrdiff_t ld1,
                           Scalar* TSNN_RESTRICT grad) {
#if defined(__AVX512F__)
  if constexpr (kAvx512Tile<TB, Scalar>) {
    gatherDotTile2Avx512<TB>(index, begin, end, dy0, base0, ld0, dy1, base1, ld1, grad);
    return;
  }
#endif
  using Tile = Eigen::Array<Scalar, TB, 1>;
  const Tile d0 = Eigen::Map<const Tile>(dy0), d1 = Eigen::Map<const Tile>(dy1);
  for (Index k = begin; k < end; ++k) {
    if (k + kPrefetchAhead < end) {
      const std::ptrdiff_t ahead = index[k + kPrefetchAhead];
      prefetchTile<TB>(base0 + ahead * ld0);
      prefetchTile<TB>(base1 + ahead * ld1);
    }
    const std::ptrdiff_t c = index[k];
    grad[k] += (d0 * Eigen::Map<const Tile>(base0 + c * ld0) +
                d1 * Eigen::Map<const Tile>(base1 + c * ld1))
                   .sum();
  }
}

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

/// Calls f(row, begin, end) for the rows [r0, r1) of \p w in order, serially, empty rows
/// included, with the range of each row's entries in storage order.
template <class Scalar, class Index, class F>
void forEachRowRunIn(const CsrMatrix<Scalar, Index>& w, Index r0, Index r1, F&& f) {
  for (Index j = r0; j < r1; ++j) f(j, w.rowBegin(j), w.rowEnd(j));
}

/// The same for a canonical COO matrix: finds where row r0 starts by binary search on the sorted
/// row indices, then reads the row runs off in one pass, so no row pointer array is ever built.
template <class Scalar, class Index, class F>
void forEachRowRunIn(const CooMatrix<Scalar, Index>& w, Index r0, Index r1, F&& f) {
  const Index* row = w.rowIdx().data();
  const Index nnz = w.nonZeros();
  Index k = static_cast<Index>(std::lower_bound(row, row + nnz, r0) - row);
  for (Index j = r0; j < r1; ++j) {
    const Index begin = k;
    while (k < nnz && row[k] == j) ++k;
    TSNN_ASSERT(k == nnz || row[k] > j);  // canonical: sorted by row
    f(j, begin, k);
  }
}

/// Calls f(row, begin, end) for every row of \p w (forEachRowRunIn() over all rows), each
/// thread taking a contiguous block of rows (see forThreadBlocks()), so each row is handled by
/// exactly one thread.
template <template <class, class> class Storage, class Scalar, class Index, class F>
void forEachRowRun(const Storage<Scalar, Index>& w, Threads threads, F&& f) {
  forThreadBlocks(w.rows(), threads, [&](Index r0, Index r1) { forEachRowRunIn(w, r0, r1, f); });
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
  if (x.cols() != w.cols() || y.cols() != w.rows() || y.rows() != x.rows() ||
      (bias.size() != 0 && bias.size() != w.rows()))
    detail::raise<InvalidArgument>("sparseForward(): input is ", x.rows(), " x ", x.cols(),
                                   ", output ", y.rows(), " x ", y.cols(), ", bias ", bias.size(),
                                   ", but the weights are ", w.rows(), " x ", w.cols());
  const std::ptrdiff_t batch = x.rows();
  const Scalar* xd = x.data();
  const std::ptrdiff_t ldx = x.outerStride();
  Scalar* yd = y.data();
  const std::ptrdiff_t ldy = y.outerStride();
  const Index* col = w.colIdx().data();
  const Scalar* val = w.values().data();
  detail::forEachRowRun(w, threads, [&](Index j, Index begin, Index end) {
    const Scalar b = bias.size() ? bias[j] : Scalar(0);
    detail::forEachTile<detail::kMaxTile<Scalar>>(0, batch, [&](auto tile, std::ptrdiff_t b0) {
      constexpr int TB = decltype(tile)::value;
      detail::gatherAxpyTile<TB>(
          col, begin, end, [val](Index k) { return val[k]; }, xd + b0, ldx, b,
          yd + static_cast<std::ptrdiff_t>(j) * ldy + b0);
    });
  });
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
  if (t.patternId != w.patternId() || t.colPtr.size() != static_cast<std::size_t>(w.cols()) + 1 ||
      t.rowIdx.size() != static_cast<std::size_t>(w.nonZeros()) ||
      t.valuePos.size() != t.rowIdx.size())
    detail::raise<InvalidArgument>("sparseBackwardInput(): transpose index is stale (built for "
                                   "pattern ", t.patternId, " with ", t.rowIdx.size(),
                                   " entries; weights have pattern ", w.patternId(), " with ",
                                   w.nonZeros(), ")");
  const std::ptrdiff_t batch = dy.rows();
  const Scalar* dyd = dy.data();
  const std::ptrdiff_t ldy = dy.outerStride();
  Scalar* dxd = dx.data();
  const std::ptrdiff_t ldx = dx.outerStride();
  const Index* row = t.rowIdx.data();
  const Index* pos = t.valuePos.data();
  const Scalar* val = w.values().data();
  const Index cols = w.cols();
  detail::forRange(cols, threads, [&](Index i) {
    const Index begin = t.colPtr[static_cast<std::size_t>(i)];
    const Index end = t.colPtr[static_cast<std::size_t>(i) + 1];
    detail::forEachTile<detail::kMaxTile<Scalar>>(0, batch, [&](auto tile, std::ptrdiff_t b0) {
      constexpr int TB = decltype(tile)::value;
      detail::gatherAxpyTile<TB>(
          row, begin, end, [val, pos](Index k) { return val[pos[k]]; }, dyd + b0, ldy, Scalar(0),
          dxd + static_cast<std::ptrdiff_t>(i) * ldx + b0);
    });
  });
}

namespace detail {

/// One row j of the weight gradient summed over \p blocks blocks of samples:
/// g[k] = scale * sum_s sum_b X_s(b, col[k]) dY_s(b, j) for k in [begin, end). The blocks are
/// taken in order, two at a time where consecutive blocks have the same number of rows
/// (gatherDotTile2()), so the rounding depends on the blocks' sizes and order only.
template <class Scalar, class Index>
void weightGradientRow(const Index* col, Index begin, Index end, Index j,
                       const ConstActivationsRef<Scalar>* x,
                       const ConstActivationsRef<Scalar>* dy, std::size_t blocks, Scalar scale,
                       Scalar* g) {
  for (Index k = begin; k < end; ++k) g[k] = Scalar(0);
  auto column = [j](const ConstActivationsRef<Scalar>& d) {
    return d.data() + static_cast<std::ptrdiff_t>(j) * d.outerStride();
  };
  for (std::size_t s = 0; s < blocks;) {
    if (s + 1 < blocks && x[s].rows() == x[s + 1].rows()) {  // a pair of equal shards
      const Scalar *dy0 = column(dy[s]), *dy1 = column(dy[s + 1]);
      const Scalar *x0 = x[s].data(), *x1 = x[s + 1].data();
      const std::ptrdiff_t ld0 = x[s].outerStride(), ld1 = x[s + 1].outerStride();
      forEachTile<kMaxTile<Scalar>>(0, x[s].rows(), [&](auto tile, std::ptrdiff_t b0) {
        constexpr int TB = decltype(tile)::value;
        gatherDotTile2<TB>(col, begin, end, dy0 + b0, x0 + b0, ld0, dy1 + b0, x1 + b0, ld1, g);
      });
      s += 2;
    } else {
      const Scalar* dyj = column(dy[s]);
      const Scalar* xd = x[s].data();
      const std::ptrdiff_t ldx = x[s].outerStride();
      forEachTile<kMaxTile<Scalar>>(0, x[s].rows(), [&](auto tile, std::ptrdiff_t b0) {
        constexpr int TB = decltype(tile)::value;
        gatherDotTile<TB>(col, begin, end, dyj + b0, xd + b0, ldx, g);
      });
      s += 1;
    }
  }
  if (scale != Scalar(1))
    for (Index k = begin; k < end; ++k) g[k] *= scale;
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
  if (x.cols() != w.cols() || dy.cols() != w.rows() || x.rows() != dy.rows())
    detail::raise<InvalidArgument>("sparseWeightGradient(): input is ", x.rows(), " x ", x.cols(),
                                   ", output gradient ", dy.rows(), " x ", dy.cols(),
                                   ", but the weights are ", w.rows(), " x ", w.cols());
  grad.resize(static_cast<std::size_t>(w.nonZeros()));
  const Index* col = w.colIdx().data();
  Scalar* g = grad.data();
  detail::forEachRowRun(w, threads, [&](Index j, Index begin, Index end) {
    detail::weightGradientRow(col, begin, end, j, &x, &dy, 1, scale, g);
  });
}

/// \brief sparseWeightGradient() for the rows [firstRow, lastRow) of \p w only, serially, and
/// summed over \p blocks blocks of samples (the shards of one minibatch): grad[k] = scale *
/// sum_s sum_b X_s(b, c_k) dY_s(b, j), the blocks added in order (consecutive blocks of equal
/// size lane-wise in pairs, see detail::weightGradientRow()). Writes the entries of those
/// rows in \p grad and no others, so threads that split one gradient by rows call it side by
/// side; which thread computes a row never changes its values. With one block each entry is bit
/// for bit what sparseWeightGradient() writes.
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
  const Index* col = w.colIdx().data();
  Scalar* g = grad.data();
  detail::forEachRowRunIn(w, firstRow, lastRow, [&](Index j, Index begin, Index end) {
    detail::weightGradientRow(col, begin, end, j, x, dy, blocks, scale, g);
  });
}

}  // namespace tsnn
