#pragma once
/// \file
/// \brief The epoch loop of the synchronous trainers (sequential and data-parallel): seeded
/// shuffling, the minibatches, the non-finite policy, evaluation, the topology step, the
/// per-epoch history, callbacks, and resuming from a TrainingState. What one minibatch does is
/// the trainer's, passed in as a step function.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/make_optimizer.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/options.hpp"
#include "tsnn/training/topology_step.hpp"

namespace tsnn {
namespace detail {

/// What one minibatch step reports to the epoch loop.
struct StepReport {
  BlockStats stats;
  std::string problem;  ///< empty if the loss and gradient were finite (then it was applied)
  bool clipped = false;
};

/// Checks that \p state can continue a run on \p n samples with \p options.
inline void resumeState(const TrainingState& state, std::int64_t n, const TrainerOptions& options,
                        const char* caller) {
  if (state.epoch > options.epochs)
    raise<InvalidArgument>(caller, ": the state to resume has ", state.epoch,
                           " epochs done, more than the ", options.epochs, " asked for");
  if (state.order.empty())
    raise<InvalidArgument>(caller,
                           ": the state has no sample order (WASAP runs cannot be "
                           "resumed)");
  if (static_cast<std::int64_t>(state.order.size()) != n)
    raise<InvalidArgument>(caller, ": the state to resume has a sample order of ",
                           state.order.size(), " samples, the training set has ", n);
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  for (const std::int64_t s : state.order) {
    if (s < 0 || s >= n || seen[static_cast<std::size_t>(s)])
      raise<InvalidArgument>(caller, ": the state's sample order is not a permutation (sample ", s,
                             ")");
    seen[static_cast<std::size_t>(s)] = 1;
  }
  if (static_cast<int>(state.history.size()) != state.epoch)
    raise<InvalidArgument>(caller, ": the state has ", state.history.size(),
                           " history records for ", state.epoch, " epochs");
  if (!(state.learningRate > 0) || !std::isfinite(state.learningRate))
    raise<InvalidArgument>(caller, ": the state's learning rate is ", state.learningRate);
  if (state.optimizer.empty()) raise<InvalidArgument>(caller, ": the state has no optimizer state");
  if (state.optimizer.kind != options.optimizer)
    raise<InvalidArgument>(caller, ": the state holds ", optimizerName(state.optimizer.kind),
                           " state, the options select ", optimizerName(options.optimizer));
}

/// The epoch loop shared by the synchronous trainers: shuffling, timing, SET, evaluation and
/// callbacks, and the non-finite policy. It owns the optimiser (TrainerOptions::optimizer; on
/// resume, with the state's arrays and learning rate). \p step(first, count, stepIndex,
/// optimizer) trains one minibatch made of order[first, first + count) with \p optimizer and
/// reports its loss sum, correct count and whether the update was applied.
template <class Scalar, class Index, class Step>
std::vector<EpochRecord> runEpochs(
    Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
    const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
    const TrainerOptions& options, const TrainerCallbacks& callbacks, TrainingState* state,
    std::vector<std::int64_t>& order, const char* caller, Step&& step) {
  Rng shuffleRng(options.seed ^ 0x5F0F5F0Full);
  const std::int64_t n = train.size();
  order.resize(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::vector<EpochRecord> history;
  std::uint64_t stepIndex = 0;
  // The SkipBatch policy lowers its learning rate.
  const std::unique_ptr<Optimizer<Scalar, Index>> optimizer =
      makeOptimizer<Scalar, Index>(options.optimizer, options.sgd, options.adam);
  optimizer->setFanInReference(options.fanInReference);
  int skippedInARow = 0;
  int firstEpoch = 1;
  if (state && state->epoch > 0) {
    resumeState(*state, n, options, caller);
    shuffleRng.setState(state->shuffleRng);
    order = state->order;
    stepIndex = state->step;
    try {
      optimizer->setState(state->optimizer, net);
    } catch (const InvalidArgument& e) {
      std::string why = e.what();
      if (why.rfind("tsnn: ", 0) == 0) why.erase(0, 6);
      raise<InvalidArgument>(caller, ": cannot continue from the state: ", why);
    }
    optimizer->setLearningRate(state->learningRate);
    skippedInARow = state->skippedInARow;
    history = state->history;
    firstEpoch = state->epoch + 1;
    // The run that saved the state ended at its last epoch and skipped that epoch's topology
    // step; a longer run takes it now, as the uninterrupted run would have.
    if (state->topologyPending && state->epoch < options.epochs) {
      EpochRecord& last = history.back();
      topologyStep(net, options, state->epoch, train, order, last, *optimizer);
      last.nnz = net.nonZeros();
      last.hiddenNeurons = net.hiddenNeurons();
    }
  }
  for (int epoch = firstEpoch; epoch <= options.epochs; ++epoch) {
    shuffleOrder(order, shuffleRng);
    double lossSum = 0;
    long long correct = 0;
    const auto t0 = std::chrono::steady_clock::now();
    long long skipped = 0, clipped = 0;
    std::int64_t trained = 0;  // samples in the epoch's minibatches
    for (std::int64_t first = 0, batch = 0; first < n; first += options.batchSize, ++batch) {
      const std::int64_t count = std::min<std::int64_t>(options.batchSize, n - first);
      if (count < options.batchSize && options.dropLastPartialBatch) break;
      trained += count;
      const StepReport r = step(first, count, stepIndex, *optimizer);
      ++stepIndex;
      if (!r.problem.empty()) {
        if (options.onNonFinite == NonFinitePolicy::Throw ||
            ++skippedInARow > options.maxSkippedBatches)
          raise<NumericalError>(caller, ": ", r.problem, " at epoch ", epoch, ", batch ", batch,
                                skippedInARow > 1 ? " (after " : "",
                                skippedInARow > 1 ? std::to_string(skippedInARow - 1) : "",
                                skippedInARow > 1 ? " skipped batches in a row)" : "");
        ++skipped;
        optimizer->setLearningRate(optimizer->learningRate() * options.lrBackoff);
        if (callbacks.onBatch) callbacks.onBatch(epoch, first + count, n);
        continue;
      }
      skippedInARow = 0;
      clipped += r.clipped;
      lossSum += r.stats.lossSum;
      correct += r.stats.correct;
      if (callbacks.onBatch) callbacks.onBatch(epoch, first + count, n);
    }
    const auto t1 = std::chrono::steady_clock::now();
    EpochRecord rec;
    rec.epoch = epoch;
    rec.epochSeconds = std::chrono::duration<double>(t1 - t0).count();
    rec.trainLoss = lossSum / static_cast<double>(trained);
    rec.trainAccuracy = static_cast<double>(correct) / static_cast<double>(trained);
    rec.skippedBatches = skipped;
    rec.clippedBatches = clipped;
    // Evaluate the model that was trained, before SET replaces a fraction of its weights with
    // fresh random ones (the reference code's order too).
    rec.testAccuracy = test ? net.accuracy(test->features, test->labels, options.kernelThreads())
                            : std::numeric_limits<double>::quiet_NaN();
    topologyStep(net, options, epoch, train, order, rec, *optimizer);
    rec.nnz = net.nonZeros();
    rec.hiddenNeurons = net.hiddenNeurons();
    history.push_back(rec);
    if (state) {
      state->epoch = epoch;
      state->shuffleRng = shuffleRng.state();
      state->order = order;
      state->step = stepIndex;
      state->learningRate = optimizer->learningRate();
      state->optimizer = optimizer->state();
      state->skippedInARow = skippedInARow;
      state->topologyPending = epoch == options.epochs;
      state->history = history;
    }
    if (callbacks.onEpoch) callbacks.onEpoch(rec);
  }
  return history;
}

}  // namespace detail
}  // namespace tsnn
