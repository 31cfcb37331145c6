// Numerical guards of the trainers (training/numerical_guards.hpp, used by every trainer):
// non-finite losses and gradients stop training with a message naming epoch, batch and layer, or
// are skipped by policy; gradients can be clipped by their global norm; the squared norm is
// summed in a fixed order that propagates NaN and infinity.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/training/numerical_guards.hpp"
#include "tsnn/training/train.hpp"

using Catch::Matchers::Contains;

namespace {

// 400 samples, 10 features, 3 classes; sample `poisoned` (if >= 0) gets features of FLT_MAX,
// which are finite (so validation accepts them) but overflow the pre-activations they reach.
// (1e30 would not do: its loss and gradient stay finite, only catastrophically large.)
tsnn::data::Dataset<float> makeData(int poisoned = -1) {
  tsnn::Rng rng(17);
  tsnn::data::Dataset<float> d;
  d.numClasses = 3;
  d.features.resize(400, 10);
  for (Eigen::Index i = 0; i < d.features.rows(); ++i) {
    for (Eigen::Index j = 0; j < 10; ++j) d.features(i, j) = static_cast<float>(rng.normal());
    Eigen::Index label;
    d.features.row(i).head(3).maxCoeff(&label);
    d.labels.push_back(static_cast<std::int32_t>(label));
  }
  if (poisoned >= 0) d.features.row(poisoned).setConstant(std::numeric_limits<float>::max());
  return d;
}

tsnn::NetworkOptions netOptions() {
  tsnn::NetworkOptions o;
  o.sizes = {10, 32, 3};
  o.epsilon = 4;
  o.dropout = 0;
  o.seed = 5;
  return o;
}

std::string messageOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const tsnn::NumericalError& e) {
    return e.what();
  }
  return "no NumericalError";
}

}  // namespace

TEST_CASE("A non-finite loss stops every trainer with the epoch, batch and cause",
          "[training][guards]") {
  const auto data = makeData(/*poisoned=*/0);
  for (auto kind :
       {tsnn::TrainerKind::Sequential, tsnn::TrainerKind::DataParallel, tsnn::TrainerKind::Wasap}) {
    INFO("trainer " << static_cast<int>(kind));
    tsnn::Networkf net(netOptions());
    tsnn::TrainerOptions t;
    t.kind = kind;
    t.epochs = 2;
    t.batchSize = 40;
    t.workers = 2;
    const std::string msg = messageOf([&] { tsnn::train(net, data, &data, t); });
    CHECK_THAT(msg, Contains("tsnn: train") && Contains("loss is") && Contains("epoch"));
    if (kind != tsnn::TrainerKind::Wasap) CHECK_THAT(msg, Contains("batch"));
    CHECK_THAT(msg, Contains("layer 0") || Contains("not finite"));
  }
}

TEST_CASE("Diverging weights are named by layer", "[training][guards]") {
  const auto data = makeData();
  tsnn::Networkf net(netOptions());
  tsnn::TrainerOptions t;
  t.epochs = 20;
  t.batchSize = 40;
  t.sgd.learningRate = 1e3;  // accepted, but diverges within a few steps
  t.sgd.momentum = 0.9;
  const std::string msg = messageOf([&] { tsnn::trainSequential(net, data, &data, t); });
  CHECK_THAT(msg, Contains("trainSequential()") && Contains("at epoch") && Contains(", batch "));
  CHECK_THAT(msg, Contains("layer"));
}

TEST_CASE("The skip policy drops non-finite minibatches, lowers the learning rate and goes on",
          "[training][guards]") {
  const auto data = makeData(/*poisoned=*/123);
  for (auto optimizer : {tsnn::OptimizerKind::Sgd, tsnn::OptimizerKind::Adam})
    for (auto kind : {tsnn::TrainerKind::Sequential, tsnn::TrainerKind::DataParallel}) {
      INFO(tsnn::optimizerName(optimizer) << ", trainer " << static_cast<int>(kind));
      tsnn::Networkf net(netOptions());
      tsnn::TrainerOptions t;
      t.kind = kind;
      t.optimizer = optimizer;
      t.workers = 2;
      t.epochs = 3;
      t.batchSize = 40;
      t.onNonFinite = tsnn::NonFinitePolicy::SkipBatch;
      t.lrBackoff = 0.9;
      tsnn::TrainingState state;
      const auto history = tsnn::train(net, data, &data, t, {}, &state);
      REQUIRE(history.size() == 3);
      // The selected optimiser's rate, lowered once per skipped minibatch (three in all).
      CHECK(state.learningRate == t.learningRate() * 0.9 * 0.9 * 0.9);
      CHECK(state.optimizer.kind == optimizer);
      for (const auto& r : history) {
        CHECK(r.skippedBatches == 1);  // the poisoned sample's minibatch, once per epoch
        CHECK(std::isfinite(r.trainLoss));
      }
      for (std::size_t l = 0; l < net.numLayers(); ++l) {
        const auto& v = net.layer(l).weights().values();
        CHECK(std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); }));
      }
    }
  // With the throw policy the same data stops at the first epoch.
  tsnn::Networkf net(netOptions());
  tsnn::TrainerOptions t;
  t.epochs = 3;
  t.batchSize = 40;
  CHECK_THAT(messageOf([&] { tsnn::trainSequential(net, data, &data, t); }),
             Contains("at epoch 1, batch"));
}

TEST_CASE("Gradient clipping bounds every update's norm", "[training][guards]") {
  const auto data = makeData();
  for (auto kind : {tsnn::TrainerKind::Sequential, tsnn::TrainerKind::DataParallel}) {
    auto net = tsnn::Network<double>(netOptions());
    const auto before = net;
    tsnn::TrainerOptions t;
    t.kind = kind;
    t.workers = 2;
    t.epochs = 1;
    t.batchSize = 400;  // one step
    t.evolve = false;
    t.clipNorm = 1e-3;
    t.sgd.momentum = 0;
    t.sgd.weightDecay = 0;
    t.sgd.learningRate = 0.5;
    tsnn::data::Dataset<double> dd;
    dd.features = data.features.cast<double>();
    dd.labels = data.labels;
    dd.numClasses = 3;
    const auto history = tsnn::train(net, dd, nullptr, t);
    CHECK(history[0].clippedBatches == 1);
    // With plain SGD the step is -lr * g, so its norm is lr * clipNorm exactly after clipping.
    double sq = 0;
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      for (std::size_t k = 0; k < net.layer(l).weights().values().size(); ++k) {
        const double d = net.layer(l).weights().values()[k] - before.layer(l).weights().values()[k];
        sq += d * d;
      }
      sq += (net.layer(l).bias() - before.layer(l).bias()).squaredNorm();
    }
    CHECK(std::sqrt(sq) == Approx(0.5 * 1e-3).epsilon(1e-9));
  }
}

TEST_CASE("Guard options are validated", "[training][guards]") {
  tsnn::TrainerOptions t;
  t.clipNorm = -1;
  CHECK_THROWS_AS(t.validate(), tsnn::InvalidArgument);
  t = {};
  t.clipNorm = std::nan("");
  CHECK_THROWS_AS(t.validate(), tsnn::InvalidArgument);
  t = {};
  t.lrBackoff = 0;
  CHECK_THROWS_AS(t.validate(), tsnn::InvalidArgument);
  t = {};
  t.lrBackoff = 1.5;
  CHECK_THROWS_AS(t.validate(), tsnn::InvalidArgument);
  t = {};
  t.maxSkippedBatches = 0;
  CHECK_THROWS_WITH(t.validate(), Contains("max skipped batches"));
}

TEMPLATE_TEST_CASE("sumOfSquares matches a long double sum and propagates NaN and infinity",
                   "[training][guards][norm]", float, double) {
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
