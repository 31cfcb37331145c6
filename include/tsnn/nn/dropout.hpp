#pragma once
/// \file
/// \brief Inverted dropout with counter-based randomness.
///
/// In training, each hidden activation is kept with probability q = 1 - rate and then scaled by
/// 1/q, so its expectation is unchanged and inference needs no rescaling. The keep decision for
/// (sample b, neuron i) is a hash of (seed, step, layer, b, i) rather than a draw from a stream:
/// any thread can compute any part of the mask, so a data-parallel trainer that gives each thread
/// a shard of the batch draws exactly the mask the sequential trainer would.

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "tsnn/core/config.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/sparse/simd.hpp"

namespace tsnn {

/// \brief Key for one layer's mask in one training step.
inline std::uint64_t dropoutKey(std::uint64_t seed, std::uint64_t step, std::uint64_t layer) {
  return mix64(mix64(seed ^ 0xD209u) ^ mix64(step * 0x100000001B3ull + layer));
}

// Always inlined, so that the dropout mask's per-path bodies below compile it for their target.
#if defined(__GNUC__) || defined(__clang__)
#define TSNN_DROPOUT_INLINE inline __attribute__((always_inline))
#else
#define TSNN_DROPOUT_INLINE inline
#endif

/// \brief Murmur3's 32-bit finaliser: a bijection with full avalanche, cheap enough to run per
/// element and, being 32-bit multiplies and shifts, vectorisable.
TSNN_DROPOUT_INLINE std::uint32_t fmix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

namespace detail {
inline namespace TSNN_SIMD_BASELINE {  // bodies differ by the unit's flags (see simd.hpp)

// One column of dropoutForward(): the keep decision of rows [0, rows) and the masked values.
// Compiled once more for AVX2 and for AVX-512 with target attributes, because SSE2 has no 32-bit
// multiply: GCC emulates one with two pmuludq and shuffles, and this loop took 12% of a portable
// build's epoch against 5% natively. Integer hashing and one product per element, so every body
// gives the same bits.
// With a null mask the decision is only multiplied in (Network recomputes the mask in backward
// instead of storing it); the two loops are separate so that each vectorises.
template <class Scalar>
TSNN_DROPOUT_INLINE void dropoutColumnBody(Scalar* TSNN_RESTRICT a, Scalar* TSNN_RESTRICT mask,
                                           Eigen::Index rows, std::uint32_t keyLo,
                                           std::uint32_t keyHi, std::uint32_t first,
                                           std::uint32_t threshold, Scalar keepScale) {
  if (mask != nullptr) {
    for (Eigen::Index b = 0; b < rows; ++b) {
      const std::uint32_t h =
          fmix32(keyLo ^ ((first + static_cast<std::uint32_t>(b)) * 0x9E3779B9u + keyHi));
      const Scalar m = h >= threshold ? keepScale : Scalar(0);
      mask[b] = m;
      a[b] *= m;
    }
    return;
  }
  for (Eigen::Index b = 0; b < rows; ++b) {
    const std::uint32_t h =
        fmix32(keyLo ^ ((first + static_cast<std::uint32_t>(b)) * 0x9E3779B9u + keyHi));
    a[b] *= h >= threshold ? keepScale : Scalar(0);
  }
}
#undef TSNN_DROPOUT_INLINE

template <class Scalar>
void dropoutColumnGeneric(Scalar* a, Scalar* mask, Eigen::Index rows, std::uint32_t keyLo,
                          std::uint32_t keyHi, std::uint32_t first, std::uint32_t threshold,
                          Scalar keepScale) {
  dropoutColumnBody(a, mask, rows, keyLo, keyHi, first, threshold, keepScale);
}

#if TSNN_SIMD_DISPATCH
template <class Scalar>
__attribute__((target("avx2"))) void dropoutColumnAvx2(Scalar* a, Scalar* mask, Eigen::Index rows,
                                                       std::uint32_t keyLo, std::uint32_t keyHi,
                                                       std::uint32_t first, std::uint32_t threshold,
                                                       Scalar keepScale) {
  dropoutColumnBody(a, mask, rows, keyLo, keyHi, first, threshold, keepScale);
}

template <class Scalar>
__attribute__((target("avx2,avx512f,avx512vl,avx512bw,avx512dq"))) void dropoutColumnAvx512(
    Scalar* a, Scalar* mask, Eigen::Index rows, std::uint32_t keyLo, std::uint32_t keyHi,
    std::uint32_t first, std::uint32_t threshold, Scalar keepScale) {
  dropoutColumnBody(a, mask, rows, keyLo, keyHi, first, threshold, keepScale);
}
#endif

}  // namespace TSNN_SIMD_BASELINE
}  // namespace detail

namespace detail {

/// The mask of one block (see dropoutForward()), multiplied into \p a and, when \p mask is not
/// null, stored in the column-major block at \p mask with outer stride \p maskStride.
template <class AT>
void applyDropout(Eigen::MatrixBase<AT>& a, typename AT::Scalar* mask, Eigen::Index maskStride,
                  double rate, std::uint64_t key, Eigen::Index rowOffset, Eigen::Index colOffset) {
  using Scalar = typename AT::Scalar;
  static_assert(!AT::IsRowMajor, "dropout: needs column-major blocks");
  TSNN_ASSERT(a.innerStride() == 1);
  const Scalar keepScale = static_cast<Scalar>(1.0 / (1.0 - rate));
  // keep iff the 32-bit hash, read as a fraction of 2^32, is >= rate
  const auto threshold = static_cast<std::uint32_t>(std::min(rate * 4294967296.0, 4294967295.0));
  const auto first = static_cast<std::uint32_t>(rowOffset);
  auto column = &detail::dropoutColumnGeneric<Scalar>;
#if TSNN_SIMD_DISPATCH
  // The kernels' path (simdPath()), resolved by the layer's forward kernel before this runs.
  switch (simdPath()) {
    case SimdPath::Avx512:
      column = &detail::dropoutColumnAvx512<Scalar>;
      break;
    case SimdPath::Avx2:
      column = &detail::dropoutColumnAvx2<Scalar>;
      break;
    case SimdPath::Generic:
      break;
  }
#endif
  for (Eigen::Index i = 0; i < a.cols(); ++i) {
    // Both halves of the 64-bit neuron key enter every hash, so two neurons share a mask only
    // if their 64-bit keys collide.
    const std::uint64_t colKey = mix64(key + static_cast<std::uint64_t>(colOffset + i));
    const auto keyLo = static_cast<std::uint32_t>(colKey);
    const auto keyHi = static_cast<std::uint32_t>(colKey >> 32);
    // Columns are contiguous (column-major storage): plain pointers let the loop vectorise.
    Scalar* TSNN_RESTRICT ai = &a.derived().coeffRef(0, i);
    Scalar* mi = mask != nullptr ? mask + i * maskStride : nullptr;
    column(ai, mi, a.rows(), keyLo, keyHi, first, threshold, keepScale);
  }
}

}  // namespace detail

/// \brief Applies the mask in place to a block of a layer's activations and stores it (0 or 1/q)
/// in \p mask. The block holds minibatch rows [rowOffset, rowOffset + a.rows()) of neurons
/// [colOffset, colOffset + a.cols()). The decision for (row b, neuron i) hashes a per-neuron key
/// (a 64-bit mix of the layer key and i) with b's position in the minibatch, so any split of the
/// minibatch into shards or column blocks draws the same mask.
template <class AT, class MT>
void dropoutForward(Eigen::MatrixBase<AT>& a, Eigen::MatrixBase<MT>& mask, double rate,
                    std::uint64_t key, Eigen::Index rowOffset = 0, Eigen::Index colOffset = 0) {
  static_assert(!MT::IsRowMajor, "dropoutForward(): needs column-major blocks");
  TSNN_ASSERT(mask.innerStride() == 1);
  TSNN_ASSERT(mask.rows() == a.rows() && mask.cols() == a.cols());
  detail::applyDropout(a, &mask.derived().coeffRef(0, 0), mask.outerStride(), rate, key, rowOffset,
                       colOffset);
}

/// \brief Multiplies a block in place by the mask dropoutForward() draws for the same block,
/// without storing it: the forward pass applies it to activations, and the backward pass
/// recomputes it for the deltas (a hash per value, instead of a stored batch x width mask).
template <class AT>
void dropoutMultiply(Eigen::MatrixBase<AT>& a, double rate, std::uint64_t key,
                     Eigen::Index rowOffset = 0, Eigen::Index colOffset = 0) {
  detail::applyDropout(a, nullptr, 0, rate, key, rowOffset, colOffset);
}

/// \brief The mask (0 or 1/q) of a rows x cols block, as dropoutForward() draws it.
template <class Scalar>
Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> dropoutMask(Eigen::Index rows,
                                                                  Eigen::Index cols, double rate,
                                                                  std::uint64_t key,
                                                                  Eigen::Index rowOffset = 0,
                                                                  Eigen::Index colOffset = 0) {
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> m =
      Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>::Ones(rows, cols);
  dropoutMultiply(m, rate, key, rowOffset, colOffset);
  return m;
}

}  // namespace tsnn
