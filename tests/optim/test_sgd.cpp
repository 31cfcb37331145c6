// Tests for tsnn/optim/sgd.hpp: sgdUpdate against the header's formulas worked out by hand and
// iterated independently in long double, SgdOptions::validate, and the Sgd optimiser: its steps
// over a network are sgdUpdate on every layer bit for bit (whole or in the data-parallel
// trainer's slices), with the momentum it holds, and it refuses state that is out of step.
//
//   v <- mu v - lr g
//   w <- w + v - wd w                (classical)
//   w <- w + mu v - lr g - wd w      (Nesterov, v already updated)

#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/optimizers.hpp"
#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/sgd.hpp"
#include "tsnn/topology/set.hpp"

namespace {

tsnn::SgdOptions options(double lr, double mu, double wd, bool nesterov) {
  tsnn::SgdOptions o;
  o.learningRate = lr;
  o.momentum = mu;
  o.weightDecay = wd;
  o.nesterov = nesterov;
  return o;
}

// One step of the header's formulas for one parameter, in long double.
void referenceStep(long double& w, long double& v, long double g, const tsnn::SgdOptions& o) {
  const long double lr = o.learningRate, mu = o.momentum, wd = o.weightDecay;
  const long double wOld = w;
  v = mu * v - lr * g;
  if (o.nesterov)
    w = wOld + mu * v - lr * g - wd * wOld;
  else
    w = wOld + v - wd * wOld;
}

template <class Scalar>
tsnn::Network<Scalar> smallNetwork(std::uint64_t seed) {
  tsnn::NetworkOptions o;
  o.sizes = {9, 7, 6, 4};
  o.epsilon = 3;
  o.seed = seed;
  tsnn::Network<Scalar> net(o);
  std::mt19937_64 rng(seed + 1);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    for (Eigen::Index j = 0; j < net.layer(l).bias().size(); ++j)
      net.layer(l).bias()[j] = static_cast<Scalar>(u(rng));
  return net;
}

template <class Scalar>
void randomGradients(tsnn::Gradients<Scalar>& g, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(-1, 1);
  for (auto& w : g.weights)
    for (auto& v : w) v = static_cast<Scalar>(u(rng));
  for (auto& b : g.bias)
    for (Eigen::Index j = 0; j < b.size(); ++j) b[j] = static_cast<Scalar>(u(rng));
}

template <class Scalar>
double tol() {
  return std::is_same<Scalar, float>::value ? 1e-6 : 1e-15;
}

}  // namespace

TEMPLATE_TEST_CASE("sgdUpdate with classical momentum and decay gives the hand-computed values",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  // lr 0.1, mu 0.9, wd 0.01, w0 = 1, v0 = 0, gradients 0.5 then -0.2:
  //   v1 = -0.05,                      w1 = 1 - 0.05 - 0.01           = 0.94
  //   v2 = 0.9 * -0.05 + 0.02 = -0.025, w2 = 0.94 - 0.025 - 0.0094    = 0.9056
  const auto o = options(0.1, 0.9, 0.01, false);
  Scalar w = 1, v = 0;
  Scalar g = Scalar(0.5);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.05) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.94) <= tol<Scalar>());
  g = Scalar(-0.2);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.025) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.9056) <= tol<Scalar>());
}

TEMPLATE_TEST_CASE("sgdUpdate with Nesterov momentum and decay gives the hand-computed values",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  // Same setting with Nesterov:
  //   v1 = -0.05,  w1 = 1 + 0.9 * -0.05 - 0.05 - 0.01                     = 0.895
  //   v2 = -0.025, w2 = 0.895 + 0.9 * -0.025 + 0.02 - 0.01 * 0.895         = 0.88355
  const auto o = options(0.1, 0.9, 0.01, true);
  Scalar w = 1, v = 0;
  Scalar g = Scalar(0.5);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.05) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.895) <= tol<Scalar>());
  g = Scalar(-0.2);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.025) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.88355) <= tol<Scalar>());
}

TEMPLATE_TEST_CASE("sgdUpdate follows the formulas over several steps for many parameters",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(6601);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  const std::size_t n = 257;
  for (const auto& o : {options(0.05, 0.9, 0.0002, false), options(0.05, 0.9, 0.0002, true),
                        options(0.3, 0.0, 0.01, false), options(0.01, 0.5, 0.0, true)}) {
    INFO("lr " << o.learningRate << " mu " << o.momentum << " wd " << o.weightDecay << " nesterov "
               << o.nesterov);
    std::vector<Scalar> w(n), v(n), g(n);
    std::vector<long double> rw(n), rv(n);
    for (std::size_t k = 0; k < n; ++k) {
      w[k] = static_cast<Scalar>(u(rng));
      v[k] = static_cast<Scalar>(0.1 * u(rng));
      rw[k] = w[k];
      rv[k] = v[k];
    }
    for (int step = 0; step < 5; ++step) {
      for (std::size_t k = 0; k < n; ++k) g[k] = static_cast<Scalar>(u(rng));
      tsnn::sgdUpdate(w.data(), v.data(), g.data(), static_cast<std::ptrdiff_t>(n), o);
      for (std::size_t k = 0; k < n; ++k) referenceStep(rw[k], rv[k], g[k], o);
    }
    double errW = 0, errV = 0;
    for (std::size_t k = 0; k < n; ++k) {
      errW = std::max(errW, static_cast<double>(std::abs(static_cast<long double>(w[k]) - rw[k])));
      errV = std::max(errV, static_cast<double>(std::abs(static_cast<long double>(v[k]) - rv[k])));
      if (!std::isfinite(static_cast<double>(w[k])) || !std::isfinite(static_cast<double>(v[k])))
        errW = std::numeric_limits<double>::infinity();
    }
    CHECK(errW <= 10 * tol<Scalar>());
    CHECK(errV <= 10 * tol<Scalar>());
  }
}

TEMPLATE_TEST_CASE("Weight decay is decoupled: it neither scales with lr nor enters the momentum",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  // Zero gradient, zero momentum: v stays 0 and w shrinks by exactly the factor (1 - wd).
  const auto o = options(0.5, 0.9, 0.125, false);
  Scalar w = Scalar(2), v = Scalar(0), g = Scalar(0);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(v == Scalar(0));
  CHECK(w == Scalar(1.75));
}

TEMPLATE_TEST_CASE("sgdUpdate gives the same result serially and on three threads",
                   "[optim][sgd][openmp]", float, double) {
  using Scalar = TestType;
  const std::size_t n = 40000;  // above the size where the loop may go parallel
  std::mt19937_64 rng(tsnn::test::testSeed(6602));
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<Scalar> w(n), v(n), g(n);
  for (std::size_t k = 0; k < n; ++k) {
    w[k] = static_cast<Scalar>(u(rng));
    v[k] = static_cast<Scalar>(u(rng));
    g[k] = static_cast<Scalar>(u(rng));
  }
  auto w2 = w, v2 = v;
  const auto o = options(0.01, 0.9, 0.0002, true);
  // Three threads whatever the OpenMP default, so that the loop really runs in a region.
  tsnn::sgdUpdate(w.data(), v.data(), g.data(), static_cast<std::ptrdiff_t>(n), o,
                  tsnn::Threads::count(3));
  tsnn::sgdUpdate(w2.data(), v2.data(), g.data(), static_cast<std::ptrdiff_t>(n), o,
                  tsnn::Threads::serial());
  CHECK(w == w2);
  CHECK(v == v2);
}

TEST_CASE("SgdOptions defaults are valid", "[optim][sgd][options]") {
  CHECK_NOTHROW(tsnn::SgdOptions{}.validate());
  CHECK_NOTHROW(options(1e-4, 0.0, 0.0, false).validate());
  CHECK_NOTHROW(options(0.1, 0.99, 0.5, true).validate());
}

TEST_CASE("SgdOptions::validate rejects bad learning rates, momenta and decays",
          "[optim][sgd][options][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(options(0.0, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(-0.1, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(nan, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(inf, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 1.0, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 1.5, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, -0.1, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, nan, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.9, -1e-4, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.9, nan, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.9, 1.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.0, 0.0, true).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(options(-0.1, 0.9, 0.0, false).validate(),
                    Catch::StartsWith("tsnn: SgdOptions") && Catch::Contains("learning rate") &&
                        Catch::Contains("-0.1"));
  CHECK_THROWS_WITH(options(0.1, 1.0, 0.0, false).validate(), Catch::Contains("momentum"));
  CHECK_THROWS_WITH(options(0.1, 0.9, -1.0, false).validate(), Catch::Contains("weight decay"));
}

TEST_CASE("Sgd::step performs one SGD step on every weight and bias, its momentum in the optimizer",
          "[optim][sgd]") {
  const auto seed = tsnn::test::testSeed(9908);
  auto net = smallNetwork<double>(seed);
  auto g = net.makeGradients();
  std::mt19937_64 rng(seed + 2);
  randomGradients(g, rng);
  std::vector<std::vector<double>> w0;
  std::vector<Eigen::VectorXd> b0;
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    w0.push_back(net.layer(l).values());
    b0.push_back(net.layer(l).bias());
  }
  tsnn::Sgd<double> sgd(options(0.1, 0.5, 0.01, false));
  CHECK(sgd.numLayers() == 0);  // no state before the first step
  sgd.step(net, g);
  REQUIRE(sgd.numLayers() == net.numLayers());
  CHECK(sgd.steps() == 1);
  CHECK(sgd.slots() == 1);
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    // From zero momentum: v = -lr g and w = w0 - lr g - wd w0.
    std::vector<double> wantW(w0[l].size()), wantV(w0[l].size());
    for (std::size_t k = 0; k < w0[l].size(); ++k) {
      wantV[k] = -0.1 * g.weights[l][k];
      wantW[k] = w0[l][k] + wantV[k] - 0.01 * w0[l][k];
    }
    CHECK(tsnn::test::maxAbsDifference(net.layer(l).values(), wantW) <= 1e-15);
    CHECK(tsnn::test::maxAbsDifference(sgd.layerState(l).entries[0], wantV) <= 1e-15);
    const Eigen::VectorXd wantB = b0[l] - 0.1 * g.bias[l] - 0.01 * b0[l];
    CHECK(tsnn::test::maxAbsDifference(net.layer(l).bias(), wantB) <= 1e-15);
    CHECK(tsnn::test::maxAbsDifference(sgd.layerState(l).rows[0],
                                       Eigen::VectorXd(-0.1 * g.bias[l])) <= 1e-15);
  }
}

TEMPLATE_TEST_CASE("Sgd's steps are sgdUpdate on each layer's weights and biases, bit for bit",
                   "[optim][sgd]", float, double) {
  // The update the trainers made before optimisers owned their state: sgdUpdate on the values
  // with the layer's momentum (in parallel), then on the biases (serially).
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(6603);
  for (const bool nesterov : {false, true}) {
    auto net = smallNetwork<Scalar>(seed);
    auto manual = net;
    const auto o = options(0.05, 0.9, 0.0002, nesterov);
    tsnn::Sgd<Scalar> sgd(o);
    std::vector<std::vector<Scalar>> v(net.numLayers());
    std::vector<std::vector<Scalar>> bv(net.numLayers());
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      v[l].assign(static_cast<std::size_t>(net.layer(l).nonZeros()), Scalar(0));
      bv[l].assign(static_cast<std::size_t>(net.layer(l).outputs()), Scalar(0));
    }
    auto g = net.makeGradients();
    std::mt19937_64 rng(seed + 1);
    for (int step = 0; step < 4; ++step) {
      randomGradients(g, rng);
      sgd.step(net, g);
      for (std::size_t l = 0; l < manual.numLayers(); ++l) {
        auto& layer = manual.layer(l);
        tsnn::sgdUpdate(layer.values().data(), v[l].data(), g.weights[l].data(),
                        static_cast<std::ptrdiff_t>(layer.nonZeros()), o,
                        tsnn::Threads::automatic());
        tsnn::sgdUpdate(layer.bias().data(), bv[l].data(), g.bias[l].data(),
                        static_cast<std::ptrdiff_t>(layer.outputs()), o, tsnn::Threads::serial());
      }
    }
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      CHECK(tsnn::test::bitIdentical(net.layer(l).values(), manual.layer(l).values()));
      CHECK(tsnn::test::bitIdentical(net.layer(l).bias(), manual.layer(l).bias()));
      CHECK(tsnn::test::bitIdentical(sgd.layerState(l).entries[0], v[l]));
      CHECK(tsnn::test::bitIdentical(sgd.layerState(l).rows[0], bv[l]));
    }
    CHECK(sgd.steps() == 4);
  }
}

TEMPLATE_TEST_CASE("Updating slices in any order after beginStep equals one whole step",
                   "[optim][sgd][slices]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(6604);
  auto whole = smallNetwork<Scalar>(seed);
  auto sliced = whole;
  tsnn::Sgd<Scalar> a(options(0.05, 0.9, 0.0002, true)), b(options(0.05, 0.9, 0.0002, true));
  auto g = whole.makeGradients();
  std::mt19937_64 rng(seed + 1);
  for (int step = 0; step < 3; ++step) {
    randomGradients(g, rng);
    a.step(whole, g);
    b.beginStep(sliced, g);
    // Three slices per parameter array, last first, as threads may finish in any order.
    for (std::size_t l = sliced.numLayers(); l-- > 0;)
      for (const auto part : {tsnn::Parameters::Biases, tsnn::Parameters::Weights}) {
        const std::size_t n = part == tsnn::Parameters::Weights
                                  ? static_cast<std::size_t>(sliced.layer(l).nonZeros())
                                  : static_cast<std::size_t>(sliced.layer(l).outputs());
        for (std::size_t t = 3; t-- > 0;)
          b.updateSlice(sliced, g, l, part, n * t / 3, n * (t + 1) / 3);
      }
  }
  for (std::size_t l = 0; l < whole.numLayers(); ++l) {
    CHECK(tsnn::test::bitIdentical(whole.layer(l).values(), sliced.layer(l).values()));
    CHECK(tsnn::test::bitIdentical(whole.layer(l).bias(), sliced.layer(l).bias()));
    CHECK(tsnn::test::bitIdentical(a.layerState(l).entries[0], b.layerState(l).entries[0]));
    CHECK(tsnn::test::bitIdentical(a.layerState(l).rows[0], b.layerState(l).rows[0]));
  }
  CHECK(a.steps() == b.steps());
}

TEST_CASE("setLearningRate changes the rate of later steps and refuses bad rates",
          "[optim][sgd][errors]") {
  auto net = smallNetwork<double>(tsnn::test::testSeed(6605));
  tsnn::Sgd<double> sgd(options(0.1, 0.9, 0.0, false));
  CHECK(sgd.learningRate() == 0.1);
  sgd.setLearningRate(0.025);
  CHECK(sgd.learningRate() == 0.025);
  CHECK(sgd.options().learningRate == 0.1);
  auto g = net.makeGradients();
  std::mt19937_64 rng(1);
  randomGradients(g, rng);
  sgd.step(net, g);
  for (std::size_t k = 0; k < g.weights[0].size(); ++k)
    CHECK(sgd.layerState(0).entries[0][k] == -0.025 * g.weights[0][k]);
  for (const double bad : {0.0, -0.5, std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::infinity()})
    CHECK_THROWS_WITH(sgd.setLearningRate(bad),
                      Catch::StartsWith("tsnn: Optimizer::setLearningRate()") &&
                          Catch::Contains("positive and finite"));
  CHECK(sgd.learningRate() == 0.025);
  CHECK_THROWS_WITH(tsnn::Sgd<double>(options(0.1, 1.5, 0.0, false)),
                    Catch::StartsWith("tsnn: SgdOptions") && Catch::Contains("1.5"));
}

TEST_CASE(
    "A step refuses a layer whose pattern changed without a remap, or gradients of another "
    "shape, and leaves everything unchanged",
    "[optim][sgd][errors]") {
  auto net = smallNetwork<double>(tsnn::test::testSeed(6606));
  tsnn::Sgd<double> sgd;
  auto g = net.makeGradients();
  std::mt19937_64 rng(2);
  randomGradients(g, rng);
  sgd.step(net, g);
  // SET changes layer 1's pattern; its remap is not passed to the optimizer.
  tsnn::evolveSet(net.layer(1), 0.3, net.rng());
  const auto values = net.layer(0).values();
  const auto state = sgd.layerState(0).entries[0];
  CHECK_THROWS_WITH(sgd.step(net, g), Catch::StartsWith("tsnn: Optimizer::step(): layer 1") &&
                                          Catch::Contains("Optimizer::remap()"));
  CHECK(net.layer(0).values() == values);
  CHECK(sgd.layerState(0).entries[0] == state);
  CHECK(sgd.steps() == 1);
  // With the remap applied it steps again; a gradient of another shape is refused.
  tsnn::PatternRemap<std::int32_t> r;
  tsnn::evolveSet(net.layer(1), 0.3, net.rng(), tsnn::WeightInit::HeUniform, &r);
  CHECK_THROWS_AS(sgd.remap(1, r, net), tsnn::InvalidArgument);  // starts at the unseen pattern
  sgd.reset(net);
  CHECK_NOTHROW(sgd.step(net, g));
  g.weights[2].pop_back();
  CHECK_THROWS_WITH(sgd.step(net, g),
                    Catch::Contains("gradient of layer 2") && Catch::Contains("weights"));
}
