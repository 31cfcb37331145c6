// Neuron importance and neuron removal (topology/importance.hpp, Network::removeHiddenNeurons).
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <vector>

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
    for (auto& v : net.layer(l).velocity()) v = rng.uniform(-1, 1);
  }
  return net;
}

// Empties the incoming row of the given neurons of hidden layer h (momentum stays aligned).
void clearRows(tsnn::Network<double>& net, std::size_t h, const std::vector<int>& rows) {
  auto& layer = net.layer(h);
  const auto& w = layer.weights();
  tsnn::CooMatrix<double> coo(w.rows(), w.cols());
  std::vector<double> vel;
  for (int r = 0; r < w.rows(); ++r) {
    if (std::find(rows.begin(), rows.end(), r) != rows.end()) continue;
    for (int k = w.rowBegin(r); k < w.rowEnd(r); ++k) {
      coo.push(r, w.colIdx()[static_cast<std::size_t>(k)], w.values()[static_cast<std::size_t>(k)]);
      vel.push_back(layer.velocity()[static_cast<std::size_t>(k)]);
    }
  }
  layer.setTopology(tsnn::toCsr(coo), vel);
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
    net.removeHiddenNeurons(0, {13, 2, 5});
    net.removeHiddenNeurons(1, {10, 0});
    const auto after = net.predictScores(x);
    CHECK((before - after).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(net.sizes() == std::vector<long long>{9, 11, 9, 4});
    CHECK(net.options().sizes == net.sizes());
    CHECK(net.hiddenNeurons() == 20);
    CHECK(net.neuronIds(0) == std::vector<long long>{0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12});
    CHECK(net.neuronIds(1) == std::vector<long long>{1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(net.nonZeros() < nnz);  // the outgoing connections went too
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      CHECK(net.layer(l).weights().check().empty());
      CHECK(net.layer(l).velocity().size() == static_cast<std::size_t>(net.layer(l).nonZeros()));
      CHECK(net.layer(l).biasVelocity().size() == net.layer(l).outputs());
    }
  }
}

TEST_CASE("Surviving connections keep their weight and momentum under the new indices",
          "[topology][importance]") {
  auto net = makeNet(5, tsnn::ActivationKind::AllReLU);
  // (original row, original col) -> (weight, momentum) of layer 1, whose rows and columns both
  // shrink when neurons of hidden layers 1 and 0 go.
  std::map<std::pair<long long, long long>, std::pair<double, double>> was;
  const auto& w = net.layer(1).weights();
  for (int r = 0; r < w.rows(); ++r)
    for (int k = w.rowBegin(r); k < w.rowEnd(r); ++k)
      was[{r, w.colIdx()[static_cast<std::size_t>(k)]}] = {
          w.values()[static_cast<std::size_t>(k)],
          net.layer(1).velocity()[static_cast<std::size_t>(k)]};
  net.removeHiddenNeurons(0, {0, 7});
  net.removeHiddenNeurons(1, {3});
  const auto& v = net.layer(1).weights();
  std::size_t seen = 0;
  for (int r = 0; r < v.rows(); ++r)
    for (int k = v.rowBegin(r); k < v.rowEnd(r); ++k) {
      const long long orow = net.neuronIds(1)[static_cast<std::size_t>(r)];
      const long long ocol =
          net.neuronIds(0)[static_cast<std::size_t>(v.colIdx()[static_cast<std::size_t>(k)])];
      const auto it = was.find({orow, ocol});
      REQUIRE(it != was.end());
      CHECK(v.values()[static_cast<std::size_t>(k)] == it->second.first);
      CHECK(net.layer(1).velocity()[static_cast<std::size_t>(k)] == it->second.second);
      ++seen;
    }
  std::size_t expected = 0;
  for (const auto& e : was)
    if (e.first.first != 3 && e.first.second != 0 && e.first.second != 7) ++expected;
  CHECK(seen == expected);
}

TEST_CASE("pruneUnimportantNeurons narrows every hidden layer and the network still trains",
          "[topology][importance]") {
  auto net = makeNet(8, tsnn::ActivationKind::AllReLU);
  const long long removed = tsnn::pruneUnimportantNeurons(net, 20);
  CHECK(removed >= 2);
  CHECK(net.hiddenNeurons() == 25 - removed);
  // A forward and backward pass still fit together after the change.
  tsnn::Activations<double> x = tsnn::Activations<double>::Random(6, 9);
  std::vector<std::int32_t> y{0, 1, 2, 3, 0, 1};
  tsnn::Workspace<double> ws;
  auto g = net.makeGradients();
  net.forward(x, ws, tsnn::PassOptions::training(0));
  const auto s = net.backward(x, y.data(), ws, g, 1.0 / 6);
  CHECK(std::isfinite(s.lossSum));
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
  tsnn::Rng rng(31);
  tsnn::data::Dataset<double> d;
  d.numClasses = 4;
  d.features.resize(240, 9);
  for (Eigen::Index i = 0; i < d.features.rows(); ++i) {
    for (Eigen::Index j = 0; j < 9; ++j) d.features(i, j) = rng.normal();
    Eigen::Index label;
    d.features.row(i).head(4).maxCoeff(&label);
    d.labels.push_back(static_cast<std::int32_t>(label));
  }
  tsnn::TrainerOptions t;
  t.epochs = 6;
  t.batchSize = 40;
  t.importancePruning = true;
  t.pruning.startEpoch = 2;
  t.pruning.period = 3;
  t.pruning.percentile = 10;
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
    const bool due = r.epoch == 2 || r.epoch == 5;
    CHECK((r.neuronsRemoved > 0) == due);
    CHECK(std::isfinite(r.trainLoss));
  }
  CHECK(h.back().hiddenNeurons == 25 - h[1].neuronsRemoved - h[4].neuronsRemoved);
  CHECK(nets[0].hiddenNeurons() == h.back().hiddenNeurons);
  // Data-parallel with one worker makes exactly the same run.
  CHECK(nets[1].sizes() == nets[0].sizes());
  for (std::size_t l = 0; l < nets[0].numLayers(); ++l)
    CHECK(nets[1].layer(l).weights().values() == nets[0].layer(l).weights().values());
}
