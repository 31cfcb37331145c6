// The loops of the three sparse kernels over one block of rows or columns, written once and
// included by each path's header inside that path's namespace (and, for avx2 and avx512, inside
// its target region), so that the whole hot loop, not just the tile, is compiled for the path's
// instruction set and inlines its tiles. Not a header of its own: no include guard, no includes.
//
// The including namespace provides: struct Arch (its tag), kMaxTile<Scalar>, and the tiles
// gatherAxpyTile<TB>, gatherDotTile<TB>, gatherDotTile2<TB> (see arch/generic.hpp for their
// contracts). The entry points in tsnn/sparse/kernels.hpp check the arguments, open the OpenMP
// region and call these per thread block; nothing here throws.

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

/// Calls f(row, begin, end) for the rows [r0, r1) of \p w in order, empty rows included, with
/// the range of each row's entries in storage order.
template <class Scalar, class Index, class F>
inline void forEachRowRunIn(const CsrMatrix<Scalar, Index>& w, Index r0, Index r1, F&& f) {
  for (Index j = r0; j < r1; ++j) f(j, w.rowBegin(j), w.rowEnd(j));
}

/// The same for a canonical COO matrix: finds where row r0 starts by binary search on the sorted
/// row indices, then reads the row runs off in one pass, so no row pointer array is ever built.
template <class Scalar, class Index, class F>
inline void forEachRowRunIn(const CooMatrix<Scalar, Index>& w, Index r0, Index r1, F&& f) {
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

/// Rows [r0, r1) of Y = X W^T + 1 b^T (bias may be null: no bias); X is Scalar or bfloat16.
template <template <class, class> class Storage, class Scalar, class Index, class X>
void forwardRows(Arch, const Storage<Scalar, Index>& w, const Scalar* bias, const X* x,
                 std::ptrdiff_t ldx, Scalar* y, std::ptrdiff_t ldy, std::ptrdiff_t batch, Index r0,
                 Index r1) {
  const Index* col = w.colIdx().data();
  const Scalar* val = w.values().data();
  forEachRowRunIn(w, r0, r1, [&](Index j, Index begin, Index end) {
    const Scalar b = bias != nullptr ? bias[j] : Scalar(0);
    forEachTile<kMaxTile<Scalar>>(0, batch, [&](auto tile, std::ptrdiff_t b0) {
      constexpr int TB = decltype(tile)::value;
      gatherAxpyTile<TB>(
          col, begin, end, [val](Index k) { return val[k]; }, x + b0, ldx, b,
          y + static_cast<std::ptrdiff_t>(j) * ldy + b0);
    });
  });
}

/// Columns [c0, c1) of dX = dY W, through the transpose index (colPtr, row, pos).
template <class Scalar, class Index>
void backwardInputColumns(Arch, const Index* colPtr, const Index* row, const Index* pos,
                          const Scalar* val, const Scalar* dy, std::ptrdiff_t ldy, Scalar* dx,
                          std::ptrdiff_t ldx, std::ptrdiff_t batch, Index c0, Index c1) {
  for (Index i = c0; i < c1; ++i) {
    const Index begin = colPtr[i], end = colPtr[i + 1];
    forEachTile<kMaxTile<Scalar>>(0, batch, [&](auto tile, std::ptrdiff_t b0) {
      constexpr int TB = decltype(tile)::value;
      gatherAxpyTile<TB>(
          row, begin, end, [val, pos](Index k) { return val[pos[k]]; }, dy + b0, ldy, Scalar(0),
          dx + static_cast<std::ptrdiff_t>(i) * ldx + b0);
    });
  }
}

/// Columns [c0, c1) of dX = dY W and of the weight gradient grad[k] = scale * dot(X(:, i),
/// dY(:, r_k)) for the stored k = (r_k, i) of those columns, in one pass (gatherAxpyDotTile()):
/// column i's entries sit at grad[pos[k]], so each is written by the thread of its column.
/// X, D (of dY) and Out (of dX) are Scalar or bfloat16.
template <class Scalar, class Index, class X, class D, class Out>
void backwardFusedColumns(Arch, const Index* colPtr, const Index* row, const Index* pos,
                          const Scalar* val, const X* x, std::ptrdiff_t ldx, const D* dy,
                          std::ptrdiff_t ldy, Out* dx, std::ptrdiff_t lddx, Scalar scale,
                          Scalar* grad, std::ptrdiff_t batch, Index c0, Index c1) {
  for (Index i = c0; i < c1; ++i) {
    const Index begin = colPtr[i], end = colPtr[i + 1];
    const X* xi = x + static_cast<std::ptrdiff_t>(i) * ldx;
    Out* dxi = dx + static_cast<std::ptrdiff_t>(i) * lddx;
    auto value = [val, pos](Index k) { return val[pos[k]]; };
    bool first = true;
    forEachTile<kMaxTile<Scalar>>(0, batch, [&](auto tile, std::ptrdiff_t b0) {
      constexpr int TB = decltype(tile)::value;
      if (first)
        gatherAxpyDotTile<TB, true>(row, pos, begin, end, value, dy + b0, ldy, xi + b0, dxi + b0,
                                    grad);
      else
        gatherAxpyDotTile<TB, false>(row, pos, begin, end, value, dy + b0, ldy, xi + b0, dxi + b0,
                                     grad);
      first = false;
    });
    if (first)  // an empty batch: the gradient is zero
      for (Index k = begin; k < end; ++k) grad[pos[k]] = Scalar(0);
    if (scale != Scalar(1))
      for (Index k = begin; k < end; ++k) grad[pos[k]] *= scale;
  }
}

/// One row j of the weight gradient summed over \p blocks blocks of samples:
/// g[k] = scale * sum_s sum_b X_s(b, col[k]) dY_s(b, j) for k in [begin, end). The blocks are
/// taken in order, two at a time where consecutive blocks have the same number of rows
/// (gatherDotTile2()), so the rounding depends on the blocks' sizes and order only.
template <class Scalar, class Index>
inline void weightGradientRow(const Index* col, Index begin, Index end, Index j,
                              const ConstActivationsRef<Scalar>* x,
                              const ConstActivationsRef<Scalar>* dy, std::size_t blocks,
                              Scalar scale, Scalar* g) {
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

/// Rows [r0, r1) of the weight gradient of one block of samples whose X and dY are Scalar or
/// bfloat16 (each row: zero, the tiles in order, then the scale, as weightGradientRow() does for
/// one block, so with Scalar operands the bits are its bits).
template <template <class, class> class Storage, class Scalar, class Index, class X, class D>
void weightGradientRowsOf(Arch, const Storage<Scalar, Index>& w, const X* x, std::ptrdiff_t ldx,
                          const D* dy, std::ptrdiff_t ldy, std::ptrdiff_t batch, Scalar scale,
                          Scalar* g, Index r0, Index r1) {
  const Index* col = w.colIdx().data();
  forEachRowRunIn(w, r0, r1, [&](Index j, Index begin, Index end) {
    for (Index k = begin; k < end; ++k) g[k] = Scalar(0);
    const D* dyj = dy + static_cast<std::ptrdiff_t>(j) * ldy;
    forEachTile<kMaxTile<Scalar>>(0, batch, [&](auto tile, std::ptrdiff_t b0) {
      constexpr int TB = decltype(tile)::value;
      gatherDotTile<TB>(col, begin, end, dyj + b0, x + b0, ldx, g);
    });
    if (scale != Scalar(1))
      for (Index k = begin; k < end; ++k) g[k] *= scale;
  });
}

/// Rows [r0, r1) of the weight gradient over \p blocks blocks of samples (weightGradientRow()).
template <template <class, class> class Storage, class Scalar, class Index>
void weightGradientRows(Arch, const Storage<Scalar, Index>& w, const ConstActivationsRef<Scalar>* x,
                        const ConstActivationsRef<Scalar>* dy, std::size_t blocks, Scalar scale,
                        Scalar* g, Index r0, Index r1) {
  const Index* col = w.colIdx().data();
  forEachRowRunIn(w, r0, r1, [&](Index j, Index begin, Index end) {
    weightGradientRow(col, begin, end, j, x, dy, blocks, scale, g);
  });
}
