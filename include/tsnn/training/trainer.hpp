#pragma once
/// \file
/// \brief The sequential trainer: seeded shuffling, minibatch SGD, SET after each epoch,
/// evaluation, and a per-epoch history.

#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
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

/// \brief How minibatches are processed.
enum class TrainerKind {
  Sequential,    ///< one minibatch at a time; each kernel is parallel over neurons
  DataParallel,  ///< each minibatch split into one shard per thread, gradients summed in a
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

/// \brief Options of a training run.
struct TrainerOptions {
  TrainerKind kind = TrainerKind::Sequential;
  /// Workers (data-parallel shards or WASAP workers); 0 takes the thread count.
  int workers = 0;
  /// WASAP: fraction of the epochs, at the end, that workers train locally before averaging.
  double wasapLocalFraction = 0.3;
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
    if (workers < 0)
      detail::raise<InvalidArgument>("TrainerOptions: workers must be >= 0, got ", workers);
    if (!(wasapLocalFraction >= 0 && wasapLocalFraction <= 1))
      detail::raise<InvalidArgument>("TrainerOptions: WASAP local fraction must be in [0, 1], got ",
                                     wasapLocalFraction);
    sgd.validate();
  }
};

/// \brief One row of the training history.
struct EpochRecord {
  int epoch = 0;               ///< 1-based
  double trainLoss = 0;        ///< mean loss over the epoch's minibatches (with dropout)
  double trainAccuracy = 0;    ///< fraction correct over the epoch's minibatches (with dropout)
  double testAccuracy = 0;     ///< on the test set after the epoch's training and before its SET
                               ///< step, without dropout (NaN if there is no test set)
  double epochSeconds = 0;     ///< training time of the epoch: forward, backward, updates; no
                               ///< evaluation and no topology evolution
  double evolveSeconds = 0;    ///< time spent in SET after the epoch
  long long nnz = 0;           ///< connections after the epoch's topology change
  long long hiddenNeurons = 0;
  /// WASAP phase 1: mean number of shared-model updates between a worker's copy and the
  /// application of the gradient computed on it (0 for synchronous trainers).
  double meanStaleness = 0;
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

namespace detail {

/// The epoch loop shared by the synchronous trainers: shuffling, timing, SET, evaluation and
/// callbacks. \p step(first, count, stepIndex) trains one minibatch made of order[first,
/// first + count) and returns its loss sum and correct count.
template <class Scalar, class Index, class Step>
std::vector<EpochRecord> runEpochs(Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
                                   const data::Dataset<Scalar>* test, const TrainerOptions& options,
                                   const TrainerCallbacks& callbacks,
                                   std::vector<std::int64_t>& order, Step&& step) {
  Rng shuffleRng(options.seed ^ 0x5F0F5F0Full);
  const std::int64_t n = train.size();
  order.resize(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::vector<EpochRecord> history;
  std::uint64_t stepIndex = 0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    shuffleOrder(order, shuffleRng);
    double lossSum = 0;
    long long correct = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::int64_t first = 0, batch = 0; first < n; first += options.batchSize, ++batch) {
      const std::int64_t count = std::min<std::int64_t>(options.batchSize, n - first);
      const BlockStats s = step(first, count, stepIndex);
      if (!std::isfinite(s.lossSum))
        raise<NumericalError>("train(): loss is ", s.lossSum, " at epoch ", epoch, ", batch ",
                              batch);
      lossSum += s.lossSum;
      correct += s.correct;
      ++stepIndex;
      if (callbacks.onBatch) callbacks.onBatch(epoch, first + count, n);
    }
    const auto t1 = std::chrono::steady_clock::now();
    EpochRecord rec;
    rec.epoch = epoch;
    rec.epochSeconds = std::chrono::duration<double>(t1 - t0).count();
    rec.trainLoss = lossSum / static_cast<double>(n);
    rec.trainAccuracy = static_cast<double>(correct) / static_cast<double>(n);
    // Evaluate the model that was trained, before SET replaces a fraction of its weights with
    // fresh random ones (the reference code's order too).
    rec.testAccuracy = test ? net.accuracy(test->features, test->labels)
                            : std::numeric_limits<double>::quiet_NaN();
    if (options.evolve && options.zeta > 0 && epoch < options.epochs) {
      const auto t2 = std::chrono::steady_clock::now();
      evolveHiddenLayers(net, options.zeta);
      rec.evolveSeconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count();
    }
    rec.nnz = net.nonZeros();
    rec.hiddenNeurons = net.hiddenNeurons();
    history.push_back(rec);
    if (callbacks.onEpoch) callbacks.onEpoch(rec);
  }
  return history;
}

/// Shapes \p g like the network's current parameters (a no-op unless the topology changed).
template <class Scalar, class Index>
void fitGradients(const Network<Scalar, Index>& net, Gradients<Scalar>& g) {
  g.weights.resize(net.numLayers());
  g.bias.resize(net.numLayers());
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    g.weights[l].resize(static_cast<std::size_t>(net.layer(l).nonZeros()));
    g.bias[l].resize(net.layer(l).outputs());
  }
}

/// Forward and backward on the minibatch order[first, first + count) of \p data (rows
/// [rowOffset, ...) of a larger minibatch when sharded), writing \p grads for the network's
/// current topology. The gradient is that of the sum of the block's losses times \p scale.
template <class Scalar, class Index>
BlockStats computeGradients(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& data,
                            const std::vector<std::int64_t>& order, std::int64_t first,
                            Eigen::Index count, Eigen::Index rowOffset, std::uint64_t step,
                            Scalar scale, Workspace<Scalar>& ws, Gradients<Scalar>& grads,
                            Activations<Scalar>& x, std::vector<std::int32_t>& labels) {
  gatherBatch(data.features, order, first, count, x, labels, data.labels);
  fitGradients(net, grads);
  net.forward(x, ws, true, step, rowOffset);
  return net.backward(x, labels.data(), ws, grads, scale);
}

template <class Scalar, class Index>
void checkRun(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
              const data::Dataset<Scalar>* test, const TrainerOptions& options,
              const char* caller) {
  options.validate();
  checkData(net, train, caller, "training");
  if (test) checkData(net, *test, caller, "test");
  if (train.size() == 0) raise<InvalidArgument>(caller, ": empty training set");
  if (options.threads > 0) setThreads(options.threads);
}

}  // namespace detail

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
  detail::checkRun(net, train, test, options, "trainSequential()");
  Workspace<Scalar> ws;
  Gradients<Scalar> grads;
  Activations<Scalar> x;
  std::vector<std::int32_t> labels;
  std::vector<std::int64_t> order;
  return detail::runEpochs(
      net, train, test, options, callbacks, order,
      [&](std::int64_t first, std::int64_t count, std::uint64_t step) {
        const BlockStats s =
            detail::computeGradients(net, train, order, first, count, 0, step,
                                     Scalar(1) / static_cast<Scalar>(count), ws, grads, x, labels);
        net.applyGradients(grads, options.sgd);
        return s;
      });
}

/// \brief Data-parallel training: each minibatch is split into one contiguous shard of rows per
/// worker thread; each thread runs forward and backward on its shard (kernels serial inside the
/// thread) into its own gradient buffers, aligned with the shared sparse pattern. The buffers are
/// then summed in worker order 0, 1, ..., T-1 and the step applied, each thread handling a
/// contiguous slice of every layer's parameters. Because each shard's loss gradient is scaled by
/// 1/B of the whole minibatch and dropout masks are keyed by the row's position in the minibatch,
/// the summed gradient is the minibatch gradient of the sequential trainer (up to the order of
/// float additions), and for a fixed worker count every run is bit-identical.
/// \throws InvalidArgument, NumericalError as trainSequential()
template <class Scalar, class Index>
std::vector<EpochRecord> trainDataParallel(Network<Scalar, Index>& net,
                                           const data::Dataset<Scalar>& train,
                                           const data::Dataset<Scalar>* test,
                                           const TrainerOptions& options,
                                           const TrainerCallbacks& callbacks = {}) {
  detail::checkRun(net, train, test, options, "trainDataParallel()");
  const int workers = options.workers > 0 ? options.workers : maxThreads();
  std::vector<Workspace<Scalar>> ws(static_cast<std::size_t>(workers));
  std::vector<Gradients<Scalar>> grads(static_cast<std::size_t>(workers));
  std::vector<Activations<Scalar>> xs(static_cast<std::size_t>(workers));
  std::vector<std::vector<std::int32_t>> labels(static_cast<std::size_t>(workers));
  std::vector<BlockStats> stats(static_cast<std::size_t>(workers));
  std::vector<std::int64_t> order;
  return detail::runEpochs(
      net, train, test, options, callbacks, order,
      [&](std::int64_t first, std::int64_t count, std::uint64_t step) {
        const Scalar scale = Scalar(1) / static_cast<Scalar>(count);
        std::exception_ptr error;
#if defined(_OPENMP)
#pragma omp parallel num_threads(workers)
#endif
        {
          const int t = threadId();
          const int team = teamSize();
          // Shards: rows [lo, hi) of the minibatch; a worker beyond the team size gets none.
          const std::int64_t lo = count * t / team, hi = count * (t + 1) / team;
          const auto ut = static_cast<std::size_t>(t);
          stats[ut] = BlockStats{};
          try {
            if (hi > lo) {
              stats[ut] = detail::computeGradients(net, train, order, first + lo, hi - lo, lo,
                                                   step, scale, ws[ut], grads[ut], xs[ut],
                                                   labels[ut]);
            } else {
              detail::fitGradients(net, grads[ut]);
              grads[ut].setZero();
            }
          } catch (...) {
#if defined(_OPENMP)
#pragma omp critical(tsnn_trainer_error)
#endif
            if (!error) error = std::current_exception();
          }
#if defined(_OPENMP)
#pragma omp barrier
#endif
          if (!error) {
            // Reduce-and-update: thread t owns a slice of every parameter array.
            for (std::size_t l = 0; l < net.numLayers(); ++l) {
              auto& layer = net.layer(l);
              auto reduceApply = [&](Scalar* w, Scalar* v, std::size_t size, auto bufferOf) {
                const std::size_t a = size * ut / static_cast<std::size_t>(team);
                const std::size_t b = size * (ut + 1) / static_cast<std::size_t>(team);
                Scalar* g0 = bufferOf(0);
                for (int u = 1; u < team; ++u) {
                  const Scalar* gu = bufferOf(u);
                  for (std::size_t k = a; k < b; ++k) g0[k] += gu[k];
                }
                sgdUpdate(w + a, v + a, g0 + a, static_cast<std::ptrdiff_t>(b - a), options.sgd,
                          false);
              };
              reduceApply(layer.values().data(), layer.velocity().data(),
                          static_cast<std::size_t>(layer.nonZeros()),
                          [&](int u) { return grads[static_cast<std::size_t>(u)].weights[l].data(); });
              reduceApply(layer.bias().data(), layer.biasVelocity().data(),
                          static_cast<std::size_t>(layer.outputs()),
                          [&](int u) { return grads[static_cast<std::size_t>(u)].bias[l].data(); });
            }
          }
        }
        if (error) std::rethrow_exception(error);
        BlockStats total;
        for (const auto& s : stats) {
          total.lossSum += s.lossSum;
          total.correct += s.correct;
          total.samples += s.samples;
        }
        return total;
      });
}

}  // namespace tsnn
