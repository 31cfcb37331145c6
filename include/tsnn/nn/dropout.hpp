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

namespace tsnn {

/// \brief Key for one layer's mask in one training step.
inline std::uint64_t dropoutKey(std::uint64_t seed, std::uint64_t step, std::uint64_t layer) {
  return mix64(mix64(seed ^ 0xD209u) ^ mix64(step * 0x100000001B3ull + layer));
}

/// \brief Murmur3's 32-bit finaliser: a bijection with full avalanche, cheap enough to run per
/// element and, being 32-bit multiplies and shifts, vectorisable.
inline std::uint32_t fmix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

/// \brief Applies the mask in place to a block of a layer's activations and stores it (0 or 1/q)
/// in \p mask for the backward pass. The block holds minibatch rows [rowOffset, rowOffset +
/// a.rows()) of neurons [colOffset, colOffset + a.cols()). The decision for (row b, neuron i)
/// hashes a per-neuron key (a 64-bit mix of the layer key and i) with b's position in the
/// minibatch, so any split of the minibatch into shards or column blocks draws the same mask.
template <class AT, class MT>
void dropoutForward(Eigen::MatrixBase<AT>& a, Eigen::MatrixBase<MT>& mask, double rate,
                    std::uint64_t key, Eigen::Index rowOffset = 0, Eigen::Index colOffset = 0) {
  using Scalar = typename AT::Scalar;
  static_assert(!AT::IsRowMajor && !MT::IsRowMajor, "dropoutForward(): needs column-major blocks");
  TSNN_ASSERT(a.innerStride() == 1 && mask.innerStride() == 1);
  TSNN_ASSERT(mask.rows() == a.rows() && mask.cols() == a.cols());
  const Scalar keepScale = static_cast<Scalar>(1.0 / (1.0 - rate));
  // keep iff the 32-bit hash, read as a fraction of 2^32, is >= rate
  const auto threshold = static_cast<std::uint32_t>(std::min(rate * 4294967296.0, 4294967295.0));
  const auto first = static_cast<std::uint32_t>(rowOffset);
  for (Eigen::Index i = 0; i < a.cols(); ++i) {
    // Both halves of the 64-bit neuron key enter every hash, so two neurons share a mask only
    // if their 64-bit keys collide.
    const std::uint64_t colKey = mix64(key + static_cast<std::uint64_t>(colOffset + i));
    const auto keyLo = static_cast<std::uint32_t>(colKey);
    const auto keyHi = static_cast<std::uint32_t>(colKey >> 32);
    // Columns are contiguous (column-major storage): plain pointers let the loop vectorise.
    Scalar* TSNN_RESTRICT ai = &a.derived().coeffRef(0, i);
    Scalar* TSNN_RESTRICT mi = &mask.derived().coeffRef(0, i);
    const Eigen::Index rows = a.rows();
    for (Eigen::Index b = 0; b < rows; ++b) {
      const std::uint32_t h =
          fmix32(keyLo ^ ((first + static_cast<std::uint32_t>(b)) * 0x9E3779B9u + keyHi));
      const Scalar m = h >= threshold ? keepScale : Scalar(0);
      mi[b] = m;
      ai[b] *= m;
    }
  }
}

}  // namespace tsnn
