// Tests for tsnn/activations/activation.hpp: every ActivationKind's forward values against the
// textbook formula, its backward pass against central finite differences, name parsing, and the
// slope each piecewise-linear kind ends up with.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <type_traits>

#include "support/gradcheck.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/activation.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

using tsnn::ActivationKind;

constexpr ActivationKind kAllKinds[] = {ActivationKind::Identity,  ActivationKind::ReLU,
                                        ActivationKind::LeakyReLU, ActivationKind::AllReLU,
                                        ActivationKind::Sigmoid,   ActivationKind::Tanh};

// The textbook definition, in double.
double reference(ActivationKind k, double slope, double z) {
  switch (k) {
    case ActivationKind::Identity:
      return z;
    case ActivationKind::ReLU:
      return z < 0 ? 0.0 : z;
    case ActivationKind::LeakyReLU:
    case ActivationKind::AllReLU:
      return z < 0 ? slope * z : z;
    case ActivationKind::Sigmoid:
      return 1.0 / (1.0 + std::exp(-z));
    case ActivationKind::Tanh:
      return std::tanh(z);
  }
  return std::numeric_limits<double>::quiet_NaN();
}

double slopeFor(ActivationKind k) {
  switch (k) {
    case ActivationKind::LeakyReLU:
      return 0.01;
    case ActivationKind::AllReLU:
      return -0.6;
    default:
      return 0.0;
  }
}

// B x n entries uniform in [-3, 3] with |z| >= gap (keeps finite differences off the kinks).
Mat<double> randomAwayFromZero(Eigen::Index rows, Eigen::Index cols, double gap,
                               std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mag(gap, 3.0);
  std::bernoulli_distribution sign(0.5);
  Mat<double> z(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) z(i, j) = (sign(rng) ? 1.0 : -1.0) * mag(rng);
  return z;
}

}  // namespace

TEMPLATE_TEST_CASE("Activation forward matches the textbook formula for every kind",
                   "[activations]", float, double) {
  using Scalar = TestType;
  const double tol = std::is_same<Scalar, float>::value ? 2e-6 : 1e-14;
  const Mat<double> zd = randomAwayFromZero(5, 7, 0.0, tsnn::test::testSeed(2201));
  const Mat<Scalar> z = zd.cast<Scalar>();
  for (ActivationKind k : kAllKinds) {
    INFO("activation " << tsnn::activationName(k));
    const tsnn::Activation<Scalar> act(k, static_cast<Scalar>(slopeFor(k)));
    CHECK(act.kind() == k);
    Mat<Scalar> a(z.rows(), z.cols());
    act.forward(z, a);
    Mat<double> expected(z.rows(), z.cols());
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      for (Eigen::Index i = 0; i < z.rows(); ++i)
        expected(i, j) = reference(k, slopeFor(k), static_cast<double>(z(i, j)));
    CHECK(tsnn::test::maxAbsDifferenceMatrix(a.template cast<double>(), expected) <= tol);
    // In place (A aliases Z) gives the same.
    Mat<Scalar> inPlace = z;
    act.forward(inPlace, inPlace);
    CHECK(inPlace == a);
  }
}

TEST_CASE("Activation backward matches central finite differences for every kind",
          "[activations][gradcheck]") {
  const auto seed = tsnn::test::testSeed(2202);
  const Mat<double> z0 = randomAwayFromZero(4, 6, 1e-2, seed);
  const Mat<double> r = randomAwayFromZero(4, 6, 0.0, seed + 7);
  for (ActivationKind k : kAllKinds) {
    INFO("activation " << tsnn::activationName(k));
    const tsnn::Activation<double> act(k, slopeFor(k));
    Mat<double> z = z0;
    // L(Z) = sum(f(Z) .* R); backward turns R = dL/dA into dL/dZ.
    auto loss = [&] {
      Mat<double> a(z.rows(), z.cols());
      act.forward(z, a);
      return (a.array() * r.array()).sum();
    };
    Mat<double> analytic = r;
    act.backward(z, analytic);
    Mat<double> numeric(z.rows(), z.cols());
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      for (Eigen::Index i = 0; i < z.rows(); ++i)
        numeric(i, j) = tsnn::test::centralDifference(loss, z(i, j));
    CHECK(tsnn::test::maxAbsDifferenceMatrix(analytic, numeric) < 1e-8);
  }
}

TEMPLATE_TEST_CASE("Sigmoid and tanh stay finite and saturate for large pre-activations",
                   "[activations]", float, double) {
  using Scalar = TestType;
  Mat<Scalar> z(1, 4);
  z << Scalar(-1000), Scalar(-50), Scalar(50), Scalar(1000);
  for (ActivationKind k : {ActivationKind::Sigmoid, ActivationKind::Tanh}) {
    INFO("activation " << tsnn::activationName(k));
    const tsnn::Activation<Scalar> act(k);
    Mat<Scalar> a(1, 4);
    act.forward(z, a);
    REQUIRE(a.allFinite());
    const Scalar low = k == ActivationKind::Sigmoid ? Scalar(0) : Scalar(-1);
    CHECK(a(0, 0) == Approx(low).margin(1e-6));
    CHECK(a(0, 3) == Approx(1.0).margin(1e-6));
    Mat<Scalar> g = Mat<Scalar>::Ones(1, 4);
    act.backward(z, g);
    CHECK(g.allFinite());
    CHECK(g.cwiseAbs().maxCoeff() <= Scalar(1e-6));
  }
}

TEST_CASE("parseActivation accepts every documented name and round-trips activationName",
          "[activations][parse]") {
  CHECK(tsnn::parseActivation("identity") == ActivationKind::Identity);
  CHECK(tsnn::parseActivation("linear") == ActivationKind::Identity);
  CHECK(tsnn::parseActivation("relu") == ActivationKind::ReLU);
  CHECK(tsnn::parseActivation("leaky-relu") == ActivationKind::LeakyReLU);
  CHECK(tsnn::parseActivation("leaky_relu") == ActivationKind::LeakyReLU);
  CHECK(tsnn::parseActivation("all-relu") == ActivationKind::AllReLU);
  CHECK(tsnn::parseActivation("all_relu") == ActivationKind::AllReLU);
  CHECK(tsnn::parseActivation("allrelu") == ActivationKind::AllReLU);
  CHECK(tsnn::parseActivation("sigmoid") == ActivationKind::Sigmoid);
  CHECK(tsnn::parseActivation("tanh") == ActivationKind::Tanh);
  for (ActivationKind k : kAllKinds) CHECK(tsnn::parseActivation(tsnn::activationName(k)) == k);
}

TEST_CASE("parseActivation rejects an unknown name and says which",
          "[activations][parse][errors]") {
  CHECK_THROWS_AS(tsnn::parseActivation("softmax"), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::parseActivation(""), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::parseActivation("ReLU"), tsnn::InvalidArgument);  // names are lower case
  CHECK_THROWS_WITH(tsnn::parseActivation("gelu"), Catch::StartsWith("tsnn: ") &&
                                                       Catch::Contains("parseActivation()") &&
                                                       Catch::Contains("'gelu'"));
}

TEMPLATE_TEST_CASE("ReLU ignores the slope it is given and LeakyReLU keeps it",
                   "[activations][slopes]", float, double) {
  using Scalar = TestType;
  const tsnn::Activation<Scalar> relu(ActivationKind::ReLU, Scalar(0.3));
  CHECK(relu.negativeSlope() == Scalar(0));
  const tsnn::Activation<Scalar> leaky(ActivationKind::LeakyReLU, Scalar(0.05));
  CHECK(leaky.negativeSlope() == Scalar(0.05));
  const tsnn::Activation<Scalar> all(ActivationKind::AllReLU, Scalar(-0.6));
  CHECK(all.negativeSlope() == Scalar(-0.6));

  Mat<Scalar> z(1, 3);
  z << Scalar(-2), Scalar(0), Scalar(2);
  Mat<Scalar> a(1, 3);
  relu.forward(z, a);
  CHECK(a(0, 0) == Scalar(0));
  CHECK(a(0, 2) == Scalar(2));
  leaky.forward(z, a);
  CHECK(a(0, 0) == Scalar(0.05) * Scalar(-2));
  CHECK(a(0, 1) == Scalar(0));
  CHECK(a(0, 2) == Scalar(2));

  Mat<Scalar> g = Mat<Scalar>::Ones(1, 3);
  relu.backward(z, g);
  CHECK(g(0, 0) == Scalar(0));
  CHECK(g(0, 1) == Scalar(1));
  CHECK(g(0, 2) == Scalar(1));
  g.setOnes();
  leaky.backward(z, g);
  CHECK(g(0, 0) == Scalar(0.05));
  CHECK(g(0, 2) == Scalar(1));
}

TEST_CASE("A default Activation is the identity and a non-finite slope is rejected",
          "[activations][errors]") {
  const tsnn::Activation<double> id;
  CHECK(id.kind() == ActivationKind::Identity);
  CHECK(id.negativeSlope() == 0.0);
  CHECK_THROWS_AS(
      tsnn::Activation<double>(ActivationKind::LeakyReLU, std::numeric_limits<double>::quiet_NaN()),
      tsnn::InvalidArgument);
  CHECK_THROWS_AS(
      tsnn::Activation<float>(ActivationKind::AllReLU, std::numeric_limits<float>::infinity()),
      tsnn::InvalidArgument);
  CHECK_THROWS_WITH(
      tsnn::Activation<double>(ActivationKind::LeakyReLU, std::numeric_limits<double>::quiet_NaN()),
      Catch::Contains("Activation::Activation()"));
}
