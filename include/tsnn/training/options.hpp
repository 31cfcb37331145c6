#pragma once
/// \file
/// \brief What a training run is given: TrainerOptions (the trainer, its hyperparameters, its
/// threads and numerical guards), TrainerCallbacks, and the checks every trainer makes on them
/// and on the data before it touches the network.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/data/augment.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/adam.hpp"
#include "tsnn/optim/optimizer_state.hpp"
#include "tsnn/optim/sgd.hpp"
#include "tsnn/topology/gradient_regrowth.hpp"
#include "tsnn/topology/importance.hpp"
#include "tsnn/topology/set.hpp"

namespace tsnn {

/// \brief How minibatches are processed.
enum class TrainerKind {
  Sequential,    ///< one minibatch at a time; each kernel is parallel over neurons
  DataParallel,  ///< each minibatch split into one shard per worker, gradients summed in a
                 ///< fixed order and averaged, then one optimiser step
  Wasap          ///< WASAP-SGD (training/wasap.hpp)
};

/// \brief Parses "sequential", "data-parallel" or "wasap".
inline TrainerKind parseTrainer(const std::string& name) {
  if (name == "sequential") return TrainerKind::Sequential;
  if (name == "data-parallel" || name == "data_parallel") return TrainerKind::DataParallel;
  if (name == "wasap") return TrainerKind::Wasap;
  detail::raise<InvalidArgument>("parseTrainer(): unknown trainer '", name,
                                 "' (expected sequential, data-parallel or wasap)");
}

/// \brief What a trainer does when a minibatch's loss or gradient is not finite.
enum class NonFinitePolicy {
  Throw,     ///< stop with NumericalError naming the epoch, batch and layer (the default)
  SkipBatch  ///< drop that minibatch's update and multiply the learning rate by
             ///< TrainerOptions::lrBackoff; after maxSkippedBatches in a row, throw as above
};

/// \brief Options of a training run.
struct TrainerOptions {
  TrainerKind kind = TrainerKind::Sequential;
  /// Logical workers: data-parallel shards or WASAP workers (0: workerCount() picks). Results
  /// depend on the worker count, never on how many threads run them.
  int workers = 0;
  /// WASAP: fraction of the epochs, at the end, that workers train locally before averaging.
  double wasapLocalFraction = 0.3;
  int epochs = 10;
  int batchSize = 128;
  /// Skip the last minibatch of an epoch when it is smaller than batchSize (of each worker's
  /// partition, for WASAP), as the reference code does; the epoch's loss and accuracy are then
  /// over the samples trained. Off by default: every sample is trained every epoch.
  bool dropLastPartialBatch = false;
  /// The optimiser, and the options of each (only the selected one is read).
  OptimizerKind optimizer = OptimizerKind::Sgd;
  SgdOptions sgd;
  AdamOptions adam;
  /// SET: fraction of the negative and of the positive weights replaced after each epoch.
  double zeta = 0.3;
  /// How zeta changes from epoch to epoch (scheduledZeta()).
  ZetaSchedule zetaSchedule = ZetaSchedule::Constant;
  /// Where the evolution step grows connections: at random (SET) or where the gradient of the
  /// missing connections is largest on one minibatch (RigL).
  Regrowth regrowth = Regrowth::Random;
  /// Run the evolution step on the hidden layers after every epoch but the last.
  bool evolve = true;
  /// Remove unimportant hidden neurons (topology/importance.hpp) after the epochs that
  /// `pruning` selects, before that epoch's SET step. Sequential and data-parallel trainers.
  bool importancePruning = false;
  ImportancePruning pruning;
  /// Random flips and shifts of training images, drawn per (seed, step, minibatch row), so every
  /// trainer and shard count sees the same transforms (data/augment.hpp). Off by default.
  data::ImageAugmentation augment;
  /// Seed of the shuffling (and of the dropout masks through the network's seed).
  std::uint64_t seed = 1;
  /// Threads of the run: the team of the sequential trainer's kernels and of every evaluation,
  /// and the most threads the data-parallel and WASAP trainers give their workers; 0 takes the
  /// OpenMP runtime's default for kernels and one thread per worker for workers. Passed to each
  /// region's num_threads clause; the process's OpenMP settings are never changed.
  int threads = 0;
  /// Rescale a minibatch gradient whose global L2 norm (all weights and biases) exceeds this to
  /// this norm; 0 disables clipping.
  double clipNorm = 0;
  NonFinitePolicy onNonFinite = NonFinitePolicy::Throw;
  /// SkipBatch: factor applied to the learning rate after each skipped minibatch, in (0, 1].
  double lrBackoff = 0.5;
  /// SkipBatch: consecutive skipped minibatches after which training stops anyway.
  int maxSkippedBatches = 10;
  /// Per-layer learning rates lr * min(1, K / mean real fan-in) with K this value, 0 for one
  /// rate everywhere (Optimizer::setFanInReference(); 1000 keeps the default network's rates
  /// and tames a wide network's dense readout).
  double fanInReference = 0;

  /// \throws InvalidArgument naming the first bad value.
  void validate() const {
    if (epochs < 0)
      detail::raise<InvalidArgument>("TrainerOptions: epochs must be >= 0, got ", epochs);
    if (batchSize < 1)
      detail::raise<InvalidArgument>("TrainerOptions: batch size must be >= 1, got ", batchSize);
    if (!(zeta >= 0 && zeta < 1))
      detail::raise<InvalidArgument>("TrainerOptions: zeta must be in [0, 1), got ", zeta);
    if (threads < 0)
      detail::raise<InvalidArgument>("TrainerOptions: threads must be >= 0, got ", threads);
    if (workers < 0)
      detail::raise<InvalidArgument>("TrainerOptions: workers must be >= 0, got ", workers);
    if (!(clipNorm >= 0) || !std::isfinite(clipNorm))
      detail::raise<InvalidArgument>("TrainerOptions: clip norm must be finite and >= 0, got ",
                                     clipNorm);
    if (!(lrBackoff > 0 && lrBackoff <= 1))
      detail::raise<InvalidArgument>(
          "TrainerOptions: learning-rate backoff must be in (0, 1], got ", lrBackoff);
    if (!(fanInReference >= 0) || !std::isfinite(fanInReference))
      detail::raise<InvalidArgument>(
          "TrainerOptions: the reference fan-in must be finite and >= 0, got ", fanInReference);
    if (importancePruning) pruning.validate();
    if (maxSkippedBatches < 1)
      detail::raise<InvalidArgument>("TrainerOptions: max skipped batches must be >= 1, got ",
                                     maxSkippedBatches);
    if (!(wasapLocalFraction >= 0 && wasapLocalFraction <= 1))
      detail::raise<InvalidArgument>("TrainerOptions: WASAP local fraction must be in [0, 1], got ",
                                     wasapLocalFraction);
    if (optimizer == OptimizerKind::Adam)
      adam.validate();
    else
      sgd.validate();
  }

  /// \brief The learning rate the selected optimiser starts with.
  double learningRate() const {
    return optimizer == OptimizerKind::Adam ? adam.learningRate : sgd.learningRate;
  }

  /// \brief The team of the kernels the sequential trainer and every evaluation run:
  /// Threads::count(threads), automatic when threads is 0.
  Threads kernelThreads() const { return Threads::count(threads); }
  /// \brief Logical workers of the data-parallel and WASAP trainers: workers, else threads,
  /// else the OpenMP runtime's default team size (1 without OpenMP).
  int workerCount() const { return workers > 0 ? workers : threads > 0 ? threads : maxThreads(); }
  /// \brief Threads asked for to run \p logicalWorkers workers: one per worker, capped at
  /// threads when that is set. The runtime may grant fewer; the trainers then give each thread
  /// several workers.
  int teamFor(int logicalWorkers) const {
    return threads > 0 ? std::min(threads, logicalWorkers) : logicalWorkers;
  }
};

/// \brief Hooks a caller can set to follow training.
/// \brief What a synchronous trainer does after a minibatch (TrainerCallbacks::afterBatch).
enum class BatchAction {
  Continue,    ///< go on
  Checkpoint,  ///< bring the TrainingState up to date mid-epoch, call onCheckpoint, go on
  Stop         ///< the same, then return (the history holds the completed epochs only)
};

struct TrainerCallbacks {
  /// After each minibatch: epoch (1-based), samples done in the epoch, samples per epoch.
  std::function<void(int, long long, long long)> onBatch;
  /// After each epoch, once its record is complete.
  std::function<void(const EpochRecord&)> onEpoch;
  /// After each minibatch (after onBatch), with the same arguments, for the sequential and
  /// data-parallel trainers (WASAP runs cannot be resumed and do not call it). Checkpoint and
  /// Stop bring the trainer's TrainingState, where it was given one, up to date inside the epoch
  /// (TrainingState::inEpoch) and pass it to onCheckpoint; a run resumed from that state goes on
  /// with the next minibatch and reproduces the uninterrupted run bit for bit. Stop then returns.
  std::function<BatchAction(int, long long, long long)> afterBatch;
  /// The state brought up to date by afterBatch's Checkpoint or Stop (e.g. to save it).
  std::function<void(const TrainingState&)> onCheckpoint;
  /// During the evaluation on the test set after an epoch: epoch, test samples done, test
  /// samples in all, after each chunk the network infers (Network::inferenceChunk()).
  std::function<void(int, long long, long long)> onEvaluation;
};

namespace detail {

/// callbacks.onEvaluation bound to \p epoch, or nothing.
inline std::function<void(long long, long long)> evaluationProgress(
    const TrainerCallbacks& callbacks, int epoch) {
  if (!callbacks.onEvaluation) return {};
  return [&callbacks, epoch](long long done, long long total) {
    callbacks.onEvaluation(epoch, done, total);
  };
}

/// Checks that \p d is valid and fits \p net; \p which names the set in the message.
template <class Scalar, class Index>
void checkData(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& d,
               const char* caller, const char* which) {
  d.validate(caller);
  if (d.dim() != net.inputs())
    raise<InvalidArgument>(caller, ": ", which, " set has ", d.dim(), " features, network expects ",
                           net.inputs());
  if (d.numClasses > net.outputs())
    raise<InvalidArgument>(caller, ": ", which, " set has ", d.numClasses, " classes, network has ",
                           net.outputs(), " outputs");
}

/// The checks every trainer makes before it touches the network: the options, the training
/// and test sets against the network, a non-empty training set, the augmentation's image shape.
/// \throws InvalidArgument naming \p caller and the first bad value
template <class Scalar, class Index>
void checkRun(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
              const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
              const TrainerOptions& options, const char* caller) {
  options.validate();
  checkData(net, train, caller, "training");
  if (test) checkData(net, *test, caller, "test");
  if (train.size() == 0) raise<InvalidArgument>(caller, ": empty training set");
  // With the partial minibatch dropped, a training set (or WASAP partition) smaller than one
  // minibatch would train nothing at all.
  const std::int64_t smallest =
      options.kind == TrainerKind::Wasap ? train.size() / options.workerCount() : train.size();
  if (options.dropLastPartialBatch && smallest < options.batchSize)
    raise<InvalidArgument>(
        caller, ": dropping the last partial minibatch leaves nothing to train: ",
        options.kind == TrainerKind::Wasap ? "a worker's partition has " : "the training set has ",
        smallest, " samples, fewer than the batch size ", options.batchSize);
  options.augment.validate(train.dim());
}

}  // namespace detail

}  // namespace tsnn
