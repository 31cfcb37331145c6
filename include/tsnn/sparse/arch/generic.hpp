#pragma once
/// \file
/// \brief The kernels' generic path: tiles in plain C++ that the compiler vectorises for the
/// instruction set of the translation unit (SSE2 in a portable x86-64 build, AVX-512 with
/// -march=native on a CPU that has it). Always compiled; the tests run it on every machine.
///
/// A software prefetch of the input rows a few nonzeros ahead is what keeps the tile's
/// accumulators in registers here (without it GCC 12 spills them and the loop runs 10x slower),
/// see ../shared/PERFORMANCE.md.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/config.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/simd.hpp"

namespace tsnn::detail::simd {
inline namespace TSNN_SIMD_BASELINE {
namespace generic {

/// Tag of this path: the kernels' entry points pick the loops of a path by passing its tag.
struct Arch {};

/// Bytes in one SIMD register of the target the compiler was asked for.
#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32;
#else
inline constexpr int kVectorBytes = 16;
#endif

/// The largest batch tile: 8 registers of accumulators, which leaves the rest of the register
/// file for the streamed operand and addresses.
template <class Scalar>
inline constexpr int kMaxTile = 8 * kVectorBytes / static_cast<int>(sizeof(Scalar));

/// How many nonzeros ahead the input rows are prefetched.
inline constexpr int kPrefetchAhead = 4;

/// Prefetches the TB values of one input tile (one prefetch per 64-byte line).
template <int TB, class E>
inline void prefetchTile(const E* p) {
  constexpr int kLine = 64 / static_cast<int>(sizeof(E));
  for (int t = 0; t < TB; t += kLine) TSNN_PREFETCH(p + t);
}

/// The TB values at p (Scalar or bfloat16) as an Eigen expression of Scalar: the map itself when
/// they are Scalar, else a widened copy, so that Eigen reduces products with it by the same
/// vectorised tree either way (a lazy cast would not vectorise and would sum in another order).
template <int TB, class Scalar, class E>
inline auto tileAt(const E* p) {
  if constexpr (std::is_same_v<E, Scalar>) {
    return Eigen::Map<const Eigen::Array<Scalar, TB, 1>>(p);
  } else {
    return Eigen::Array<Scalar, TB, 1>(
        Eigen::Map<const Eigen::Array<E, TB, 1>>(p).template cast<Scalar>());
  }
}

/// a * b + c, fused exactly where the unit's instruction set has a fused multiply-add: left to
/// the compiler, whether `acc += w * x` is fused depends on the loop around it (GCC 12 tuning
/// for Zen fuses it in one loop and not in another), and the fused backward tile must add its
/// products exactly as gatherAxpyTile() does. Without FMA there is nothing to fuse.
template <class Scalar>
inline Scalar mulAdd(Scalar a, Scalar b, Scalar c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

/// out[0..TB) = init + sum_{k in [begin, end)} value(k) * base[index[k] * ld + (0..TB)]; the
/// rows of base (In) and out (Out) are Scalar or, with Scalar float, bfloat16.
template <int TB, class Scalar, class Index, class ValueAt, class In, class Out>
inline void gatherAxpyTile(const Index* TSNN_RESTRICT index, Index begin, Index end, ValueAt value,
                           const In* TSNN_RESTRICT base, std::ptrdiff_t ld, Scalar init,
                           Out* TSNN_RESTRICT out) {
  Scalar acc[TB];
  for (int t = 0; t < TB; ++t) acc[t] = init;
  for (Index k = begin; k < end; ++k) {
    if (k + kPrefetchAhead < end)
      prefetchTile<TB>(base + static_cast<std::ptrdiff_t>(index[k + kPrefetchAhead]) * ld);
    const In* TSNN_RESTRICT x = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
    const Scalar w = value(k);
    for (int t = 0; t < TB; ++t) acc[t] = mulAdd(w, static_cast<Scalar>(x[t]), acc[t]);
  }
  for (int t = 0; t < TB; ++t) out[t] = Out(acc[t]);
}

/// grad[k] += dot(dy[0..TB), base[index[k] * ld + (0..TB)]) for k in [begin, end).
/// The dot product goes through an Eigen fixed-size array: Eigen reduces it with a tree of
/// vector adds, which measured about twice as fast here as a loop of per-lane partial sums that
/// the compiler must then add up in order.
/// dy (D) and the rows of base (X) are Scalar or, with Scalar float, bfloat16.
template <int TB, class Scalar, class Index, class D, class X>
inline void gatherDotTile(const Index* TSNN_RESTRICT index, Index begin, Index end,
                          const D* TSNN_RESTRICT dy, const X* TSNN_RESTRICT base, std::ptrdiff_t ld,
                          Scalar* TSNN_RESTRICT grad) {
  using Tile = Eigen::Array<Scalar, TB, 1>;
  const Tile d = tileAt<TB, Scalar>(dy);
  for (Index k = begin; k < end; ++k) {
    if (k + kPrefetchAhead < end)
      prefetchTile<TB>(base + static_cast<std::ptrdiff_t>(index[k + kPrefetchAhead]) * ld);
    grad[k] += (d * tileAt<TB, Scalar>(base + static_cast<std::ptrdiff_t>(index[k]) * ld)).sum();
  }
}

/// gatherDotTile() for two blocks of samples (the same tile of two shards of a minibatch):
/// grad[k] += dot(dy0, row c_k of base0) + dot(dy1, row c_k of base1). The two products are
/// added lane-wise before one horizontal sum, which halves the reductions and the updates of
/// grad[k] against two gatherDotTile() calls.
template <int TB, class Scalar, class Index>
inline void gatherDotTile2(const Index* TSNN_RESTRICT index, Index begin, Index end,
                           const Scalar* TSNN_RESTRICT dy0, const Scalar* TSNN_RESTRICT base0,
                           std::ptrdiff_t ld0, const Scalar* TSNN_RESTRICT dy1,
                           const Scalar* TSNN_RESTRICT base1, std::ptrdiff_t ld1,
                           Scalar* TSNN_RESTRICT grad) {
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

/// The fused backward tile (see gatherAxpyDotTile() in arch/register_tiles.inl): out = sum_k
/// value(k) * dy_k and grad[pos[k]] (First: =, else +=) dot(dy_k, x), each dy_k read once, with
/// the loops and reductions of gatherAxpyTile() and gatherDotTile() so that both results are bit
/// for bit theirs. \p out may be \p x: x is copied into xt before out is written. The rows of
/// base (D), x (X) and out (Out) are Scalar or, with Scalar float, bfloat16.
template <int TB, bool First, class Scalar, class Index, class ValueAt, class D, class X, class Out>
inline void gatherAxpyDotTile(const Index* TSNN_RESTRICT index, const Index* TSNN_RESTRICT pos,
                              Index begin, Index end, ValueAt value, const D* TSNN_RESTRICT base,
                              std::ptrdiff_t ld, const X* x, Out* out, Scalar* TSNN_RESTRICT grad) {
  using Tile = Eigen::Array<Scalar, TB, 1>;
  const Tile xt = tileAt<TB, Scalar>(x);
  Scalar acc[TB];
  for (int t = 0; t < TB; ++t) acc[t] = Scalar(0);
  for (Index k = begin; k < end; ++k) {
    if (k + kPrefetchAhead < end)
      prefetchTile<TB>(base + static_cast<std::ptrdiff_t>(index[k + kPrefetchAhead]) * ld);
    const D* TSNN_RESTRICT d = base + static_cast<std::ptrdiff_t>(index[k]) * ld;
    const Scalar w = value(k);
    for (int t = 0; t < TB; ++t) acc[t] = mulAdd(w, static_cast<Scalar>(d[t]), acc[t]);
    const Scalar s = (xt * tileAt<TB, Scalar>(d)).sum();
    Scalar& g = grad[pos[k]];
    if constexpr (First)
      g = Scalar(0) + s;  // the row kernel zeroes then adds, which turns -0 into +0
    else
      g += s;
  }
  for (int t = 0; t < TB; ++t) out[t] = Out(acc[t]);
}

// The loops of the three kernels over these tiles.
#include "tsnn/sparse/arch/kernel_loops.inl"

}  // namespace generic
}  // namespace TSNN_SIMD_BASELINE
}  // namespace tsnn::detail::simd
