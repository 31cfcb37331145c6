// The batch tiles of the kernels on explicit vector registers, written once for the avx2 and
// avx512 paths and included by their headers inside their namespace and target region. Not a
// header of its own: no include guard, no includes.
//
// The including namespace provides kVectorBytes and the register traits Vec<Scalar> (float and
// double; the primary template has kDefined = false): Reg, kLanes, set1, load, store, mul, fma,
// add, sum (a horizontal sum); kMasked, and with it Mask, mask<n>(), loadMasked, storeMasked
// (lanes outside the mask read as zero and are neither read from nor written to memory);
// kSums4, and with it sums4 (four horizontal sums into one __m128).
//
// A tile of TB batch values is R = TB / kLanes whole registers, or, where TB is narrower than a
// register and the path has masks, one masked register. Other tiles (narrow tiles on avx2, other
// scalar types) take plain loops with explicit fused multiply-adds, summed in order: left to the
// compiler, whether `acc += w * x` is fused depends on the unit's tuning (GCC 12 does not fuse
// such chains when tuning for Zen, e.g. with -march=native there), and the bits of a path must
// not depend on the unit's flags (tests/support/compare_kernel_digests.cmake).
//
// Software prefetch for gathered bfloat16 rows only. Float rows need none: the out-of-order core
// keeps enough row loads in flight once the accumulators are pinned to registers, and prefetches
// measured slower. Widening a bfloat16 register adds two instructions behind each load, so fewer
// gathers fit in the out-of-order window; prefetching the row kBf16PrefetchAhead nonzeros ahead
// issues its misses anyway (BENCHMARKS.md, "bfloat16 kernels at 1M neurons").

/// The largest batch tile: 8 registers of accumulators, which leaves the rest of the register
/// file for the streamed operand and addresses.
template <class Scalar>
inline constexpr int kMaxTile = 8 * kVectorBytes / static_cast<int>(sizeof(Scalar));

/// True when a tile of TB values of Scalar goes through the registers.
template <int TB, class Scalar>
inline constexpr bool kVectorTile = Vec<Scalar>::kDefined &&
                                    (TB % Vec<Scalar>::kLanes == 0 ||
                                     (Vec<Scalar>::kMasked && TB < Vec<Scalar>::kLanes));

/// Registers in a vector tile of TB values.
template <int TB, class Scalar>
inline constexpr int kTileRegisters = TB < Vec<Scalar>::kLanes ? 1 : TB / Vec<Scalar>::kLanes;

/// Register r of the tile at p (only the first TB lanes in a masked tile). A tile of bfloat16
/// values is widened to the register's floats on the way in (exact: a bfloat16 is the top half
/// of a float), and rounded to nearest even on the way out (V::storeBf16, as Eigen's conversion).
template <int TB, class V, class E>
inline typename V::Reg loadTile(const E* p, int r) {
  if constexpr (std::is_same_v<E, BFloat16>) {
    if constexpr (TB < V::kLanes) {
      return V::loadBf16Masked(V::template mask<TB>(), p);
    } else {
      return V::loadBf16(p + r * V::kLanes);
    }
  } else if constexpr (TB < V::kLanes) {
    return V::loadMasked(V::template mask<TB>(), p);
  } else {
    return V::load(p + r * V::kLanes);
  }
}
template <int TB, class V, class E>
inline void storeTile(E* p, int r, typename V::Reg v) {
  if constexpr (std::is_same_v<E, BFloat16>) {
    if constexpr (TB < V::kLanes) {
      V::storeBf16Masked(p, V::template mask<TB>(), v);
    } else {
      V::storeBf16(p + r * V::kLanes, v);
    }
  } else if constexpr (TB < V::kLanes) {
    V::storeMasked(p, V::template mask<TB>(), v);
  } else {
    V::store(p + r * V::kLanes, v);
  }
}

/// How many nonzeros ahead a gathered bfloat16 row is prefetched, one prefetch per 64-byte line
/// of its tile. (Written out in each loop: GCC 12 dropped the same prefetches when they sat in a
/// helper function, as objdump showed.)
inline constexpr int kBf16PrefetchAhead = 8;
inline constexpr int kBf16PerLine = 32;

/// out[0..TB) = init + sum_{k in [begin, end)} value(k) * base[index[k] * ld + (0..TB)]: the
/// rows of base (In) and out (Out) are Scalar or, with Scalar float, bfloat16; the sum is Scalar.
template <int TB, class Scalar, class Index, class ValueAt, class In, class Out>
inline void gatherAxpyTile(const Index* TSNN_RESTRICT index, Index begin, Index end, ValueAt value,
                           const In* TSNN_RESTRICT base, std::ptrdiff_t ld, Scalar init,
                           Out* TSNN_RESTRICT out) {
  if constexpr (kVectorTile<TB, Scalar>) {
    using V = Vec<Scalar>;
    constexpr int R = kTileRegisters<TB, Scalar>;
    typename V::Reg acc[R];
    for (int r = 0; r < R; ++r) acc[r] = V::set1(init);
    for (Index k = begin; k < end; ++k) {
      if constexpr (std::is_same_v<In, BFloat16>) {
        if (k + kBf16PrefetchAhead < end) {
          const In* p = base + static_cast<std::ptrdiff_t>(index[k + kBf16PrefetchAhead]) * ld;
          for (int t = 0; t < TB; t += kBf16PerLine) TSNN_PREFETCH(p + t);
        }
      }
      const In* TSNN_RESTRICT x = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
      const typename V::Reg w = V::set1(value(k));
      for (int r = 0; r < R; ++r) acc[r] = V::fma(w, loadTile<TB, V>(x, r), acc[r]);
    }
    for (int r = 0; r < R; ++r) storeTile<TB, V>(out, r, acc[r]);
  } else {
    Scalar acc[TB];
    for (int t = 0; t < TB; ++t) acc[t] = init;
    for (Index k = begin; k < end; ++k) {
      const In* TSNN_RESTRICT x = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
      const Scalar w = value(k);
      for (int t = 0; t < TB; ++t) acc[t] = std::fma(w, static_cast<Scalar>(x[t]), acc[t]);
    }
    for (int t = 0; t < TB; ++t) out[t] = Out(acc[t]);
  }
}

/// The lane-wise products d * other(r) summed over the tile's R registers, in two independent
/// chains; other(r) gives register r of the second operand.
template <int TB, class V, class Scalar, class Other>
inline typename V::Reg tileProductsWith(const typename V::Reg* d, Other other) {
  constexpr int R = kTileRegisters<TB, Scalar>;
  static_assert(R == 1 || R % 2 == 0, "tiles are powers of two registers");
  typename V::Reg a = V::mul(d[0], other(0));
  if constexpr (R == 1) {
    return a;
  } else {
    typename V::Reg b = V::mul(d[1], other(1));
    for (int r = 2; r < R; r += 2) {
      a = V::fma(d[r], other(r), a);
      b = V::fma(d[r + 1], other(r + 1), b);
    }
    return V::add(a, b);
  }
}

/// The lane-wise products d * x summed over the tile's R registers (tileProductsWith()).
template <int TB, class V, class Scalar, class E>
inline typename V::Reg tileProducts(const typename V::Reg* d, const E* TSNN_RESTRICT x) {
  return tileProductsWith<TB, V, Scalar>(d, [x](int r) { return loadTile<TB, V>(x, r); });
}

/// dot(d[0..TB), x[0..TB)) in order (fused), for the tiles that do not go through the registers.
template <int TB, class Scalar, class D, class X>
inline Scalar dotInOrder(const D* TSNN_RESTRICT d, const X* TSNN_RESTRICT x) {
  Scalar s = Scalar(0);
  for (int t = 0; t < TB; ++t)
    s = std::fma(static_cast<Scalar>(d[t]), static_cast<Scalar>(x[t]), s);
  return s;
}

/// grad[k] += dot(dy[0..TB), base[index[k] * ld + (0..TB)]) for k in [begin, end). Where the
/// path has sums4, the dot products are reduced four at a time with shuffles instead of one full
/// horizontal sum each.
/// dy (D) and the rows of base (X) are Scalar or, with Scalar float, bfloat16.
template <int TB, class Scalar, class Index, class D, class X>
inline void gatherDotTile(const Index* TSNN_RESTRICT index, Index begin, Index end,
                          const D* TSNN_RESTRICT dy, const X* TSNN_RESTRICT base, std::ptrdiff_t ld,
                          Scalar* TSNN_RESTRICT grad) {
  auto row = [&](Index k) { return base + static_cast<std::ptrdiff_t>(index[k]) * ld; };
  if constexpr (kVectorTile<TB, Scalar>) {
    using V = Vec<Scalar>;
    constexpr int R = kTileRegisters<TB, Scalar>;
    typename V::Reg d[R];
    for (int r = 0; r < R; ++r) d[r] = loadTile<TB, V>(dy, r);
    Index k = begin;
    if constexpr (V::kSums4) {
      for (; k + 4 <= end; k += 4) {
        const __m128 s = V::sums4(
            tileProducts<TB, V, Scalar>(d, row(k)), tileProducts<TB, V, Scalar>(d, row(k + 1)),
            tileProducts<TB, V, Scalar>(d, row(k + 2)), tileProducts<TB, V, Scalar>(d, row(k + 3)));
        _mm_storeu_ps(grad + k, _mm_add_ps(_mm_loadu_ps(grad + k), s));
      }
    }
    for (; k < end; ++k) grad[k] += V::sum(tileProducts<TB, V, Scalar>(d, row(k)));
  } else {
    for (Index k = begin; k < end; ++k) grad[k] += dotInOrder<TB, Scalar>(dy, row(k));
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
  if constexpr (kVectorTile<TB, Scalar>) {
    using V = Vec<Scalar>;
    constexpr int R = kTileRegisters<TB, Scalar>;
    typename V::Reg d0[R], d1[R];
    for (int r = 0; r < R; ++r) {
      d0[r] = loadTile<TB, V>(dy0, r);
      d1[r] = loadTile<TB, V>(dy1, r);
    }
    auto both = [&](Index k) {
      const std::ptrdiff_t c = index[k];
      return V::add(tileProducts<TB, V, Scalar>(d0, base0 + c * ld0),
                    tileProducts<TB, V, Scalar>(d1, base1 + c * ld1));
    };
    Index k = begin;
    if constexpr (V::kSums4) {
      for (; k + 4 <= end; k += 4) {
        const __m128 s = V::sums4(both(k), both(k + 1), both(k + 2), both(k + 3));
        _mm_storeu_ps(grad + k, _mm_add_ps(_mm_loadu_ps(grad + k), s));
      }
    }
    for (; k < end; ++k) grad[k] += V::sum(both(k));
  } else {
    for (Index k = begin; k < end; ++k) {
      const std::ptrdiff_t c = index[k];
      grad[k] += dotInOrder<TB, Scalar>(dy0, base0 + c * ld0) +
                 dotInOrder<TB, Scalar>(dy1, base1 + c * ld1);
    }
  }
}

/// The fused backward tile of one input neuron i: out[0..TB) = sum_k value(k) * dy_k (its input
/// gradient) and grad[pos[k]] (First: =, else +=) dot(x[0..TB), dy_k) (its outgoing weights'
/// gradients), for k in [begin, end), where dy_k = base + index[k] * ld is the output gradient
/// of the k-th output neuron that i feeds. Each dy_k is read once for both products, against
/// once per product in gatherAxpyTile() + gatherDotTile(). Both results are bit for bit theirs:
/// the same fused multiply-add chain for out, the same products and reduction tree (sums4 and
/// sum fold each vector alike) for each dot, and products commute exactly. \p out may be \p x
/// (no restrict on either): x is read into registers before out is written. The rows of base
/// (D), x (X) and out (Out) are Scalar or, with Scalar float, bfloat16.
template <int TB, bool First, class Scalar, class Index, class ValueAt, class D, class X, class Out>
inline void gatherAxpyDotTile(const Index* TSNN_RESTRICT index, const Index* TSNN_RESTRICT pos,
                              Index begin, Index end, ValueAt value, const D* TSNN_RESTRICT base,
                              std::ptrdiff_t ld, const X* x, Out* out, Scalar* TSNN_RESTRICT grad) {
  auto put = [grad, pos](Index k, Scalar s) {
    Scalar& g = grad[pos[k]];
    // Scalar(0) + s, not s: the row kernel zeroes then adds, which turns -0 into +0.
    if constexpr (First)
      g = Scalar(0) + s;
    else
      g += s;
  };
  if constexpr (kVectorTile<TB, Scalar>) {
    using V = Vec<Scalar>;
    using Reg = typename V::Reg;
    constexpr int R = kTileRegisters<TB, Scalar>;
    Reg xr[R], acc[R];
    for (int r = 0; r < R; ++r) {
      xr[r] = loadTile<TB, V>(x, r);
      acc[r] = V::set1(Scalar(0));
    }
    // Reads dy_k once: adds value(k) * dy_k into acc and returns the lane-wise products x * dy_k.
    auto step = [&](Index k) {
      if constexpr (std::is_same_v<D, BFloat16>) {
        if (k + kBf16PrefetchAhead < end) {
          const D* p = base + static_cast<std::ptrdiff_t>(index[k + kBf16PrefetchAhead]) * ld;
          for (int t = 0; t < TB; t += kBf16PerLine) TSNN_PREFETCH(p + t);
        }
      }
      const D* TSNN_RESTRICT d = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
      const Reg w = V::set1(value(k));
      Reg dr[R];
      for (int r = 0; r < R; ++r) {
        dr[r] = loadTile<TB, V>(d, r);
        acc[r] = V::fma(w, dr[r], acc[r]);
      }
      return tileProductsWith<TB, V, Scalar>(xr, [&dr](int r) { return dr[r]; });
    };
    Index k = begin;
    if constexpr (V::kSums4) {
      for (; k + 4 <= end; k += 4) {
        const Reg p0 = step(k), p1 = step(k + 1), p2 = step(k + 2), p3 = step(k + 3);
        alignas(16) float s[4];
        _mm_store_ps(s, V::sums4(p0, p1, p2, p3));
        for (int q = 0; q < 4; ++q) put(k + q, s[q]);
      }
    }
    for (; k < end; ++k) put(k, V::sum(step(k)));
    for (int r = 0; r < R; ++r) storeTile<TB, V>(out, r, acc[r]);
  } else {
    Scalar acc[TB], xt[TB];
    for (int t = 0; t < TB; ++t) {
      acc[t] = Scalar(0);
      xt[t] = static_cast<Scalar>(x[t]);  // before out, which may be x, is written
    }
    for (Index k = begin; k < end; ++k) {
      const D* TSNN_RESTRICT d = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
      const Scalar w = value(k);
      for (int t = 0; t < TB; ++t) acc[t] = std::fma(w, static_cast<Scalar>(d[t]), acc[t]);
      put(k, dotInOrder<TB, Scalar>(d, xt));
    }
    for (int t = 0; t < TB; ++t) out[t] = Out(acc[t]);
  }
}
