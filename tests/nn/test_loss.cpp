// Tests for tsnn/losses/loss.hpp: loss values against the formulas written out directly,
// gradients against central finite differences of the loss sum, the gradient scale, stability
// for large logits, and label checking.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/loss.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

Mat<double> randomMatrix(Eigen::Index rows, Eigen::Index cols, double lo, double hi,
                         std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Mat<double> z(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) z(i, j) = u(rng);
  return z;
}

std::vector<std::int32_t> randomLabels(Eigen::Index n, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(0, classes - 1);
  std::vector<std::int32_t> y(static_cast<std::size_t>(n));
  for (auto& v : y) v = u(rng);
  return y;
}

// sum_b -log(exp(z_by) / sum_c exp(z_bc)), directly, in long double.
double referenceCrossEntropy(const Mat<double>& z, const std::vector<std::int32_t>& y) {
  long double total = 0;
  for (Eigen::Index b = 0; b < z.rows(); ++b) {
    long double s = 0;
    for (Eigen::Index c = 0; c < z.cols(); ++c) s += std::exp(static_cast<long double>(z(b, c)));
    total -= std::log(std::exp(static_cast<long double>(z(b, y[static_cast<std::size_t>(b)]))) / s);
  }
  return static_cast<double>(total);
}

// sum_b sum_c (a_bc - [c == y_b])^2 / C, directly.
double referenceMse(const Mat<double>& a, const std::vector<std::int32_t>& y) {
  double total = 0;
  for (Eigen::Index b = 0; b < a.rows(); ++b)
    for (Eigen::Index c = 0; c < a.cols(); ++c) {
      const double t = c == y[static_cast<std::size_t>(b)] ? 1.0 : 0.0;
      total += (a(b, c) - t) * (a(b, c) - t) / static_cast<double>(a.cols());
    }
  return total;
}

template <class Scalar>
double tol() {
  return std::is_same<Scalar, float>::value ? 2e-5 : 1e-12;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "softmaxCrossEntropy returns the summed -log p_label and writes softmax and "
    "scale * (p - onehot)",
    "[losses][cross-entropy]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(4401);
  const Mat<Scalar> z = randomMatrix(8, 5, -4, 4, seed).cast<Scalar>();
  const auto y = randomLabels(8, 5, seed + 1);
  Mat<Scalar> p(8, 5), g(8, 5);
  const double loss = tsnn::softmaxCrossEntropy(z, y.data(), Scalar(1), p, g);
  const double expected = referenceCrossEntropy(z.template cast<double>(), y);
  CHECK(std::abs(loss - expected) <= tol<Scalar>() * std::abs(expected));
  for (Eigen::Index b = 0; b < p.rows(); ++b) {
    CHECK(std::abs(static_cast<double>(p.row(b).sum()) - 1.0) <= tol<Scalar>());
    for (Eigen::Index c = 0; c < p.cols(); ++c) {
      const Scalar onehot = c == y[static_cast<std::size_t>(b)] ? Scalar(1) : Scalar(0);
      CHECK(g(b, c) == p(b, c) - onehot);
    }
  }
}

TEST_CASE("softmaxCrossEntropy gradient matches central finite differences of the loss sum",
          "[losses][cross-entropy][gradcheck]") {
  const auto seed = tsnn::test::testSeed(4402);
  Mat<double> z = randomMatrix(6, 4, -3, 3, seed);
  const auto y = randomLabels(6, 4, seed + 1);
  Mat<double> p(6, 4), g(6, 4);
  tsnn::softmaxCrossEntropy(z, y.data(), 1.0, p, g);
  auto loss = [&] {
    Mat<double> pp(6, 4), gg(6, 4);
    return tsnn::softmaxCrossEntropy(z, y.data(), 1.0, pp, gg);
  };
  Mat<double> numeric(6, 4);
  for (Eigen::Index j = 0; j < z.cols(); ++j)
    for (Eigen::Index i = 0; i < z.rows(); ++i)
      numeric(i, j) = tsnn::test::centralDifference(loss, z(i, j));
  CHECK(tsnn::test::maxAbsDifferenceMatrix(g, numeric) < 1e-8);
}

TEMPLATE_TEST_CASE("softmaxCrossEntropy scales the gradient but not the returned loss",
                   "[losses][cross-entropy]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(4403);
  const Mat<Scalar> z = randomMatrix(5, 3, -2, 2, seed).cast<Scalar>();
  const auto y = randomLabels(5, 3, seed + 1);
  Mat<Scalar> p(5, 3), g1(5, 3), gs(5, 3);
  const double l1 = tsnn::softmaxCrossEntropy(z, y.data(), Scalar(1), p, g1);
  const Scalar s = Scalar(1) / Scalar(3);
  const double ls = tsnn::softmaxCrossEntropy(z, y.data(), s, p, gs);
  CHECK(l1 == ls);
  CHECK(tsnn::test::maxAbsDifferenceMatrix(gs, (g1 * s).eval()) <= 4 * tol<Scalar>());
}

TEMPLATE_TEST_CASE("softmaxCrossEntropy stays finite and exact for logits of magnitude 1000",
                   "[losses][cross-entropy]", float, double) {
  using Scalar = TestType;
  Mat<Scalar> z(3, 3);
  z << Scalar(1000), Scalar(-1000), Scalar(0),   //
      Scalar(1000), Scalar(1000), Scalar(1000),  //
      Scalar(-1000), Scalar(-1000), Scalar(-999);
  const std::vector<std::int32_t> y{1, 2, 2};
  Mat<Scalar> p(3, 3), g(3, 3);
  const double loss = tsnn::softmaxCrossEntropy(z, y.data(), Scalar(1), p, g);
  REQUIRE(std::isfinite(loss));
  REQUIRE(p.allFinite());
  REQUIRE(g.allFinite());
  // Row 0: 2000 (+ log(1 + e^-1000 + e^-2000) ~ 0); row 1: log 3; row 2: log(1 + 2/e).
  const double expected = 2000.0 + std::log(3.0) + std::log(1.0 + 2.0 / std::exp(1.0));
  CHECK(loss == Approx(expected).epsilon(1e-6));
  CHECK(g(0, 0) == Approx(1.0).margin(1e-6));
  CHECK(g(0, 1) == Approx(-1.0).margin(1e-6));
}

TEMPLATE_TEST_CASE("softmaxCrossEntropy rejects a label outside [0, C) naming the function",
                   "[losses][cross-entropy][errors]", float, double) {
  using Scalar = TestType;
  const Mat<Scalar> z = Mat<Scalar>::Zero(2, 3);
  Mat<Scalar> p(2, 3), g(2, 3);
  const std::vector<std::int32_t> tooBig{0, 3};
  const std::vector<std::int32_t> negative{-1, 0};
  CHECK_THROWS_AS(tsnn::softmaxCrossEntropy(z, tooBig.data(), Scalar(1), p, g),
                  tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::softmaxCrossEntropy(z, negative.data(), Scalar(1), p, g),
                  tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::softmaxCrossEntropy(z, tooBig.data(), Scalar(1), p, g),
                    Catch::StartsWith("tsnn: softmaxCrossEntropy()") &&
                        Catch::Contains("label 3") && Catch::Contains("sample 1"));
}

TEST_CASE("softmaxCrossEntropy returns NaN for NaN logits rather than a finite number",
          "[losses][cross-entropy]") {
  Mat<double> z(1, 3);
  z << 0.5, std::numeric_limits<double>::quiet_NaN(), 1.0;
  const std::vector<std::int32_t> y{0};
  Mat<double> p(1, 3), g(1, 3);
  CHECK_FALSE(std::isfinite(tsnn::softmaxCrossEntropy(z, y.data(), 1.0, p, g)));
}

TEMPLATE_TEST_CASE(
    "meanSquaredError returns sum_b sum_c (a - onehot)^2 / C and its scaled "
    "gradient",
    "[losses][mse]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(4404);
  const Mat<Scalar> a = randomMatrix(7, 4, 0, 1, seed).cast<Scalar>();
  const auto y = randomLabels(7, 4, seed + 1);
  for (Scalar s : {Scalar(1), Scalar(0.125), Scalar(1) / Scalar(7)}) {
    INFO("scale " << s);
    Mat<Scalar> g(7, 4);
    const double loss = tsnn::meanSquaredError(a, y.data(), s, g);
    const double expected = referenceMse(a.template cast<double>(), y);
    CHECK(std::abs(loss - expected) <= tol<Scalar>() * expected);
    for (Eigen::Index b = 0; b < a.rows(); ++b)
      for (Eigen::Index c = 0; c < a.cols(); ++c) {
        const double t = c == y[static_cast<std::size_t>(b)] ? 1.0 : 0.0;
        const double want = static_cast<double>(s) * 2.0 * (static_cast<double>(a(b, c)) - t) / 4.0;
        CHECK(std::abs(static_cast<double>(g(b, c)) - want) <= tol<Scalar>());
      }
  }
}

TEST_CASE("meanSquaredError gradient matches central finite differences of the loss sum",
          "[losses][mse][gradcheck]") {
  const auto seed = tsnn::test::testSeed(4405);
  Mat<double> a = randomMatrix(5, 3, -1, 2, seed);
  const auto y = randomLabels(5, 3, seed + 1);
  Mat<double> g(5, 3);
  tsnn::meanSquaredError(a, y.data(), 1.0, g);
  auto loss = [&] {
    Mat<double> gg(5, 3);
    return tsnn::meanSquaredError(a, y.data(), 1.0, gg);
  };
  Mat<double> numeric(5, 3);
  for (Eigen::Index j = 0; j < a.cols(); ++j)
    for (Eigen::Index i = 0; i < a.rows(); ++i)
      numeric(i, j) = tsnn::test::centralDifference(loss, a(i, j));
  CHECK(tsnn::test::maxAbsDifferenceMatrix(g, numeric) < 1e-8);
}

TEST_CASE("meanSquaredError rejects a bad label naming the function", "[losses][mse][errors]") {
  const Mat<double> a = Mat<double>::Zero(2, 2);
  Mat<double> g(2, 2);
  const std::vector<std::int32_t> y{0, 2};
  CHECK_THROWS_AS(tsnn::meanSquaredError(a, y.data(), 1.0, g), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::meanSquaredError(a, y.data(), 1.0, g),
                    Catch::StartsWith("tsnn: meanSquaredError()"));
}

TEST_CASE(
    "A block split into two shards with scale 1/B gives the whole block's loss and mean "
    "gradient",
    "[losses][cross-entropy][shards]") {
  const auto seed = tsnn::test::testSeed(4406);
  const Mat<double> z = randomMatrix(10, 4, -3, 3, seed);
  const auto y = randomLabels(10, 4, seed + 1);
  const double scale = 1.0 / 10.0;
  Mat<double> p(10, 4), g(10, 4);
  const double whole = tsnn::softmaxCrossEntropy(z, y.data(), scale, p, g);
  Mat<double> p1(6, 4), g1(6, 4), p2(4, 4), g2(4, 4);
  const double first = tsnn::softmaxCrossEntropy(z.topRows(6), y.data(), scale, p1, g1);
  const double second = tsnn::softmaxCrossEntropy(z.bottomRows(4), y.data() + 6, scale, p2, g2);
  CHECK(std::abs(first + second - whole) <= 1e-12 * whole);
  CHECK(g.topRows(6) == g1);
  CHECK(g.bottomRows(4) == g2);
}

TEST_CASE("parseLoss accepts the documented names and rejects others", "[losses][parse]") {
  CHECK(tsnn::parseLoss("cross-entropy") == tsnn::LossKind::SoftmaxCrossEntropy);
  CHECK(tsnn::parseLoss("softmax-cross-entropy") == tsnn::LossKind::SoftmaxCrossEntropy);
  CHECK(tsnn::parseLoss("ce") == tsnn::LossKind::SoftmaxCrossEntropy);
  CHECK(tsnn::parseLoss("mse") == tsnn::LossKind::MeanSquaredError);
  CHECK_THROWS_AS(tsnn::parseLoss("hinge"), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::parseLoss("hinge"),
                    Catch::Contains("parseLoss()") && Catch::Contains("'hinge'"));
}
