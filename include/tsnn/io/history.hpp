#pragma once
/// \file
/// \brief What a training run records per epoch (EpochRecord) and everything a trainer needs to
/// continue a run exactly where it stopped (TrainingState), which checkpoints store.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tsnn/optim/optimizer_state.hpp"

namespace tsnn {

/// \brief One row of the training history.
struct EpochRecord {
  int epoch = 0;                 ///< 1-based
  double trainLoss = 0;          ///< mean loss over the epoch's minibatches (with dropout)
  double trainAccuracy = 0;      ///< fraction correct over the epoch's minibatches (with dropout)
  double testAccuracy = 0;       ///< on the test set after the epoch's training and before its SET
                                 ///< step, without dropout (NaN if there is no test set)
  double epochSeconds = 0;       ///< training time of the epoch: forward, backward, updates; no
                                 ///< evaluation and no topology evolution
  double evolveSeconds = 0;      ///< time spent in SET after the epoch
  long long nnz = 0;             ///< connections after the epoch's topology change
  long long hiddenNeurons = 0;   ///< after the epoch's importance pruning
  long long neuronsRemoved = 0;  ///< by importance pruning after this epoch
  /// Minibatches whose update was skipped (NonFinitePolicy::SkipBatch) and clipped.
  long long skippedBatches = 0;
  long long clippedBatches = 0;
  /// WASAP phase 1: mean number of shared-model updates between a worker's copy and the
  /// application of the gradient computed on it (0 for synchronous trainers).
  double meanStaleness = 0;
};

/// \brief The trainer's side of a run, at an epoch boundary or inside an epoch (inEpoch), the
/// optimiser's state included.
/// Together with the network (weights, topology, neuron ids and its random stream) it determines
/// the rest of the run: a run resumed from it with the same options and thread count produces
/// the same epochs, bit for bit, as the run that saved it (only the timings differ).
struct TrainingState {
  int epoch = 0;  ///< epochs completed
  /// State of the shuffling generator and the sample order it last produced (each epoch
  /// shuffles the previous order again, so both are needed).
  std::array<std::uint64_t, 4> shuffleRng{};
  std::vector<std::int64_t> order;
  std::uint64_t step = 0;   ///< minibatches done (keys the dropout masks)
  double learningRate = 0;  ///< current rate (lowered by NonFinitePolicy::SkipBatch)
  /// The optimiser's kind, step count and per-connection and per-neuron arrays (momentum, Adam's
  /// moments), aligned with the network's layers.
  OptimizerState optimizer;
  int skippedInARow = 0;
  /// True when the state was taken after the last epoch of its run, whose topology step (pruning
  /// and evolution) is skipped; a resumed, longer run then takes that step first.
  bool topologyPending = false;
  /// \brief A state taken inside an epoch (TrainerCallbacks::afterBatch): how far epoch
  /// `epoch + 1` got and its partial sums, so that a resumed run trains the rest of it and ends
  /// it with the record the uninterrupted run would have written. order and shuffleRng are then
  /// that epoch's (already shuffled); all zero at an epoch boundary.
  struct InEpoch {
    std::int64_t batches = 0;  ///< minibatches of the epoch done (applied or skipped)
    std::int64_t trained = 0;  ///< samples in them
    double lossSum = 0;        ///< summed loss of the applied ones
    long long correct = 0;
    long long skipped = 0;
    long long clipped = 0;
    double seconds = 0;  ///< training time spent on them
  } inEpoch;
  std::vector<EpochRecord> history;
  /// Free text a program may store to check, on resume, that it runs with the same settings
  /// (train_mnist stores its flags).
  std::string config;
};

}  // namespace tsnn
