#pragma once
/// \file
/// \brief The sequential trainer: seeded shuffling, minibatch SGD, SET after each epoch,
/// evaluation, and a per-epoch history.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <vector>

#include "tsnn/config.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/detail/random.hpp"
#include "tsnn/errors.hpp"
#include "tsnn/optim/sgd.hpp"
#include "tsnn/topology/set.hpp"
#include "tsnn/training/network.hpp"

namespace tsnn {

/// \brief Options of a training run.
struct TrainerOptions {
  int epochs = 10;
  int batchSize = 128;
  SgdOptions sgd;
  /// SET: fraction of the negative and of the positive weights replaced after each epoch.
  double zeta = 0.3;
  /// Run SET on the hidden layers after every epoch but the last.
  bool evolve = true;
  /// Seed of the shuffling (and of the dropout masks through the network's seed).
  std::uint64_t seed = 1;
  /// OpenMP threads for the kernels; 0 leaves the OpenMP default.
  int threads = 0;

  /// \throws InvalidArgument naming the first bad value.
  void validate() const {
    if (epochs < 0) detail::raise<InvalidArgument>("TrainerOptions: epochs must be >= 0, got ", epochs);
    if (batchSize < 1)
      detail::raise<InvalidArgument>("TrainerOptions: batch size must be >= 1, got ", batchSize);
    if (!(zeta >= 0 && zeta < 1))
      detail::raise<InvalidArgument>("TrainerOptions: zeta must be in [0, 1), got ", zeta);
    if (threads < 0)
      detail::raise<InvalidArgument>("TrainerOptions: threads must be >= 0, got ", threads);
    sgd.validate();
  }
};

/// \brief One row of the training history.
struct EpochRecord {
  int epoch = 0;               ///< 1-based
  double trainLoss = 0;        ///< mean loss over the epoch's minibatches (with dropout)
  double trainAccuracy = 0;    ///< fraction correct over the epoch's minibatches (with dropout)
  double testAccuracy = 0;     ///< on the test set after the epoch, without dropout (NaN if none)
  double epochSeconds = 0;     ///< training time of the epoch: forward, backward, updates; no
                               ///< evaluation and no topology evolution
  double evolveSeconds = 0;    ///< time spent in SET after the epoch
  long long nnz = 0;           ///< connections after the epoch's topology change
  long long hiddenNeurons = 0;
};

/// \brief Hooks a caller can set to follow training.
struct TrainerCallbacks {
  /// After each minibatch: epoch (1-based), samples done in the epoch, samples per epoch.
  std::function<void(int, long long, long long)> onBatch;
  /// After each epoch, once its record is complete.
  std::function<void(const EpochRecord&)> onEpoch;
};

namespace detail {

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
  for (Eigen::Index b = 0; b < count; ++b) {
    const std::int64_t s = order[static_cast<std::size_t>(first + b)];
    const Scalar* src = f.data() + s * d;
    Scalar* dst = x.data() + b;
    for (Eigen::Index i = 0; i < d; ++i) dst[i * count] = src[i];
    labelsOut[static_cast<std::size_t>(b)] = labels[static_cast<std::size_t>(s)];
  }
}

/// Fisher-Yates shuffle of 0..n-1 from our own generator (std::shuffle's use of the engine is
/// implementation-defined; this keeps runs identical across standard libraries).
inline void shuffleOrder(std::vector<std::int64_t>& order, Rng& rng) {
  for (std::size_t i = order.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(rng.below(i));
    std::swap(order[i - 1], order[j]);
  }
}

template <class Scalar, class Index>
void checkData(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& d,
               const char* caller, const char* which) {
  d.validate(caller);
  if (d.dim() != net.inputs())
    raise<InvalidArgument>(caller, ": ", which, " set has ", d.dim(), " features, network expects ",
                           net.inputs());
  if (d.numClasses > net.outputs())
    raise<InvalidArgument>(caller, ": ", which, " set has ", d.numClasses,
                           " classes, network has ", net.outputs(), " outputs");
}

}  // namespace detail

/// \brief Applies SET to every hidden layer (all but the output layer).
template <class Scalar, class Index>
void evolveHiddenLayers(Network<Scalar, Index>& net, double zeta) {
  for (std::size_t l = 0; l + 1 < net.numLayers(); ++l)
    evolveSet(net.layer(l), zeta, net.rng(), net.options().init);
}

/// \brief Trains \p net on \p train with minibatch SGD, evaluating on \p test (may be null)
/// after each epoch. Samples are reshuffled every epoch from options.seed; the last minibatch of
/// an epoch may be smaller. Kernels run in parallel over neurons with options.threads threads.
/// \throws InvalidArgument for invalid options or data that does not fit the network
/// \throws NumericalError if a minibatch loss is not finite
template <class Scalar, class Index>
std::vector<EpochRecord> trainSequential(Network<Scalar, Index>& net,
                                         const data::Dataset<Scalar>& train,
                                         const data::Dataset<Scalar>* test,
                                         const TrainerOptions& options,
                                         const TrainerCallbacks& callbacks = {}) {
  options.validate();
  detail::checkData(net, train, "trainSequential()", "training");
  if (test) detail::checkData(net, *test, "trainSequential()", "test");
  if (train.size() == 0) detail::raise<InvalidArgument>("trainSequential(): empty training set");
  if (options.threads > 0) setThreads(options.threads);

  Rng shuffleRng(options.seed ^ 0x5F0F5F0Full);
  const std::int64_t n = train.size();
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  Workspace<Scalar> ws;
  Gradients<Scalar> grads = net.makeGradients();
  Activations<Scalar> x;
  std::vector<std::int32_t> labels;
  std::vector<EpochRecord> history;
  std::uint64_t step = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    detail::shuffleOrder(order, shuffleRng);
    double lossSum = 0;
    long long correct = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t first = 0, batch = 0; first < n; first += options.batchSize, ++batch) {
      const Eigen::Index count = std::min<std::int64_t>(options.batchSize, n - first);
      detail::gatherBatch(train.features, order, first, count, x, labels, train.labels);
      net.forward(x, ws, true, step);
      const BlockStats s =
          net.backward(x, labels.data(), ws, grads, Scalar(1) / static_cast<Scalar>(count));
      if (!std::isfinite(s.lossSum))
        detail::raise<NumericalError>("trainSequential(): loss is ", s.lossSum, " at epoch ",
                                      epoch, ", batch ", batch);
      net.applyGradients(grads, options.sgd);
      lossSum += s.lossSum;
      correct += s.correct;
      ++step;
      if (callbacks.onBatch) callbacks.onBatch(epoch, first + count, n);
    }
    const auto t1 = std::chrono::steady_clock::now();
    EpochRecord rec;
    rec.epoch = epoch;
    rec.epochSeconds = std::chrono::duration<double>(t1 - t0).count();
    rec.trainLoss = lossSum / static_cast<double>(n);
    rec.trainAccuracy = static_cast<double>(correct) / static_cast<double>(n);
    if (options.evolve && options.zeta > 0 && epoch < options.epochs) {
      evolveHiddenLayers(net, options.zeta);
      rec.evolveSeconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    }
    rec.testAccuracy = test ? net.accuracy(test->features, test->labels)
                            : std::numeric_limits<double>::quiet_NaN();
    rec.nnz = net.nonZeros();
    rec.hiddenNeurons = net.hiddenNeurons();
    history.push_back(rec);
    if (callbacks.onEpoch) callbacks.onEpoch(rec);
  }
  return history;
}

}  // namespace tsnn
