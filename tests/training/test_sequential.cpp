// Tests for tsnn/training/sequential.hpp (and the minibatch gather of
// tsnn/training/minibatch.hpp that it relies on): the sequential trainer learns a small
// synthetic three-class problem and keeps a complete history; without a test set it records
// NaN; gatherBatch's blocked transposition; a diverging run, sequential or data-parallel,
// throws NumericalError naming the epoch and the batch.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "support/trainers.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/sequential.hpp"
#include "tsnn/training/train.hpp"

namespace {

using tsnn::EpochRecord;
using tsnn::TrainerKind;
using tsnn::TrainerOptions;
using tsnn::data::Dataset;
using tsnn::test::kClasses;
using tsnn::test::kFeatures;
using tsnn::test::kNoTest;
using tsnn::test::layerNonZeros;
using tsnn::test::makeProblem;
using tsnn::test::maxParameterDifference;
using tsnn::test::sameHistory;
using tsnn::test::sameNetwork;
using tsnn::test::trainerOptions;

tsnn::NetworkOptions netOptions(double dropout = 0.1, std::uint64_t seed = 17) {
  return tsnn::test::trainerNetOptions(dropout, seed);
}

}  // namespace

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
  // The evaluation reports each chunk; every epoch's last report covers the whole test set.
  std::vector<int> evaluated;
  int evaluating = 0;
  long long lastEvaluated = 0;
  cb.onEvaluation = [&](int epoch, long long done, long long total) {
    CHECK(total == test.size());
    if (epoch != evaluating) {
      evaluating = epoch;
      lastEvaluated = 0;
    }
    CHECK(done > lastEvaluated);
    lastEvaluated = done;
    if (done == total) evaluated.push_back(epoch);
  };
  const auto history = tsnn::trainSequential(net, train, &test, o, cb);
  CHECK(evaluated == std::vector<int>{1, 2, 3, 4, 5, 6});

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

TEST_CASE("dropLastPartialBatch trains only whole minibatches and averages over them",
          "[training]") {
  // 130 samples in minibatches of 40: three of 40, and the partial one of 10 is dropped.
  const auto train = makeProblem<double>(130, 131);
  auto o = trainerOptions(TrainerKind::Sequential, 2, 2, 40);
  o.dropLastPartialBatch = true;
  o.evolve = false;
  for (const auto kind : {TrainerKind::Sequential, TrainerKind::DataParallel}) {
    INFO("data-parallel " << (kind == TrainerKind::DataParallel));
    o.kind = kind;
    tsnn::Network<double> net(netOptions(0));
    std::vector<long long> done;
    tsnn::TrainerCallbacks cb;
    cb.onBatch = [&](int, long long d, long long total) {
      CHECK(total == 130);
      done.push_back(d);
    };
    tsnn::TrainingState state;
    const auto h = tsnn::train(net, train, kNoTest<double>, o, cb, &state);
    CHECK(done == std::vector<long long>{40, 80, 120, 40, 80, 120});
    CHECK(state.step == 6);
    // The recorded accuracy is a fraction of the 120 samples trained: a multiple of 1/120.
    for (const auto& r : h) {
      const double correct = r.trainAccuracy * 120;
      CHECK(correct == Approx(std::round(correct)).margin(1e-9));
    }
  }
  // A training set smaller than one minibatch would train nothing: refused before training.
  const auto tiny = makeProblem<double>(30, 132);
  tsnn::Network<double> net(netOptions(0));
  o.kind = TrainerKind::Sequential;
  CHECK_THROWS_WITH(
      tsnn::train(net, tiny, kNoTest<double>, o),
      Catch::Contains("dropping the last partial minibatch leaves nothing to train") &&
          Catch::Contains("30 samples, fewer than the batch size 40"));
  o.kind = TrainerKind::Wasap;
  o.workers = 2;
  CHECK_THROWS_WITH(tsnn::train(net, makeProblem<double>(70, 133), kNoTest<double>, o),
                    Catch::Contains("a worker's partition has 35 samples"));
  o.batchSize = 35;  // each partition is exactly one minibatch
  CHECK_NOTHROW(tsnn::train(net, makeProblem<double>(70, 133), kNoTest<double>, o));
}

TEST_CASE("Every trainer steps its layers at the fan-in reference's per-layer rates",
          "[training][fan-in]") {
  // The layers' mean real fan-ins are about 5.5, 8 and 32: K = 1e9 caps none of them and must
  // train bit for bit as without; K = 2 slows every layer and must change the run.
  const Dataset<double> train = makeProblem<double>(96, 515);
  for (TrainerKind kind :
       {TrainerKind::Sequential, TrainerKind::DataParallel, TrainerKind::Wasap}) {
    INFO("trainer " << static_cast<int>(kind));
    auto run = [&](double k) {
      tsnn::Network<double> net(tsnn::test::trainerNetOptions());
      TrainerOptions o =
          tsnn::test::trainerOptions(kind, kind == TrainerKind::Wasap ? 1 : 2, 2, 16);
      o.threads = kind == TrainerKind::Wasap ? 1 : 2;
      o.fanInReference = k;
      tsnn::train(net, train, kNoTest<double>, o);
      return net;
    };
    const auto plain = run(0), capped = run(1e9), slowed = run(2);
    CHECK(tsnn::test::sameNetwork(plain, capped));
    CHECK_FALSE(tsnn::test::sameNetwork(plain, slowed));
  }
  TrainerOptions bad = tsnn::test::trainerOptions(TrainerKind::Sequential, 1, 1, 16);
  bad.fanInReference = -3;
  CHECK_THROWS_WITH(bad.validate(), Catch::StartsWith("tsnn: TrainerOptions: the reference "
                                                      "fan-in must be finite and >= 0, got -3"));
}
