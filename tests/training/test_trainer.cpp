// Tests for tsnn/training/trainer.hpp (and the dispatch in tsnn/training/train.hpp): the
// sequential trainer learns a small synthetic three-class problem and keeps a complete history;
// the data-parallel trainer's gradient, computed per shard and summed over shards piece by
// piece, is the whole minibatch's gradient (with dropout on); its shards and gradient pieces
// cover everything once; data-parallel runs are bit-identical for a fixed worker count (also
// with more workers than rows), equal the sequential trainer with one worker and stay close to
// it with two, with SGD and with Adam (the optimiser's state compared too); gatherBatch's blocked
// transposition; option and data checking; divergence reported as NumericalError; train()
// dispatch and parseTrainer().

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/train.hpp"
#include "tsnn/training/trainer.hpp"

namespace {

bool sameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

using tsnn::EpochRecord;
using tsnn::TrainerKind;
using tsnn::TrainerOptions;
using tsnn::data::Dataset;

using tsnn::test::kClasses;
using tsnn::test::kFeatures;
using tsnn::test::makeProblem;

// 12-32-32-3 All-ReLU network; densities 0.46, 0.25 and 1 (the output layer is capped).
tsnn::NetworkOptions netOptions(double dropout = 0.1, std::uint64_t seed = 17) {
  tsnn::NetworkOptions o;
  o.sizes = {kFeatures, 32, 32, kClasses};
  o.epsilon = 4;
  o.dropout = dropout;
  o.seed = tsnn::test::streamSeed(seed);
  return o;
}

// "No test set" as a typed null pointer: a bare nullptr does not deduce the trainers' Scalar.
template <class Scalar>
constexpr const Dataset<Scalar>* kNoTest = nullptr;

TrainerOptions trainerOptions(TrainerKind kind, int workers, int epochs, int batch,
                              tsnn::OptimizerKind optimizer = tsnn::OptimizerKind::Sgd) {
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
  o.seed = tsnn::test::streamSeed(4242);
  return o;
}

// Every parameter, bit for bit (optimiser state: sameState()).
template <class Scalar>
bool sameNetwork(const tsnn::Network<Scalar>& a, const tsnn::Network<Scalar>& b) {
  if (a.numLayers() != b.numLayers()) return false;
  for (std::size_t l = 0; l < a.numLayers(); ++l) {
    const auto& x = a.layer(l);
    const auto& y = b.layer(l);
    if (x.weights().rows() != y.weights().rows() || x.weights().cols() != y.weights().cols())
      return false;
    if (x.weights().rowPtr() != y.weights().rowPtr()) return false;
    if (x.weights().colIdx() != y.weights().colIdx()) return false;
    if (!tsnn::test::bitIdentical(x.weights().values(), y.weights().values())) return false;
    if (!tsnn::test::bitIdentical(x.bias(), y.bias())) return false;
  }
  return true;
}

// Every piece of optimiser state two runs left in their TrainingStates, bit for bit.
template <class Scalar>
bool sameState(const tsnn::TrainingState& a, const tsnn::TrainingState& b) {
  if (a.optimizer.kind != b.optimizer.kind || a.optimizer.steps != b.optimizer.steps ||
      !sameBits(a.learningRate, b.learningRate) || a.optimizer.empty())
    return false;
  const auto& x = a.optimizer.layersOf<Scalar>();
  const auto& y = b.optimizer.layersOf<Scalar>();
  if (x.size() != y.size()) return false;
  for (std::size_t l = 0; l < x.size(); ++l) {
    if (x[l].entries.size() != y[l].entries.size()) return false;
    for (std::size_t i = 0; i < x[l].entries.size(); ++i)
      if (!tsnn::test::bitIdentical(x[l].entries[i], y[l].entries[i]) ||
          !tsnn::test::bitIdentical(x[l].rows[i], y[l].rows[i]))
        return false;
  }
  return true;
}

// Largest |a - b| / max(1, |b|) over the optimiser state of two runs (+inf if the shapes differ).
template <class Scalar>
double maxStateDifference(const tsnn::TrainingState& a, const tsnn::TrainingState& b) {
  const auto& x = a.optimizer.layersOf<Scalar>();
  const auto& y = b.optimizer.layersOf<Scalar>();
  if (x.size() != y.size() || x.empty()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t l = 0; l < x.size(); ++l)
    for (std::size_t i = 0; i < x[l].entries.size(); ++i) {
      worst = std::max(worst, tsnn::test::maxMixedDifference(x[l].entries[i], y[l].entries[i]));
      worst = std::max(worst, tsnn::test::maxMixedDifference(x[l].rows[i], y[l].rows[i]));
    }
  return worst;
}

// Histories equal in everything but the two wall-clock fields.
bool sameHistory(const std::vector<EpochRecord>& a, const std::vector<EpochRecord>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t e = 0; e < a.size(); ++e) {
    const EpochRecord& x = a[e];
    const EpochRecord& y = b[e];
    if (x.epoch != y.epoch || x.nnz != y.nnz || x.hiddenNeurons != y.hiddenNeurons ||
        x.skippedBatches != y.skippedBatches || x.clippedBatches != y.clippedBatches)
      return false;
    if (!sameBits(x.trainLoss, y.trainLoss) || !sameBits(x.trainAccuracy, y.trainAccuracy) ||
        !sameBits(x.testAccuracy, y.testAccuracy) || !sameBits(x.meanStaleness, y.meanStaleness))
      return false;
  }
  return true;
}

// Largest |a - b| / max(1, |b|) over the weights and biases of two networks with the same
// pattern (+inf if the patterns differ).
template <class Scalar>
double maxParameterDifference(const tsnn::Network<Scalar>& a, const tsnn::Network<Scalar>& b) {
  double worst = 0;
  for (std::size_t l = 0; l < a.numLayers(); ++l) {
    const auto& x = a.layer(l);
    const auto& y = b.layer(l);
    if (x.weights().rowPtr() != y.weights().rowPtr() ||
        x.weights().colIdx() != y.weights().colIdx())
      return std::numeric_limits<double>::infinity();
    worst =
        std::max(worst, tsnn::test::maxMixedDifference(x.weights().values(), y.weights().values()));
    worst = std::max(worst, tsnn::test::maxMixedDifference(x.bias(), y.bias()));
  }
  return worst;
}

template <class Scalar>
std::vector<long long> layerNonZeros(const tsnn::Network<Scalar>& net) {
  std::vector<long long> n;
  for (std::size_t l = 0; l < net.numLayers(); ++l) n.push_back(net.layer(l).nonZeros());
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("trainSequential learns the synthetic problem and records one row per epoch",
                   "[training][trainer]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(600, 101);
  const auto test = makeProblem<Scalar>(300, 102);
  tsnn::Network<Scalar> net(netOptions());
  const auto nnzPerLayer = layerNonZeros(net);
  const long long nnz = net.nonZeros();
  const double before = net.accuracy(test.features, test.labels);

  auto o = trainerOptions(TrainerKind::Sequential, 0, 6, 20);
  std::vector<EpochRecord> seen;
  long long batches = 0, lastDone = 0;
  bool monotone = true;
  tsnn::TrainerCallbacks cb;
  cb.onBatch = [&](int epoch, long long done, long long total) {
    ++batches;
    if (epoch < 1 || epoch > o.epochs || total != train.size()) monotone = false;
    if (done != (lastDone % total) + std::min<long long>(o.batchSize, total - lastDone % total))
      monotone = false;
    lastDone = done;
  };
  cb.onEpoch = [&](const EpochRecord& r) { seen.push_back(r); };
  const auto history = tsnn::trainSequential(net, train, &test, o, cb);

  REQUIRE(history.size() == static_cast<std::size_t>(o.epochs));
  CHECK(batches == o.epochs * 30);  // 600 / 20 per epoch
  CHECK(monotone);
  CHECK(sameHistory(seen, history));
  for (std::size_t e = 0; e < history.size(); ++e) {
    const EpochRecord& r = history[e];
    INFO("epoch " << r.epoch << " loss " << r.trainLoss << " train acc " << r.trainAccuracy
                  << " test acc " << r.testAccuracy);
    CHECK(r.epoch == static_cast<int>(e) + 1);
    CHECK(std::isfinite(r.trainLoss));
    CHECK(r.trainLoss > 0);
    CHECK(r.trainAccuracy >= 0);
    CHECK(r.trainAccuracy <= 1);
    CHECK(r.testAccuracy >= 0);
    CHECK(r.testAccuracy <= 1);
    CHECK(std::isfinite(r.epochSeconds));
    CHECK(r.epochSeconds >= 0);
    CHECK(r.evolveSeconds >= 0);
    CHECK(r.nnz == nnz);  // SET replaces as many connections as it removes
    CHECK(r.hiddenNeurons == 64);
    CHECK(r.meanStaleness == 0);
    CHECK(r.skippedBatches == 0);
    CHECK(r.clippedBatches == 0);
  }
  CHECK(history.back().evolveSeconds == 0);  // no SET after the last epoch
  CHECK(layerNonZeros(net) == nnzPerLayer);
  for (std::size_t l = 0; l < net.numLayers(); ++l) CHECK(net.layer(l).weights().check().empty());
  // The last record describes the network as returned.
  CHECK(history.back().testAccuracy == net.accuracy(test.features, test.labels));
  INFO("test accuracy before training " << before);
  CHECK(history.back().trainLoss < history.front().trainLoss);
  CHECK(history.back().testAccuracy > 0.75);  // chance is 1/3
}

TEMPLATE_TEST_CASE("trainSequential without a test set records NaN test accuracy",
                   "[training][trainer]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(50, 103);
  tsnn::Network<Scalar> net(netOptions());
  const auto history = tsnn::trainSequential(net, train, kNoTest<Scalar>,
                                             trainerOptions(TrainerKind::Sequential, 0, 2, 16));
  REQUIRE(history.size() == 2);
  for (const auto& r : history) CHECK(std::isnan(r.testAccuracy));
}

// The data-parallel step at the level of the Network, written out exactly as trainDataParallel
// does it: the minibatch order[first, first + count) is cut into T contiguous row shards
// [count t / T, count (t + 1) / T); each is gathered, run forward with its rowOffset (so dropout
// masks are those of the whole minibatch) and backward with gradScale 1 / count; the buffers are
// summed in worker order into buffer 0. Compared with one forward/backward of the whole
// minibatch.
TEMPLATE_TEST_CASE("The data-parallel gradient summed over shards is the whole minibatch gradient",
                   "[training][trainer][data-parallel]", float, double) {
  using Scalar = TestType;
  const auto data = makeProblem<Scalar>(120, 104);
  tsnn::Network<Scalar> net(netOptions(/*dropout=*/0.4));
  // Nonzero biases, so that the point is generic.
  tsnn::Rng rng = tsnn::test::testRng(105);
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    for (Eigen::Index j = 0; j < net.layer(l).bias().size(); ++j)
      net.layer(l).bias()(j) = static_cast<Scalar>(rng.uniform(-0.2, 0.2));
  std::vector<std::int64_t> order(static_cast<std::size_t>(data.size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  tsnn::detail::shuffleOrder(order, rng);

  struct Case {
    std::int64_t first, count;
    int workers;
  };
  const Case cases[] = {{0, 29, 1}, {0, 29, 2}, {7, 29, 3}, {31, 64, 4}, {5, 37, 7}, {90, 5, 7}};
  // Float: every gradient entry is a sum of at most 64 products of O(1) terms; reordering the
  // sum moves it by a few ulps of the largest partial sum.
  const double tol = std::is_same<Scalar, float>::value ? 2e-6 : 1e-12;
  std::uint64_t step = 11;
  for (const Case& c : cases) {
    ++step;
    INFO("first " << c.first << ", count " << c.count << ", workers " << c.workers);
    const Scalar scale = Scalar(1) / static_cast<Scalar>(c.count);

    // The whole minibatch at once.
    tsnn::Activations<Scalar> x;
    std::vector<std::int32_t> labels;
    tsnn::Workspace<Scalar> ws;
    tsnn::Gradients<Scalar> full;
    tsnn::detail::fitGradients(net, full);
    tsnn::detail::gatherBatch(data.features, order, c.first, c.count, x, labels, data.labels);
    net.forward(x, ws, true, step, 0, false);
    REQUIRE(ws.dropout);
    REQUIRE((ws.mask[0].array() == Scalar(0)).any());  // dropout really drops something
    const tsnn::BlockStats fullStats = net.backward(x, labels.data(), ws, full, scale, false);

    // T shards, as the trainer cuts them: each runs forward and back-propagates its deltas;
    // then the gradient pieces, taken here in reverse order (the trainer hands them out in
    // whatever order its threads arrive), sum all shards.
    const int T = c.workers;
    const auto shards = static_cast<std::size_t>(std::min<std::int64_t>(T, c.count));
    std::vector<tsnn::Activations<Scalar>> xs(shards);
    std::vector<tsnn::Workspace<Scalar>> wss(shards);
    double lossSum = 0;
    long long correct = 0, samples = 0;
    for (int t = 0; t < T; ++t) {
      const Eigen::Index lo = tsnn::detail::shardBoundary(c.count, t, T);
      const Eigen::Index hi = tsnn::detail::shardBoundary(c.count, t + 1, T);
      REQUIRE((hi > lo) == (static_cast<std::size_t>(t) < shards));  // non-empty ones first
      if (hi == lo) continue;
      auto& xt = xs[static_cast<std::size_t>(t)];
      auto& wt = wss[static_cast<std::size_t>(t)];
      std::vector<std::int32_t> ls;
      tsnn::detail::gatherBatch(data.features, order, c.first + lo, hi - lo, xt, ls, data.labels);
      net.forward(xt, wt, true, step, lo, false);
      // The shard's masks are the corresponding rows of the whole minibatch's masks.
      for (std::size_t l = 0; l < wt.mask.size(); ++l)
        REQUIRE(tsnn::test::bitIdentical(wt.mask[l], ws.mask[l].middleRows(lo, hi - lo)));
      const tsnn::BlockStats s = net.backwardDeltas(ls.data(), wt, scale, false);
      lossSum += s.lossSum;
      correct += s.correct;
      samples += s.samples;
    }
    std::vector<tsnn::Gradients<Scalar>> g(1);
    tsnn::detail::fitGradients(net, g[0]);
    tsnn::detail::GradientTasks pieces;
    const auto& tasks = pieces.of(net);
    for (auto p = tasks.rbegin(); p != tasks.rend(); ++p)
      net.gradientsRows(p->layer, xs.data(), wss.data(), shards, g[0],
                        static_cast<std::int32_t>(p->first), static_cast<std::int32_t>(p->last));

    CHECK(samples == c.count);
    CHECK(correct == fullStats.correct);
    CHECK(lossSum == Approx(fullStats.lossSum).epsilon(1e-5));
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      INFO("layer " << l);
      if (T == 1) {  // one shard is the whole minibatch: nothing is reordered
        CHECK(tsnn::test::bitIdentical(g[0].weights[l], full.weights[l]));
        CHECK(tsnn::test::bitIdentical(g[0].bias[l], full.bias[l]));
      }
      const double dw = tsnn::test::maxMixedDifference(g[0].weights[l], full.weights[l]);
      const double db = tsnn::test::maxMixedDifference(g[0].bias[l], full.bias[l]);
      CHECK(dw <= tol);
      CHECK(db <= tol);
      // The gradient is not trivially zero.
      CHECK(tsnn::test::maxAbsDifference(full.weights[l],
                                         std::vector<Scalar>(full.weights[l].size(), 0)) > 1e-3);
    }
  }
}

TEMPLATE_TEST_CASE("trainDataParallel is bit-identical from run to run for a fixed worker count",
                   "[training][trainer][data-parallel]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(203, 106);  // last minibatch of each epoch is partial
  const auto test = makeProblem<Scalar>(60, 107);
  for (const auto optimizer : {tsnn::OptimizerKind::Sgd, tsnn::OptimizerKind::Adam})
  for (int workers : {1, 2, 3}) {
    INFO("workers " << workers << ", " << tsnn::optimizerName(optimizer));
    // SET runs twice.
    auto o = trainerOptions(TrainerKind::DataParallel, workers, 3, 25, optimizer);
    tsnn::Network<Scalar> a(netOptions(0.3)), b(netOptions(0.3));
    tsnn::TrainingState sa, sb;
    const auto ha = tsnn::trainDataParallel(a, train, &test, o, {}, &sa);
    const auto hb = tsnn::trainDataParallel(b, train, &test, o, {}, &sb);
    REQUIRE(ha.size() == 3);
    CHECK(sameNetwork(a, b));
    CHECK(sameState<Scalar>(sa, sb));
    CHECK(sameHistory(ha, hb));
    for (const auto& r : ha) {
      CHECK(std::isfinite(r.trainLoss));
      CHECK(r.nnz == tsnn::Network<Scalar>(netOptions(0.3)).nonZeros());
    }
  }
}

TEMPLATE_TEST_CASE("trainDataParallel with more workers than rows in a minibatch",
                   "[training][trainer][data-parallel]", float, double) {
  using Scalar = TestType;
  // Minibatches of 4 rows for 6 workers (the last one of each epoch has 1 row): some threads
  // get no rows and only take gradient pieces. More threads than cores also exercises the
  // waits that yield their core.
  const auto train = makeProblem<Scalar>(37, 112);
  auto o = trainerOptions(TrainerKind::DataParallel, 6, 2, 4);
  tsnn::Network<Scalar> a(netOptions(0.3)), b(netOptions(0.3)), seq(netOptions(0.3));
  const auto ha = tsnn::trainDataParallel(a, train, kNoTest<Scalar>, o);
  const auto hb = tsnn::trainDataParallel(b, train, kNoTest<Scalar>, o);
  CHECK(sameNetwork(a, b));
  CHECK(sameHistory(ha, hb));
  tsnn::trainSequential(seq, train, kNoTest<Scalar>,
                        trainerOptions(TrainerKind::Sequential, 0, 2, 4));
  const double d = maxParameterDifference(seq, a);
  INFO("largest relative parameter difference " << d);
  CHECK(d <= (std::is_same<Scalar, float>::value ? 1e-4 : 1e-10));
}

TEST_CASE("Data-parallel shards are contiguous, cover the minibatch, and start on cache lines",
          "[training][trainer][data-parallel]") {
  for (int team = 1; team <= 17; ++team)
    for (Eigen::Index count = 0; count <= 300; ++count) {
      INFO("team " << team << ", count " << count);
      CHECK(tsnn::detail::shardBoundary(count, 0, team) == 0);
      CHECK(tsnn::detail::shardBoundary(count, team, team) == count);
      bool ok = true;
      for (int t = 0; t < team; ++t) {
        const Eigen::Index lo = tsnn::detail::shardBoundary(count, t, team);
        const Eigen::Index hi = tsnn::detail::shardBoundary(count, t + 1, team);
        ok = ok && lo <= hi;
        ok = ok && (hi > lo) == (t < std::min<Eigen::Index>(team, count));  // non-empty first
        if (count >= 16 * team) ok = ok && lo % 16 == 0 && hi - lo >= 16;
        // Never more than about two 16-row lines apart from an even split.
        ok = ok && std::abs(static_cast<double>(hi - lo) - static_cast<double>(count) / team) <= 32;
      }
      CHECK(ok);
    }
}

TEST_CASE("Gradient pieces cover every neuron once, top layer first, and follow the topology",
          "[training][trainer][data-parallel]") {
  tsnn::NetworkOptions no;
  no.sizes = {300, 400, 200, 10};
  no.epsilon = 20;
  no.seed = tsnn::test::streamSeed(113);
  tsnn::Network<float> net(no);
  tsnn::detail::GradientTasks pieces;
  auto check = [&] {
    const auto& tasks = pieces.of(net);
    std::size_t i = 0;
    for (std::size_t l = net.numLayers(); l-- > 0;) {
      INFO("layer " << l);
      Eigen::Index next = 0;
      for (; i < tasks.size() && tasks[i].layer == l; ++i) {
        CHECK(tasks[i].first == next);
        CHECK(tasks[i].last > tasks[i].first);
        const auto& w = net.layer(l).weights();
        const long long entries = w.rowBegin(static_cast<std::int32_t>(tasks[i].last)) -
                                  w.rowBegin(static_cast<std::int32_t>(tasks[i].first));
        // About kEntries each: a piece ends at the first neuron that reaches the bound.
        const long long widest = w.rows() > 0 ? w.cols() : 0;
        CHECK(entries < tsnn::detail::GradientTasks::kEntries + widest);
        next = tasks[i].last;
      }
      CHECK(next == net.layer(l).outputs());
    }
    CHECK(i == tasks.size());
    return tasks.size();
  };
  const std::size_t before = check();
  CHECK(before > net.numLayers());  // the hidden layers are split into several pieces
  const auto* first = &pieces.of(net);
  CHECK(&pieces.of(net) == first);  // the same list while the pattern stays
  net.removeHiddenNeurons(0, {0, 1, 2, 3, 4, 5, 6, 7});
  tsnn::evolveHiddenLayers(net, 0.3);
  check();
}

// With one worker the shard is the whole minibatch (rowOffset 0, gradScale 1 / B, no summation),
// and the update is the same elementwise momentum step over the whole parameter arrays, so the
// two trainers perform the same floating-point operations in the same order.
TEMPLATE_TEST_CASE("trainDataParallel with one worker reproduces trainSequential exactly",
                   "[training][trainer][data-parallel]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(203, 108);
  const auto test = makeProblem<Scalar>(60, 109);
  for (const auto optimizer : {tsnn::OptimizerKind::Sgd, tsnn::OptimizerKind::Adam}) {
    INFO(tsnn::optimizerName(optimizer));
    tsnn::Network<Scalar> seq(netOptions(0.3)), par(netOptions(0.3));
    tsnn::TrainingState ss, sp;
    const auto hs = tsnn::trainSequential(
        seq, train, &test, trainerOptions(TrainerKind::Sequential, 0, 3, 25, optimizer), {}, &ss);
    const auto hp = tsnn::trainDataParallel(
        par, train, &test, trainerOptions(TrainerKind::DataParallel, 1, 3, 25, optimizer), {},
        &sp);
    CHECK(sameNetwork(seq, par));
    CHECK(sameState<Scalar>(ss, sp));
    CHECK(sameHistory(hs, hp));
  }
}

// Augmentation transforms depend only on (seed, step, row in the minibatch), so sharding does
// not change them: one worker reproduces the sequential run, two stay bit-identical run to run.
TEST_CASE("Augmented training is identical across trainers and runs, and differs from plain",
          "[training][trainer][augment]") {
  const auto train = makeProblem<double>(150, 111);
  auto withAugment = [](TrainerOptions o) {
    o.augment.channels = 1;  // the 12 features as a 3 x 4 image
    o.augment.height = 3;
    o.augment.width = 4;
    o.augment.flip = true;
    o.augment.maxShift = 1;
    return o;
  };
  tsnn::Network<double> seq(netOptions()), par(netOptions()), par2a(netOptions()),
      par2b(netOptions()), plain(netOptions());
  const auto hs = tsnn::trainSequential(
      seq, train, nullptr, withAugment(trainerOptions(TrainerKind::Sequential, 0, 2, 25)));
  const auto hp = tsnn::trainDataParallel(
      par, train, nullptr, withAugment(trainerOptions(TrainerKind::DataParallel, 1, 2, 25)));
  CHECK(sameNetwork(seq, par));
  CHECK(sameHistory(hs, hp));
  const auto o2 = withAugment(trainerOptions(TrainerKind::DataParallel, 2, 2, 25));
  CHECK(sameHistory(tsnn::trainDataParallel(par2a, train, nullptr, o2),
                    tsnn::trainDataParallel(par2b, train, nullptr, o2)));
  CHECK(sameNetwork(par2a, par2b));
  const auto hPlain = tsnn::trainSequential(plain, train, nullptr,
                                            trainerOptions(TrainerKind::Sequential, 0, 2, 25));
  CHECK(hPlain[0].trainLoss != hs[0].trainLoss);
  // A shape that does not match the features is refused before training starts.
  auto bad = withAugment(trainerOptions(TrainerKind::Sequential, 0, 2, 25));
  bad.augment.width = 5;
  tsnn::Network<double> untouched(netOptions());
  CHECK_THROWS_WITH(tsnn::trainSequential(untouched, train, nullptr, bad),
                    Catch::Contains("ImageAugmentation::validate()"));
}

// One epoch of four minibatches, no topology change: the two trainers draw the same shuffles
// and dropout masks and differ only in the order in which each gradient entry's per-sample terms
// are added.
TEMPLATE_TEST_CASE("trainDataParallel with two workers stays close to trainSequential",
                   "[training][trainer][data-parallel]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(128, 110);
  for (const auto optimizer : {tsnn::OptimizerKind::Sgd, tsnn::OptimizerKind::Adam}) {
    INFO(tsnn::optimizerName(optimizer));
    tsnn::Network<Scalar> seq(netOptions(0.3)), par(netOptions(0.3));
    tsnn::TrainingState ss, sp;
    const auto hs = tsnn::trainSequential(
        seq, train, kNoTest<Scalar>, trainerOptions(TrainerKind::Sequential, 0, 1, 32, optimizer),
        {}, &ss);
    const auto hp = tsnn::trainDataParallel(
        par, train, kNoTest<Scalar>,
        trainerOptions(TrainerKind::DataParallel, 2, 1, 32, optimizer), {}, &sp);
    REQUIRE(hs.size() == 1);
    REQUIRE(hp.size() == 1);
    const double tol = std::is_same<Scalar, float>::value ? 1e-4 : 1e-10;
    const double d = maxParameterDifference(seq, par);
    INFO("largest relative parameter difference " << d);
    CHECK(d <= tol);
    CHECK(maxStateDifference<Scalar>(ss, sp) <= tol);
    CHECK(hp[0].trainLoss == Approx(hs[0].trainLoss).epsilon(tol));
    // And the parameters did move: the comparison is not between two untouched networks.
    CHECK(maxParameterDifference(seq, tsnn::Network<Scalar>(netOptions(0.3))) > 1e-3);
  }
}

TEMPLATE_TEST_CASE("gatherBatch transposes any block of shuffled samples into batch-major columns",
                   "[training][trainer][gather]", float, double) {
  using Scalar = TestType;
  tsnn::Rng rng = tsnn::test::testRng(111);
  const Eigen::Index n = 70, d = 7;
  typename Dataset<Scalar>::Matrix f(n, d);
  for (Eigen::Index s = 0; s < n; ++s)
    for (Eigen::Index i = 0; i < d; ++i) f(s, i) = static_cast<Scalar>(rng.uniform(-5.0, 5.0));
  std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
  for (auto& y : labels) y = static_cast<std::int32_t>(rng.below(10));
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  tsnn::detail::shuffleOrder(order, rng);

  tsnn::Activations<Scalar> x;
  std::vector<std::int32_t> out;
  // Blocks of 16 plus ragged tails, and blocks shorter than one tile.
  const std::pair<std::int64_t, Eigen::Index> blocks[] = {{0, 1},  {3, 15}, {5, 16}, {10, 17},
                                                          {2, 33}, {0, 70}, {69, 1}, {21, 48}};
  for (const auto& [first, count] : blocks) {
    INFO("first " << first << ", count " << count);
    x.setConstant(std::numeric_limits<Scalar>::quiet_NaN());  // stale contents must not leak
    tsnn::detail::gatherBatch(f, order, first, count, x, out, labels);
    REQUIRE(x.rows() == count);
    REQUIRE(x.cols() == d);
    REQUIRE(out.size() == static_cast<std::size_t>(count));
    bool same = true;
    for (Eigen::Index b = 0; b < count; ++b) {
      const auto s = order[static_cast<std::size_t>(first + b)];
      for (Eigen::Index i = 0; i < d; ++i) same = same && x(b, i) == f(s, i);
      same = same && out[static_cast<std::size_t>(b)] == labels[static_cast<std::size_t>(s)];
    }
    CHECK(same);
  }
}

TEMPLATE_TEST_CASE("sumOfSquares matches a long double sum and propagates NaN and infinity",
                   "[training][trainer][norm]", float, double) {
  using Scalar = TestType;
  tsnn::Rng rng = tsnn::test::testRng(112);
  // Lengths around the eight partial sums: empty, shorter than one round, ragged tails.
  for (const std::size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 1000, 4099}) {
    INFO("n = " << n);
    std::vector<Scalar> v(n);
    long double ref = 0;
    for (auto& x : v) {
      x = static_cast<Scalar>(rng.uniform(-3.0, 3.0));
      ref += static_cast<long double>(x) * static_cast<long double>(x);
    }
    const double got = tsnn::detail::sumOfSquares(v.data(), n);
    // Products of floats are exact in double; only the additions round, each by at most one
    // unit in 2^-53 of a partial sum no larger than the total.
    CHECK(std::abs(got - static_cast<double>(ref)) <= 1e-13 * static_cast<double>(ref) + 1e-300);
  }
  std::vector<Scalar> v(21, Scalar(1));
  CHECK(tsnn::detail::sumOfSquares(v.data(), v.size()) == 21.0);
  v[13] = std::numeric_limits<Scalar>::quiet_NaN();
  CHECK(std::isnan(tsnn::detail::sumOfSquares(v.data(), v.size())));
  v[13] = std::numeric_limits<Scalar>::infinity();
  CHECK(std::isinf(tsnn::detail::sumOfSquares(v.data(), v.size())));
  v[13] = Scalar(1);
  v[20] = -std::numeric_limits<Scalar>::infinity();  // in the ragged tail
  CHECK(std::isinf(tsnn::detail::sumOfSquares(v.data(), v.size())));
}

TEST_CASE("Trainers reject invalid options before touching the network", "[training][trainer]") {
  const auto train = makeProblem<float>(40, 112);
  const tsnn::Network<float> pristine(netOptions());
  struct Bad {
    const char* what;
    void (*apply)(TrainerOptions&);
  };
  const Bad bad[] = {
      {"epochs must be >= 0, got -1", [](TrainerOptions& o) { o.epochs = -1; }},
      {"batch size must be >= 1, got 0", [](TrainerOptions& o) { o.batchSize = 0; }},
      {"batch size must be >= 1, got -3", [](TrainerOptions& o) { o.batchSize = -3; }},
      {"zeta must be in [0, 1), got -0.1", [](TrainerOptions& o) { o.zeta = -0.1; }},
      {"zeta must be in [0, 1), got 1", [](TrainerOptions& o) { o.zeta = 1.0; }},
      {"zeta must be in [0, 1), got nan",
       [](TrainerOptions& o) { o.zeta = std::numeric_limits<double>::quiet_NaN(); }},
      {"threads must be >= 0, got -1", [](TrainerOptions& o) { o.threads = -1; }},
      {"workers must be >= 0, got -2", [](TrainerOptions& o) { o.workers = -2; }},
      {"WASAP local fraction must be in [0, 1], got -0.5",
       [](TrainerOptions& o) { o.wasapLocalFraction = -0.5; }},
      {"WASAP local fraction must be in [0, 1], got 1.5",
       [](TrainerOptions& o) { o.wasapLocalFraction = 1.5; }},
      {"WASAP local fraction must be in [0, 1], got nan",
       [](TrainerOptions& o) { o.wasapLocalFraction = std::numeric_limits<double>::quiet_NaN(); }},
      {"learning rate must be positive and finite, got 0",
       [](TrainerOptions& o) { o.sgd.learningRate = 0; }},
      {"momentum must be in [0, 1), got 1", [](TrainerOptions& o) { o.sgd.momentum = 1; }},
      {"AdamOptions: beta1 must be in [0, 1), got 1",
       [](TrainerOptions& o) {
         o.optimizer = tsnn::OptimizerKind::Adam;
         o.adam.beta1 = 1;
       }},
      {"AdamOptions: learning rate must be positive and finite, got -1",
       [](TrainerOptions& o) {
         o.optimizer = tsnn::OptimizerKind::Adam;
         o.adam.learningRate = -1;
       }},
  };
  for (TrainerKind kind : {TrainerKind::Sequential, TrainerKind::DataParallel, TrainerKind::Wasap})
    for (const Bad& b : bad) {
      INFO("kind " << static_cast<int>(kind) << ": " << b.what);
      auto o = trainerOptions(kind, 2, 2, 8);
      b.apply(o);
      CHECK_THROWS_AS(o.validate(), tsnn::InvalidArgument);
      tsnn::Network<float> net(netOptions());
      const std::string msg =
          tsnn::test::messageOf([&] { tsnn::train(net, train, kNoTest<float>, o); });
      CHECK_THAT(msg, Catch::Contains(b.what));
      CHECK_THAT(msg, Catch::StartsWith("tsnn: "));
      CHECK(sameNetwork(net, pristine));
    }

  // Zero epochs is valid: nothing happens.
  for (TrainerKind kind :
       {TrainerKind::Sequential, TrainerKind::DataParallel, TrainerKind::Wasap}) {
    tsnn::Network<float> net(netOptions());
    const auto history = tsnn::train(net, train, kNoTest<float>, trainerOptions(kind, 2, 0, 8));
    CHECK(history.empty());
    CHECK(sameNetwork(net, pristine));
  }
}

TEST_CASE("Trainers reject data that does not fit the network", "[training][trainer]") {
  const auto good = makeProblem<float>(40, 113);
  const tsnn::Network<float> pristine(netOptions());
  auto withFeatures = [&](Eigen::Index d) {
    Dataset<float> x = good;
    x.features = Dataset<float>::Matrix::Ones(good.size(), d);
    return x;
  };
  const auto narrow = withFeatures(11);
  Dataset<float> manyClasses = good;
  manyClasses.numClasses = 4;  // network has 3 outputs
  Dataset<float> shortLabels = good;
  shortLabels.labels.pop_back();
  Dataset<float> badLabel = good;
  badLabel.labels[5] = 3;
  Dataset<float> nanFeature = good;
  nanFeature.features(7, 2) = std::numeric_limits<float>::quiet_NaN();
  Dataset<float> empty;
  empty.numClasses = 3;
  empty.features.resize(0, kFeatures);

  for (TrainerKind kind :
       {TrainerKind::Sequential, TrainerKind::DataParallel, TrainerKind::Wasap}) {
    INFO("kind " << static_cast<int>(kind));
    const auto o = trainerOptions(kind, 2, 1, 8);
    tsnn::Network<float> net(netOptions());
    auto msgTrain = [&](const Dataset<float>& d) {
      return tsnn::test::messageOf([&] { tsnn::train(net, d, kNoTest<float>, o); });
    };
    auto msgTest = [&](const Dataset<float>& d) {
      return tsnn::test::messageOf([&] { tsnn::train(net, good, &d, o); });
    };
    CHECK_THAT(msgTrain(narrow),
               Catch::Contains("training set has 11 features, network expects 12"));
    CHECK_THAT(msgTest(narrow), Catch::Contains("test set has 11 features, network expects 12"));
    CHECK_THAT(msgTrain(manyClasses),
               Catch::Contains("training set has 4 classes, network has 3 outputs"));
    CHECK_THAT(msgTrain(shortLabels), Catch::Contains("39 labels"));
    CHECK_THAT(msgTrain(badLabel), Catch::Contains("label 3 at index 5"));
    CHECK_THAT(msgTest(nanFeature), Catch::Contains("row 7, column 2"));
    CHECK_THAT(msgTrain(empty), Catch::Contains("empty training set"));
    CHECK(sameNetwork(net, pristine));
  }
  // The message names the trainer that refused.
  tsnn::Network<float> net(netOptions());
  CHECK_THAT(tsnn::test::messageOf([&] {
               tsnn::trainDataParallel(net, narrow, kNoTest<float>,
                                       trainerOptions(TrainerKind::DataParallel, 2, 1, 8));
             }),
             Catch::StartsWith("tsnn: trainDataParallel(): "));
  CHECK_THAT(tsnn::test::messageOf([&] {
               tsnn::trainSequential(net, narrow, kNoTest<float>,
                                     trainerOptions(TrainerKind::Sequential, 0, 1, 8));
             }),
             Catch::StartsWith("tsnn: trainSequential(): "));
}

// A learning rate of 1e15 makes the first step's weights of order 1e15; the logits then grow
// as a power of the weights and overflow within a few minibatches (in float at once), after
// which the loss or a gradient is inf or NaN. Deterministic: fixed data, network and seed. The
// message names the trainer, what went wrong (left to the library) and where.
TEMPLATE_TEST_CASE("A diverging run throws NumericalError naming the epoch and the batch",
                   "[training][trainer]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(200, 114);
  for (TrainerKind kind : {TrainerKind::Sequential, TrainerKind::DataParallel}) {
    const std::string name =
        kind == TrainerKind::Sequential ? "trainSequential()" : "trainDataParallel()";
    INFO(name);
    tsnn::Network<Scalar> net(netOptions());
    auto o = trainerOptions(kind, 2, 5, 10);
    o.sgd.learningRate = 1e15;
    int epochsDone = 0;
    tsnn::TrainerCallbacks cb;
    cb.onEpoch = [&](const EpochRecord&) { ++epochsDone; };
    const std::string msg = tsnn::test::messageOf<tsnn::NumericalError>(
        [&] { tsnn::train(net, train, kNoTest<Scalar>, o, cb); });
    INFO(msg);
    CHECK_THAT(msg, Catch::StartsWith("tsnn: " + name + ": "));
    CHECK_THAT(msg, Catch::Contains(" at epoch " + std::to_string(epochsDone + 1) + ", batch "));
    CHECK(epochsDone < 2);
  }
}

TEST_CASE("train dispatches on TrainerOptions::kind", "[training][trainer][train]") {
  const auto train = makeProblem<double>(90, 115);
  const auto test = makeProblem<double>(30, 116);
  SECTION("sequential") {
    const auto o = trainerOptions(TrainerKind::Sequential, 0, 2, 16);
    tsnn::Network<double> a(netOptions()), b(netOptions());
    const auto ha = tsnn::train(a, train, &test, o);
    const auto hb = tsnn::trainSequential(b, train, &test, o);
    CHECK(sameNetwork(a, b));
    CHECK(sameHistory(ha, hb));
  }
  SECTION("data-parallel") {
    const auto o = trainerOptions(TrainerKind::DataParallel, 3, 2, 16);
    tsnn::Network<double> a(netOptions()), b(netOptions());
    const auto ha = tsnn::train(a, train, &test, o);
    const auto hb = tsnn::trainDataParallel(b, train, &test, o);
    CHECK(sameNetwork(a, b));
    CHECK(sameHistory(ha, hb));
  }
  SECTION("wasap, one worker (deterministic)") {
    auto o = trainerOptions(TrainerKind::Wasap, 1, 3, 16);
    o.wasapLocalFraction = 0.34;  // one local epoch
    tsnn::Network<double> a(netOptions()), b(netOptions());
    const auto ha = tsnn::train(a, train, &test, o);
    const auto hb = tsnn::trainWasap(b, train, &test, o);
    REQUIRE(ha.size() == 3);
    CHECK(sameNetwork(a, b));
    CHECK(sameHistory(ha, hb));
  }
  SECTION("unknown kind") {
    auto o = trainerOptions(TrainerKind::Sequential, 0, 2, 16);
    o.kind = static_cast<TrainerKind>(42);
    tsnn::Network<double> a(netOptions());
    CHECK_THAT(tsnn::test::messageOf([&] { tsnn::train(a, train, &test, o); }),
               Catch::Contains("train(): unknown trainer kind"));
  }
}

TEST_CASE("parseTrainer maps names to kinds and rejects others", "[training][trainer][train]") {
  CHECK(tsnn::parseTrainer("sequential") == TrainerKind::Sequential);
  CHECK(tsnn::parseTrainer("data-parallel") == TrainerKind::DataParallel);
  CHECK(tsnn::parseTrainer("data_parallel") == TrainerKind::DataParallel);
  CHECK(tsnn::parseTrainer("wasap") == TrainerKind::Wasap);
  for (const char* bad : {"", "Sequential", "WASAP", "dataparallel", "data-parallel ", "async"}) {
    INFO("'" << bad << "'");
    const std::string msg = tsnn::test::messageOf([&] { tsnn::parseTrainer(bad); });
    CHECK_THAT(
        msg, Catch::StartsWith("tsnn: parseTrainer(): unknown trainer '" + std::string(bad) + "'"));
    CHECK_THAT(msg, Catch::Contains("expected sequential, data-parallel or wasap"));
  }
}
