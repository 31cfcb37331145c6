// Tests for Network's bfloat16 activation storage (NetworkOptions::activationStorage,
// PassOptions::storage()): each stored value against a dense double oracle computed from the
// stored inputs (rounded once, deltas twice), the gradients as those of the stored deltas and
// activations, agreement with the float pass to bfloat16's precision, the storage override and
// reused workspaces, bit-identical results for any team size, learning, and the refusals.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/dropout.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/sgd.hpp"
#include "tsnn/sparse/convert.hpp"

namespace {

using Dense = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;
using tsnn::ActivationKind;
using tsnn::ActivationStorage;
using tsnn::BFloat16;

constexpr tsnn::Threads kSerial = tsnn::Threads::serial();
// bfloat16 keeps 8 significant bits: rounding to nearest moves a value by at most 2^-8 of it.
constexpr double kHalfRounding = 1.0 / 256;

Dense widen(const tsnn::Activations<BFloat16>& h) { return h.cast<float>().cast<double>(); }

tsnn::NetworkOptions halfOptions(ActivationKind hidden, double dropout, std::uint64_t seed) {
  tsnn::NetworkOptions o;
  o.sizes = {13, 40, 30, 20, 5};
  o.epsilon = 4;
  o.hiddenActivation = hidden;
  o.alpha = 0.6;
  o.dropout = dropout;
  o.seed = seed;
  o.activationStorage = ActivationStorage::BFloat16;
  return o;
}

tsnn::Activations<float> randomBatch(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.5, 1.5);
  tsnn::Activations<float> x(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) x(i, j) = static_cast<float>(u(rng));
  return x;
}

std::vector<std::int32_t> randomLabels(Eigen::Index n, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (auto& v : y) v = static_cast<std::int32_t>(rng() % static_cast<unsigned>(classes));
  return y;
}

void randomizeBiases(tsnn::Networkf& net, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.3, 0.3);
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    for (Eigen::Index j = 0; j < net.layer(l).bias().size(); ++j)
      net.layer(l).bias()(j) = static_cast<float>(u(rng));
}

// f and f' of the hidden activations, written out here rather than taken from the library.
double f(ActivationKind k, double slope, double z) {
  if (k == ActivationKind::Tanh) return std::tanh(z);
  return z >= 0 ? z : slope * z;
}
double fPrime(ActivationKind k, double slope, double z) {
  if (k == ActivationKind::Tanh) return 1 - std::tanh(z) * std::tanh(z);
  return z >= 0 ? 1 : slope;
}

// The largest |actual - expected| - (relative |expected| + absolute) over all entries: <= 0 when
// every entry is within its tolerance; +inf on NaN.
double excess(const Dense& actual, const Dense& expected, double relative, double absolute) {
  if (actual.rows() != expected.rows() || actual.cols() != expected.cols())
    return std::numeric_limits<double>::infinity();
  double worst = -std::numeric_limits<double>::infinity();
  for (Eigen::Index j = 0; j < actual.cols(); ++j)
    for (Eigen::Index i = 0; i < actual.rows(); ++i) {
      const double d = tsnn::test::detail::absDiff(actual(i, j), expected(i, j));
      worst = std::max(worst, d - (relative * std::abs(expected(i, j)) + absolute));
    }
  return worst;
}

// Each layer's weight gradient from its input and delta (B x n_in, B x n_out), at the stored
// connections, in double: G_k = sum_b in(b, c_k) delta(b, j_k).
std::vector<double> weightGradient(const tsnn::SparseLinear<float>& layer, const Dense& in,
                                   const Dense& delta) {
  const auto& w = layer.weights();
  std::vector<double> g;
  for (std::int32_t j = 0; j < w.rows(); ++j)
    for (std::int32_t k = w.rowBegin(j); k < w.rowEnd(j); ++k)
      g.push_back(in.col(w.colIdx()[static_cast<std::size_t>(k)]).dot(delta.col(j)));
  return g;
}

Dense asColumn(const std::vector<float>& v) {
  Dense d(static_cast<Eigen::Index>(v.size()), 1);
  for (std::size_t i = 0; i < v.size(); ++i) d(static_cast<Eigen::Index>(i), 0) = v[i];
  return d;
}
Dense asColumn(const std::vector<double>& v) {
  return Eigen::Map<const Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()));
}

}  // namespace

TEST_CASE("A bfloat16 pass stores each hidden value rounded once from its stored inputs",
          "[nn][network][bf16]") {
  const auto seed = tsnn::test::streamSeed(0xBF01);
  for (ActivationKind h : {ActivationKind::AllReLU, ActivationKind::Tanh}) {
    for (double dropout : {0.0, 0.3}) {
      INFO("hidden " << tsnn::activationName(h) << ", dropout " << dropout);
      tsnn::Networkf net(halfOptions(h, dropout, seed));
      randomizeBiases(net, seed + 1);
      const Eigen::Index B = 24;
      const tsnn::Activations<float> x = randomBatch(B, 13, seed + 2);
      tsnn::Workspace<float> ws;
      const std::uint64_t step = 7;
      net.forward(x, ws, tsnn::PassOptions::training(step).serial());
      REQUIRE(ws.storage == ActivationStorage::BFloat16);
      REQUIRE(ws.zHalf.size() == 3);
      REQUIRE(ws.aHalf.size() == 3);
      Dense in = x.cast<double>();
      for (std::size_t l = 0; l < 3; ++l) {
        INFO("hidden layer " << l);
        CHECK(ws.z[l].size() == 0);  // no float copy is kept
        const Dense w = tsnn::toDense(net.layer(l).weights()).cast<double>();
        const Dense z =
            (in * w.transpose()).rowwise() + net.layer(l).bias().cast<double>().transpose();
        // The float sum differs from the double one by far less than 1e-5 at these sizes.
        CHECK(excess(widen(ws.zHalf[l]), z, kHalfRounding, 1e-5) <= 0);
        const double slope = net.activation(l).negativeSlope();
        Dense a = z.unaryExpr([&](double v) { return f(h, slope, v); });
        if (dropout > 0)
          a = a.cwiseProduct(tsnn::dropoutMask<double>(
              B, a.cols(), dropout, tsnn::dropoutKey(net.options().seed, step, l)));
        CHECK(excess(widen(ws.aHalf[l]), a, kHalfRounding, 2e-5) <= 0);
        in = widen(ws.aHalf[l]);  // the next layer's input is the stored activation
      }
      // The output layer in float on the last stored activations.
      const Dense w = tsnn::toDense(net.layer(3).weights()).cast<double>();
      const Dense z =
          (in * w.transpose()).rowwise() + net.layer(3).bias().cast<double>().transpose();
      CHECK(tsnn::test::maxAbsDiff(ws.z[3].cast<double>(), z) <= 1e-5);
    }
  }
}

TEST_CASE("backward() on a bfloat16 pass: the chain rule through the stored values",
          "[nn][network][bf16]") {
  const auto seed = tsnn::test::streamSeed(0xBF02);
  for (ActivationKind h : {ActivationKind::AllReLU, ActivationKind::Tanh}) {
    INFO("hidden " << tsnn::activationName(h));
    tsnn::Networkf net(halfOptions(h, 0.3, seed));
    randomizeBiases(net, seed + 1);
    const Eigen::Index B = 24;
    const tsnn::Activations<float> x = randomBatch(B, 13, seed + 2);
    const auto y = randomLabels(B, 5, seed + 3);
    tsnn::Workspace<float> ws;
    const std::uint64_t step = 3;
    net.forward(x, ws, tsnn::PassOptions::training(step).serial());
    std::vector<Dense> act;  // the stored activations, before backward() overwrites them
    for (const auto& a : ws.aHalf) act.push_back(widen(a));
    const Dense logits = ws.z[3].cast<double>();
    auto g = net.makeGradients();
    const float scale = 1.0f / static_cast<float>(B);
    net.backward(x, y.data(), ws, g, scale, kSerial);

    // The output delta: (softmax(z) - onehot) / B, in float.
    Dense top(B, 5);
    for (Eigen::Index b = 0; b < B; ++b) {
      const Eigen::ArrayXd e = (logits.row(b).array() - logits.row(b).maxCoeff()).exp();
      top.row(b) = (e / e.sum()).matrix().transpose();
      top(b, y[static_cast<std::size_t>(b)]) -= 1;
    }
    top *= 1.0 / static_cast<double>(B);
    const Dense outDelta =
        Eigen::Map<const Eigen::MatrixXf>(ws.outputDelta.data(), B, 5).cast<double>();
    CHECK(tsnn::test::maxAbsDiff(outDelta, top) <= 1e-6);

    // Every delta from the one above it through the stored z and the mask, rounded twice; every
    // gradient from the stored deltas and activations.
    std::vector<Dense> delta(4);
    delta[3] = outDelta;
    for (std::size_t l = 3; l-- > 0;) {
      INFO("hidden layer " << l);
      delta[l] = widen(ws.aHalf[l]);
      const Dense w = tsnn::toDense(net.layer(l + 1).weights()).cast<double>();
      const Dense zs = widen(ws.zHalf[l]);
      const double slope = net.activation(l).negativeSlope();
      const Dense mask = tsnn::dropoutMask<double>(B, zs.cols(), 0.3,
                                                   tsnn::dropoutKey(net.options().seed, step, l));
      const Dense expected =
          (delta[l + 1] * w).cwiseProduct(mask).cwiseProduct(zs.unaryExpr([&](double v) {
            return fPrime(h, slope, v);
          }));
      const double tiny = 1e-5 * tsnn::test::maxAbs(expected);
      CHECK(excess(delta[l], expected, 2 * kHalfRounding, tiny) <= 0);
    }
    for (std::size_t l = 0; l < 4; ++l) {
      INFO("layer " << l);
      const Dense in = l == 0 ? Dense(x.cast<double>()) : act[l - 1];
      const Dense expected = asColumn(weightGradient(net.layer(l), in, delta[l]));
      CHECK(tsnn::test::maxAbsDiff(asColumn(g.weights[l]), expected) <=
            1e-5 * (1 + tsnn::test::maxAbs(expected)));
      const Eigen::VectorXd bias = delta[l].colwise().sum().transpose();
      CHECK(tsnn::test::maxAbsDiff(g.bias[l].cast<double>(), bias) <=
            1e-5 * (1 + tsnn::test::maxAbs(bias)));
    }
  }
}

TEST_CASE("bfloat16 and float passes of one network agree to bfloat16's precision",
          "[nn][network][bf16]") {
  const auto seed = tsnn::test::streamSeed(0xBF03);
  for (ActivationKind h : {ActivationKind::AllReLU, ActivationKind::Tanh}) {
    INFO("hidden " << tsnn::activationName(h));
    tsnn::Networkf net(halfOptions(h, 0.3, seed));
    randomizeBiases(net, seed + 1);
    const Eigen::Index B = 32;
    const tsnn::Activations<float> x = randomBatch(B, 13, seed + 2);
    const auto y = randomLabels(B, 5, seed + 3);
    const auto pass = tsnn::PassOptions::training(11).serial();
    tsnn::Workspace<float> wh, wf;
    const tsnn::Activations<float> ph = net.forward(x, wh, pass);
    const tsnn::Activations<float> pf = net.forward(x, wf, pass.storage(ActivationStorage::Scalar));
    REQUIRE(wf.storage == ActivationStorage::Scalar);
    REQUIRE(wf.zHalf.empty());
    const double outDiff = tsnn::test::maxAbsDiff(ph, pf);
    CHECK(outDiff <= 0.02);
    CHECK(outDiff > 0);  // the passes really differ: the bfloat16 one rounded
    // Smooth tanh's gradients differ by about bfloat16's rounding (0.4% measured). All-ReLU adds
    // the kinks: a pre-activation within rounding of 0 can take the other slope in the other
    // pass, and its delta changes by 1 + a. In the measured draw one of the last hidden layer's
    // 640 did, which moved the hidden layers' gradients by 6% and the output layer's by 0.3%. A
    // wrong mask, slope or input is off by far more.
    const double tolerance = h == ActivationKind::Tanh ? 0.02 : 0.15;
    auto gh = net.makeGradients(), gf = net.makeGradients();
    net.backward(x, y.data(), wh, gh, 1.0f / static_cast<float>(B), kSerial);
    net.backward(x, y.data(), wf, gf, 1.0f / static_cast<float>(B), kSerial);
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      INFO("layer " << l);
      const Dense a = asColumn(gh.weights[l]), b = asColumn(gf.weights[l]);
      const double rel = (a - b).norm() / b.norm();
      INFO("relative difference " << rel);
      CHECK(rel <= tolerance);
      CHECK((gh.bias[l] - gf.bias[l]).norm() <= tolerance * gf.bias[l].norm());
    }
  }
}

TEST_CASE("The storage override and a reused workspace give each storage's own pass, bit for bit",
          "[nn][network][bf16]") {
  const auto seed = tsnn::test::streamSeed(0xBF04);
  auto o = halfOptions(ActivationKind::AllReLU, 0.3, seed);
  const tsnn::Networkf half(o);
  o.activationStorage = ActivationStorage::Scalar;
  const tsnn::Networkf plain(o);
  const Eigen::Index B = 19;
  const tsnn::Activations<float> x = randomBatch(B, 13, seed + 2);
  const auto y = randomLabels(B, 5, seed + 3);
  const auto pass = tsnn::PassOptions::training(4).serial();
  auto run = [&](const tsnn::Networkf& net, tsnn::Workspace<float>& ws, tsnn::PassOptions p) {
    auto g = net.makeGradients();
    const tsnn::Activations<float> out = net.forward(x, ws, p);
    net.backward(x, y.data(), ws, g, 1.0f / static_cast<float>(B), kSerial);
    return std::make_pair(out, g);
  };
  tsnn::Workspace<float> fresh1, fresh2, reused;
  const auto halfRef = run(half, fresh1, pass);
  const auto plainRef = run(plain, fresh2, pass);
  // One workspace through both storages and back, on either network through the override.
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    const auto a = run(plain, reused, pass.storage(ActivationStorage::BFloat16));
    CHECK(tsnn::test::bitIdentical(a.first, halfRef.first));
    CHECK(reused.z[0].size() == 0);
    const auto b = run(half, reused, pass.storage(ActivationStorage::Scalar));
    CHECK(tsnn::test::bitIdentical(b.first, plainRef.first));
    CHECK(reused.zHalf.empty());
    CHECK(reused.scratch.size() == 0);
    for (std::size_t l = 0; l < half.numLayers(); ++l) {
      CHECK(tsnn::test::bitIdentical(a.second.weights[l], halfRef.second.weights[l]));
      CHECK(tsnn::test::bitIdentical(b.second.weights[l], plainRef.second.weights[l]));
    }
  }
}

TEST_CASE("A bfloat16 pass gives the same bits on one thread and on a team",
          "[nn][network][bf16][parallel]") {
  const auto seed = tsnn::test::streamSeed(0xBF05);
  tsnn::NetworkOptions o = halfOptions(ActivationKind::AllReLU, 0.3, seed);
  o.sizes = {30, 300, 200, 10};  // wide enough for several column blocks per layer
  tsnn::Networkf net(o);
  const Eigen::Index B = 40;
  const tsnn::Activations<float> x = randomBatch(B, 30, seed + 2);
  const auto y = randomLabels(B, 10, seed + 3);
  tsnn::Workspace<float> w1, w2;
  auto g1 = net.makeGradients(), g2 = net.makeGradients();
  const tsnn::Activations<float> p1 = net.forward(x, w1, tsnn::PassOptions::training(2).serial());
  const tsnn::Activations<float> p2 =
      net.forward(x, w2, tsnn::PassOptions::training(2).threads(tsnn::Threads::count(2)));
  CHECK(tsnn::test::bitIdentical(p1, p2));
  net.backward(x, y.data(), w1, g1, 1.0f / static_cast<float>(B), kSerial);
  net.backward(x, y.data(), w2, g2, 1.0f / static_cast<float>(B), tsnn::Threads::count(2));
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    CHECK(tsnn::test::bitIdentical(g1.weights[l], g2.weights[l]));
    CHECK(tsnn::test::bitIdentical(g1.bias[l], g2.bias[l]));
  }
}

TEST_CASE("A bfloat16 network learns a separable toy problem", "[nn][network][bf16][learning]") {
  const auto seed = tsnn::test::streamSeed(0xBF06);
  const Eigen::Index n = 300;
  const auto blobs = tsnn::test::threeBlobs<float>(n, seed);
  const tsnn::Networkf::Features& features = blobs.features;
  const std::vector<std::int32_t>& labels = blobs.labels;
  tsnn::NetworkOptions o = halfOptions(ActivationKind::AllReLU, 0.0, seed);
  o.sizes = {4, 16, 16, 3};
  tsnn::Networkf net(o);
  tsnn::SgdOptions so;
  so.learningRate = 0.05;
  so.momentum = 0.9;
  so.weightDecay = 0;
  tsnn::Sgd<float> sgd(so);
  const Eigen::Index batch = 30;
  tsnn::Workspace<float> ws;
  auto grads = net.makeGradients();
  double firstLoss = 0, lastLoss = 0;
  for (int step = 0; step < 300; ++step) {
    const Eigen::Index b0 = (static_cast<Eigen::Index>(step) * batch) % n;
    const tsnn::Activations<float> x = features.middleRows(b0, batch);
    net.forward(x, ws, tsnn::PassOptions::training(static_cast<std::uint64_t>(step)).serial());
    REQUIRE(ws.storage == ActivationStorage::BFloat16);
    const auto stats =
        net.backward(x, labels.data() + b0, ws, grads, 1.0f / static_cast<float>(batch), kSerial);
    if (step < 10) firstLoss += stats.lossSum;
    if (step >= 290) lastLoss += stats.lossSum;
    sgd.step(net, grads, kSerial);
  }
  const double after = net.accuracy(features, labels);
  INFO("accuracy " << after << ", loss " << firstLoss << " -> " << lastLoss);
  CHECK(after > 0.9);
  CHECK(lastLoss < 0.5 * firstLoss);
}

TEST_CASE("bfloat16 storage is refused where it has no form", "[nn][network][bf16][errors]") {
  auto o = halfOptions(ActivationKind::AllReLU, 0.3, 5);
  CHECK_THROWS_WITH(tsnn::Network<double>(o),
                    Catch::StartsWith("tsnn: Network::Network(): bfloat16 activation storage "
                                      "needs a float network; this one's Scalar has 8 bytes"));
  o.activationStorage = ActivationStorage::Scalar;
  const tsnn::Network<double> dbl(o);
  tsnn::Workspace<double> wd;
  const tsnn::Activations<double> xd = tsnn::Activations<double>::Zero(3, 13);
  CHECK_THROWS_WITH(
      dbl.forward(xd, wd, tsnn::PassOptions().storage(ActivationStorage::BFloat16)),
      Catch::StartsWith("tsnn: Network::forward(): bfloat16 activation storage needs a float"));
  o.activationStorage = static_cast<ActivationStorage>(7);
  CHECK_THROWS_WITH(o.validate(), Catch::Contains("unknown activation storage 7"));

  // backwardDeltas() and gradientsRows() keep float deltas: they refuse a bfloat16 pass.
  const tsnn::Networkf net(halfOptions(ActivationKind::AllReLU, 0.3, 5));
  tsnn::Workspace<float> ws;
  const tsnn::Activations<float> x = randomBatch(3, 13, 6);
  const std::vector<std::int32_t> y{0, 1, 2};
  net.forward(x, ws, tsnn::PassOptions::training(1).serial());
  CHECK_THROWS_WITH(net.backwardDeltas(y.data(), ws, 1.0f, kSerial),
                    Catch::StartsWith("tsnn: Network::backwardDeltas(): the workspace holds a "
                                      "bfloat16 forward pass"));
  auto g = net.makeGradients();
  CHECK_THROWS_WITH(net.gradientsRows(1, &x, &ws, 1, g, 0, 1),
                    Catch::StartsWith("tsnn: Network::gradientsRows(): the workspace holds a "
                                      "bfloat16 forward pass"));
  // With the override, the same network's pass has float deltas, which they take.
  net.forward(x, ws, tsnn::PassOptions::training(1).serial().storage(ActivationStorage::Scalar));
  CHECK_NOTHROW(net.backwardDeltas(y.data(), ws, 1.0f, kSerial));
  CHECK_NOTHROW(net.gradientsRows(1, &x, &ws, 1, g, 0, 1));
}

TEST_CASE("The summary and the memory report name the bfloat16 storage", "[nn][network][bf16]") {
  auto o = halfOptions(ActivationKind::AllReLU, 0.3, 5);
  const tsnn::Networkf half(o);
  CHECK_THAT(half.summary(), Catch::StartsWith("Network (float, bfloat16 activations,"));
  o.activationStorage = ActivationStorage::Scalar;
  const tsnn::Networkf plain(o);
  CHECK_THAT(plain.summary(), Catch::StartsWith("Network (float, softmax"));
  tsnn::MemoryPlan plan;
  plan.batch = 10;
  // Per sample: hidden z and a (90 values each) at 2 bytes against 4, the scratch of the widest
  // hidden layer (40 floats) on top.
  CHECK(plain.memoryReport(plan).workspacePerSample - half.memoryReport(plan).workspacePerSample ==
        2 * 90 * 2 - 40 * 4);
}
