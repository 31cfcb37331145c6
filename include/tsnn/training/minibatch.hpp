#pragma once
/// \file
/// \brief One minibatch as the trainers build it: the shuffled sample order, the gather of its
/// samples into batch-contiguous activations, augmentation, the training forward pass and the
/// gradient.

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/memory.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/data/augment.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/pass_options.hpp"
#include "tsnn/training/options.hpp"

namespace tsnn {
namespace detail {

/// Fisher-Yates shuffle of 0..n-1 from our own generator (std::shuffle's use of the engine is
/// implementation-defined; this keeps runs identical across standard libraries).
inline void shuffleOrder(std::vector<std::int64_t>& order, Rng& rng) {
  for (std::size_t i = order.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng.below(i));
    std::swap(order[i - 1], order[j]);
  }
}

/// X(b, :) = features(order[first + b], :) for b in [0, count): the transposition from row-major
/// samples to batch-contiguous neurons that the kernels read.
template <class Scalar>
void gatherBatch(const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& f,
                 const std::vector<std::int64_t>& order, std::int64_t first, Eigen::Index count,
                 Activations<Scalar>& x, std::vector<std::int32_t>& labelsOut,
                 const std::vector<std::int32_t>& labels) {
  x.resize(count, f.cols());
  labelsOut.resize(static_cast<std::size_t>(count));
  const Eigen::Index d = f.cols();
  // Blocked transposition: for 16 samples at a time, walk the features once, so that reads are
  // 16 sequential streams and each write fills 16 consecutive floats of one neuron's column
  // (a plain per-sample loop writes every value to a different cache line).
  constexpr Eigen::Index kBlock = 16;
  const Scalar* src[kBlock];
  for (Eigen::Index b0 = 0; b0 < count; b0 += kBlock) {
    const Eigen::Index nb = std::min(kBlock, count - b0);
    for (Eigen::Index b = 0; b < nb; ++b) {
      const std::int64_t s = order[static_cast<std::size_t>(first + b0 + b)];
      src[b] = f.data() + s * d;
      labelsOut[static_cast<std::size_t>(b0 + b)] = labels[static_cast<std::size_t>(s)];
    }
    Scalar* dst = x.data() + b0;
    for (Eigen::Index i = 0; i < d; ++i) {
      Scalar* col = dst + i * count;
      for (Eigen::Index b = 0; b < nb; ++b) col[b] = src[b][i];
    }
  }
}

/// Shapes \p g like the network's current parameters (a no-op unless the topology changed).
template <class Scalar, class Index>
void fitGradients(const Network<Scalar, Index>& net, Gradients<Scalar>& g) {
  g.weights.resize(net.numLayers());
  g.bias.resize(net.numLayers());
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    const auto nnz = static_cast<std::size_t>(net.layer(l).nonZeros());
    if (g.weights[l].size() != nnz) assignWithHugePages(g.weights[l], nnz, Scalar(0));
    g.bias[l].resize(net.layer(l).outputs());
  }
}

/// Gathers the minibatch order[first, first + count) of \p data into \p x and \p labels (rows
/// [rowOffset, ...) of a larger minibatch when sharded), augments it if asked, and runs the
/// training forward pass of step \p step into \p ws on \p threads threads.
template <class Scalar, class Index>
void forwardBatch(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& data,
                  const std::vector<std::int64_t>& order, std::int64_t first, Eigen::Index count,
                  Eigen::Index rowOffset, std::uint64_t step, Workspace<Scalar>& ws,
                  Activations<Scalar>& x, std::vector<std::int32_t>& labels,
                  const TrainerOptions& options, Threads threads) {
  gatherBatch(data.features, order, first, count, x, labels, data.labels);
  if (options.augment.enabled())
    data::augmentBatch(x, options.augment, options.seed, step, rowOffset);
  net.forward(x, ws, PassOptions::training(step).rowOffset(rowOffset).threads(threads));
}

/// forwardBatch() and backward, writing \p grads for the network's current topology. The
/// gradient is that of the sum of the block's losses times \p scale.
template <class Scalar, class Index>
BlockStats computeGradients(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& data,
                            const std::vector<std::int64_t>& order, std::int64_t first,
                            Eigen::Index count, Eigen::Index rowOffset, std::uint64_t step,
                            Scalar scale, Workspace<Scalar>& ws, Gradients<Scalar>& grads,
                            Activations<Scalar>& x, std::vector<std::int32_t>& labels,
                            const TrainerOptions& options, Threads threads) {
  forwardBatch(net, data, order, first, count, rowOffset, step, ws, x, labels, options, threads);
  fitGradients(net, grads);
  return net.backward(x, labels.data(), ws, grads, scale, threads);
}

}  // namespace detail
}  // namespace tsnn
