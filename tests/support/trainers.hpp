#pragma once
// What the trainer tests share: the small network and options they train on the synthetic
// problem (support/synthetic.hpp), bitwise comparisons of networks and histories, a watchdog for
// code that must not hang, and a probe of the team size the OpenMP runtime grants.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/options.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace tsnn::test {

/// 12-32-32-3 All-ReLU network; densities 0.46, 0.25 and 1 (the output layer is capped).
inline NetworkOptions trainerNetOptions(double dropout = 0.1, std::uint64_t seed = 17) {
  NetworkOptions o;
  o.sizes = {kFeatures, 32, 32, kClasses};
  o.epsilon = 4;
  o.dropout = dropout;
  o.seed = streamSeed(seed);
  return o;
}

/// Momentum SGD with weight decay (or Adam at lr 0.01) and SET at zeta 0.2.
inline TrainerOptions trainerOptions(TrainerKind kind, int workers, int epochs, int batch,
                                     OptimizerKind optimizer = OptimizerKind::Sgd) {
  TrainerOptions o;
  o.kind = kind;
  o.optimizer = optimizer;
  o.adam.learningRate = 0.01;
  o.workers = workers;
  o.epochs = epochs;
  o.batchSize = batch;
  o.sgd.learningRate = 0.05;
  o.sgd.momentum = 0.9;
  o.sgd.weightDecay = 1e-4;
  o.zeta = 0.2;
  o.seed = streamSeed(4242);
  return o;
}

/// "No test set" as a typed null pointer: a bare nullptr does not deduce the trainers' Scalar.
template <class Scalar>
constexpr const data::Dataset<Scalar>* kNoTest = nullptr;

/// Every parameter, bit for bit (optimiser state: sameState()).
template <class Scalar>
bool sameNetwork(const Network<Scalar>& a, const Network<Scalar>& b) {
  if (a.numLayers() != b.numLayers()) return false;
  for (std::size_t l = 0; l < a.numLayers(); ++l) {
    const auto& x = a.layer(l);
    const auto& y = b.layer(l);
    if (x.weights().rows() != y.weights().rows() || x.weights().cols() != y.weights().cols())
      return false;
    if (x.weights().rowPtr() != y.weights().rowPtr()) return false;
    if (x.weights().colIdx() != y.weights().colIdx()) return false;
    if (!bitIdentical(x.weights().values(), y.weights().values())) return false;
    if (!bitIdentical(x.bias(), y.bias())) return false;
  }
  return true;
}

inline bool sameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

/// Every piece of optimiser state two runs left in their TrainingStates, bit for bit.
template <class Scalar>
bool sameState(const TrainingState& a, const TrainingState& b) {
  if (a.optimizer.kind != b.optimizer.kind || a.optimizer.steps != b.optimizer.steps ||
      !sameBits(a.learningRate, b.learningRate) || a.optimizer.empty())
    return false;
  const auto& x = a.optimizer.layersOf<Scalar>();
  const auto& y = b.optimizer.layersOf<Scalar>();
  if (x.size() != y.size()) return false;
  for (std::size_t l = 0; l < x.size(); ++l) {
    if (x[l].entries.size() != y[l].entries.size()) return false;
    for (std::size_t i = 0; i < x[l].entries.size(); ++i)
      if (!bitIdentical(x[l].entries[i], y[l].entries[i]) ||
          !bitIdentical(x[l].rows[i], y[l].rows[i]))
        return false;
  }
  return true;
}

/// Largest |a - b| / max(1, |b|) over the optimiser state of two runs (+inf if the shapes
/// differ).
template <class Scalar>
double maxStateDifference(const TrainingState& a, const TrainingState& b) {
  const auto& x = a.optimizer.layersOf<Scalar>();
  const auto& y = b.optimizer.layersOf<Scalar>();
  if (x.size() != y.size() || x.empty()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t l = 0; l < x.size(); ++l)
    for (std::size_t i = 0; i < x[l].entries.size(); ++i) {
      worst = std::max(worst, maxMixedDifference(x[l].entries[i], y[l].entries[i]));
      worst = std::max(worst, maxMixedDifference(x[l].rows[i], y[l].rows[i]));
    }
  return worst;
}

/// Histories equal in everything but the two wall-clock fields.
inline bool sameHistory(const std::vector<EpochRecord>& a, const std::vector<EpochRecord>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t e = 0; e < a.size(); ++e) {
    const EpochRecord& x = a[e];
    const EpochRecord& y = b[e];
    if (x.epoch != y.epoch || x.nnz != y.nnz || x.hiddenNeurons != y.hiddenNeurons ||
        x.neuronsRemoved != y.neuronsRemoved || x.skippedBatches != y.skippedBatches ||
        x.clippedBatches != y.clippedBatches)
      return false;
    if (!sameBits(x.trainLoss, y.trainLoss) || !sameBits(x.trainAccuracy, y.trainAccuracy) ||
        !sameBits(x.testAccuracy, y.testAccuracy) || !sameBits(x.meanStaleness, y.meanStaleness))
      return false;
  }
  return true;
}

/// Largest |a - b| / max(1, |b|) over the weights and biases of two networks with the same
/// pattern (+inf if the patterns differ).
template <class Scalar>
double maxParameterDifference(const Network<Scalar>& a, const Network<Scalar>& b) {
  double worst = 0;
  for (std::size_t l = 0; l < a.numLayers(); ++l) {
    const auto& x = a.layer(l);
    const auto& y = b.layer(l);
    if (x.weights().rowPtr() != y.weights().rowPtr() ||
        x.weights().colIdx() != y.weights().colIdx())
      return std::numeric_limits<double>::infinity();
    worst = std::max(worst, maxMixedDifference(x.weights().values(), y.weights().values()));
    worst = std::max(worst, maxMixedDifference(x.bias(), y.bias()));
  }
  return worst;
}

template <class Scalar>
std::vector<long long> layerNonZeros(const Network<Scalar>& net) {
  std::vector<long long> n;
  for (std::size_t l = 0; l < net.numLayers(); ++l) n.push_back(net.layer(l).nonZeros());
  return n;
}

/// Runs f() on its own thread and returns its result, or ends the test program with a message
/// if f has not returned within \p seconds: for code whose failure mode is a thread that waits
/// forever (a test that hangs would only be stopped by ctest's timeout, much later and without
/// saying why). Exceptions from f are rethrown here.
template <class F>
auto finishesWithin(double seconds, const char* what, F&& f) {
  std::packaged_task<decltype(f())()> task(std::forward<F>(f));
  auto result = task.get_future();
  std::thread runner(std::move(task));
  if (result.wait_for(std::chrono::duration<double>(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not finish within %.0f s (a thread waits forever?)\n",
                 what, seconds);
    std::fflush(stderr);
    std::_Exit(3);  // the runner cannot be joined or stopped
  }
  runner.join();
  return result.get();
}

/// The team size an OpenMP region asking for \p n threads is granted here (n without the
/// limits a test may run under: OMP_THREAD_LIMIT, or 1 without OpenMP).
inline int grantedTeam(int n) {
  int team = 1;
#if defined(_OPENMP)
#pragma omp parallel num_threads(n)
  {
#pragma omp single
    team = omp_get_num_threads();
  }
#else
  (void)n;
#endif
  return team;
}

}  // namespace tsnn::test
