// Tests for tsnn/training/data_parallel_step.hpp, the data-parallel minibatch step and its
// protocol: one step's result depends on the worker count W only, whatever the team of threads
// that runs the W workers (one thread, fewer than W, W), and with one worker it is the
// sequential trainer's step bit for bit; an exception in one worker releases the threads
// waiting for its deltas, is rethrown after the region, and leaves the network untouched, and
// the object stays usable; a non-finite loss is reported, not applied; bad arguments are refused.
// Runs that could hang go through a watchdog (support/trainers.hpp).

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "support/trainers.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/sgd.hpp"
#include "tsnn/training/data_parallel_step.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/numerical_guards.hpp"

namespace {

using tsnn::TrainerKind;
using tsnn::TrainerOptions;
using tsnn::test::makeProblem;
using tsnn::test::sameBits;
using tsnn::test::sameNetwork;

template <class Scalar>
using Step = tsnn::detail::DataParallelStep<Scalar, std::int32_t>;

// A shuffled order of n samples.
std::vector<std::int64_t> shuffled(std::int64_t n, std::uint64_t stream) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  tsnn::Rng rng = tsnn::test::testRng(stream);
  tsnn::detail::shuffleOrder(order, rng);
  return order;
}

// The SGD optimiser that trains \p net in the tests that build each network afresh: one per
// network, made on first use and made anew for a network built where an earlier one was (its
// first layer's pattern id, unique per pattern, tells them apart; copies of one network share
// it, so the test that trains copies owns its optimisers instead).
template <class Scalar>
tsnn::Optimizer<Scalar, std::int32_t>& sgdFor(const tsnn::Network<Scalar>& net,
                                              const tsnn::SgdOptions& o) {
  struct Entry {
    std::uint64_t pattern;
    std::unique_ptr<tsnn::Sgd<Scalar>> sgd;
  };
  static std::map<const void*, Entry> optimizers;
  Entry& e = optimizers[&net];
  const std::uint64_t pattern = net.layer(0).weights().patternId();
  if (!e.sgd || e.pattern != pattern) e = Entry{pattern, std::make_unique<tsnn::Sgd<Scalar>>(o)};
  return *e.sgd;
}

TrainerOptions stepOptions() {
  return tsnn::test::trainerOptions(TrainerKind::DataParallel, 0, 1, 37);
}

// The step's work as the sequential trainer does it: one forward/backward of the whole
// minibatch, the guards, then the optimiser over whole arrays.
template <class Scalar>
tsnn::detail::StepReport sequentialStep(tsnn::Network<Scalar>& net,
                                        const tsnn::data::Dataset<Scalar>& data,
                                        const std::vector<std::int64_t>& order, std::int64_t first,
                                        std::int64_t count, std::uint64_t step,
                                        const TrainerOptions& o) {
  tsnn::Workspace<Scalar> ws;
  tsnn::Gradients<Scalar> grads;
  tsnn::Activations<Scalar> x;
  std::vector<std::int32_t> labels;
  tsnn::detail::StepReport r;
  r.stats = tsnn::detail::computeGradients(net, data, order, first, count, 0, step,
                                           Scalar(1) / static_cast<Scalar>(count), ws, grads, x,
                                           labels, o, tsnn::Threads::serial());
  r.problem = tsnn::detail::guardAndClip(net, ws, r.stats, grads, o, &r.clipped);
  if (r.problem.empty()) sgdFor(net, o.sgd).step(net, grads, tsnn::Threads::serial());
  return r;
}

}  // namespace

TEMPLATE_TEST_CASE("A data-parallel step depends on the worker count only, not on the team",
                   "[training][data-parallel-step][threads]", float, double) {
  using Scalar = TestType;
  const auto data = makeProblem<Scalar>(120, 301);
  const auto order = shuffled(data.size(), 302);
  auto o = stepOptions();
  o.clipNorm = 0.05;  // small enough that the step is clipped: the decision is shared too
  for (int workers : {1, 3, 5}) {
    INFO("workers " << workers);
    // The reference: W workers on W threads (as many as the runtime grants).
    tsnn::Network<Scalar> ref(tsnn::test::trainerNetOptions(0.3));
    Step<Scalar> refStep(workers);
    const auto r0 = tsnn::test::finishesWithin(120, "a data-parallel step", [&] {
      return refStep.run(ref, data, order, 11, 37, 9, sgdFor(ref, o.sgd), o, workers);
    });
    CHECK(refStep.lastTeam() == tsnn::test::grantedTeam(workers));
    CHECK(r0.problem.empty());
    CHECK(r0.clipped);
    CHECK(r0.stats.samples == 37);
    for (int threads : {1, 2, workers}) {
      INFO("threads " << threads);
      tsnn::Network<Scalar> net(tsnn::test::trainerNetOptions(0.3));
      Step<Scalar> step(workers);
      const auto r = tsnn::test::finishesWithin(120, "a data-parallel step on fewer threads", [&] {
        return step.run(net, data, order, 11, 37, 9, sgdFor(net, o.sgd), o, threads);
      });
      CHECK(step.lastTeam() == tsnn::test::grantedTeam(threads));
      CHECK(sameNetwork(net, ref));
      CHECK(sameBits(r.stats.lossSum, r0.stats.lossSum));
      CHECK(r.stats.correct == r0.stats.correct);
      CHECK(r.stats.samples == r0.stats.samples);
      CHECK(r.clipped == r0.clipped);
    }
    if (workers == 1) {  // one shard is the whole minibatch: the sequential step, bit for bit
      tsnn::Network<Scalar> seq(tsnn::test::trainerNetOptions(0.3));
      const auto rs = sequentialStep(seq, data, order, 11, 37, 9, o);
      CHECK(sameNetwork(seq, ref));
      CHECK(sameBits(rs.stats.lossSum, r0.stats.lossSum));
      CHECK(rs.clipped == r0.clipped);
    }
  }
}

// A label outside [0, classes) makes the loss of its shard throw before that shard publishes a
// single delta: every other thread then waits in phase 2 for deltas that will never come, and
// only the abandon flag lets it go. The trainers validate labels before training, so this is the
// protocol's failure path, exercised directly.
TEST_CASE("An exception in one worker releases the others, is rethrown, and applies nothing",
          "[training][data-parallel-step][errors]") {
  auto data = makeProblem<double>(60, 303);
  const auto order = shuffled(data.size(), 304);
  const auto o = stepOptions();
  const int workers = 3;
  // The last shard of the minibatch [0, 36) holds rows [24, 36); poison the last of them.
  const std::int64_t poisoned = order[35];
  data.labels[static_cast<std::size_t>(poisoned)] = 7;
  const tsnn::Network<double> pristine(tsnn::test::trainerNetOptions(0.3));
  for (int threads : {1, 2, workers}) {
    INFO("threads " << threads);
    tsnn::Network<double> net = pristine;
    tsnn::Sgd<double> netSgd(o.sgd), freshSgd(o.sgd);
    Step<double> step(workers);
    const std::string msg = tsnn::test::finishesWithin(120, "a failing data-parallel step", [&] {
      return tsnn::test::messageOf<tsnn::InvalidArgument>(
          [&] { step.run(net, data, order, 0, 36, 1, netSgd, o, threads); });
    });
    CHECK_THAT(msg, Catch::Contains("label 7"));
    CHECK(sameNetwork(net, pristine));  // nothing was applied
    // The same object trains the next minibatch (free of the bad label) as a fresh one does.
    tsnn::Network<double> fresh = pristine;
    Step<double> freshStep(workers);
    const auto r = step.run(net, data, order, 36, 24, 2, netSgd, o, threads);
    const auto rf = freshStep.run(fresh, data, order, 36, 24, 2, freshSgd, o, threads);
    CHECK(r.problem.empty());
    CHECK(sameBits(r.stats.lossSum, rf.stats.lossSum));
    CHECK(sameNetwork(net, fresh));
    CHECK_FALSE(sameNetwork(net, pristine));
  }
}

TEST_CASE("A data-parallel step with a non-finite loss reports it and applies nothing",
          "[training][data-parallel-step][guards]") {
  auto data = makeProblem<float>(40, 305);
  const auto order = shuffled(data.size(), 306);
  // FLT_MAX features are finite but overflow the pre-activations they reach.
  data.features.row(order[5]).setConstant(std::numeric_limits<float>::max());
  const auto o = stepOptions();
  const tsnn::Network<float> pristine(tsnn::test::trainerNetOptions(0.0));
  for (int threads : {1, 2}) {
    INFO("threads " << threads);
    tsnn::Network<float> net = pristine;
    Step<float> step(2);
    const auto r = step.run(net, data, order, 0, 16, 0, sgdFor(net, o.sgd), o, threads);
    CHECK_THAT(r.problem, Catch::Contains("not finite") || Catch::Contains("loss is"));
    CHECK_FALSE(r.clipped);
    CHECK(sameNetwork(net, pristine));
  }
}

TEST_CASE("DataParallelStep refuses bad workers, threads and minibatches",
          "[training][data-parallel-step][errors]") {
  const auto data = makeProblem<double>(20, 307);
  const auto order = shuffled(data.size(), 308);
  const auto o = stepOptions();
  tsnn::Network<double> net(tsnn::test::trainerNetOptions());
  CHECK_THROWS_WITH(Step<double>(0), Catch::Contains("workers must be >= 1, got 0"));
  Step<double> step(2);
  CHECK_THROWS_WITH(step.run(net, data, order, 0, 8, 0, sgdFor(net, o.sgd), o, 0),
                    Catch::Contains("DataParallelStep::run(): threads must be >= 1, got 0"));
  CHECK_THROWS_WITH(step.run(net, data, order, 0, 0, 0, sgdFor(net, o.sgd), o, 2),
                    Catch::Contains("minibatch [0, 0) is empty"));
  CHECK_THROWS_WITH(step.run(net, data, order, 15, 6, 0, sgdFor(net, o.sgd), o, 2),
                    Catch::Contains("outside the order of 20 samples"));
  CHECK(sameNetwork(net, tsnn::Network<double>(tsnn::test::trainerNetOptions())));
}
