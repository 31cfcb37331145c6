// Tests for tsnn/training/data_parallel.hpp: the data-parallel gradient, computed per shard and
// summed over shards piece by piece, is the whole minibatch's gradient (with dropout on); its
// shards and gradient pieces cover everything once; runs are bit-identical for a fixed worker
// count (also with more workers than rows, and whatever the team of threads that runs them),
// equal the sequential trainer with one worker and stay close to it with two; augmented
// training is identical across trainers and runs.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "support/trainers.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/data_parallel.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/sequential.hpp"

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

// The data-parallel step at the level of the Network, written out as trainDataParallel does
// it: the minibatch order[first, first + count) is cut into T contiguous row shards (about
// [count t / T, count (t + 1) / T)); each is gathered, run forward with its rowOffset (so
// dropout masks are those of the whole minibatch) and its deltas back-propagated with gradScale
// 1 / count; the gradient pieces then sum all shards in shard order. Compared with one
// forward/backward of the whole minibatch.
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
    net.forward(x, ws, tsnn::PassOptions::training(step).serial());
    REQUIRE(ws.dropout);
    // dropout really drops something
    REQUIRE((tsnn::dropoutMask<Scalar>(x.rows(), net.layer(0).outputs(), net.options().dropout,
                                       tsnn::dropoutKey(net.options().seed, step, 0))
                 .array() == Scalar(0))
                .any());
    // backward() writes the deltas over ws.a: the activations are kept for the shards.
    const std::vector<tsnn::Activations<Scalar>> activations = ws.a;
    const tsnn::BlockStats fullStats =
        net.backward(x, labels.data(), ws, full, scale, tsnn::Threads::serial());

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
      net.forward(xt, wt, tsnn::PassOptions::training(step).rowOffset(lo).serial());
      // The shard's masked activations are the corresponding rows of the whole minibatch's.
      for (std::size_t l = 0; l < wt.a.size(); ++l)
        REQUIRE(tsnn::test::bitIdentical(wt.a[l], activations[l].middleRows(lo, hi - lo)));
      const tsnn::BlockStats s = net.backwardDeltas(ls.data(), wt, scale, tsnn::Threads::serial());
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
  for (int workers : {1, 2, 3}) {
    INFO("workers " << workers);
    auto o = trainerOptions(TrainerKind::DataParallel, workers, 3, 25);  // SET runs twice
    tsnn::Network<Scalar> a(netOptions(0.3)), b(netOptions(0.3));
    const auto ha = tsnn::trainDataParallel(a, train, &test, o);
    const auto hb = tsnn::trainDataParallel(b, train, &test, o);
    REQUIRE(ha.size() == 3);
    CHECK(sameNetwork(a, b));
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
TEST_CASE("trainDataParallel refuses a bfloat16 network before it trains",
          "[training][trainer][data-parallel][bf16]") {
  const auto train = makeProblem<float>(64, 110);
  auto o = netOptions(0.3);
  o.activationStorage = tsnn::ActivationStorage::BFloat16;
  tsnn::Networkf net(o);
  const tsnn::Networkf before = net;
  CHECK_THROWS_WITH(
      tsnn::trainDataParallel(net, train, nullptr,
                              trainerOptions(TrainerKind::DataParallel, 2, 1, 16)),
      Catch::StartsWith("tsnn: trainDataParallel(): the network stores its activations in "
                        "bfloat16") &&
          Catch::Contains("the sequential or the WASAP trainer"));
  CHECK(sameNetwork(net, before));
}

TEMPLATE_TEST_CASE("trainDataParallel with one worker reproduces trainSequential exactly",
                   "[training][trainer][data-parallel]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(203, 108);
  const auto test = makeProblem<Scalar>(60, 109);
  tsnn::Network<Scalar> seq(netOptions(0.3)), par(netOptions(0.3));
  const auto hs =
      tsnn::trainSequential(seq, train, &test, trainerOptions(TrainerKind::Sequential, 0, 3, 25));
  const auto hp = tsnn::trainDataParallel(par, train, &test,
                                          trainerOptions(TrainerKind::DataParallel, 1, 3, 25));
  CHECK(sameNetwork(seq, par));
  CHECK(sameHistory(hs, hp));
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
  tsnn::Network<Scalar> seq(netOptions(0.3)), par(netOptions(0.3));
  const auto hs = tsnn::trainSequential(seq, train, kNoTest<Scalar>,
                                        trainerOptions(TrainerKind::Sequential, 0, 1, 32));
  const auto hp = tsnn::trainDataParallel(par, train, kNoTest<Scalar>,
                                          trainerOptions(TrainerKind::DataParallel, 2, 1, 32));
  REQUIRE(hs.size() == 1);
  REQUIRE(hp.size() == 1);
  const double tol = std::is_same<Scalar, float>::value ? 1e-4 : 1e-10;
  const double d = maxParameterDifference(seq, par);
  INFO("largest relative parameter difference " << d);
  CHECK(d <= tol);
  CHECK(hp[0].trainLoss == Approx(hs[0].trainLoss).epsilon(tol));
  // And the parameters did move: the comparison is not between two untouched networks.
  CHECK(maxParameterDifference(seq, tsnn::Network<Scalar>(netOptions(0.3))) > 1e-3);
}

// Workers are logical: a team of fewer threads than workers (asked for with options.threads, or
// imposed by the runtime) gives each thread several workers and must change nothing, neither the
// shards, nor the order of any sum, nor the decision to clip. The watchdog turns a thread waiting
// for deltas that no thread computes into a failure instead of a hang.
TEMPLATE_TEST_CASE(
    "trainDataParallel gives the same bits whatever team of threads runs its workers",
    "[training][data-parallel][threads]", float, double) {
  using Scalar = TestType;
  const auto train = makeProblem<Scalar>(203, 114);  // last minibatch of each epoch is partial
  const auto test = makeProblem<Scalar>(60, 115);
  struct Case {
    int workers, batch;
  };
  for (const Case c : {Case{3, 25}, Case{6, 4}}) {  // 6 workers, 4 rows: some shards are empty
    INFO("workers " << c.workers << ", batch " << c.batch);
    auto o = trainerOptions(TrainerKind::DataParallel, c.workers, 3, c.batch);  // SET runs twice
    o.clipNorm = 0.5;  // and some minibatches are clipped, from the workers' partial norms
    tsnn::Network<Scalar> full(netOptions(0.3));
    const auto hFull = tsnn::test::finishesWithin(
        300, "trainDataParallel", [&] { return tsnn::trainDataParallel(full, train, &test, o); });
    long long clipped = 0;
    for (const auto& r : hFull) clipped += r.clippedBatches;
    CHECK(clipped > 0);
    for (int threads : {1, 2, 4}) {
      if (threads >= c.workers) continue;
      INFO("threads " << threads);
      o.threads = threads;
      tsnn::Network<Scalar> fewer(netOptions(0.3));
      const auto h = tsnn::test::finishesWithin(300, "trainDataParallel with fewer threads", [&] {
        return tsnn::trainDataParallel(fewer, train, &test, o);
      });
      CHECK(sameNetwork(full, fewer));
      CHECK(sameHistory(hFull, h));
    }
  }
}
