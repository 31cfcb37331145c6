// Tests for resuming a run from a TrainingState (tsnn/io/history.hpp, consumed by the trainers
// in tsnn/training/epoch_loop.hpp): a run stopped after epoch 3 and resumed to epoch 6 reproduces
// the uninterrupted 6-epoch run bit for bit (weights, optimiser state, topology, records other
// than timings), for the sequential and the data-parallel trainer, with SGD and with Adam, with
// importance pruning due at the epoch where the first run stopped, from the state in memory and
// through a checkpoint file; and states that cannot continue are refused.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/files.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/training/train.hpp"

namespace {

tsnn::NetworkOptions netOptions() {
  tsnn::NetworkOptions o;
  o.sizes = {tsnn::test::kFeatures, 30, 30, tsnn::test::kClasses};
  o.epsilon = 4;
  o.dropout = 0.2;
  o.seed = tsnn::test::streamSeed(950);
  return o;
}

tsnn::TrainerOptions trainerOptions(tsnn::TrainerKind kind, int epochs,
                                    tsnn::OptimizerKind optimizer = tsnn::OptimizerKind::Sgd) {
  tsnn::TrainerOptions t;
  t.kind = kind;
  t.optimizer = optimizer;
  t.adam.learningRate = 0.01;
  t.adam.weightDecay = 0.01;  // AdamW
  t.workers = 2;
  t.epochs = epochs;
  t.batchSize = 25;
  t.sgd.learningRate = 0.05;
  t.sgd.momentum = 0.9;
  t.zeta = 0.3;
  t.importancePruning = true;  // due after epochs 3 and 5
  t.pruning.startEpoch = 3;
  t.pruning.period = 2;
  t.pruning.percentile = 10;
  t.seed = tsnn::test::streamSeed(951);
  return t;
}

void checkSameRecords(const tsnn::EpochRecord& a, const tsnn::EpochRecord& b) {
  INFO("epoch " << a.epoch);
  CHECK(a.epoch == b.epoch);
  CHECK(a.trainLoss == b.trainLoss);
  CHECK(a.trainAccuracy == b.trainAccuracy);
  CHECK(a.testAccuracy == b.testAccuracy);
  CHECK(a.nnz == b.nnz);
  CHECK(a.hiddenNeurons == b.hiddenNeurons);
  CHECK(a.neuronsRemoved == b.neuronsRemoved);
  CHECK(a.skippedBatches == b.skippedBatches);
  CHECK(a.clippedBatches == b.clippedBatches);
}

void checkSameNetworks(const tsnn::Network<float>& a, const tsnn::Network<float>& b) {
  REQUIRE(a.sizes() == b.sizes());
  for (std::size_t l = 0; l < a.numLayers(); ++l) {
    INFO("layer " << l);
    CHECK(a.layer(l).weights().colIdx() == b.layer(l).weights().colIdx());
    CHECK(tsnn::test::bitIdentical(a.layer(l).weights().values(), b.layer(l).weights().values()));
    CHECK(tsnn::test::bitIdentical(a.layer(l).bias(), b.layer(l).bias()));
  }
  for (std::size_t h = 0; h + 1 < a.numLayers(); ++h) CHECK(a.neuronIds(h) == b.neuronIds(h));
  CHECK(a.rng().state() == b.rng().state());
}

void checkSameOptimizerState(const tsnn::TrainingState& a, const tsnn::TrainingState& b) {
  CHECK(a.learningRate == b.learningRate);
  CHECK(a.optimizer.kind == b.optimizer.kind);
  CHECK(a.optimizer.steps == b.optimizer.steps);
  const auto& x = a.optimizer.layersOf<float>();
  const auto& y = b.optimizer.layersOf<float>();
  REQUIRE(x.size() == y.size());
  REQUIRE(!x.empty());
  for (std::size_t l = 0; l < x.size(); ++l) {
    INFO("optimizer state of layer " << l);
    REQUIRE(x[l].entries.size() == y[l].entries.size());
    for (std::size_t i = 0; i < x[l].entries.size(); ++i) {
      CHECK(tsnn::test::bitIdentical(x[l].entries[i], y[l].entries[i]));
      CHECK(tsnn::test::bitIdentical(x[l].rows[i], y[l].rows[i]));
    }
  }
}

}  // namespace

TEST_CASE("A run stopped after epoch 3 and resumed to 6 equals the uninterrupted run",
          "[training][resume]") {
  const auto train = tsnn::test::makeProblem<float>(300, 952);
  const auto test = tsnn::test::makeProblem<float>(100, 953);
  tsnn::test::TempDir dir;
  for (auto optimizer : {tsnn::OptimizerKind::Sgd, tsnn::OptimizerKind::Adam})
    for (auto kind : {tsnn::TrainerKind::Sequential, tsnn::TrainerKind::DataParallel})
      for (const bool viaFile : {false, true}) {
        INFO("trainer " << static_cast<int>(kind) << ", " << tsnn::optimizerName(optimizer)
                        << (viaFile ? ", through a checkpoint file" : ", from memory"));
        tsnn::Network<float> whole(netOptions());
        tsnn::TrainingState wholeState;
        const auto h6 =
            tsnn::train(whole, train, &test, trainerOptions(kind, 6, optimizer), {}, &wholeState);
        CHECK(wholeState.epoch == 6);
        CHECK(wholeState.topologyPending);

        // First part: a 3-epoch run, whose last epoch skips the pruning that is due after it.
        tsnn::Network<float> part(netOptions());
        tsnn::TrainingState state;
        const auto h3 =
            tsnn::train(part, train, &test, trainerOptions(kind, 3, optimizer), {}, &state);
        REQUIRE(state.epoch == 3);
        CHECK(state.topologyPending);
        CHECK(h3.back().neuronsRemoved == 0);
        CHECK(state.optimizer.kind == optimizer);
        // The snapshot is a copy, or what a checkpoint holds.
        tsnn::Network<float> saved = part;
        tsnn::TrainingState savedState = state;
        if (viaFile) {
          const std::string path = dir.file("part.ckpt");
          tsnn::saveCheckpoint(path, part, state);
          savedState = tsnn::TrainingState{};
          saved = tsnn::loadCheckpoint<float>(path, &savedState);
        }

        std::vector<tsnn::EpochRecord> seen;
        tsnn::TrainerCallbacks cb;
        cb.onEpoch = [&](const tsnn::EpochRecord& r) { seen.push_back(r); };
        const auto resumed =
            tsnn::train(saved, train, &test, trainerOptions(kind, 6, optimizer), cb, &savedState);
        REQUIRE(resumed.size() == 6);
        REQUIRE(seen.size() == 3);  // only the new epochs are reported
        CHECK(seen.front().epoch == 4);
        for (std::size_t e = 0; e < 6; ++e) checkSameRecords(resumed[e], h6[e]);
        CHECK(h6[2].neuronsRemoved >
              0);  // the deferred pruning did run, and is in epoch 3's record
        checkSameNetworks(saved, whole);
        checkSameOptimizerState(savedState, wholeState);
        CHECK(savedState.step == wholeState.step);
        CHECK(savedState.order == wholeState.order);
      }
}

TEST_CASE("A run stopped inside an epoch and resumed equals the uninterrupted run",
          "[training][resume][inside]") {
  // 300 samples at batch 25: 12 minibatches per epoch. Stopped after minibatch 5 of epoch 2
  // (and, as a second stop, after the last minibatch of epoch 3, before its evaluation and its
  // pruning), each time through a checkpoint file.
  const auto train = tsnn::test::makeProblem<float>(300, 956);
  const auto test = tsnn::test::makeProblem<float>(100, 957);
  tsnn::test::TempDir dir;
  for (auto kind : {tsnn::TrainerKind::Sequential, tsnn::TrainerKind::DataParallel}) {
    INFO("trainer " << static_cast<int>(kind));
    const auto opts = trainerOptions(kind, 4);
    tsnn::Network<float> whole(netOptions());
    tsnn::TrainingState wholeState;
    const auto h4 = tsnn::train(whole, train, &test, opts, {}, &wholeState);

    tsnn::Network<float> net(netOptions());
    tsnn::TrainingState state;
    std::vector<tsnn::EpochRecord> records;
    int checkpoints = 0;
    const std::string path = dir.file("inside.ckpt");
    for (const auto& stop : {std::pair<int, long long>{2, 125}, {3, 300}}) {
      tsnn::TrainerCallbacks cb;
      cb.onEpoch = [&](const tsnn::EpochRecord& r) { records.push_back(r); };
      cb.afterBatch = [&](int epoch, long long done, long long total) {
        CHECK(total == 300);
        if (epoch == 1 && done == 50) return tsnn::BatchAction::Checkpoint;  // and go on
        return epoch == stop.first && done == stop.second ? tsnn::BatchAction::Stop
                                                          : tsnn::BatchAction::Continue;
      };
      cb.onCheckpoint = [&](const tsnn::TrainingState& s) {
        ++checkpoints;
        CHECK(&s == &state);
        tsnn::saveCheckpoint(path, net, s);
      };
      const auto h = tsnn::train(net, train, &test, opts, cb, &state);
      CHECK(static_cast<int>(h.size()) == stop.first - 1);  // completed epochs only
      REQUIRE(state.epoch == stop.first - 1);
      CHECK(state.inEpoch.batches == stop.second / 25);
      CHECK(state.inEpoch.trained == stop.second);
      CHECK_FALSE(state.topologyPending);
      state = tsnn::TrainingState{};
      net = tsnn::loadCheckpoint<float>(path, &state);
    }
    CHECK(checkpoints == 3);  // epoch 1's checkpoint in the first run only, and two stops
    const auto h = tsnn::train(net, train, &test, opts, {}, &state);
    REQUIRE(h.size() == 4);
    for (std::size_t e = 0; e < 4; ++e) checkSameRecords(h[e], h4[e]);
    REQUIRE(records.size() == 2);  // epochs 1 and 2 were completed by the interrupted runs
    checkSameRecords(records[0], h4[0]);
    checkSameRecords(records[1], h4[1]);
    checkSameNetworks(net, whole);
    checkSameOptimizerState(state, wholeState);
    CHECK(state.step == wholeState.step);
    CHECK(state.order == wholeState.order);
    CHECK(state.inEpoch.batches == 0);
  }
}

TEST_CASE("A saved state at the last epoch resumes to nothing more", "[training][resume]") {
  const auto train = tsnn::test::makeProblem<float>(100, 954);
  tsnn::Network<float> net(netOptions());
  tsnn::TrainingState state;
  const auto opts = trainerOptions(tsnn::TrainerKind::Sequential, 2);
  tsnn::train(net, train, nullptr, opts, {}, &state);
  const tsnn::Network<float> before = net;
  const auto again = tsnn::train(net, train, nullptr, opts, {}, &state);
  CHECK(again.size() == 2);
  checkSameNetworks(net, before);
}

TEST_CASE("Trainers refuse a state that cannot continue the run", "[training][resume]") {
  const auto train = tsnn::test::makeProblem<float>(100, 955);
  tsnn::Network<float> net(netOptions());
  tsnn::TrainingState good;
  tsnn::train(net, train, nullptr, trainerOptions(tsnn::TrainerKind::Sequential, 2), {}, &good);
  const auto opts = trainerOptions(tsnn::TrainerKind::Sequential, 4);
  auto refused = [&](tsnn::TrainingState s, const char* what) {
    INFO(what);
    CHECK_THROWS_WITH(tsnn::train(net, train, nullptr, opts, {}, &s),
                      Catch::Contains("trainSequential()") && Catch::Contains(what));
  };
  tsnn::TrainingState s = good;
  s.epoch = 5;
  refused(s, "more than the 4 asked for");
  s = good;
  s.order.pop_back();
  refused(s, "99 samples");
  s = good;
  s.order[0] = s.order[1];
  refused(s, "not a permutation");
  s = good;
  s.order.clear();
  refused(s, "no sample order");
  s = good;
  s.history.pop_back();
  refused(s, "1 history records for 2 epochs");
  s = good;
  s.learningRate = std::nan("");
  refused(s, "learning rate");
  s = good;
  s.optimizer = tsnn::OptimizerState{};
  refused(s, "the state has no optimizer state");
  s = good;
  s.inEpoch.batches = 3;
  s.inEpoch.trained = 75;
  s.inEpoch.correct = 76;
  refused(s, "the state's epoch in progress does not fit 4 minibatches of 100 samples");
  s.inEpoch.correct = 10;
  s.inEpoch.lossSum = std::nan("");
  refused(s, "loss sum nan");
  s.inEpoch.lossSum = 1;
  s.inEpoch.batches = 5;
  refused(s, "(5 minibatches");
  s = good;
  s.inEpoch.batches = 1;
  s.inEpoch.trained = 25;
  CHECK_THROWS_WITH(
      tsnn::train(net, train, nullptr, trainerOptions(tsnn::TrainerKind::Sequential, 2), {}, &s),
      Catch::Contains("the state is inside epoch 3") && Catch::Contains("the run has 2 epochs"));
  s = good;
  s.optimizer.kind = tsnn::OptimizerKind::Adam;
  refused(s, "the state holds adam state, the options select sgd");
  s = good;
  s.optimizer.layersOf<float>()[1].entries[0].pop_back();
  refused(s, "cannot continue from the state: Optimizer::setState(): state array 0 of layer 1");
  // A topology change the state did not follow.
  tsnn::Network<float> changed = net;
  tsnn::evolveHiddenLayers(changed, 0.3);
  CHECK_THROWS_WITH(tsnn::train(changed, train, nullptr, opts, {}, &good),
                    Catch::Contains("trainSequential(): cannot continue from the state") &&
                        Catch::Contains("its topology changed after the state was taken"));
}
