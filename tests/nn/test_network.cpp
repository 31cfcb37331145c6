// Tests for tsnn/training/network.hpp: construction from NetworkOptions, an end-to-end gradient
// check of backward() against central finite differences of the mean loss (every weight and
// bias, both losses, several hidden activations, with and without dropout), shard invariance of
// the data-parallel forward/backward, learning on a separable toy problem, and option checking.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/activation.hpp"
#include "tsnn/nn/loss.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/sgd.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

using tsnn::ActivationKind;
using tsnn::LossKind;

// The loops below run thousands of tiny passes. They run serially: an OpenMP region per kernel
// call costs more than the work here and, on a loaded machine, spinning threads make it orders
// of magnitude slower. Parallel execution is compared with serial in its own test.
constexpr tsnn::Threads kSerial = tsnn::Threads::serial();

// A serial training pass of step `step`, or a serial inference pass.
tsnn::PassOptions serialPass(bool training, std::uint64_t step) {
  return (training ? tsnn::PassOptions::training(step) : tsnn::PassOptions::inference()).serial();
}

tsnn::NetworkOptions makeOptions(std::vector<long long> sizes, ActivationKind hidden, LossKind loss,
                                 ActivationKind output, double dropout, std::uint64_t seed) {
  tsnn::NetworkOptions o;
  o.sizes = std::move(sizes);
  o.epsilon = 3;
  o.hiddenActivation = hidden;
  o.alpha = hidden == ActivationKind::LeakyReLU ? 0.05 : 0.6;
  o.loss = loss;
  o.outputActivation = output;
  o.dropout = dropout;
  o.seed = seed;
  return o;
}

template <class Scalar>
Mat<Scalar> randomInputs(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.5, 1.5);
  Mat<Scalar> x(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) x(i, j) = static_cast<Scalar>(u(rng));
  return x;
}

std::vector<std::int32_t> randomLabels(Eigen::Index n, long long classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<long long> u(0, classes - 1);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (auto& v : y) v = static_cast<std::int32_t>(u(rng));
  return y;
}

// Nonzero biases, so that their gradients are checked at a generic point.
template <class Scalar>
void randomizeBiases(tsnn::Network<Scalar>& net, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    for (Eigen::Index j = 0; j < net.layer(l).bias().size(); ++j)
      net.layer(l).bias()(j) = static_cast<Scalar>(u(rng));
}

// The mean loss over the batch, computed here from the workspace rather than by the library:
// logsumexp(z) - z_y on the logits for cross-entropy, sum_c (a_c - onehot_c)^2 / C on the
// output activation for MSE.
double meanLoss(const tsnn::Network<double>& net, const Mat<double>& x,
                const std::vector<std::int32_t>& y, bool training, std::uint64_t step) {
  tsnn::Workspace<double> ws;
  net.forward(x, ws, serialPass(training, step));
  long double total = 0;
  const Eigen::Index B = x.rows();
  if (net.options().loss == LossKind::SoftmaxCrossEntropy) {
    const Mat<double>& z = ws.z.back();
    for (Eigen::Index b = 0; b < B; ++b) {
      const long double m = z.row(b).maxCoeff();
      long double s = 0;
      for (Eigen::Index c = 0; c < z.cols(); ++c) s += std::exp(z(b, c) - m);
      total += m + std::log(s) - z(b, y[static_cast<std::size_t>(b)]);
    }
  } else {
    const Mat<double>& a = ws.output;
    for (Eigen::Index b = 0; b < B; ++b)
      for (Eigen::Index c = 0; c < a.cols(); ++c) {
        const double t = c == y[static_cast<std::size_t>(b)] ? 1.0 : 0.0;
        total += (a(b, c) - t) * (a(b, c) - t) / static_cast<long double>(a.cols());
      }
  }
  return static_cast<double>(total / B);
}

// Smallest |z| over the hidden pre-activations: the distance to the kinks of the ReLU family.
double kinkMargin(const tsnn::Network<double>& net, const Mat<double>& x, bool training,
                  std::uint64_t step) {
  tsnn::Workspace<double> ws;
  net.forward(x, ws, serialPass(training, step));
  double m = std::numeric_limits<double>::infinity();
  for (std::size_t l = 0; l + 1 < ws.z.size(); ++l) m = std::min(m, ws.z[l].cwiseAbs().minCoeff());
  return m;
}

// backward() against central differences of meanLoss for every weight and bias; returns the
// largest absolute difference (infinity if anything is not finite).
double gradientError(tsnn::Network<double>& net, const Mat<double>& x,
                     const std::vector<std::int32_t>& y, bool training, std::uint64_t step) {
  tsnn::Workspace<double> ws;
  auto grads = net.makeGradients();
  net.forward(x, ws, serialPass(training, step));
  net.backward(x, y.data(), ws, grads, 1.0 / static_cast<double>(x.rows()), kSerial);
  auto loss = [&] { return meanLoss(net, x, y, training, step); };
  double worst = 0;
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    auto& values = net.layer(l).values();
    const auto numW = tsnn::test::numericalGradient(loss, values.data(), values.size());
    const auto numB = tsnn::test::numericalGradient(
        loss, net.layer(l).bias().data(), static_cast<std::size_t>(net.layer(l).bias().size()));
    worst = std::max(worst, tsnn::test::maxAbsDifference(grads.weights[l], numW));
    worst = std::max(worst, tsnn::test::maxAbsDifference(grads.bias[l], numB));
    if (!std::isfinite(worst)) return worst;
  }
  return worst;
}

// Inputs for which no hidden pre-activation is within 1e-4 of a kink (finite differences with
// step 1e-6 then never cross one). Deterministic: tries derived seeds in order.
Mat<double> inputsAwayFromKinks(const tsnn::Network<double>& net, Eigen::Index rows,
                                std::uint64_t seed, bool training, std::uint64_t step) {
  for (std::uint64_t t = 0; t < 50; ++t) {
    Mat<double> x = randomInputs<double>(rows, net.inputs(), seed + 1000 * t);
    if (kinkMargin(net, x, training, step) > 1e-4) return x;
  }
  FAIL("no inputs away from the kinks found");
  return {};
}

}  // namespace

TEMPLATE_TEST_CASE("A Network built from options has the requested sizes, nonzeros and slopes",
                   "[training][network]", float, double) {
  using Scalar = TestType;
  auto o = makeOptions({7, 6, 5, 4}, ActivationKind::AllReLU, LossKind::SoftmaxCrossEntropy,
                       ActivationKind::Identity, 0.0, tsnn::test::testSeed(9901));
  o.epsilon = 1;  // densities 13/42, 11/30 and 9/20: really sparse
  const tsnn::Network<Scalar> net(o);
  CHECK(net.numLayers() == 3);
  CHECK(net.inputs() == 7);
  CHECK(net.outputs() == 4);
  CHECK(net.sizes() == std::vector<long long>{7, 6, 5, 4});
  CHECK(net.hiddenNeurons() == 11);
  long long nnz = 0;
  for (std::size_t l = 0; l < 3; ++l) {
    CHECK(net.layer(l).inputs() == o.sizes[l]);
    CHECK(net.layer(l).outputs() == o.sizes[l + 1]);
    CHECK(net.layer(l).weights().check().empty());
    CHECK(net.layer(l).nonZeros() < o.sizes[l] * o.sizes[l + 1]);
    nnz += net.layer(l).nonZeros();
  }
  CHECK(net.nonZeros() == nnz);
  CHECK(net.nonZeros() > 0);
  // All-ReLU slopes alternate -a, +a over the hidden layers.
  CHECK(net.activation(0).kind() == ActivationKind::AllReLU);
  CHECK(net.activation(0).negativeSlope() == static_cast<Scalar>(-0.6));
  CHECK(net.activation(1).negativeSlope() == static_cast<Scalar>(0.6));

  const auto g = net.makeGradients();
  REQUIRE(g.weights.size() == 3);
  for (std::size_t l = 0; l < 3; ++l) {
    CHECK(g.weights[l].size() == static_cast<std::size_t>(net.layer(l).nonZeros()));
    CHECK(g.bias[l].size() == net.layer(l).outputs());
  }

  // The same options give the same network.
  const tsnn::Network<Scalar> again(o);
  for (std::size_t l = 0; l < 3; ++l) {
    CHECK(again.layer(l).weights().colIdx() == net.layer(l).weights().colIdx());
    CHECK(again.layer(l).weights().values() == net.layer(l).weights().values());
  }
}

TEST_CASE("Network::summary names every layer and the totals", "[training][network][summary]") {
  auto o = makeOptions({7, 6, 5, 4}, ActivationKind::AllReLU, LossKind::SoftmaxCrossEntropy,
                       ActivationKind::Identity, 0.0, tsnn::test::testSeed(9902));
  const tsnn::Network<double> net(o);
  const std::string s = net.summary();
  INFO(s);
  CHECK_THAT(s, Catch::Contains("double") && Catch::Contains("softmax cross-entropy"));
  CHECK_THAT(s, Catch::Contains("7->6") && Catch::Contains("6->5") && Catch::Contains("5->4"));
  CHECK_THAT(s, Catch::Contains("all-relu(-0.6)") && Catch::Contains("all-relu(0.6)"));
  CHECK_THAT(s, Catch::Contains("softmax"));
  for (std::size_t l = 0; l < 3; ++l)
    CHECK_THAT(s, Catch::Contains(std::to_string(net.layer(l).nonZeros())));
  CHECK_THAT(s, Catch::Contains("total: 11 hidden neurons, " + std::to_string(net.nonZeros()) +
                                " connections, " + std::to_string(net.bytes()) + " bytes"));

  const tsnn::Network<float> mse(makeOptions({3, 2, 2}, ActivationKind::Tanh,
                                             LossKind::MeanSquaredError, ActivationKind::Sigmoid,
                                             0.0, 1));
  const std::string t = mse.summary();
  INFO(t);
  CHECK_THAT(t, Catch::Contains("float") && Catch::Contains("mse") && Catch::Contains("tanh") &&
                    Catch::Contains("sigmoid"));
}

TEST_CASE("Network::backward matches finite differences of the mean loss for every parameter",
          "[training][network][gradcheck]") {
  const auto seed = tsnn::test::testSeed(9903);
  struct Case {
    LossKind loss;
    ActivationKind output;
  };
  const Case cases[] = {{LossKind::SoftmaxCrossEntropy, ActivationKind::Identity},
                        {LossKind::MeanSquaredError, ActivationKind::Sigmoid},
                        {LossKind::MeanSquaredError, ActivationKind::Identity}};
  const ActivationKind hidden[] = {ActivationKind::AllReLU,   ActivationKind::ReLU,
                                   ActivationKind::Tanh,      ActivationKind::Sigmoid,
                                   ActivationKind::LeakyReLU, ActivationKind::Identity};
  for (const auto& c : cases) {
    for (ActivationKind h : hidden) {
      INFO("loss " << (c.loss == LossKind::SoftmaxCrossEntropy ? "cross-entropy" : "mse")
                   << ", output " << tsnn::activationName(c.output) << ", hidden "
                   << tsnn::activationName(h));
      tsnn::Network<double> net(makeOptions({7, 6, 5, 4}, h, c.loss, c.output, 0.0, seed));
      randomizeBiases(net, seed + 1);
      const Mat<double> x = inputsAwayFromKinks(net, 6, seed + 2, false, 0);
      const auto y = randomLabels(6, 4, seed + 3);
      const double err = gradientError(net, x, y, false, 0);
      CHECK(err < 1e-6);
    }
  }
}

TEST_CASE("backward() writes each hidden delta over its activations and keeps one delta buffer",
          "[training][network][memory]") {
  // backwardDeltas() keeps every delta in ws.delta and computes them with the unfused input
  // gradient; backward() must leave the same deltas, bit for bit, in ws.a, and the same
  // gradients as gradientsRows() on them, holding no delta buffer but the output layer's.
  const auto seed = tsnn::test::testSeed(9911);
  for (ActivationKind h : {ActivationKind::AllReLU, ActivationKind::Tanh}) {
    INFO("hidden " << tsnn::activationName(h));
    tsnn::Network<double> net(makeOptions({7, 9, 6, 5, 4}, h, LossKind::SoftmaxCrossEntropy,
                                          ActivationKind::Identity, 0.3, seed));
    randomizeBiases(net, seed + 1);
    const Mat<double> x = inputsAwayFromKinks(net, 11, seed + 2, true, 5);
    const auto y = randomLabels(11, 4, seed + 3);
    tsnn::Workspace<double> fused, kept;
    net.forward(x, fused, tsnn::PassOptions::training(5).serial());
    net.forward(x, kept, tsnn::PassOptions::training(5).serial());
    auto g = net.makeGradients(), g2 = net.makeGradients();
    const auto s1 = net.backward(x, y.data(), fused, g, 1.0 / 11, tsnn::Threads::serial());
    const auto s2 = net.backwardDeltas(y.data(), kept, 1.0 / 11, tsnn::Threads::serial());
    CHECK(s1.lossSum == s2.lossSum);
    const Mat<double>* xs = &x;
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      INFO("layer " << l);
      if (l + 1 < net.numLayers()) CHECK(tsnn::test::bitIdentical(fused.a[l], kept.delta[l]));
      net.gradientsRows(l, xs, &kept, 1, g2, 0, static_cast<std::int32_t>(net.layer(l).outputs()));
      CHECK(tsnn::test::bitIdentical(g.weights[l], g2.weights[l]));
      CHECK(tsnn::test::bitIdentical(g.bias[l], g2.bias[l]));
    }
    CHECK(fused.outputDelta.size() == 11 * 4);
    // The workspace no longer holds a forward pass: every pass that would read its activations
    // refuses it, until forward() runs again.
    CHECK_THROWS_WITH(net.backward(x, y.data(), fused, g, 1.0 / 11, tsnn::Threads::serial()),
                      Catch::StartsWith("tsnn: Network::backward(): backward() has written its "
                                        "deltas over the workspace's activations"));
    CHECK_THROWS_WITH(net.backwardDeltas(y.data(), fused, 1.0 / 11, tsnn::Threads::serial()),
                      Catch::Contains("run forward() again first"));
    CHECK_THROWS_WITH(net.gradientsRows(0, xs, &fused, 1, g2, 0, 1),
                      Catch::StartsWith("tsnn: Network::gradientsRows(): backward() has"));
    net.forward(x, fused, tsnn::PassOptions::training(5).serial());
    auto g3 = net.makeGradients();
    net.backward(x, y.data(), fused, g3, 1.0 / 11, tsnn::Threads::serial());
    for (std::size_t l = 0; l < net.numLayers(); ++l)
      CHECK(tsnn::test::bitIdentical(g3.weights[l], g.weights[l]));
  }
}

TEST_CASE("With dropout, backward is the gradient of the loss under the same fixed mask",
          "[training][network][gradcheck][dropout]") {
  const auto seed = tsnn::test::testSeed(9904);
  for (LossKind loss : {LossKind::SoftmaxCrossEntropy, LossKind::MeanSquaredError}) {
    for (ActivationKind h : {ActivationKind::AllReLU, ActivationKind::Tanh}) {
      INFO("loss " << (loss == LossKind::SoftmaxCrossEntropy ? "cross-entropy" : "mse")
                   << ", hidden " << tsnn::activationName(h));
      tsnn::Network<double> net(
          makeOptions({7, 6, 5, 4}, h, loss, ActivationKind::Sigmoid, 0.4, seed));
      randomizeBiases(net, seed + 1);
      const std::uint64_t step = 12;
      const Mat<double> x = inputsAwayFromKinks(net, 8, seed + 2, true, step);
      const auto y = randomLabels(8, 4, seed + 3);

      // The mask is a function of (seed, step, layer, row, neuron): repeating the step repeats
      // it, another step changes it, and some units really are dropped.
      tsnn::Workspace<double> a, b, c;
      using tsnn::PassOptions;
      const Mat<double> outA = net.forward(x, a, PassOptions::training(step));
      const Mat<double> outB = net.forward(x, b, PassOptions::training(step));
      const Mat<double> outC = net.forward(x, c, PassOptions::training(step + 1));
      CHECK(outA == outB);
      CHECK(a.a[0] == b.a[0]);
      CHECK(a.a[0] != c.a[0]);
      for (std::size_t l = 0; l < 2; ++l)
        CHECK((tsnn::dropoutMask<double>(8, net.layer(l).outputs(), 0.4,
                                         tsnn::dropoutKey(seed, step, l))
                   .array() == 0.0)
                  .any());

      const double err = gradientError(net, x, y, true, step);
      CHECK(err < 1e-6);
    }
  }
}

TEST_CASE("Dropout is off at inference: an inference pass ignores the dropout rate",
          "[training][network][dropout]") {
  const auto seed = tsnn::test::testSeed(9905);
  auto o = makeOptions({7, 6, 5, 4}, ActivationKind::Tanh, LossKind::SoftmaxCrossEntropy,
                       ActivationKind::Identity, 0.5, seed);
  const tsnn::Network<double> withDropout(o);
  o.dropout = 0;
  const tsnn::Network<double> without(o);
  const Mat<double> x = randomInputs<double>(5, 7, seed + 1);
  tsnn::Workspace<double> w1, w2;
  const Mat<double> p1 = withDropout.forward(x, w1, tsnn::PassOptions::inference());
  const Mat<double> p2 = without.forward(x, w2, tsnn::PassOptions::training(3));
  CHECK(p1 == p2);
  CHECK_FALSE(w1.dropout);
  // The default is inference too.
  tsnn::Workspace<double> w3;
  CHECK(withDropout.forward(x, w3) == p2);
  CHECK_FALSE(w3.dropout);
}

TEST_CASE("Forward and backward on two row shards with scale 1/B sum to the full-batch gradient",
          "[training][network][shards]") {
  const auto seed = tsnn::test::testSeed(9906);
  for (double dropout : {0.0, 0.3}) {
    for (LossKind loss : {LossKind::SoftmaxCrossEntropy, LossKind::MeanSquaredError}) {
      INFO("dropout " << dropout << ", loss "
                      << (loss == LossKind::SoftmaxCrossEntropy ? "cross-entropy" : "mse"));
      tsnn::Network<double> net(makeOptions({7, 6, 5, 4}, ActivationKind::AllReLU, loss,
                                            ActivationKind::Sigmoid, dropout, seed));
      randomizeBiases(net, seed + 1);
      const Eigen::Index B = 11, split = 4;
      const Mat<double> x = randomInputs<double>(B, 7, seed + 2);
      const auto y = randomLabels(B, 4, seed + 3);
      const double scale = 1.0 / static_cast<double>(B);
      const std::uint64_t step = 5;

      tsnn::Workspace<double> ws;
      auto full = net.makeGradients();
      using tsnn::PassOptions;
      net.forward(x, ws, PassOptions::training(step));
      const auto fullStats = net.backward(x, y.data(), ws, full, scale);

      tsnn::Workspace<double> ws1, ws2;
      auto g1 = net.makeGradients(), g2 = net.makeGradients();
      net.forward(x.topRows(split), ws1, PassOptions::training(step).rowOffset(0));
      const auto s1 = net.backward(x.topRows(split), y.data(), ws1, g1, scale);
      net.forward(x.bottomRows(B - split), ws2, PassOptions::training(step).rowOffset(split));
      const auto s2 = net.backward(x.bottomRows(B - split), y.data() + split, ws2, g2, scale);
      g1.add(g2);

      double err = 0;
      for (std::size_t l = 0; l < net.numLayers(); ++l) {
        err = std::max(err, tsnn::test::maxAbsDifference(g1.weights[l], full.weights[l]));
        err = std::max(err, tsnn::test::maxAbsDifference(g1.bias[l], full.bias[l]));
      }
      CHECK(err <= 1e-12);
      CHECK(std::abs(s1.lossSum + s2.lossSum - fullStats.lossSum) <= 1e-12 * fullStats.lossSum);
      CHECK(s1.correct + s2.correct == fullStats.correct);
      CHECK(s1.samples + s2.samples == B);
      // The shards drew exactly the whole batch's masks.
      if (dropout > 0)
        for (std::size_t l = 0; l + 1 < net.numLayers(); ++l) {
          CHECK(ws1.a[l] == ws.a[l].topRows(split));
          CHECK(ws2.a[l] == ws.a[l].bottomRows(B - split));
        }
    }
  }
}

TEMPLATE_TEST_CASE(
    "backwardDeltas then gradientsRows over neuron ranges is backward(), bit for bit",
    "[training][network][shards]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(9910);
  for (LossKind loss : {LossKind::SoftmaxCrossEntropy, LossKind::MeanSquaredError}) {
    INFO("loss " << (loss == LossKind::SoftmaxCrossEntropy ? "cross-entropy" : "mse"));
    tsnn::Network<Scalar> net(makeOptions({9, 8, 7, 5}, ActivationKind::AllReLU, loss,
                                          ActivationKind::Sigmoid, 0.25, seed));
    randomizeBiases(net, seed + 1);
    const Mat<Scalar> x = randomInputs<Scalar>(13, 9, seed + 2);
    const auto y = randomLabels(13, 5, seed + 3);
    const Scalar scale = Scalar(1) / 13;

    tsnn::Workspace<Scalar> ws;
    auto full = net.makeGradients();
    net.forward(x, ws, serialPass(true, 3));
    const auto fullStats = net.backward(x, y.data(), ws, full, scale, kSerial);

    tsnn::Workspace<Scalar> w2;
    net.forward(x, w2, serialPass(true, 3));
    std::vector<std::size_t> published;
    const auto stats = net.backwardDeltas(y.data(), w2, scale, kSerial,
                                          [&](std::size_t l) { published.push_back(l); });
    CHECK(published == std::vector<std::size_t>{2, 1, 0});
    CHECK(stats.lossSum == fullStats.lossSum);
    CHECK(stats.correct == fullStats.correct);
    // NaN everywhere first: an entry no range wrote fails the comparison.
    auto g = net.makeGradients();
    for (auto& w : g.weights)
      std::fill(w.begin(), w.end(), std::numeric_limits<Scalar>::quiet_NaN());
    for (auto& b : g.bias) b.setConstant(std::numeric_limits<Scalar>::quiet_NaN());
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      const auto n = net.layer(l).outputs();
      for (auto [first, last] : {std::pair<int, int>{n / 2, n}, {0, n / 2}})
        net.gradientsRows(l, &x, &w2, 1, g, first, last);
      CHECK(tsnn::test::bitIdentical(g.weights[l], full.weights[l]));
      CHECK(tsnn::test::bitIdentical(g.bias[l], full.bias[l]));
    }
  }
}

TEST_CASE("gradientsRows sums the shards of a minibatch into its full gradient",
          "[training][network][shards]") {
  const auto seed = tsnn::test::testSeed(9911);
  tsnn::Network<double> net(makeOptions({7, 6, 5, 4}, ActivationKind::AllReLU,
                                        LossKind::SoftmaxCrossEntropy, ActivationKind::Identity,
                                        0.3, seed));
  randomizeBiases(net, seed + 1);
  const Eigen::Index B = 11;
  const Mat<double> x = randomInputs<double>(B, 7, seed + 2);
  const auto y = randomLabels(B, 4, seed + 3);
  tsnn::Workspace<double> ws;
  auto full = net.makeGradients();
  net.forward(x, ws, tsnn::PassOptions::training(4));
  net.backward(x, y.data(), ws, full, 1.0 / B);

  // Shards of 5, 1 and 5 rows; each keeps its dropout rows by its offset in the minibatch.
  const Eigen::Index cut[] = {0, 5, 6, B};
  std::vector<Mat<double>> xs;
  std::vector<tsnn::Workspace<double>> shards(3);
  for (int s = 0; s < 3; ++s) {
    xs.push_back(x.middleRows(cut[s], cut[s + 1] - cut[s]));
    net.forward(xs.back(), shards[static_cast<std::size_t>(s)],
                tsnn::PassOptions::training(4).rowOffset(cut[s]).serial());
    net.backwardDeltas(y.data() + cut[s], shards[static_cast<std::size_t>(s)], 1.0 / B, kSerial);
  }
  auto g = net.makeGradients();
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    net.gradientsRows(l, xs.data(), shards.data(), 3, g, 0, net.layer(l).outputs());
    CHECK(tsnn::test::maxAbsDifference(g.weights[l], full.weights[l]) <= 1e-12);
    CHECK(tsnn::test::maxAbsDifference(g.bias[l], full.bias[l]) <= 1e-12);
  }

  // A shard without a forward pass, a layer that does not exist, a range past the layer.
  tsnn::Workspace<double> empty;
  CHECK_THROWS_WITH(net.gradientsRows(0, &x, &empty, 1, g, 0, 6),
                    Catch::StartsWith("tsnn: Network::gradientsRows(): the workspace does not "
                                      "hold a forward pass"));
  CHECK_THROWS_WITH(net.gradientsRows(3, xs.data(), shards.data(), 3, g, 0, 1),
                    Catch::Contains("layer 3"));
  CHECK_THROWS_WITH(net.gradientsRows(0, xs.data(), shards.data(), 3, g, 0, 7),
                    Catch::Contains("rows [0, 7) are not within [0, 6]"));
  CHECK_THROWS_WITH(net.backwardDeltas(y.data(), empty, 1.0),
                    Catch::StartsWith("tsnn: Network::backwardDeltas(): the workspace"));
}

TEST_CASE("Serial and parallel forward/backward give the same gradient",
          "[training][network][openmp]") {
  const auto seed = tsnn::test::testSeed(9907);
  auto o = makeOptions({30, 40, 20, 5}, ActivationKind::AllReLU, LossKind::SoftmaxCrossEntropy,
                       ActivationKind::Identity, 0.2, seed);
  const tsnn::Network<double> net(o);
  const Mat<double> x = randomInputs<double>(24, 30, seed + 1);
  const auto y = randomLabels(24, 5, seed + 2);
  tsnn::Workspace<double> w1, w2;
  auto g1 = net.makeGradients(), g2 = net.makeGradients();
  // Three threads whatever the OpenMP default, so that a region really opens.
  const auto three = tsnn::Threads::count(3);
  net.forward(x, w1, tsnn::PassOptions::training(2).threads(three));
  net.backward(x, y.data(), w1, g1, 1.0 / 24, three);
  net.forward(x, w2, tsnn::PassOptions::training(2).serial());
  net.backward(x, y.data(), w2, g2, 1.0 / 24, kSerial);
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    CHECK(g1.weights[l] == g2.weights[l]);
    CHECK(g1.bias[l] == g2.bias[l]);
  }
}

TEMPLATE_TEST_CASE("A Network learns a separable toy problem with a few hundred SGD steps",
                   "[training][network][learning]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(9909);
  const Eigen::Index n = 300, d = 4;
  const int classes = 3;
  const auto blobs = tsnn::test::threeBlobs<Scalar>(n, seed);
  const typename tsnn::Network<Scalar>::Features& features = blobs.features;
  const std::vector<std::int32_t>& labels = blobs.labels;
  auto o = makeOptions({d, 16, classes}, ActivationKind::AllReLU, LossKind::SoftmaxCrossEntropy,
                       ActivationKind::Identity, 0.0, seed);
  o.epsilon = 4;
  tsnn::Network<Scalar> net(o);
  const double before = net.accuracy(features, labels);
  tsnn::SgdOptions sgd;
  sgd.learningRate = 0.05;
  sgd.momentum = 0.9;
  sgd.weightDecay = 0;
  tsnn::Sgd<Scalar> optimizer(sgd);
  const Eigen::Index batch = 30;
  tsnn::Workspace<Scalar> ws;
  auto grads = net.makeGradients();
  double firstLoss = 0, lastLoss = 0;
  for (int step = 0; step < 300; ++step) {
    const Eigen::Index b0 = (static_cast<Eigen::Index>(step) * batch) % n;
    const Mat<Scalar> x = features.middleRows(b0, batch);
    net.forward(x, ws, serialPass(true, static_cast<std::uint64_t>(step)));
    const auto stats = net.backward(x, labels.data() + b0, ws, grads,
                                    Scalar(1) / static_cast<Scalar>(batch), kSerial);
    if (step < 10) firstLoss += stats.lossSum;
    if (step >= 290) lastLoss += stats.lossSum;
    optimizer.step(net, grads, kSerial);
  }
  const double after = net.accuracy(features, labels);
  INFO("accuracy before " << before << ", after " << after);
  CHECK(after > 0.9);
  CHECK(lastLoss < 0.5 * firstLoss);
  CHECK(std::isfinite(lastLoss));

  const auto pred = net.predict(features);
  REQUIRE(pred.size() == labels.size());
  long long correct = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == labels[i];
  CHECK(static_cast<double>(correct) / static_cast<double>(n) == after);
  // Chunks that do not divide n.
  const auto scores = net.predictScores(features, tsnn::Threads::automatic(), 7);
  REQUIRE(scores.rows() == n);
  for (Eigen::Index i = 0; i < n; ++i) {
    Eigen::Index arg;
    scores.row(i).maxCoeff(&arg);
    if (arg != pred[static_cast<std::size_t>(i)]) FAIL("chunked scores disagree at sample " << i);
    if (!(std::abs(static_cast<double>(scores.row(i).sum()) - 1.0) < 1e-5))
      FAIL("probabilities of sample " << i << " do not sum to 1");
  }
}

TEST_CASE(
    "He over the real fan-in keeps a deep network's pre-activations at one scale at any width",
    "[training][network][init]") {
  // Inputs U(-1.5, 1.5) have E[x^2] = 3/4. With l_j = sqrt(6 / k_j), Var(w) = 2 / k_j, so the
  // first layer's E[z^2] = k_j Var(w) E[x^2] = 3/2 whatever k_j; All-ReLU with |slope| a gives
  // E[f(z)^2] = (1 + a^2) / 2 E[z^2] for symmetric z, so each further layer multiplies E[z^2] by
  // 1 + a^2 = 1.36. Dense He divides layer l's by (n_in / k_j)^l on top: at width 20,000 (real
  // fan-in about 40) a factor 500 per layer.
  const Mat<double> x = randomInputs<double>(64, 200, 77);
  auto meanSquares = [&](long long width, tsnn::WeightInit init) {
    auto o = makeOptions({200, width, width, width, width, 10}, ActivationKind::AllReLU,
                         LossKind::SoftmaxCrossEntropy, ActivationKind::Identity, 0.0, 5);
    o.epsilon = 20;
    o.init = init;
    const tsnn::Network<double> net(o);
    tsnn::Workspace<double> ws;
    net.forward(x, ws, serialPass(false, 0));
    std::vector<double> m;
    for (std::size_t l = 0; l + 1 < net.numLayers(); ++l)
      m.push_back(ws.z[l].squaredNorm() / static_cast<double>(ws.z[l].size()));
    return m;
  };
  for (long long width : {1000ll, 20000ll}) {
    INFO("width " << width);
    const auto sparse = meanSquares(width, tsnn::WeightInit::HeUniformSparse);
    double expected = 1.5;
    for (std::size_t l = 0; l < sparse.size(); ++l, expected *= 1.36) {
      INFO("hidden layer " << l);
      // Each figure averages 64 x width products of independent weight draws: 15% is wide.
      CHECK(sparse[l] == Approx(expected).epsilon(0.15));
    }
  }
  const auto dense = meanSquares(20000, tsnn::WeightInit::HeUniform);
  CHECK(dense.back() < 1e-6 * 1.5 * 1.36 * 1.36 * 1.36);
}

TEST_CASE("NetworkOptions::validate rejects bad sizes, epsilon, alpha and dropout",
          "[training][network][options][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto good = makeOptions({7, 6, 4}, ActivationKind::AllReLU, LossKind::SoftmaxCrossEntropy,
                          ActivationKind::Identity, 0.3, 1);
  CHECK_NOTHROW(good.validate());
  CHECK_NOTHROW(tsnn::Network<double>(good));

  auto expectInvalid = [](tsnn::NetworkOptions o, const char* what) {
    INFO(what);
    CHECK_THROWS_AS(o.validate(), tsnn::InvalidArgument);
    CHECK_THROWS_AS(tsnn::Network<double>(o), tsnn::InvalidArgument);
    CHECK_THROWS_WITH(tsnn::Network<float>(o), Catch::StartsWith("tsnn: NetworkOptions"));
  };
  auto o = good;
  o.sizes = {};
  expectInvalid(o, "empty sizes");
  o.sizes = {7};
  expectInvalid(o, "one size");
  o.sizes = {7, 0, 4};
  expectInvalid(o, "a zero size");
  o.sizes = {7, -3, 4};
  expectInvalid(o, "a negative size");
  o.sizes = {7, 6, 1};
  expectInvalid(o, "one output with cross-entropy");
  o = good;
  o.dropout = 1.0;
  expectInvalid(o, "dropout 1");
  o.dropout = -0.1;
  expectInvalid(o, "negative dropout");
  o.dropout = nan;
  expectInvalid(o, "NaN dropout");
  o = good;
  o.epsilon = 0;
  expectInvalid(o, "epsilon 0");
  o.epsilon = nan;
  expectInvalid(o, "NaN epsilon");
  o.epsilon = std::numeric_limits<double>::infinity();
  expectInvalid(o, "infinite epsilon");
  o = good;
  o.alpha = nan;
  expectInvalid(o, "NaN alpha");
  o.alpha = -0.6;
  expectInvalid(o, "negative alpha");

  CHECK_THROWS_WITH(tsnn::Network<double>([&] {
                      auto p = good;
                      p.dropout = 1.0;
                      return p;
                    }()),
                    Catch::Contains("dropout") && Catch::Contains("1"));
  // One output is fine for MSE.
  auto mse = good;
  mse.loss = LossKind::MeanSquaredError;
  mse.sizes = {7, 6, 1};
  CHECK_NOTHROW(tsnn::Network<double>(mse));
}

TEST_CASE("Network rejects inputs with the wrong number of features and bad labels",
          "[training][network][errors]") {
  const tsnn::Network<double> net(makeOptions({7, 6, 4}, ActivationKind::AllReLU,
                                              LossKind::SoftmaxCrossEntropy,
                                              ActivationKind::Identity, 0.0, 1));
  tsnn::Workspace<double> ws;
  const Mat<double> wrong = Mat<double>::Zero(3, 6);
  CHECK_THROWS_AS(net.forward(wrong, ws), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(net.forward(wrong, ws), Catch::Contains("Network::forward()") &&
                                                Catch::Contains("6") && Catch::Contains("7"));
  const tsnn::Network<double>::Features wrongFeatures = tsnn::Network<double>::Features::Zero(3, 8);
  CHECK_THROWS_AS(net.predict(wrongFeatures), tsnn::InvalidArgument);
  CHECK_THROWS_AS(net.predictScores(wrongFeatures), tsnn::InvalidArgument);
  const tsnn::Network<double>::Features features = tsnn::Network<double>::Features::Zero(3, 7);
  CHECK_THROWS_AS(net.accuracy(features, {0, 1}), tsnn::InvalidArgument);

  const Mat<double> x = Mat<double>::Zero(2, 7);
  auto grads = net.makeGradients();
  net.forward(x, ws);
  const std::vector<std::int32_t> bad{0, 4};
  CHECK_THROWS_AS(net.backward(x, bad.data(), ws, grads, 0.5, kSerial), tsnn::InvalidArgument);
}

TEST_CASE("A Network assembled from layers checks that they fit together",
          "[training][network][errors]") {
  using Layer = tsnn::SparseLinear<double>;
  tsnn::Rng rng(tsnn::test::testSeed(9910));
  auto o = makeOptions({1, 1}, ActivationKind::Tanh, LossKind::SoftmaxCrossEntropy,
                       ActivationKind::Identity, 0.0, 1);
  std::vector<Layer> fits{Layer(5, 4, 0.5, rng), Layer(4, 3, 0.5, rng)};
  const tsnn::Network<double> net(o, fits);
  CHECK(net.sizes() == std::vector<long long>{5, 4, 3});
  CHECK(net.options().sizes == std::vector<long long>{5, 4, 3});
  std::vector<Layer> misfit{Layer(5, 4, 0.5, rng), Layer(3, 3, 0.5, rng)};
  CHECK_THROWS_AS(tsnn::Network<double>(o, misfit), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::Network<double>(o, std::vector<Layer>{}), tsnn::InvalidArgument);
}
