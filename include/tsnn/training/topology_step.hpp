#pragma once
/// \file
/// \brief The topology change between epochs: importance pruning when due, then SET's
/// evolution step on every hidden layer, with random or gradient regrowth.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/pass_options.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/topology/gradient_regrowth.hpp"
#include "tsnn/topology/importance.hpp"
#include "tsnn/topology/set.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/options.hpp"

namespace tsnn {

/// \brief Applies SET to every hidden layer (all but the output layer).
/// \param remap if not null, receives every layer's change (for Optimizer::remap())
template <class Scalar, class Index>
void evolveHiddenLayers(Network<Scalar, Index>& net, double zeta,
                        NetworkRemap<Index>* remap = nullptr) {
  NetworkRemap<Index> all(net.numLayers());
  for (std::size_t l = 0; l + 1 < net.numLayers(); ++l) {
    PatternRemap<Index> r;
    evolveSet(net.layer(l), zeta, net.rng(), net.options().init, &r);
    all.add(l, std::move(r));
  }
  if (remap) *remap = std::move(all);
}

/// \brief Applies SET's removal with gradient regrowth (evolveSetGradient()) to every hidden
/// layer, the gradients taken on the minibatch \p x (B x inputs) with \p labels, without
/// dropout. All layers are ranked on the gradients of the network as it was before the step.
/// \param threads team for the forward and backward pass that computes the gradients
/// \param remap if not null, receives every layer's change (for Optimizer::remap())
/// \throws InvalidArgument if x does not fit the network or a label is out of range (the loss
/// checks the labels before any layer changes)
template <class Scalar, class Index>
void evolveHiddenLayersByGradient(Network<Scalar, Index>& net, double zeta,
                                  const Activations<Scalar>& x,
                                  const std::vector<std::int32_t>& labels,
                                  Threads threads = Threads::automatic(),
                                  NetworkRemap<Index>* remap = nullptr) {
  if (static_cast<Eigen::Index>(labels.size()) != x.rows())
    detail::raise<InvalidArgument>("evolveHiddenLayersByGradient(): ", x.rows(), " samples but ",
                                   labels.size(), " labels");
  // Only the deltas are needed (the weight gradients at empty positions are computed from them
  // and the activations), so no gradient buffer of the network's size is made.
  Workspace<Scalar> ws;
  // In the network's Scalar whatever its activation storage: backwardDeltas() has no bfloat16
  // form, and this pass is one minibatch.
  net.forward(x, ws, PassOptions::inference().threads(threads).storage(ActivationStorage::Scalar));
  net.backwardDeltas(labels.data(), ws, Scalar(1) / static_cast<Scalar>(x.rows()), threads);
  NetworkRemap<Index> all(net.numLayers());
  for (std::size_t l = 0; l + 1 < net.numLayers(); ++l) {
    PatternRemap<Index> r;
    evolveSetGradient(net.layer(l), zeta, l == 0 ? x : ws.a[l - 1], ws.delta[l], &r);
    all.add(l, std::move(r));
  }
  if (remap) *remap = std::move(all);
}

namespace detail {

/// The topology change after epoch \p epoch (none after the last): importance pruning when
/// due, then evolution with the scheduled zeta, as the reference code orders them (SET then works
/// on what is left). Gradient regrowth ranks on the first minibatch of \p order, computed on
/// options.kernelThreads() threads. The optimiser's state follows every change. Fills
/// rec.neuronsRemoved and rec.evolveSeconds; returns whether anything ran.
template <class Scalar, class Index>
bool topologyStep(Network<Scalar, Index>& net, const TrainerOptions& options, int epoch,
                  const data::Dataset<Scalar>& train, const std::vector<std::int64_t>& order,
                  EpochRecord& rec, Optimizer<Scalar, Index>& optimizer) {
  if (epoch >= options.epochs) return false;
  const bool prune = options.importancePruning && options.pruning.due(epoch);
  const double zeta = scheduledZeta(options.zeta, options.zetaSchedule, epoch, options.epochs);
  const bool evolve = options.evolve && zeta > 0;
  if (!prune && !evolve) return false;
  const auto t0 = std::chrono::steady_clock::now();
  NetworkRemap<Index> remap;
  if (prune) {
    rec.neuronsRemoved = pruneUnimportantNeurons(net, options.pruning.percentile, &remap);
    optimizer.remap(remap, net);
  }
  if (evolve) {
    if (options.regrowth == Regrowth::Gradient) {
      Activations<Scalar> x;
      std::vector<std::int32_t> labels;
      const auto count = static_cast<Eigen::Index>(
          std::min<std::int64_t>(options.batchSize, static_cast<std::int64_t>(order.size())));
      gatherBatch(train.features, order, 0, count, x, labels, train.labels);
      evolveHiddenLayersByGradient(net, zeta, x, labels, options.kernelThreads(), &remap);
    } else {
      evolveHiddenLayers(net, zeta, &remap);
    }
    optimizer.remap(remap, net);
  }
  rec.evolveSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

}  // namespace detail

}  // namespace tsnn
