// Tests for tsnn/training/options.hpp and the dispatch in tsnn/training/train.hpp: every
// trainer refuses bad options and data before touching the network; TrainerOptions turns
// `workers` and `threads` into the worker count, the team asked for and the kernels' team;
// training leaves the process's OpenMP settings alone; train() dispatches on the kind and
// parseTrainer() maps names to kinds.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "support/trainers.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/options.hpp"
#include "tsnn/training/train.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using tsnn::TrainerKind;
using tsnn::TrainerOptions;
using tsnn::data::Dataset;
using tsnn::test::kFeatures;
using tsnn::test::kNoTest;
using tsnn::test::makeProblem;
using tsnn::test::sameHistory;
using tsnn::test::sameNetwork;
using tsnn::test::trainerOptions;

tsnn::NetworkOptions netOptions() { return tsnn::test::trainerNetOptions(); }

}  // namespace

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

TEST_CASE("TrainerOptions derives the worker count, the team and the kernels' threads",
          "[training][options][threads]") {
  TrainerOptions o;
  // Nothing set: one worker per default OpenMP thread, one thread per worker.
  CHECK(o.workerCount() == tsnn::maxThreads());
  CHECK(o.kernelThreads() == tsnn::Threads::automatic());
  CHECK(o.teamFor(5) == 5);
  // threads alone: as many workers, and at most that many threads for any worker count.
  o.threads = 3;
  CHECK(o.workerCount() == 3);
  CHECK(o.kernelThreads() == tsnn::Threads::count(3));
  CHECK(o.teamFor(3) == 3);
  CHECK(o.teamFor(8) == 3);
  CHECK(o.teamFor(2) == 2);
  // workers wins over threads for the worker count, never for the team.
  o.workers = 7;
  CHECK(o.workerCount() == 7);
  CHECK(o.teamFor(o.workerCount()) == 3);
  o.threads = 0;
  CHECK(o.workerCount() == 7);
  CHECK(o.teamFor(o.workerCount()) == 7);
}

#if defined(_OPENMP)
// The thread count travels in num_threads clauses: a program's own OpenMP default must be what
// it was before training, whatever the trainer and its thread count.
TEST_CASE("Training leaves the process's OpenMP settings as they were",
          "[training][options][threads][openmp]") {
  const auto train = makeProblem<float>(64, 131);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (TrainerKind kind : {TrainerKind::Sequential, TrainerKind::DataParallel, TrainerKind::Wasap})
    for (int threads : {2, 3}) {
      INFO("kind " << static_cast<int>(kind) << ", threads " << threads);
      auto o = trainerOptions(kind, 0, 2, 16);
      o.threads = threads;
      tsnn::Network<float> net(netOptions());
      tsnn::train(net, train, &train, o);
      CHECK(omp_get_max_threads() == 1);
    }
  omp_set_num_threads(saved);
}
#endif

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
