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
#include <cstdint>

#include "tsnn/detail/random.hpp"

namespace tsnn {

/// \brief Key for one layer's mask in one training step.
inline std::uint64_t dropoutKey(std::uint64_t seed, std::uint64_t step, std::uint64_t layer) {
  return mix64(mix64(seed ^ 0xD209u) ^ mix64(step * 0x100000001B3ull + layer));
}

/// \brief Applies the mask in place to a block of rows [rowOffset, rowOffset + a.rows()) of the
/// minibatch and stores it (0 or 1/q) in \p mask for the backward pass. batchRows is the full
/// minibatch size, so that (b, i) maps to the same counter in every shard.
template <class AT, class MT>
void dropoutForward(Eigen::MatrixBase<AT>& a, Eigen::MatrixBase<MT>& mask, double rate,
                    std::uint64_t key, Eigen::Index rowOffset, Eigen::Index batchRows) {
  using Scalar = typename AT::Scalar;
  const Scalar keepScale = static_cast<Scalar>(1.0 / (1.0 - rate));
  // keep if the top 32 bits, read as a fraction in [0, 1), are >= rate
  const std::uint64_t threshold = static_cast<std::uint64_t>(rate * 4294967296.0);
  for (Eigen::Index i = 0; i < a.cols(); ++i) {
    const std::uint64_t base = key + static_cast<std::uint64_t>(i) *
                                         static_cast<std::uint64_t>(batchRows) +
                               static_cast<std::uint64_t>(rowOffset);
    for (Eigen::Index b = 0; b < a.rows(); ++b) {
      const bool keep = (mix64(base + static_cast<std::uint64_t>(b)) >> 32) >= threshold;
      const Scalar m = keep ? keepScale : Scalar(0);
      mask(b, i) = m;
      a(b, i) *= m;
    }
  }
}

}  // namespace tsnn
