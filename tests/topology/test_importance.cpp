// Neuron importance and neuron removal (topology/importance.hpp, Network::removeHiddenNeurons),
// with the remaps they report: both optimisers' state follows its connections and neurons under
// the new indices.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "support/optimizers.hpp"
#include "support/oracle.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/topology/importance.hpp"
#include "tsnn/training/train.hpp"

namespace {

tsnn::Network<double> makeNet(std::uint64_t seed, tsnn::ActivationKind act) {
  tsnn::NetworkOptions o;
  o.sizes = {9, 14, 11, 4};
  o.epsilon = 3;
  o.dropout = 0;
  o.hiddenActivation = act;
  o.seed = seed;
  tsnn::Network<double> net(o);
  tsnn::Rng rng(seed + 1);
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    for (auto& b : net.layer(l).bias()) b = rng.uniform(-0.5, 0.5);
  }
  return net;
}

// Empties the incoming row of the given neurons of hidden layer h.
void clearRows(tsnn::Network<double>& net, std::size_t h, const std::vector<int>& rows) {
  auto& layer = net.layer(h);
  const auto& w = layer.weights();
  tsnn::CooMatrix<double> coo(w.rows(), w.cols());
  for (int r = 0; r < w.rows(); ++r) {
    if (std::find(rows.begin(), rows.end(), r) != rows.end()) continue;
    for (int k = w.rowBegin(r); k < w.rowEnd(r); ++k)
      coo.push(r, w.colIdx()[static_cast<std::size_t>(k)], w.values()[static_cast<std::size_t>(k)]);
  }
  layer.setTopology(tsnn::toCsr(coo));
}

// Optimiser state of every connection and neuron of \p net keyed by original neuron ids:
// (layer, original row, original column) and (layer, original row).
template <class Scalar>
struct StateByIds {
  std::map<std::tuple<std::size_t, long long, long long>, std::vector<Scalar>> connections;
  std::map<std::pair<std::size_t, long long>, std::vector<Scalar>> neurons;
};
template <class Scalar, class Optimizer>
StateByIds<Scalar> stateByIds(const Optimizer& opt, const tsnn::Network<Scalar>& net) {
  StateByIds<Scalar> out;
  auto id = [&](std::size_t hidden, long long i) {
    return hidden + 1 < net.numLayers() ? net.neuronIds(hidden)[static_cast<std::size_t>(i)] : i;
  };
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    for (const auto& [pos, s] : tsnn::test::stateByConnection(opt, net, l))
      out.connections[{l, id(l, pos.first), l == 0 ? pos.second : id(l - 1, pos.second)}] = s;
    const auto n = tsnn::test::stateByNeuron(opt, l);
    for (std::size_t j = 0; j < n.size(); ++j)
      out.neurons[{l, id(l, static_cast<long long>(j))}] = n[j];
  }
  return out;
}

// n samples of 9 normal features, labelled by the largest of the first four.
tsnn::data::Dataset<double> fourClasses(Eigen::Index n, std::uint64_t seed) {
  tsnn::Rng rng(seed);
  tsnn::data::Dataset<double> d;
  d.numClasses = 4;
  d.features.resize(n, 9);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < 9; ++j) d.features(i, j) = rng.normal();
    Eigen::Index label;
    d.features.row(i).head(4).maxCoeff(&label);
    d.labels.push_back(static_cast<std::int32_t>(label));
  }
  return d;
}

}  // namespace

TEST_CASE("neuronImportance sums the magnitudes of each neuron's incoming weights",
          "[topology][importance]") {
  auto net = makeNet(3, tsnn::ActivationKind::AllReLU);
  const auto imp = tsnn::neuronImportance(net.layer(1));
  const Eigen::MatrixXd dense = tsnn::toDense(net.layer(1).weights());
  REQUIRE(imp.size() == 11);
  for (int j = 0; j < 11; ++j)
    CHECK(imp[static_cast<std::size_t>(j)] == Approx(dense.row(j).cwiseAbs().sum()).margin(1e-15));
}

TEST_CASE("percentileOf interpolates between order statistics like numpy",
          "[topology][importance]") {
  // numpy.percentile([5, 1, 4, 2, 3], p): p=0 -> 1, 20 -> 1.8, 50 -> 3, 100 -> 5
  const std::vector<double> v{5, 1, 4, 2, 3};
  CHECK(tsnn::percentileOf(v, 0) == 1.0);
  CHECK(tsnn::percentileOf(v, 20) == Approx(1.8).epsilon(1e-15));
  CHECK(tsnn::percentileOf(v, 50) == 3.0);
  CHECK(tsnn::percentileOf(v, 100) == 5.0);
  CHECK_THROWS_AS(tsnn::percentileOf({}, 10), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::percentileOf(v, 101), tsnn::InvalidArgument);
  // At or below the threshold; all-equal importances keep one neuron.
  CHECK(tsnn::unimportantNeurons({5, 1, 4, 2, 3}, 20) == std::vector<long long>{1});
  CHECK(tsnn::unimportantNeurons({2, 2, 2}, 50) == std::vector<long long>{1, 2});
  // Removed neurons count at importance 0: {0, 1, 2, 3, 4, 5} at 50 -> 2.5.
  CHECK(tsnn::unimportantNeurons({5, 1, 4, 2, 3}, 50, 1) == std::vector<long long>{1, 3});
  // Half the population already at 0: the 20th percentile is 0, and no live neuron is below it.
  CHECK(tsnn::unimportantNeurons({5, 1, 4, 2, 3}, 20, 5).empty());
  CHECK_THROWS_AS(tsnn::unimportantNeurons({1, 2}, 20, -1), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::unimportantNeurons({}, 20), tsnn::InvalidArgument);
}

TEST_CASE(
    "Removing neurons that have inputs changes the function exactly as zeroing their "
    "inputs does",
    "[topology][importance]") {
  // The reference prunes a neuron by zeroing its incoming weights; it then emits f(b_j). Removal
  // must give the same network function, bias folding included, for every activation.
  for (auto act : {tsnn::ActivationKind::AllReLU, tsnn::ActivationKind::Tanh,
                   tsnn::ActivationKind::Sigmoid, tsnn::ActivationKind::ReLU}) {
    INFO("activation " << tsnn::activationName(act));
    auto removed = makeNet(17, act);
    REQUIRE(removed.layer(0).weights().rowNonZeros(4) > 0);
    REQUIRE(removed.layer(1).weights().rowNonZeros(6) > 0);
    auto zeroed = removed;
    clearRows(zeroed, 0, {4, 9});
    clearRows(zeroed, 1, {6});
    removed.removeHiddenNeurons(0, {9, 4});
    removed.removeHiddenNeurons(1, {6});
    tsnn::Rng rng(7);
    tsnn::Network<double>::Features x(30, 9);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = rng.normal();
    const auto expected = zeroed.predictScores(x);
    const auto actual = removed.predictScores(x);
    CHECK((expected - actual).cwiseAbs().maxCoeff() < 1e-12);
    // ... and not what the network computed before (the neurons did contribute).
    CHECK((makeNet(17, act).predictScores(x) - actual).cwiseAbs().maxCoeff() > 1e-6);
  }
}

TEST_CASE(
    "Repeated pruning at one percentile does not compound: 60 prunings leave a converged "
    "layer wide",
    "[topology][importance]") {
  tsnn::NetworkOptions o;
  o.sizes = {40, 200, 150, 5};
  o.epsilon = 8;
  o.seed = 21;
  tsnn::Network<double> net(o);
  // The first pruning at the 20th percentile removes the lowest 20% of each layer (no ties:
  // the importances are sums of continuous random magnitudes), and only those.
  const std::vector<double> before = tsnn::neuronImportance(net.layer(0));
  const long long first = tsnn::pruneUnimportantNeurons(net, 20);
  std::vector<char> kept(200, 0);
  for (long long id : net.neuronIds(0)) kept[static_cast<std::size_t>(id)] = 1;
  double lowestKept = 1e300, highestRemoved = 0;
  for (std::size_t j = 0; j < 200; ++j) {
    if (kept[j])
      lowestKept = std::min(lowestKept, before[j]);
    else
      highestRemoved = std::max(highestRemoved, before[j]);
  }
  CHECK(highestRemoved < lowestKept);
  CHECK(net.layer(0).outputs() == 160);
  CHECK(net.layer(1).outputs() == 120);
  CHECK(first == 70);
  CHECK(net.originalWidth(0) == 200);
  CHECK(net.originalWidth(1) == 150);
  // A converged network changes little between prunings: a small multiplicative jitter of every
  // surviving weight, then pruning again, 59 more times.
  tsnn::Rng rng(5);
  for (int i = 1; i < 60; ++i) {
    for (std::size_t l = 0; l + 1 < net.numLayers(); ++l)
      for (auto& v : net.layer(l).values()) v *= rng.uniform(0.97, 1.03);
    tsnn::pruneUnimportantNeurons(net, 20);
  }
  // Taking the percentile over the survivors alone would leave 200 * 0.8^60 < 1 neuron. The 20%
  // at importance 0 sit below every survivor, so nothing more goes.
  CHECK(net.layer(0).outputs() == 160);
  CHECK(net.layer(1).outputs() == 120);
}

TEST_CASE("Removing neurons without incoming weights leaves the network's function unchanged",
          "[topology][importance]") {
  for (auto act :
       {tsnn::ActivationKind::AllReLU, tsnn::ActivationKind::Tanh, tsnn::ActivationKind::Sigmoid}) {
    INFO("activation " << tsnn::activationName(act));
    auto net = makeNet(11, act);
    clearRows(net, 0, {2, 5, 13});
    clearRows(net, 1, {0, 10});
    tsnn::Rng rng(99);
    tsnn::Network<double>::Features x(25, 9);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = rng.normal();
    const auto before = net.predictScores(x);
    const long long nnz = net.nonZeros();
    const auto r0 = net.removeHiddenNeurons(0, {13, 2, 5});
    const auto r1 = net.removeHiddenNeurons(1, {10, 0});
    const auto after = net.predictScores(x);
    CHECK((before - after).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(net.sizes() == std::vector<long long>{9, 11, 9, 4});
    CHECK(net.options().sizes == net.sizes());
    CHECK(net.hiddenNeurons() == 20);
    CHECK(net.neuronIds(0) == std::vector<long long>{0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12});
    CHECK(net.neuronIds(1) == std::vector<long long>{1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(net.nonZeros() < nnz);  // the outgoing connections went too
    for (std::size_t l = 0; l < net.numLayers(); ++l) CHECK(net.layer(l).weights().check().empty());
    // Each removal changed its layer (rows too) and the next one (columns only).
    REQUIRE(r0.layers.size() == 3);
    REQUIRE((r0.layers[0] && r0.layers[1] && !r0.layers[2]));
    CHECK(r0.layers[0]->rows == std::vector<int>{0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12});
    CHECK(!r0.layers[1]->rows);
    REQUIRE((!r1.layers[0] && r1.layers[1] && r1.layers[2]));
    CHECK(r1.layers[1]->rows == std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(r1.layers[1]->from == r0.layers[1]->to);
    CHECK(r1.layers[2]->to == net.layer(2).weights().patternId());
    CHECK(r1.layers[1]->entries.size() == static_cast<std::size_t>(net.layer(1).nonZeros()));
    // Nothing removed, nothing changed.
    const auto none = net.removeHiddenNeurons(0, {});
    CHECK((!none.layers[0] && !none.layers[1] && !none.layers[2]));
  }
}

TEMPLATE_TEST_CASE(
    "Surviving connections and neurons keep their weight and optimiser state under "
    "the new indices",
    "[topology][importance][optim]", tsnn::test::SgdOf<double>, tsnn::test::AdamOf<double>) {
  auto net = makeNet(5, tsnn::ActivationKind::AllReLU);
  auto opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, 55);
  const StateByIds<double> stateBefore = stateByIds(opt, net);
  // (original row, original col) -> weight of layer 1, whose rows and columns both shrink when
  // neurons of hidden layers 1 and 0 go.
  std::map<std::pair<long long, long long>, double> was;
  const auto& w = net.layer(1).weights();
  for (int r = 0; r < w.rows(); ++r)
    for (int k = w.rowBegin(r); k < w.rowEnd(r); ++k)
      was[{r, w.colIdx()[static_cast<std::size_t>(k)]}] = w.values()[static_cast<std::size_t>(k)];
  opt.remap(net.removeHiddenNeurons(0, {0, 7}), net);
  opt.remap(net.removeHiddenNeurons(1, {3}), net);
  // Every connection and neuron left has its old state, found by original ids.
  const StateByIds<double> stateAfter = stateByIds(opt, net);
  std::size_t found = 0;
  for (const auto& [key, s] : stateAfter.connections) {
    const auto it = stateBefore.connections.find(key);
    REQUIRE(it != stateBefore.connections.end());
    CHECK(s == it->second);
    ++found;
  }
  CHECK(found == static_cast<std::size_t>(net.nonZeros()));
  for (const auto& [key, s] : stateAfter.neurons) CHECK(s == stateBefore.neurons.at(key));
  CHECK(stateAfter.neurons.size() == stateBefore.neurons.size() - 3);
  const auto& v = net.layer(1).weights();
  std::size_t seen = 0;
  for (int r = 0; r < v.rows(); ++r)
    for (int k = v.rowBegin(r); k < v.rowEnd(r); ++k) {
      const long long orow = net.neuronIds(1)[static_cast<std::size_t>(r)];
      const long long ocol =
          net.neuronIds(0)[static_cast<std::size_t>(v.colIdx()[static_cast<std::size_t>(k)])];
      const auto it = was.find({orow, ocol});
      REQUIRE(it != was.end());
      CHECK(v.values()[static_cast<std::size_t>(k)] == it->second);
      ++seen;
    }
  std::size_t expected = 0;
  for (const auto& e : was)
    if (e.first.first != 3 && e.first.second != 0 && e.first.second != 7) ++expected;
  CHECK(seen == expected);
  // The optimiser steps on the narrower network.
  auto g = net.makeGradients();
  CHECK_NOTHROW(opt.step(net, g));
}

TEMPLATE_TEST_CASE(
    "pruneUnimportantNeurons narrows every hidden layer, its remap carries the "
    "optimiser state, and the network still trains",
    "[topology][importance][optim]", tsnn::test::SgdOf<double>, tsnn::test::AdamOf<double>) {
  auto net = makeNet(8, tsnn::ActivationKind::AllReLU);
  auto opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, 88);
  const StateByIds<double> stateBefore = stateByIds(opt, net);
  tsnn::NetworkRemap<int> remap;
  const long long removed = tsnn::pruneUnimportantNeurons(net, 20, &remap);
  CHECK(removed >= 2);
  CHECK(net.hiddenNeurons() == 25 - removed);
  // Layer 1 changed twice (columns, then rows): one composed remap takes the state there.
  opt.remap(remap, net);
  const StateByIds<double> stateAfter = stateByIds(opt, net);
  CHECK(stateAfter.connections.size() == static_cast<std::size_t>(net.nonZeros()));
  for (const auto& [key, s] : stateAfter.connections) CHECK(s == stateBefore.connections.at(key));
  for (const auto& [key, s] : stateAfter.neurons) CHECK(s == stateBefore.neurons.at(key));
  // A forward and backward pass still fit together after the change.
  tsnn::Activations<double> x = tsnn::Activations<double>::Random(6, 9);
  std::vector<std::int32_t> y{0, 1, 2, 3, 0, 1};
  tsnn::Workspace<double> ws;
  auto g = net.makeGradients();
  net.forward(x, ws, tsnn::PassOptions::training(0));
  const auto s = net.backward(x, y.data(), ws, g, 1.0 / 6);
  CHECK(std::isfinite(s.lossSum));
  CHECK_NOTHROW(opt.step(net, g));
}

TEST_CASE("removeHiddenNeurons and ImportancePruning reject bad arguments",
          "[topology][importance]") {
  auto net = makeNet(2, tsnn::ActivationKind::AllReLU);
  CHECK_THROWS_AS(net.removeHiddenNeurons(2, {0}), tsnn::InvalidArgument);  // output layer
  CHECK_THROWS_AS(net.removeHiddenNeurons(0, {14}), tsnn::InvalidArgument);
  CHECK_THROWS_AS(net.removeHiddenNeurons(0, {-1}), tsnn::InvalidArgument);
  CHECK_THROWS_AS(net.removeHiddenNeurons(0, {3, 3}), tsnn::InvalidArgument);
  std::vector<int> all(14);
  for (int j = 0; j < 14; ++j) all[static_cast<std::size_t>(j)] = j;
  CHECK_THROWS_WITH(net.removeHiddenNeurons(0, all), Catch::Contains("empty"));
  CHECK(net.sizes() == std::vector<long long>{9, 14, 11, 4});  // nothing changed
  tsnn::ImportancePruning p;
  CHECK(!p.due(199));
  CHECK(p.due(200));
  CHECK(!p.due(205));
  CHECK(p.due(210));
  p.percentile = 100;
  CHECK_THROWS_AS(p.validate(), tsnn::InvalidArgument);
  p = {};
  p.period = 0;
  CHECK_THROWS_AS(p.validate(), tsnn::InvalidArgument);
}

TEST_CASE("Trainers prune neurons at the epochs the policy selects, before SET",
          "[topology][importance][training]") {
  const auto d = fourClasses(240, 31);
  tsnn::TrainerOptions t;
  t.epochs = 6;
  t.batchSize = 40;
  t.importancePruning = true;
  t.pruning.startEpoch = 2;
  t.pruning.period = 3;
  t.pruning.percentile = 10;
  for (const auto optimizer : {tsnn::OptimizerKind::Sgd, tsnn::OptimizerKind::Adam}) {
    INFO("optimizer " << tsnn::optimizerName(optimizer));
    t.optimizer = optimizer;
    std::vector<std::vector<tsnn::EpochRecord>> runs;
    std::vector<tsnn::Network<double>> nets;
    for (auto kind : {tsnn::TrainerKind::Sequential, tsnn::TrainerKind::DataParallel}) {
      auto net = makeNet(4, tsnn::ActivationKind::AllReLU);
      t.kind = kind;
      t.workers = 1;
      runs.push_back(tsnn::train(net, d, &d, t));
      nets.push_back(net);
    }
    const auto& h = runs[0];
    REQUIRE(h.size() == 6);
    for (const auto& r : h) {
      INFO("epoch " << r.epoch);
      // Epoch 5's pruning runs too, but it removes only neurons that fell below the threshold
      // since epoch 2 (it does not compound), which may be none.
      if (r.epoch != 2 && r.epoch != 5) CHECK(r.neuronsRemoved == 0);
      CHECK(std::isfinite(r.trainLoss));
    }
    CHECK(h[1].neuronsRemoved >= 2);  // the 10th percentile of 14 and of 11 neurons
    CHECK(h.back().hiddenNeurons == 25 - h[1].neuronsRemoved - h[4].neuronsRemoved);
    CHECK(nets[0].hiddenNeurons() == h.back().hiddenNeurons);
    // Data-parallel with one worker makes exactly the same run.
    CHECK(nets[1].sizes() == nets[0].sizes());
    for (std::size_t l = 0; l < nets[0].numLayers(); ++l)
      CHECK(nets[1].layer(l).weights().values() == nets[0].layer(l).weights().values());
  }
}

TEST_CASE("The trainer's topology step is pruning, then SET on what is left",
          "[topology][importance][training]") {
  // After epoch 1 the trainer prunes, then evolves, with the network's own random stream. The
  // same network trained for one epoch (the last, so with no topology step), then pruned and
  // evolved by hand in that order, must be the trainer's network after epoch 1, bit for bit.
  const auto d = fourClasses(160, 41);
  tsnn::TrainerOptions t;
  t.batchSize = 40;
  t.importancePruning = true;
  t.pruning.startEpoch = 1;
  t.pruning.period = 1;
  t.pruning.percentile = 30;
  t.kind = tsnn::TrainerKind::Sequential;

  auto trained = makeNet(6, tsnn::ActivationKind::AllReLU);
  std::optional<tsnn::Network<double>> afterEpoch1;
  tsnn::TrainerCallbacks cb;
  cb.onEpoch = [&](const tsnn::EpochRecord& r) {
    if (r.epoch == 1) afterEpoch1 = trained;
  };
  t.epochs = 2;
  tsnn::train(trained, d, nullptr, t, cb);
  REQUIRE(afterEpoch1);

  auto byHand = makeNet(6, tsnn::ActivationKind::AllReLU);
  t.epochs = 1;
  tsnn::train(byHand, d, nullptr, t);
  const long long removed = tsnn::pruneUnimportantNeurons(byHand, 30);
  CHECK(removed >= 6);
  tsnn::evolveHiddenLayers(byHand, t.zeta);

  REQUIRE(afterEpoch1->sizes() == byHand.sizes());
  for (std::size_t l = 0; l < byHand.numLayers(); ++l) {
    INFO("layer " << l);
    CHECK(afterEpoch1->layer(l).weights().rowPtr() == byHand.layer(l).weights().rowPtr());
    CHECK(afterEpoch1->layer(l).weights().colIdx() == byHand.layer(l).weights().colIdx());
    CHECK(afterEpoch1->layer(l).weights().values() == byHand.layer(l).weights().values());
    CHECK(afterEpoch1->layer(l).bias() == byHand.layer(l).bias());
  }
}

TEST_CASE(
    "evolveHiddenLayers replaces a zeta fraction of every hidden layer and never touches "
    "the output layer",
    "[topology][set][training]") {
  tsnn::NetworkOptions o;
  o.sizes = {60, 80, 70, 10};
  o.epsilon = 10;
  o.seed = 12;
  tsnn::Network<double> net(o);
  const auto before = net;
  tsnn::evolveHiddenLayers(net, 0.3);
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    INFO("layer " << l);
    const auto& a = before.layer(l).weights();
    const auto& b = net.layer(l).weights();
    REQUIRE(b.nonZeros() == a.nonZeros());
    long long moved = 0;
    for (int r = 0; r < b.rows(); ++r)
      for (int k = b.rowBegin(r); k < b.rowEnd(r); ++k)
        moved += a.find(r, b.colIdx()[static_cast<std::size_t>(k)]) < 0;
    const double fraction = static_cast<double>(moved) / static_cast<double>(b.nonZeros());
    if (l + 1 < net.numLayers()) {
      // 30% go; a few regrow where a removed one was (a density of at most 0.3 here).
      CHECK(fraction > 0.18);
      CHECK(fraction <= 0.3);
    } else {
      CHECK(moved == 0);
      CHECK(b.values() == a.values());
    }
  }
}
