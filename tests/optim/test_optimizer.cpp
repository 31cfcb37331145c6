// Tests for tsnn/optim/optimizer.hpp (with optimizer_state.hpp and make_optimizer.hpp), for both
// optimisers: state is created at the first step; remap() moves every array of a layer along a
// hand-made pattern change and refuses remaps that do not fit, leaving the state as it was;
// setState() refuses state of another kind, scalar type, shape or pattern, or values the
// optimiser cannot hold; state() and clone() copy exactly; makeOptimizer, parseOptimizer and the
// names.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "support/optimizers.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/make_optimizer.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/sparse/pattern_remap.hpp"

namespace {

using Csr = tsnn::CsrMatrix<double, std::int32_t>;
using Layer = tsnn::SparseLinear<double, std::int32_t>;
using Net = tsnn::Network<double, std::int32_t>;

// 3 -> 2 -> 2: layer 0 has entries (0,0) (0,2) (1,1) (1,2), layer 1 is dense.
Net handNetwork() {
  const Csr w0(2, 3, {0, 2, 4}, {0, 2, 1, 2}, {0.5, -0.25, 1.0, 0.75});
  const Csr w1(2, 2, {0, 2, 4}, {0, 1, 0, 1}, {1.0, -1.0, 0.5, 0.25});
  tsnn::NetworkOptions o;
  o.dropout = 0;
  return Net(o, {Layer(w0, Eigen::VectorXd::Zero(2)), Layer(w1, Eigen::VectorXd::Zero(2))});
}

// Every array of the optimiser as (array, layer) -> values, for comparisons.
std::vector<std::vector<double>> allArrays(const tsnn::Optimizer<double>& opt) {
  std::vector<std::vector<double>> out;
  for (std::size_t l = 0; l < opt.numLayers(); ++l)
    for (std::size_t i = 0; i < opt.slots(); ++i) {
      out.push_back(opt.layerState(l).entries[i]);
      out.push_back(opt.layerState(l).rows[i]);
    }
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "An optimiser's state is created at zero at the first step and a remap before "
    "it has nothing to move",
    "[optim][optimizer]", tsnn::test::SgdOf<double>, tsnn::test::AdamOf<double>) {
  Net net = handNetwork();
  auto opt = TestType::make();
  CHECK(opt.numLayers() == 0);
  CHECK(opt.bytes() == 0);
  CHECK(opt.state().empty());
  // A pattern change before any state exists: nothing to do, and no error.
  tsnn::PatternRemap<std::int32_t> r;
  r.from = net.layer(0).weights().patternId();
  net.layer(0).setTopology(Csr(2, 3, {0, 1, 2}, {1, 0}, {1.0, 2.0}));
  r.to = net.layer(0).weights().patternId();
  r.entries = {-1, -1};
  CHECK_NOTHROW(opt.remap(0, r, net));
  auto g = net.makeGradients();
  opt.step(net, g);
  REQUIRE(opt.numLayers() == 2);
  CHECK(opt.steps() == 1);
  CHECK(opt.layerState(0).pattern == net.layer(0).weights().patternId());
  CHECK(opt.layerState(0).entries[0].size() == 2);
  CHECK(opt.bytes() == opt.slots() * (2 + 2 + 4 + 2) * sizeof(double));
  opt.reset(net);
  CHECK(opt.steps() == 0);
  for (const auto& a : allArrays(opt))
    for (double v : a) CHECK(v == 0);
}

TEMPLATE_TEST_CASE("remap moves every state array of a layer along its pattern change",
                   "[optim][optimizer][remap]", tsnn::test::SgdOf<double>,
                   tsnn::test::AdamOf<double>) {
  Net net = handNetwork();
  auto opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, 31);
  const auto before0 = opt.layerState(0);
  const auto before1 = opt.layerState(1);
  // Layer 0 becomes a single row (old row 1) with entries (1) new and (2) kept from old entry 3;
  // a row is removed, so layer 1 loses column 0 (its entries 0 and 2).
  tsnn::PatternRemap<std::int32_t> r0, r1;
  r0.from = net.layer(0).weights().patternId();
  r1.from = net.layer(1).weights().patternId();
  net.layer(0).reshape(Csr(1, 3, {0, 2}, {1, 2}, {0.0, 0.75}), Eigen::VectorXd::Zero(1));
  net.layer(1).setTopology(Csr(2, 1, {0, 1, 2}, {0, 0}, {-1.0, 0.25}));
  r0.to = net.layer(0).weights().patternId();
  r1.to = net.layer(1).weights().patternId();
  r0.entries = {-1, 3};
  r0.rows = std::vector<std::int32_t>{1};
  r1.entries = {1, 3};
  tsnn::NetworkRemap<std::int32_t> remap(2);
  remap.add(0, r0);
  remap.add(1, r1);
  opt.remap(remap, net);
  for (std::size_t i = 0; i < opt.slots(); ++i) {
    INFO("array " << i);
    CHECK(opt.layerState(0).entries[i] == std::vector<double>{0, before0.entries[i][3]});
    CHECK(opt.layerState(0).rows[i] == std::vector<double>{before0.rows[i][1]});
    CHECK(opt.layerState(1).entries[i] ==
          std::vector<double>{before1.entries[i][1], before1.entries[i][3]});
    CHECK(opt.layerState(1).rows[i] == before1.rows[i]);
  }
  CHECK(opt.layerState(0).pattern == r0.to);
  auto g = net.makeGradients();
  CHECK_NOTHROW(opt.step(net, g));
}

TEMPLATE_TEST_CASE("remap refuses a change that does not fit and leaves the state as it was",
                   "[optim][optimizer][remap][errors]", tsnn::test::SgdOf<double>,
                   tsnn::test::AdamOf<double>) {
  Net net = handNetwork();
  auto opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, 32);
  const auto before = allArrays(opt);
  tsnn::PatternRemap<std::int32_t> good;
  good.from = net.layer(0).weights().patternId();
  net.layer(0).setTopology(Csr(2, 3, {0, 1, 2}, {0, 1}, {1.0, 2.0}));
  good.to = net.layer(0).weights().patternId();
  good.entries = {0, 2};
  struct Case {
    const char* what;
    void (*change)(tsnn::PatternRemap<std::int32_t>&);
    const char* expected;
  };
  const Case cases[] = {
      {"another start", [](auto& r) { r.from += 100; }, "goes from pattern"},
      {"another end", [](auto& r) { r.to += 100; }, "goes from pattern"},
      {"too few entries", [](auto& r) { r.entries.pop_back(); }, "makes 1 connections"},
      {"an old entry out of range", [](auto& r) { r.entries[1] = 4; },
       "new position 1 continues old position 4"},
      {"rows of another count", [](auto& r) { r.rows = std::vector<std::int32_t>{0}; },
       "and 1 neurons"},
      {"a row out of range",
       [](auto& r) {
         r.rows = std::vector<std::int32_t>{0, 2};
       },
       "continues old position 2"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto r = good;
    c.change(r);
    CHECK_THROWS_WITH(opt.remap(0, r, net),
                      Catch::StartsWith("tsnn: Optimizer::remap()") && Catch::Contains(c.expected));
    CHECK(allArrays(opt) == before);
  }
  CHECK_THROWS_WITH(opt.remap(tsnn::NetworkRemap<std::int32_t>(3), net),
                    Catch::Contains("the remap has 3 layers, the network 2"));
  opt.remap(0, good, net);
  CHECK(opt.layerState(0).entries[0][1] == before[0][2]);
}

TEMPLATE_TEST_CASE("setState refuses state that does not fit and keeps its own",
                   "[optim][optimizer][errors]", tsnn::test::SgdOf<double>,
                   tsnn::test::AdamOf<double>) {
  const Net net = handNetwork();
  auto opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, 33);
  const tsnn::OptimizerState good = opt.state();
  const auto before = allArrays(opt);
  const bool adam = opt.kind() == tsnn::OptimizerKind::Adam;
  struct Case {
    const char* what;
    std::function<void(tsnn::OptimizerState&)> change;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"another kind",
       [&](auto& s) { s.kind = adam ? tsnn::OptimizerKind::Sgd : tsnn::OptimizerKind::Adam; },
       adam ? "the state is sgd state, this optimizer is adam"
            : "the state is adam state, this optimizer is sgd"},
      {"another scalar type",
       [](auto& s) { s.layers = std::vector<tsnn::LayerOptimizerState<float>>(2); },
       "holds float arrays, not double"},
      {"a layer too many",
       [](auto& s) { s.template layersOf<double>().push_back(s.template layersOf<double>()[0]); },
       "the state has 3 layers, the network 2"},
      {"an array too few", [](auto& s) { s.template layersOf<double>()[1].entries.pop_back(); },
       "state arrays"},
      {"an array too short", [](auto& s) { s.template layersOf<double>()[0].rows[0].pop_back(); },
       "state array 0 of layer 0 has 4 connection and 1 neuron entries"},
      {"another pattern", [](auto& s) { s.template layersOf<double>()[1].pattern += 1000; },
       "its topology changed after the state was taken"},
      {"a NaN",
       [](auto& s) {
         s.template layersOf<double>()[1].entries[0][2] = std::numeric_limits<double>::quiet_NaN();
       },
       "state array 0 of layer 1 holds nan at 2"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto s = good;
    c.change(s);
    CHECK_THROWS_WITH(opt.setState(s, net), Catch::StartsWith("tsnn: Optimizer::setState()") &&
                                                Catch::Contains(c.expected));
    CHECK(allArrays(opt) == before);
    CHECK(opt.steps() == good.steps);
  }
  if (adam) {
    auto s = good;
    s.layersOf<double>()[0].rows[1][1] = -1e-3;
    CHECK_THROWS_WITH(opt.setState(s, net), Catch::Contains("Adam's second moment of layer 0"));
  }
  // A state read from a file (pattern 0) is checked by its sizes only, and bound to the layers.
  auto s = good;
  for (auto& l : s.layersOf<double>()) l.pattern = 0;
  auto other = TestType::make();
  other.setState(s, net);
  CHECK(allArrays(other) == before);
  CHECK(other.layerState(1).pattern == net.layer(1).weights().patternId());
  // An empty state leaves none.
  other.setState(tsnn::OptimizerState{}, net);
  CHECK(other.numLayers() == 0);
}

TEMPLATE_TEST_CASE("state() and clone() copy the state exactly and independently",
                   "[optim][optimizer]", tsnn::test::SgdOf<double>, tsnn::test::AdamOf<double>) {
  Net net = handNetwork();
  auto opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, 34);
  opt.setLearningRate(0.0125);
  const std::unique_ptr<tsnn::Optimizer<double>> copy = opt.clone();
  CHECK(copy->kind() == opt.kind());
  CHECK(copy->name() == opt.name());
  CHECK(copy->learningRate() == 0.0125);
  CHECK(copy->steps() == opt.steps());
  CHECK(allArrays(*copy) == allArrays(opt));
  const tsnn::OptimizerState s = opt.state();
  CHECK(s.kind == opt.kind());
  CHECK(s.steps == 7);
  CHECK(s.numLayers() == 2);
  CHECK(s.holds<double>());
  CHECK(!s.holds<float>());
  CHECK_THROWS_WITH(s.layersOf<float>(), Catch::Contains("holds double arrays, not float"));
  // Stepping the original leaves the copy alone.
  auto g = net.makeGradients();
  for (auto& w : g.weights)
    for (auto& v : w) v = 0.5;
  const auto frozen = allArrays(*copy);
  opt.step(net, g);
  CHECK(allArrays(*copy) == frozen);
  CHECK(allArrays(opt) != frozen);
  CHECK(copy->steps() + 1 == opt.steps());
}

TEST_CASE("makeOptimizer, parseOptimizer and the optimiser names", "[optim][optimizer]") {
  tsnn::SgdOptions sgd;
  sgd.learningRate = 0.2;
  tsnn::AdamOptions adam;
  adam.learningRate = 3e-4;
  const auto s = tsnn::makeOptimizer<float>(tsnn::OptimizerKind::Sgd, sgd, adam);
  const auto a = tsnn::makeOptimizer<float>(tsnn::OptimizerKind::Adam, sgd, adam);
  CHECK(s->kind() == tsnn::OptimizerKind::Sgd);
  CHECK(s->name() == "sgd");
  CHECK(s->learningRate() == 0.2);
  CHECK(s->slots() == 1);
  CHECK(a->kind() == tsnn::OptimizerKind::Adam);
  CHECK(a->name() == "adam");
  CHECK(a->learningRate() == 3e-4);
  CHECK(a->slots() == 2);
  // Only the selected optimiser's options are read (and checked).
  adam.beta1 = 2;
  CHECK_NOTHROW(tsnn::makeOptimizer<float>(tsnn::OptimizerKind::Sgd, sgd, adam));
  CHECK_THROWS_WITH(tsnn::makeOptimizer<float>(tsnn::OptimizerKind::Adam, sgd, adam),
                    Catch::Contains("beta1"));
  CHECK_THROWS_WITH(tsnn::makeOptimizer<float>(static_cast<tsnn::OptimizerKind>(9), sgd, adam),
                    Catch::Contains("makeOptimizer(): unknown optimizer kind 9"));
  CHECK(tsnn::parseOptimizer("sgd") == tsnn::OptimizerKind::Sgd);
  CHECK(tsnn::parseOptimizer("adam") == tsnn::OptimizerKind::Adam);
  CHECK_THROWS_WITH(tsnn::parseOptimizer("Adam"),
                    Catch::StartsWith("tsnn: parseOptimizer(): unknown optimizer 'Adam'"));
  CHECK(std::string(tsnn::optimizerName(tsnn::OptimizerKind::Adam)) == "adam");
  CHECK(tsnn::optimizerSlots(tsnn::OptimizerKind::Sgd) == 1);
  CHECK(tsnn::optimizerSlots(tsnn::OptimizerKind::Adam) == 2);
}

TEMPLATE_TEST_CASE(
    "A fan-in reference steps each layer at lr times min(1, K / its mean real fan-in)",
    "[optim][optimizer][fan-in]", tsnn::test::SgdOf<double>, tsnn::test::AdamOf<double>) {
  // Layer 0: 2 neurons with 4 and 2 of 4 inputs (mean fan-in 3); layer 1: 2 x 2 dense (2).
  auto build = [] {
    const Csr w0(2, 4, {0, 4, 6}, {0, 1, 2, 3, 1, 3}, {0.5, -0.25, 1.0, 0.75, -0.5, 0.125});
    const Csr w1(2, 2, {0, 2, 4}, {0, 1, 0, 1}, {1.0, -1.0, 0.5, 0.25});
    tsnn::NetworkOptions o;
    o.dropout = 0;
    return Net(o, {Layer(w0, Eigen::VectorXd::Constant(2, 0.1)),
                   Layer(w1, Eigen::VectorXd::Constant(2, -0.2))});
  };
  Net scaled = build(), plain = build(), slow = build();
  auto g = scaled.makeGradients();
  g.weights[0] = {0.3, -0.1, 0.2, 0.4, -0.6, 0.05};
  g.weights[1] = {0.7, -0.2, 0.1, 0.9};
  g.bias[0] << 0.25, -0.5;
  g.bias[1] << -0.125, 0.375;
  const double lr = 0.1;
  auto withK = TestType::make(), without = TestType::make(), atLr = TestType::make();
  withK.setLearningRate(lr);
  without.setLearningRate(lr);
  // K = 1.5: layer 0 at lr * 1.5 / 3 = lr / 2, layer 1 at lr * 1.5 / 2 = 3 lr / 4.
  withK.setFanInReference(1.5);
  atLr.setLearningRate(lr * (1.5 / 3.0));
  for (int step = 0; step < 3; ++step) {
    withK.step(scaled, g);
    without.step(plain, g);
    atLr.step(slow, g);
  }
  CHECK(withK.layerRateScale(0) == 1.5 / 3.0);
  CHECK(withK.layerRateScale(1) == 1.5 / 2.0);
  CHECK(without.layerRateScale(0) == 1.0);
  // Layer 0 moved exactly as an optimiser at lr / 2 moves it, weights, biases and state.
  CHECK(scaled.layer(0).weights().values() == slow.layer(0).weights().values());
  CHECK(scaled.layer(0).bias() == slow.layer(0).bias());
  CHECK(withK.layerState(0).entries == atLr.layerState(0).entries);
  // Layer 1 moved less than at lr, and differently from lr / 2.
  CHECK(scaled.layer(1).weights().values() != plain.layer(1).weights().values());
  CHECK(scaled.layer(1).weights().values() != slow.layer(1).weights().values());
  // A reference at or above every fan-in changes nothing.
  Net same = build();
  auto high = TestType::make();
  high.setLearningRate(lr);
  high.setFanInReference(3.0);
  for (int step = 0; step < 3; ++step) high.step(same, g);
  for (std::size_t l = 0; l < 2; ++l) {
    CHECK(same.layer(l).weights().values() == plain.layer(l).weights().values());
    CHECK(same.layer(l).bias() == plain.layer(l).bias());
  }
  CHECK_THROWS_WITH(high.setFanInReference(-1),
                    Catch::StartsWith("tsnn: Optimizer::setFanInReference(): the reference "
                                      "fan-in must be >= 0 and finite, got -1"));
  // clone() keeps the reference.
  CHECK(withK.clone()->fanInReference() == 1.5);
}
