// Tests for tsnn/activations/softmax.hpp: the rows are probability distributions, shifting the
// logits changes nothing, huge logits do not overflow, and softmaxBackward is the Jacobian-vector
// product (checked against central finite differences).

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>

#include "support/gradcheck.hpp"
#include "tsnn/nn/softmax.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

Mat<double> randomLogits(Eigen::Index rows, Eigen::Index cols, double spread, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-spread, spread);
  Mat<double> z(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) z(i, j) = u(rng);
  return z;
}

// Softmax of one row written out directly in long double, as the reference.
Mat<double> referenceSoftmax(const Mat<double>& z) {
  Mat<double> p(z.rows(), z.cols());
  for (Eigen::Index i = 0; i < z.rows(); ++i) {
    long double m = z(i, 0);
    for (Eigen::Index j = 1; j < z.cols(); ++j) m = std::max<long double>(m, z(i, j));
    long double s = 0;
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      s += std::exp(static_cast<long double>(z(i, j)) - m);
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      p(i, j) = static_cast<double>(std::exp(static_cast<long double>(z(i, j)) - m) / s);
  }
  return p;
}

template <class Scalar>
double tol() {
  return std::is_same<Scalar, float>::value ? 1e-6 : 1e-14;
}

}  // namespace

TEMPLATE_TEST_CASE("softmaxRows gives rows of positive numbers that sum to one",
                   "[activations][softmax]", float, double) {
  using Scalar = TestType;
  const Mat<double> zd = randomLogits(9, 6, 5.0, tsnn::test::testSeed(3301));
  const Mat<Scalar> z = zd.cast<Scalar>();
  Mat<Scalar> p(z.rows(), z.cols());
  tsnn::softmaxRows(z, p);
  REQUIRE(p.allFinite());
  CHECK(p.minCoeff() > Scalar(0));
  for (Eigen::Index i = 0; i < p.rows(); ++i)
    CHECK(std::abs(static_cast<double>(p.row(i).sum()) - 1.0) <= 10 * tol<Scalar>());
  CHECK(tsnn::test::maxAbsDifferenceMatrix(p.template cast<double>(),
                                           referenceSoftmax(z.template cast<double>())) <=
        tol<Scalar>());
}

TEMPLATE_TEST_CASE("softmaxRows is unchanged by adding a constant to a row",
                   "[activations][softmax]", float, double) {
  using Scalar = TestType;
  const Mat<Scalar> z = randomLogits(5, 4, 3.0, tsnn::test::testSeed(3302)).cast<Scalar>();
  Mat<Scalar> p(z.rows(), z.cols());
  tsnn::softmaxRows(z, p);
  for (Scalar c : {Scalar(-20), Scalar(7.5), Scalar(100)}) {
    Mat<Scalar> shifted = z.array() + c;
    Mat<Scalar> q(z.rows(), z.cols());
    tsnn::softmaxRows(shifted, q);
    INFO("shift " << c);
    // The shift is exact only up to rounding of z + c, which is relative to |c|.
    CHECK(tsnn::test::maxAbsDifferenceMatrix(p, q) <= 4 * tol<Scalar>() * (1 + std::abs(c)));
  }
  // A different constant per row as well.
  Mat<Scalar> perRow = z;
  for (Eigen::Index i = 0; i < z.rows(); ++i) perRow.row(i).array() += Scalar(i) * Scalar(3);
  Mat<Scalar> q(z.rows(), z.cols());
  tsnn::softmaxRows(perRow, q);
  CHECK(tsnn::test::maxAbsDifferenceMatrix(p, q) <= 4 * tol<Scalar>() * 16);
}

TEMPLATE_TEST_CASE("softmaxRows does not overflow for logits around 1000", "[activations][softmax]",
                   float, double) {
  using Scalar = TestType;
  Mat<Scalar> z(3, 3);
  z << Scalar(1000), Scalar(1000), Scalar(1000),  //
      Scalar(1000), Scalar(999), Scalar(-1000),   //
      Scalar(-1000), Scalar(-1000), Scalar(-999);
  Mat<Scalar> p(3, 3);
  tsnn::softmaxRows(z, p);
  REQUIRE(p.allFinite());
  CHECK(p(0, 0) == Approx(1.0 / 3).epsilon(1e-6));
  CHECK(p(0, 2) == Approx(1.0 / 3).epsilon(1e-6));
  const double e = std::exp(1.0);
  CHECK(p(1, 0) == Approx(e / (e + 1)).epsilon(1e-6));
  CHECK(p(1, 1) == Approx(1 / (e + 1)).epsilon(1e-6));
  CHECK(p(1, 2) == Scalar(0));
  CHECK(p(2, 2) == Approx(e / (e + 2)).epsilon(1e-6));
  // In place (P aliases Z).
  Mat<Scalar> inPlace = z;
  tsnn::softmaxRows(inPlace, inPlace);
  CHECK(inPlace == p);
}

TEST_CASE("softmaxBackward matches central finite differences",
          "[activations][softmax][gradcheck]") {
  const auto seed = tsnn::test::testSeed(3303);
  Mat<double> z = randomLogits(4, 5, 2.0, seed);
  const Mat<double> r = randomLogits(4, 5, 1.0, seed + 1);
  // L(Z) = sum(softmax(Z) .* R); dL/dP = R, and softmaxBackward turns it into dL/dZ.
  auto loss = [&] {
    Mat<double> p(z.rows(), z.cols());
    tsnn::softmaxRows(z, p);
    return (p.array() * r.array()).sum();
  };
  Mat<double> p(z.rows(), z.cols());
  tsnn::softmaxRows(z, p);
  Mat<double> analytic = r;
  tsnn::softmaxBackward(p, analytic);
  Mat<double> numeric(z.rows(), z.cols());
  for (Eigen::Index j = 0; j < z.cols(); ++j)
    for (Eigen::Index i = 0; i < z.rows(); ++i)
      numeric(i, j) = tsnn::test::centralDifference(loss, z(i, j));
  CHECK(tsnn::test::maxAbsDifferenceMatrix(analytic, numeric) < 1e-8);
  // The gradient of a shift-invariant function sums to zero over each row.
  CHECK(analytic.rowwise().sum().cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("softmaxRows propagates NaN logits", "[activations][softmax]") {
  Mat<double> z(2, 2);
  z << std::numeric_limits<double>::quiet_NaN(), 1.0,  //
      0.0, 1.0;
  Mat<double> p(2, 2);
  tsnn::softmaxRows(z, p);
  CHECK_FALSE(p.row(0).allFinite());
  CHECK(p.row(1).allFinite());
}
