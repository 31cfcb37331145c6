// Tests for tsnn/optim/adam.hpp: adamUpdate's first step worked out by hand; the Adam optimiser
// on a network with a fixed sparse pattern against a dense Adam reference (Eigen matrices, the
// formulas of Kingma & Ba and Loshchilov & Hutter as written in the paper) restricted to the
// same nonzeros, for plain Adam, AdamW and L2 decay, with a learning-rate change midway; the bias
// correction's step count; slices; the parallel loop; AdamOptions::validate.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/adam.hpp"
#include "tsnn/sparse/convert.hpp"

namespace {

using Dense = Eigen::MatrixXd;

tsnn::AdamOptions adamOptions(double lr, double wd, bool decoupled) {
  tsnn::AdamOptions o;
  o.learningRate = lr;
  o.weightDecay = wd;
  o.decoupled = decoupled;
  return o;
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

// Dense Adam on whole matrices (every entry a parameter), step t (1-based), in double, as the
// papers write it: m^ = m / (1 - b1^t), v^ = v / (1 - b2^t), w -= lr (m^ / (sqrt(v^) + eps)
// [+ lambda w, decoupled]); L2 decay adds lambda w to the gradient first.
struct DenseAdam {
  Dense w, m, v;
  void step(Dense g, const tsnn::AdamOptions& o, int t) {
    if (!o.decoupled) g += o.weightDecay * w;
    m = o.beta1 * m + (1 - o.beta1) * g;
    v = o.beta2 * v + (1 - o.beta2) * g.cwiseProduct(g);
    const Dense mHat = m / (1 - std::pow(o.beta1, t));
    const Dense vHat = v / (1 - std::pow(o.beta2, t));
    const Dense update = mHat.array() / (vHat.array().sqrt() + o.epsilon);
    const Dense decay = o.decoupled ? Dense(o.weightDecay * w) : Dense::Zero(w.rows(), w.cols());
    w -= o.learningRate * (update + decay);
  }
};

// The dense matrix of a CSR-ordered array aligned with \p w's pattern.
template <class Scalar>
Dense denseOf(const tsnn::CsrMatrix<Scalar, std::int32_t>& w, const std::vector<Scalar>& a) {
  Dense d = Dense::Zero(w.rows(), w.cols());
  for (std::int32_t r = 0; r < w.rows(); ++r)
    for (std::int32_t k = w.rowBegin(r); k < w.rowEnd(r); ++k)
      d(r, w.colIdx()[static_cast<std::size_t>(k)]) =
          static_cast<double>(a[static_cast<std::size_t>(k)]);
  return d;
}

// max |sparse - dense| over the stored entries of \p w, relative to max(1, |dense|); +inf on NaN.
template <class Scalar>
double maxStoredError(const tsnn::CsrMatrix<Scalar, std::int32_t>& w, const std::vector<Scalar>& a,
                      const Dense& ref) {
  double worst = 0;
  for (std::int32_t r = 0; r < w.rows(); ++r)
    for (std::int32_t k = w.rowBegin(r); k < w.rowEnd(r); ++k) {
      const double x = static_cast<double>(a[static_cast<std::size_t>(k)]);
      const double y = ref(r, w.colIdx()[static_cast<std::size_t>(k)]);
      if (!std::isfinite(x) || !std::isfinite(y)) return std::numeric_limits<double>::infinity();
      worst = std::max(worst, std::abs(x - y) / std::max(1.0, std::abs(y)));
    }
  return worst;
}

template <class Scalar>
double adamTol() {
  // Float: a few ulps of the O(1) terms per step, ten steps; double: rounding only.
  return std::is_same<Scalar, float>::value ? 2e-6 : 1e-13;
}

}  // namespace

TEMPLATE_TEST_CASE("adamUpdate's first step moves each parameter by about lr against its gradient",
                   "[optim][adam]", float, double) {
  using Scalar = TestType;
  // t = 1, m0 = v0 = 0: m = 0.1 g, v = 0.001 g^2, m^ = g, v^ = g^2, so
  // w1 = w0 - lr g / (|g| + eps); with lr 0.01, g = 0.5: w1 = 1 - 0.01 * 0.5 / (0.5 + 1e-8).
  const auto o = adamOptions(0.01, 0.0, true);
  Scalar w = 1, m = 0, v = 0, g = Scalar(0.5);
  tsnn::adamUpdate(&w, &m, &v, &g, 1, o, 1);
  CHECK(std::abs(static_cast<double>(m) - 0.05) <= 1e-7);
  CHECK(std::abs(static_cast<double>(v) - 0.00025) <= 1e-9);
  CHECK(std::abs(static_cast<double>(w) - (1 - 0.01 * 0.5 / (0.5 + 1e-8))) <= 1e-7);
  // AdamW with lambda 0.1 also shrinks w by lr lambda w = 0.001 before the same move.
  Scalar w2 = 1, m2 = 0, v2 = 0;
  tsnn::adamUpdate(&w2, &m2, &v2, &g, 1, adamOptions(0.01, 0.1, true), 1);
  CHECK(std::abs(static_cast<double>(w2) - (1 - 0.001 - 0.01 * 0.5 / (0.5 + 1e-8))) <= 1e-7);
  // L2 decay enters the gradient: g' = 0.5 + 0.1 = 0.6, and the first step is again about lr.
  Scalar w3 = 1, m3 = 0, v3 = 0;
  tsnn::adamUpdate(&w3, &m3, &v3, &g, 1, adamOptions(0.01, 0.1, false), 1);
  CHECK(std::abs(static_cast<double>(m3) - 0.06) <= 1e-7);
  CHECK(std::abs(static_cast<double>(w3) - (1 - 0.01 * 0.6 / (0.6 + 1e-8))) <= 1e-7);
}

TEMPLATE_TEST_CASE(
    "Adam on a fixed sparse pattern equals dense Adam restricted to the same nonzeros",
    "[optim][adam][oracle]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(7701);
  for (const auto& o : {adamOptions(1e-2, 0.0, true), adamOptions(1e-2, 0.05, true),
                        adamOptions(3e-3, 0.05, false)}) {
    INFO("weight decay " << o.weightDecay << (o.decoupled ? " decoupled" : " L2"));
    auto net = smallNetwork<Scalar>(seed);
    tsnn::Adam<Scalar> adam(o);
    const std::size_t L = net.numLayers();
    // The reference holds every position of each weight matrix and a dense gradient for all of
    // them; only the stored ones are compared (Adam is elementwise, so the others do not matter).
    std::vector<DenseAdam> ref(L), refBias(L);
    for (std::size_t l = 0; l < L; ++l) {
      const auto& w = net.layer(l).weights();
      ref[l].w = denseOf(w, w.values());
      ref[l].m = ref[l].v = Dense::Zero(w.rows(), w.cols());
      refBias[l].w = net.layer(l).bias().template cast<double>();
      refBias[l].m = refBias[l].v = Dense::Zero(w.rows(), 1);
    }
    std::mt19937_64 rng(seed + 1);
    std::normal_distribution<double> gauss(0, 1);
    auto g = net.makeGradients();
    tsnn::AdamOptions current = o;
    for (int t = 1; t <= 10; ++t) {
      if (t == 6) {  // the rate in use, not the one of the options
        adam.setLearningRate(o.learningRate / 4);
        current.learningRate = o.learningRate / 4;
      }
      for (std::size_t l = 0; l < L; ++l) {
        const auto& w = net.layer(l).weights();
        Dense gd(w.rows(), w.cols());
        for (Eigen::Index j = 0; j < gd.cols(); ++j)
          for (Eigen::Index i = 0; i < gd.rows(); ++i) gd(i, j) = gauss(rng) * (t % 3 + 0.5);
        // The optimiser gets the stored entries, rounded to Scalar; the reference the dense
        // gradient with those entries rounded the same way.
        for (std::int32_t r = 0; r < w.rows(); ++r)
          for (std::int32_t k = w.rowBegin(r); k < w.rowEnd(r); ++k) {
            const std::int32_t c = w.colIdx()[static_cast<std::size_t>(k)];
            g.weights[l][static_cast<std::size_t>(k)] = static_cast<Scalar>(gd(r, c));
            gd(r, c) = static_cast<double>(g.weights[l][static_cast<std::size_t>(k)]);
          }
        ref[l].step(gd, current, t);
        Dense gb(w.rows(), 1);
        for (Eigen::Index j = 0; j < gb.rows(); ++j) {
          g.bias[l][j] = static_cast<Scalar>(gauss(rng));
          gb(j, 0) = static_cast<double>(g.bias[l][j]);
        }
        refBias[l].step(gb, current, t);
      }
      adam.step(net, g);
      CHECK(adam.steps() == static_cast<std::uint64_t>(t));
    }
    for (std::size_t l = 0; l < L; ++l) {
      const auto& w = net.layer(l).weights();
      const auto& s = adam.layerState(l);
      CHECK(maxStoredError(w, w.values(), ref[l].w) <= adamTol<Scalar>());
      CHECK(maxStoredError(w, s.entries[0], ref[l].m) <= adamTol<Scalar>());
      CHECK(maxStoredError(w, s.entries[1], ref[l].v) <= adamTol<Scalar>());
      const Eigen::VectorXd bw = refBias[l].w.col(0), bm = refBias[l].m.col(0),
                            bv = refBias[l].v.col(0);
      CHECK(tsnn::test::maxMixedDifference(net.layer(l).bias(), bw) <= adamTol<Scalar>());
      CHECK(tsnn::test::maxMixedDifference(s.rows[0], bm) <= adamTol<Scalar>());
      CHECK(tsnn::test::maxMixedDifference(s.rows[1], bv) <= adamTol<Scalar>());
    }
  }
}

TEMPLATE_TEST_CASE("Adam's bias correction counts steps, not calls to updateSlice",
                   "[optim][adam][slices]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(7702);
  auto whole = smallNetwork<Scalar>(seed);
  auto sliced = whole;
  tsnn::Adam<Scalar> a(adamOptions(1e-2, 0.01, true)), b(adamOptions(1e-2, 0.01, true));
  auto g = whole.makeGradients();
  std::mt19937_64 rng(seed + 1);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int step = 0; step < 3; ++step) {
    for (auto& w : g.weights)
      for (auto& v : w) v = static_cast<Scalar>(u(rng));
    for (auto& bias : g.bias)
      for (Eigen::Index j = 0; j < bias.size(); ++j) bias[j] = static_cast<Scalar>(u(rng));
    a.step(whole, g);
    b.beginStep(sliced, g);
    for (std::size_t l = 0; l < sliced.numLayers(); ++l) {
      const auto n = static_cast<std::size_t>(sliced.layer(l).nonZeros());
      for (std::size_t t = 4; t-- > 0;)
        b.updateSlice(sliced, g, l, tsnn::Parameters::Weights, n * t / 4, n * (t + 1) / 4);
      b.updateSlice(sliced, g, l, tsnn::Parameters::Biases, 0,
                    static_cast<std::size_t>(sliced.layer(l).outputs()));
    }
  }
  CHECK(b.steps() == 3);
  for (std::size_t l = 0; l < whole.numLayers(); ++l) {
    CHECK(tsnn::test::bitIdentical(whole.layer(l).values(), sliced.layer(l).values()));
    CHECK(tsnn::test::bitIdentical(whole.layer(l).bias(), sliced.layer(l).bias()));
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(tsnn::test::bitIdentical(a.layerState(l).entries[i], b.layerState(l).entries[i]));
      CHECK(tsnn::test::bitIdentical(a.layerState(l).rows[i], b.layerState(l).rows[i]));
    }
  }
}

TEMPLATE_TEST_CASE("adamUpdate gives the same result with and without the parallel loop",
                   "[optim][adam][openmp]", float, double) {
  using Scalar = TestType;
  const std::size_t n = 40000;  // above the size where the loop may go parallel
  std::mt19937_64 rng(tsnn::test::testSeed(7703));
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<Scalar> w(n), m(n), v(n), g(n);
  for (std::size_t k = 0; k < n; ++k) {
    w[k] = static_cast<Scalar>(u(rng));
    m[k] = static_cast<Scalar>(u(rng));
    v[k] = static_cast<Scalar>(std::abs(u(rng)));
    g[k] = static_cast<Scalar>(u(rng));
  }
  auto w2 = w, m2 = m, v2 = v;
  const auto o = adamOptions(1e-3, 0.01, true);
  tsnn::adamUpdate(w.data(), m.data(), v.data(), g.data(), static_cast<std::ptrdiff_t>(n), o, 5,
                   tsnn::Threads::count(2));
  tsnn::adamUpdate(w2.data(), m2.data(), v2.data(), g.data(), static_cast<std::ptrdiff_t>(n), o, 5,
                   tsnn::Threads::serial());
  CHECK(w == w2);
  CHECK(m == m2);
  CHECK(v == v2);
}

TEST_CASE("Adam's name, kind, state arrays and defaults", "[optim][adam]") {
  tsnn::Adam<float> adam;
  CHECK(adam.kind() == tsnn::OptimizerKind::Adam);
  CHECK(adam.name() == "adam");
  CHECK(adam.slots() == 2);
  CHECK(adam.learningRate() == 1e-3);
  CHECK(tsnn::Adam<float>(adamOptions(1e-3, 0.01, true)).name() == "adamw");
  CHECK(tsnn::Adam<float>(adamOptions(1e-3, 0.01, false)).name() == "adam");
  const tsnn::AdamOptions d;
  CHECK(d.beta1 == 0.9);
  CHECK(d.beta2 == 0.999);
  CHECK(d.epsilon == 1e-8);
  CHECK(d.weightDecay == 0);
  CHECK_NOTHROW(d.validate());
}

TEST_CASE("AdamOptions::validate rejects bad values, naming them", "[optim][adam][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto with = [](auto change) {
    tsnn::AdamOptions o;
    change(o);
    return o;
  };
  struct Case {
    tsnn::AdamOptions options;
    const char* what;
  };
  const Case cases[] = {
      {with([](auto& o) { o.learningRate = 0; }), "learning rate"},
      {with([&](auto& o) { o.learningRate = nan; }), "learning rate"},
      {with([&](auto& o) { o.learningRate = inf; }), "learning rate"},
      {with([](auto& o) { o.beta1 = 1; }), "beta1"},
      {with([](auto& o) { o.beta1 = -0.1; }), "beta1"},
      {with([&](auto& o) { o.beta2 = nan; }), "beta2"},
      {with([](auto& o) { o.beta2 = 1.5; }), "beta2"},
      {with([](auto& o) { o.epsilon = 0; }), "epsilon"},
      {with([&](auto& o) { o.epsilon = inf; }), "epsilon"},
      {with([](auto& o) { o.weightDecay = -1e-3; }), "weight decay"},
      {with([&](auto& o) { o.weightDecay = nan; }), "weight decay"},
      {with([](auto& o) { o.weightDecay = 2000; }), "decoupled weight decay"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    CHECK_THROWS_WITH(c.options.validate(),
                      Catch::StartsWith("tsnn: AdamOptions") && Catch::Contains(c.what));
    CHECK_THROWS_AS(tsnn::Adam<double>(c.options), tsnn::InvalidArgument);
  }
  CHECK_THROWS_WITH(with([](auto& o) { o.beta1 = 1.25; }).validate(), Catch::Contains("1.25"));
  // L2 decay does not multiply w by 1 - lr lambda, so a large lambda is allowed there.
  CHECK_NOTHROW(with([](auto& o) {
                  o.weightDecay = 2000;
                  o.decoupled = false;
                }).validate());
}
