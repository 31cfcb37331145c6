#pragma once
/// \file
/// \brief The synchronous trainers, sequential and data-parallel: seeded shuffling, minibatch
/// SGD, SET after each epoch, evaluation, and a per-epoch history.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "tsnn/core/parallel.hpp"
#include "tsnn/data/augment.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/optim/make_optimizer.hpp"
#include "tsnn/topology/gradient_regrowth.hpp"
#include "tsnn/topology/importance.hpp"
#include "tsnn/topology/set.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"

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

/// \brief What a trainer does when a minibatch's loss or gradient is not finite.
enum class NonFinitePolicy {
  Throw,     ///< stop with NumericalError naming the epoch, batch and layer (the default)
  SkipBatch  ///< drop that minibatch's update and multiply the learning rate by
             ///< TrainerOptions::lrBackoff; after maxSkippedBatches in a row, throw as above
};

/// \brief Options of a training run.
struct TrainerOptions {
  TrainerKind kind = TrainerKind::Sequential;
  /// Workers (data-parallel shards or WASAP workers); 0 takes the thread count.
  int workers = 0;
  /// WASAP: fraction of the epochs, at the end, that workers train locally before averaging.
  double wasapLocalFraction = 0.3;
  int epochs = 10;
  int batchSize = 128;
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
  /// OpenMP threads for the kernels; 0 leaves the OpenMP default.
  int threads = 0;
  /// Rescale a minibatch gradient whose global L2 norm (all weights and biases) exceeds this to
  /// this norm; 0 disables clipping.
  double clipNorm = 0;
  NonFinitePolicy onNonFinite = NonFinitePolicy::Throw;
  /// SkipBatch: factor applied to the learning rate after each skipped minibatch, in (0, 1].
  double lrBackoff = 0.5;
  /// SkipBatch: consecutive skipped minibatches after which training stops anyway.
  int maxSkippedBatches = 10;

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
    raise<InvalidArgument>(caller, ": ", which, " set has ", d.numClasses, " classes, network has ",
                           net.outputs(), " outputs");
}

}  // namespace detail

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
/// \param remap if not null, receives every layer's change (for Optimizer::remap())
/// \throws InvalidArgument if x does not fit the network or a label is out of range (the loss
/// checks the labels before any layer changes)
template <class Scalar, class Index>
void evolveHiddenLayersByGradient(Network<Scalar, Index>& net, double zeta,
                                  const Activations<Scalar>& x,
                                  const std::vector<std::int32_t>& labels,
                                  NetworkRemap<Index>* remap = nullptr) {
  if (static_cast<Eigen::Index>(labels.size()) != x.rows())
    detail::raise<InvalidArgument>("evolveHiddenLayersByGradient(): ", x.rows(), " samples but ",
                                   labels.size(), " labels");
  Workspace<Scalar> ws;
  Gradients<Scalar> g = net.makeGradients();
  net.forward(x, ws, false);
  net.backward(x, labels.data(), ws, g, Scalar(1) / static_cast<Scalar>(x.rows()));
  NetworkRemap<Index> all(net.numLayers());
  for (std::size_t l = 0; l + 1 < net.numLayers(); ++l) {
    PatternRemap<Index> r;
    evolveSetGradient(net.layer(l), zeta, l == 0 ? x : ws.a[l - 1], ws.delta[l], &r);
    all.add(l, std::move(r));
  }
  if (remap) *remap = std::move(all);
}

namespace detail {

/// What one minibatch step reports to the epoch loop.
struct StepReport {
  BlockStats stats;
  std::string problem;  ///< empty if the loss and gradient were finite (then it was applied)
  bool clipped = false;
};

/// Sum of p[k]^2 over [0, n) in double. Element k goes to partial sum k % 8 and the partial
/// sums are added in a fixed order at the end: the eight independent chains vectorise (one
/// running sum is a chain of dependent adds, which took about 6% of a training step), and the
/// result depends only on the data, so every trainer that calls this on the same buffer
/// takes the same clipping decision bit for bit.
template <class Scalar>
double sumOfSquares(const Scalar* p, std::size_t n) {
  constexpr std::size_t kChains = 8;
  double acc[kChains] = {};
  std::size_t k = 0;
  for (; k + kChains <= n; k += kChains)
    for (std::size_t c = 0; c < kChains; ++c)
      acc[c] += static_cast<double>(p[k + c]) * static_cast<double>(p[k + c]);
  for (std::size_t c = 0; k < n; ++k, ++c)
    acc[c] += static_cast<double>(p[k]) * static_cast<double>(p[k]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// Sum of squares of layer \p l's gradient (weights and bias), in double, in a fixed order.
template <class Scalar>
double squaredNorm(const Gradients<Scalar>& g, std::size_t l) {
  return sumOfSquares(g.weights[l].data(), g.weights[l].size()) +
         sumOfSquares(g.bias[l].data(), static_cast<std::size_t>(g.bias[l].size()));
}

/// Names what went non-finite after a minibatch whose loss was not finite: the first layer with
/// non-finite weights or biases, else the first layer with non-finite pre-activations in any of
/// the \p count workspaces (one per shard).
template <class Scalar, class Index>
std::string diagnoseNonFiniteLoss(const Network<Scalar, Index>& net, const Workspace<Scalar>* ws,
                                  std::size_t count, double loss) {
  std::ostringstream os;
  os << "loss is " << loss;
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    const auto& v = net.layer(l).weights().values();
    const bool weightsBad =
        !std::all_of(v.begin(), v.end(), [](Scalar x) { return std::isfinite(x); });
    if (weightsBad || !net.layer(l).bias().allFinite()) {
      os << ": " << (weightsBad ? "weights" : "biases") << " of layer " << l << " are not finite";
      return os.str();
    }
  }
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    for (std::size_t w = 0; w < count; ++w)
      if (l < ws[w].z.size() && !ws[w].z[l].allFinite()) {
        os << ": pre-activations of layer " << l << " are not finite";
        return os.str();
      }
  return os.str();
}

/// Checks a minibatch's summed gradient in \p g: returns a description if the loss or any
/// layer's gradient is not finite, else clips it to options.clipNorm (setting \p clipped).
/// \p layerSq holds each layer's squared gradient norm (weights plus bias).
template <class Scalar, class Index>
std::string guardGradient(const Network<Scalar, Index>& net, const Workspace<Scalar>* ws,
                          std::size_t count, double loss, const std::vector<double>& layerSq,
                          const TrainerOptions& options, double& clipFactor) {
  clipFactor = 1.0;
  if (!std::isfinite(loss)) return diagnoseNonFiniteLoss(net, ws, count, loss);
  double total = 0;
  for (std::size_t l = 0; l < layerSq.size(); ++l) {
    if (!std::isfinite(layerSq[l])) {
      std::ostringstream os;
      os << "gradient of layer " << l << " is not finite";
      return os.str();
    }
    total += layerSq[l];
  }
  if (!std::isfinite(total)) return "gradient norm overflows";
  const double norm = std::sqrt(total);
  if (options.clipNorm > 0 && norm > options.clipNorm) clipFactor = options.clipNorm / norm;
  return {};
}

/// guardGradient() for a gradient held in one buffer: computes the layer norms, and on success
/// applies the clipping factor to \p g. Returns the problem, empty if none.
template <class Scalar, class Index>
std::string guardAndClip(const Network<Scalar, Index>& net, const Workspace<Scalar>& ws,
                         const BlockStats& stats, Gradients<Scalar>& g,
                         const TrainerOptions& options, bool* clipped = nullptr) {
  std::vector<double> layerSq(net.numLayers());
  for (std::size_t l = 0; l < net.numLayers(); ++l) layerSq[l] = squaredNorm(g, l);
  double factor = 1;
  std::string problem = guardGradient(net, &ws, 1, stats.lossSum, layerSq, options, factor);
  if (problem.empty() && factor < 1) {
    const auto f = static_cast<Scalar>(factor);
    for (auto& w : g.weights)
      for (auto& v : w) v *= f;
    for (auto& b : g.bias) b *= f;
    if (clipped) *clipped = true;
  }
  return problem;
}

/// The topology change after epoch \p epoch (none after the last): importance pruning when
/// due, then evolution with the scheduled zeta, as the reference code orders them (SET then works
/// on what is left). Gradient regrowth ranks on the first minibatch of \p order. The optimiser's
/// state follows every change. Fills rec.neuronsRemoved and rec.evolveSeconds; returns whether
/// anything ran.
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
      evolveHiddenLayersByGradient(net, zeta, x, labels, &remap);
    } else {
      evolveHiddenLayers(net, zeta, &remap);
    }
    optimizer.remap(remap, net);
  }
  rec.evolveSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

/// Checks that \p state can continue a run on \p n samples with \p options.
inline void resumeState(const TrainingState& state, std::int64_t n, const TrainerOptions& options,
                        const char* caller) {
  if (state.epoch > options.epochs)
    raise<InvalidArgument>(caller, ": the state to resume has ", state.epoch,
                           " epochs done, more than the ", options.epochs, " asked for");
  if (state.order.empty())
    raise<InvalidArgument>(caller, ": the state has no sample order (WASAP runs cannot be "
                           "resumed)");
  if (static_cast<std::int64_t>(state.order.size()) != n)
    raise<InvalidArgument>(caller, ": the state to resume has a sample order of ",
                           state.order.size(), " samples, the training set has ", n);
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  for (const std::int64_t s : state.order) {
    if (s < 0 || s >= n || seen[static_cast<std::size_t>(s)])
      raise<InvalidArgument>(caller, ": the state's sample order is not a permutation (sample ",
                             s, ")");
    seen[static_cast<std::size_t>(s)] = 1;
  }
  if (static_cast<int>(state.history.size()) != state.epoch)
    raise<InvalidArgument>(caller, ": the state has ", state.history.size(),
                           " history records for ", state.epoch, " epochs");
  if (!(state.learningRate > 0) || !std::isfinite(state.learningRate))
    raise<InvalidArgument>(caller, ": the state's learning rate is ", state.learningRate);
  if (state.optimizer.empty())
    raise<InvalidArgument>(caller, ": the state has no optimizer state");
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
    for (std::int64_t first = 0, batch = 0; first < n; first += options.batchSize, ++batch) {
      const std::int64_t count = std::min<std::int64_t>(options.batchSize, n - first);
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
    rec.trainLoss = lossSum / static_cast<double>(n);
    rec.trainAccuracy = static_cast<double>(correct) / static_cast<double>(n);
    rec.skippedBatches = skipped;
    rec.clippedBatches = clipped;
    // Evaluate the model that was trained, before SET replaces a fraction of its weights with
    // fresh random ones (the reference code's order too).
    rec.testAccuracy = test ? net.accuracy(test->features, test->labels)
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

/// Gathers the minibatch order[first, first + count) of \p data into \p x and \p labels (rows
/// [rowOffset, ...) of a larger minibatch when sharded), augments it if asked, and runs the
/// training forward pass into \p ws.
template <class Scalar, class Index>
void forwardBatch(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& data,
                  const std::vector<std::int64_t>& order, std::int64_t first, Eigen::Index count,
                  Eigen::Index rowOffset, std::uint64_t step, Workspace<Scalar>& ws,
                  Activations<Scalar>& x, std::vector<std::int32_t>& labels,
                  const TrainerOptions& options, bool parallel) {
  gatherBatch(data.features, order, first, count, x, labels, data.labels);
  if (options.augment.enabled()) data::augmentBatch(x, options.augment, options.seed, step, rowOffset);
  net.forward(x, ws, true, step, rowOffset, parallel);
}

/// forwardBatch() and backward, writing \p grads for the network's current topology. The
/// gradient is that of the sum of the block's losses times \p scale.
template <class Scalar, class Index>
BlockStats computeGradients(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& data,
                            const std::vector<std::int64_t>& order, std::int64_t first,
                            Eigen::Index count, Eigen::Index rowOffset, std::uint64_t step,
                            Scalar scale, Workspace<Scalar>& ws, Gradients<Scalar>& grads,
                            Activations<Scalar>& x, std::vector<std::int32_t>& labels,
                            const TrainerOptions& options) {
  forwardBatch(net, data, order, first, count, rowOffset, step, ws, x, labels, options, true);
  fitGradients(net, grads);
  return net.backward(x, labels.data(), ws, grads, scale);
}

template <class Scalar, class Index>
void checkRun(const Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
              const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
              const TrainerOptions& options, const char* caller) {
  options.validate();
  checkData(net, train, caller, "training");
  if (test) checkData(net, *test, caller, "test");
  if (train.size() == 0) raise<InvalidArgument>(caller, ": empty training set");
  options.augment.validate(train.dim());
  if (options.threads > 0) setThreads(options.threads);
}

}  // namespace detail

/// \brief Trains \p net on \p train with minibatch SGD, evaluating on \p test (may be null)
/// after each epoch. Samples are reshuffled every epoch from options.seed; the last minibatch of
/// an epoch may be smaller. Kernels run in parallel over neurons with options.threads threads.
/// With \p state: if state->epoch > 0 the run continues from it (the network must be the one
/// saved with it, see io/checkpoint.hpp) and the returned history includes its earlier epochs;
/// after every epoch, before callbacks.onEpoch, \p state is brought up to date, so a callback
/// can save a checkpoint. A resumed run with the same options and thread count reproduces the
/// uninterrupted run exactly (decaying zeta schedules also need the same total epoch count).
/// \throws InvalidArgument for invalid options or data that does not fit the network, or a
/// state that cannot continue on this training set
/// \throws NumericalError if a minibatch loss is not finite
template <class Scalar, class Index>
std::vector<EpochRecord> trainSequential(
    Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
    const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
    const TrainerOptions& options, const TrainerCallbacks& callbacks = {},
    TrainingState* state = nullptr) {
  detail::checkRun(net, train, test, options, "trainSequential()");
  Workspace<Scalar> ws;
  Gradients<Scalar> grads;
  Activations<Scalar> x;
  std::vector<std::int32_t> labels;
  std::vector<std::int64_t> order;
  return detail::runEpochs(
      net, train, test, options, callbacks, state, order, "trainSequential()",
      [&](std::int64_t first, std::int64_t count, std::uint64_t step,
          Optimizer<Scalar, Index>& optimizer) {
        detail::StepReport r;
        r.stats =
            detail::computeGradients(net, train, order, first, count, 0, step,
                                     Scalar(1) / static_cast<Scalar>(count), ws, grads, x, labels, options);
        r.problem = detail::guardAndClip(net, ws, r.stats, grads, options, &r.clipped);
        if (r.problem.empty()) optimizer.step(net, grads);
        return r;
      });
}

namespace detail {

/// One piece of a data-parallel weight gradient: layer \p layer's output neurons [first, last).
struct GradientTask {
  std::size_t layer;
  Eigen::Index first, last;
};

/// Splits every layer's neurons into runs of about kEntries stored weights each (at least one
/// neuron), top layer first, for the threads to take one at a time. Rebuilt only when a layer's
/// pattern changes.
class GradientTasks {
 public:
  static constexpr long long kEntries = 4096;

  template <class Scalar, class Index>
  const std::vector<GradientTask>& of(const Network<Scalar, Index>& net) {
    // Called every step: compare the pattern ids in place, build only when one changed.
    const std::size_t L = net.numLayers();
    bool same = m_ids.size() == L;
    for (std::size_t l = 0; same && l < L; ++l)
      same = m_ids[l] == net.layer(l).weights().patternId();
    if (same) return m_tasks;
    m_ids.resize(L);
    for (std::size_t l = 0; l < L; ++l) m_ids[l] = net.layer(l).weights().patternId();
    m_tasks.clear();
    // Top layer first: back-propagation finishes the deltas in that order.
    for (std::size_t l = L; l-- > 0;) {
      const auto& w = net.layer(l).weights();
      Eigen::Index first = 0;
      long long entries = 0;
      forEachRowRunIn(w, Index(0), w.rows(), [&](Index j, Index begin, Index end) {
        entries += end - begin;
        if (entries >= kEntries || j + 1 == w.rows()) {
          m_tasks.push_back({l, first, static_cast<Eigen::Index>(j) + 1});
          first = static_cast<Eigen::Index>(j) + 1;
          entries = 0;
        }
      });
    }
    return m_tasks;
  }

 private:
  std::vector<std::uint64_t> m_ids;
  std::vector<GradientTask> m_tasks;
};

/// Row t * count / team of a minibatch split among \p team threads, rounded down to a multiple
/// of 16 rows when every thread gets at least 16 (16 floats are a 64-byte cache line, and the
/// AVX-512 tiles stay whole). With fewer rows than threads, the first \p count threads get one
/// row each, so the non-empty shards are always a prefix.
inline Eigen::Index shardBoundary(Eigen::Index count, int t, int team) {
  if (t >= team) return count;
  if (count < team) return std::min<Eigen::Index>(t, count);
  const Eigen::Index b = count * t / team;
  constexpr Eigen::Index kAlign = 16;
  return count >= kAlign * team ? b / kAlign * kAlign : b;
}

}  // namespace detail

/// \brief Data-parallel training with T worker threads, one minibatch at a time:
///  1. the minibatch's rows are split into T contiguous shards; each thread gathers its shard
///     into its own buffers, runs the forward pass and back-propagates the deltas
///     (Network::backwardDeltas()), touching no shared memory but the read-only network;
///  2. the weight and bias gradients, which sum over all rows, are split by neurons into fixed
///     pieces (detail::GradientTasks, top layer first) that the threads take one at a time as
///     they finish their shard. A piece of layer l starts once every shard has published its
///     delta of layer l, so a thread that is ahead works on the upper layers while the others
///     still back-propagate, instead of waiting at a barrier. Each gradient entry is computed
///     by one thread, summing the shards in order (Network::gradientsRows()), into one gradient
///     buffer;
///  3. the gradient's squared norm is summed over fixed slices, one per thread, added in thread
///     order; the step is decided once (non-finite check, clipping) and each thread applies it
///     to its slice of every layer.
/// The loss gradient is scaled by 1/B of the whole minibatch and dropout masks are keyed by the
/// row's position in the minibatch, so the gradient is the sequential trainer's (up to the order
/// of float additions), and for a fixed worker count every run is bit-identical: which thread
/// computes a piece never changes its value.
/// Why split by neurons rather than give each thread a private gradient of its shard and sum
/// the buffers: measured on a 2-core machine, the summing pass and the cache-line traffic of
/// buffers written by one core and read by the other cost more than reading the other shards'
/// activations here, and a private gradient leaves a faster thread nothing to do but wait
/// (BENCHMARKS.md, "Data-parallel trainer").
/// \throws InvalidArgument, NumericalError as trainSequential()
template <class Scalar, class Index>
std::vector<EpochRecord> trainDataParallel(
    Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
    const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
    const TrainerOptions& options, const TrainerCallbacks& callbacks = {},
    TrainingState* state = nullptr) {
  detail::checkRun(net, train, test, options, "trainDataParallel()");
  const int workers = options.workers > 0 ? options.workers : maxThreads();
  const auto uworkers = static_cast<std::size_t>(workers);
  std::vector<Workspace<Scalar>> ws(uworkers);
  std::vector<Activations<Scalar>> xs(uworkers);
  std::vector<std::vector<std::int32_t>> labels(uworkers);
  std::vector<BlockStats> stats(uworkers);
  Gradients<Scalar> grads;
  std::vector<std::int64_t> order;
  detail::GradientTasks pieces;
  const std::size_t L = net.numLayers();
  // partialSq[t * L + l]: thread t's share of layer l's squared gradient norm.
  std::vector<double> partialSq(uworkers * L), layerSq(L);
  // ready[l]: shards whose delta of layer l is final; next: the next piece to take. Both are
  // reset before each step's region, whose start orders the reset before every use.
  std::unique_ptr<std::atomic<std::size_t>[]> ready(new std::atomic<std::size_t>[L]);
  std::atomic<std::ptrdiff_t> next{0};
  std::atomic<bool> abandon{false};
  return detail::runEpochs(
      net, train, test, options, callbacks, state, order, "trainDataParallel()",
      [&](std::int64_t first, std::int64_t count, std::uint64_t step,
          Optimizer<Scalar, Index>& optimizer) {
        const Scalar scale = Scalar(1) / static_cast<Scalar>(count);
        const auto rows = static_cast<Eigen::Index>(count);
        detail::fitGradients(net, grads);
        const std::vector<detail::GradientTask>& tasks = pieces.of(net);
        const auto numTasks = static_cast<std::ptrdiff_t>(tasks.size());
        for (std::size_t l = 0; l < L; ++l) ready[l].store(0, std::memory_order_relaxed);
        next.store(0, std::memory_order_relaxed);
        abandon.store(false, std::memory_order_relaxed);
        std::exception_ptr error;
        // Records the first exception and releases threads waiting for deltas that will not come.
        auto keep = [&] {
#if defined(_OPENMP)
#pragma omp critical(tsnn_trainer_error)
#endif
          if (!error) error = std::current_exception();
          abandon.store(true, std::memory_order_release);
        };
        detail::StepReport report;
        double factor = 1;
#if defined(_OPENMP)
#pragma omp parallel num_threads(workers)
#endif
        {
          const int t = threadId();
          const int team = teamSize();
          const auto ut = static_cast<std::size_t>(t);
          const Eigen::Index lo = detail::shardBoundary(rows, t, team);
          const Eigen::Index hi = detail::shardBoundary(rows, t + 1, team);
          const auto shards = static_cast<std::size_t>(std::min<Eigen::Index>(team, rows));
          stats[ut] = BlockStats{};
          try {
            if (hi > lo) {
              detail::forwardBatch(net, train, order, first + lo, hi - lo, lo, step, ws[ut],
                                   xs[ut], labels[ut], options, false);
              // Release: the delta's values are visible to whoever acquires the count.
              stats[ut] = net.backwardDeltas(labels[ut].data(), ws[ut], scale, false,
                                             [&](std::size_t l) {
                                               ready[l].fetch_add(1, std::memory_order_release);
                                             });
            }
          } catch (...) {
            keep();
          }
          for (std::ptrdiff_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < numTasks;) {
            const detail::GradientTask& p = tasks[static_cast<std::size_t>(i)];
            for (unsigned polls = 0; ready[p.layer].load(std::memory_order_acquire) < shards &&
                                     !abandon.load(std::memory_order_acquire);)
              detail::spinWait(polls);
            if (abandon.load(std::memory_order_acquire)) break;
            try {
              net.gradientsRows(p.layer, xs.data(), ws.data(), shards, grads,
                                static_cast<Index>(p.first), static_cast<Index>(p.last));
            } catch (...) {
              keep();
            }
          }
#if defined(_OPENMP)
#pragma omp barrier
#endif
          // Read after the barrier, the flag is the same in every thread.
          const bool failed = static_cast<bool>(error);
          // Each thread owns a contiguous slice of every parameter array: [a, b) of size n.
          auto slice = [&](std::size_t size) {
            return std::make_pair(size * ut / static_cast<std::size_t>(team),
                                  size * (ut + 1) / static_cast<std::size_t>(team));
          };
          if (!failed) {
            for (std::size_t l = 0; l < L; ++l) {
              const auto [wa, wb] = slice(grads.weights[l].size());
              const auto [ba, bb] = slice(static_cast<std::size_t>(grads.bias[l].size()));
              partialSq[ut * L + l] = detail::sumOfSquares(grads.weights[l].data() + wa, wb - wa) +
                                      detail::sumOfSquares(grads.bias[l].data() + ba, bb - ba);
            }
          }
#if defined(_OPENMP)
#pragma omp barrier
#pragma omp master
#endif
          if (!error) {
            // The decision is taken once, from partial sums added in a fixed order.
            for (std::size_t l = 0; l < L; ++l) {
              layerSq[l] = 0;
              for (int u = 0; u < team; ++u)
                layerSq[l] += partialSq[static_cast<std::size_t>(u) * L + l];
            }
            for (int u = 0; u < team; ++u) {
              report.stats.lossSum += stats[static_cast<std::size_t>(u)].lossSum;
              report.stats.correct += stats[static_cast<std::size_t>(u)].correct;
              report.stats.samples += stats[static_cast<std::size_t>(u)].samples;
            }
            try {
              report.problem = detail::guardGradient(net, ws.data(), shards, report.stats.lossSum,
                                                     layerSq, options, factor);
              if (report.problem.empty()) optimizer.beginStep(net, grads);
            } catch (...) {
              error = std::current_exception();
            }
          }
#if defined(_OPENMP)
#pragma omp barrier
#endif
          if (!error && report.problem.empty()) {
            const auto f = static_cast<Scalar>(factor);
            for (std::size_t l = 0; l < L; ++l) {
              auto update = [&](Parameters part, Scalar* g, std::size_t size) {
                const auto [a, b] = slice(size);
                if (factor < 1)
                  for (std::size_t k = a; k < b; ++k) g[k] *= f;
                optimizer.updateSlice(net, grads, l, part, a, b);
              };
              update(Parameters::Weights, grads.weights[l].data(), grads.weights[l].size());
              update(Parameters::Biases, grads.bias[l].data(),
                     static_cast<std::size_t>(grads.bias[l].size()));
            }
          }
        }
        if (error) std::rethrow_exception(error);
        report.clipped = report.problem.empty() && factor < 1;
        return report;
      });
}

}  // namespace tsnn
