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
  const TrainingState::InEpoch& p = state.inEpoch;
  const std::int64_t batches = (n + options.batchSize - 1) / options.batchSize;
  if (p.batches < 0 || p.batches > batches || p.trained < 0 || p.trained > n || p.correct < 0 ||
      p.correct > p.trained || p.skipped < 0 || p.skipped > p.batches || p.clipped < 0 ||
      p.clipped > p.batches || !(p.lossSum >= 0) || !std::isfinite(p.lossSum) ||
      !(p.seconds >= 0) || !std::isfinite(p.seconds))
    raise<InvalidArgument>(caller, ": the state's epoch in progress does not fit ", batches,
                           " minibatches of ", n, " samples (", p.batches, " minibatches, ",
                           p.trained, " samples, ", p.correct, " correct, ", p.skipped,
                           " skipped, ", p.clipped, " clipped, loss sum ", p.lossSum, ", ",
                           p.seconds, " s)");
  if (p.batches > 0 && (state.epoch >= options.epochs || state.topologyPending))
    raise<InvalidArgument>(caller, ": the state is inside epoch ", state.epoch + 1,
                           (state.topologyPending ? " with a topology step pending" : ""),
                           ", but the run has ", options.epochs, " epochs");
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
  TrainingState::InEpoch resumed;  // the partial epoch to finish first, if any
  if (state && (state->epoch > 0 || state->inEpoch.batches > 0)) {
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
    resumed = state->inEpoch;
    // The run that saved the state ended at its last epoch and skipped that epoch's topology
    // step; a longer run takes it now, as the uninterrupted run would have.
    if (state->topologyPending && state->epoch < options.epochs) {
      EpochRecord& last = history.back();
      topologyStep(net, options, state->epoch, train, order, last, *optimizer);
      last.nnz = net.nonZeros();
      last.hiddenNeurons = net.hiddenNeurons();
    }
  }
  // Brings *state up to date: epochsDone complete, plus \p inEpoch of the next one.
  auto recordState = [&](int epochsDone, bool topologyPending,
                         const TrainingState::InEpoch& inEpoch) {
    state->epoch = epochsDone;
    state->shuffleRng = shuffleRng.state();
    state->order = order;
    state->step = stepIndex;
    state->learningRate = optimizer->learningRate();
    state->optimizer = optimizer->state();
    state->skippedInARow = skippedInARow;
    state->topologyPending = topologyPending;
    state->inEpoch = inEpoch;
    state->history = history;
  };
  for (int epoch = firstEpoch; epoch <= options.epochs; ++epoch) {
    // A resumed partial epoch keeps its order and its sums so far.
    TrainingState::InEpoch sums;
    if (epoch == firstEpoch && resumed.batches > 0)
      sums = resumed;
    else
      shuffleOrder(order, shuffleRng);
    const auto t0 = std::chrono::steady_clock::now();
    const double secondsBefore = sums.seconds;
    // Brings *state up to date inside the epoch (sums.batches done) for afterBatch.
    auto checkpointInside = [&] {
      if (!state) return;
      sums.seconds = secondsBefore +
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      recordState(epoch - 1, false, sums);
      if (callbacks.onCheckpoint) callbacks.onCheckpoint(*state);
    };
    // After each minibatch: the callbacks; true when afterBatch says stop.
    auto afterBatch = [&](std::int64_t done) {
      if (callbacks.onBatch) callbacks.onBatch(epoch, done, n);
      const BatchAction a =
          callbacks.afterBatch ? callbacks.afterBatch(epoch, done, n) : BatchAction::Continue;
      if (a != BatchAction::Continue) checkpointInside();
      return a == BatchAction::Stop;
    };
    for (std::int64_t first = sums.batches * options.batchSize; first < n;
         first += options.batchSize) {
      const std::int64_t batch = first / options.batchSize;
      const std::int64_t count = std::min<std::int64_t>(options.batchSize, n - first);
      if (count < options.batchSize && options.dropLastPartialBatch) break;
      const StepReport r = step(first, count, stepIndex, *optimizer);
      ++stepIndex;
      sums.trained += count;
      ++sums.batches;
      if (!r.problem.empty()) {
        if (options.onNonFinite == NonFinitePolicy::Throw ||
            ++skippedInARow > options.maxSkippedBatches)
          raise<NumericalError>(caller, ": ", r.problem, " at epoch ", epoch, ", batch ", batch,
                                skippedInARow > 1 ? " (after " : "",
                                skippedInARow > 1 ? std::to_string(skippedInARow - 1) : "",
                                skippedInARow > 1 ? " skipped batches in a row)" : "");
        ++sums.skipped;
        optimizer->setLearningRate(optimizer->learningRate() * options.lrBackoff);
      } else {
        skippedInARow = 0;
        sums.clipped += r.clipped;
        sums.lossSum += r.stats.lossSum;
        sums.correct += r.stats.correct;
      }
      if (afterBatch(first + count)) return history;
    }
    const auto t1 = std::chrono::steady_clock::now();
    EpochRecord rec;
    rec.epoch = epoch;
    rec.epochSeconds = secondsBefore + std::chrono::duration<double>(t1 - t0).count();
    rec.trainLoss = sums.lossSum / static_cast<double>(sums.trained);
    rec.trainAccuracy = static_cast<double>(sums.correct) / static_cast<double>(sums.trained);
    rec.skippedBatches = sums.skipped;
    rec.clippedBatches = sums.clipped;
    // Evaluate the model that was trained, before SET replaces a fraction of its weights with
    // fresh random ones (the reference code's order too).
    rec.testAccuracy = test ? net.accuracy(test->features, test->labels, options.kernelThreads(),
                                           evaluationProgress(callbacks, epoch))
                            : std::numeric_limits<double>::quiet_NaN();
    topologyStep(net, options, epoch, train, order, rec, *optimizer);
    rec.nnz = net.nonZeros();
    rec.hiddenNeurons = net.hiddenNeurons();
    history.push_back(rec);
    if (state) recordState(epoch, epoch == options.epochs, TrainingState::InEpoch{});
    if (callbacks.onEpoch) callbacks.onEpoch(rec);
  }
  return history;
}

}  // namespace detail
}  // namespace tsnn
