// Tests for tsnn/activations/all_relu.hpp: the alternating slope rule, the forward values and
// the derivative (exactly, and against central finite differences away from the kink).

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/all_relu.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

// Random B x n matrix with entries in [-2, 2] but none closer to zero than `gap`.
Mat<double> awayFromZero(Eigen::Index rows, Eigen::Index cols, double gap, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mag(gap, 2.0);
  std::bernoulli_distribution sign(0.5);
  Mat<double> z(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) z(i, j) = (sign(rng) ? 1.0 : -1.0) * mag(rng);
  return z;
}

}  // namespace

TEST_CASE("allReluSlope alternates -a, +a, -a starting with the first hidden layer",
          "[activations][all-relu]") {
  for (double a : {0.6, 0.75, 1.0, 2.5}) {
    for (int l = 0; l < 8; ++l) {
      const double expected = (l % 2 == 0) ? -a : a;
      CHECK(tsnn::allReluSlope(l, a) == expected);
    }
  }
  // a = 0 degenerates to ReLU on every layer.
  CHECK(tsnn::allReluSlope(0, 0.0) == 0.0);
  CHECK(tsnn::allReluSlope(1, 0.0) == 0.0);
}

TEST_CASE("allReluSlope rejects a negative, NaN or infinite alpha and a negative layer index",
          "[activations][all-relu][errors]") {
  CHECK_THROWS_AS(tsnn::allReluSlope(0, -0.1), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::allReluSlope(1, std::numeric_limits<double>::quiet_NaN()),
                  tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::allReluSlope(0, std::numeric_limits<double>::infinity()),
                  tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::allReluSlope(-1, 0.6), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::allReluSlope(0, -0.5),
                    Catch::Contains("allReluSlope()") && Catch::Contains("-0.5"));
}

TEMPLATE_TEST_CASE("AllReLU forward is z for z >= 0 and slope * z for z < 0",
                   "[activations][all-relu]", float, double) {
  using Scalar = TestType;
  Mat<Scalar> z(3, 4);
  z << -2, -0.5, 0, 0.5,   //
      3, -1, 1e-3, -1e-3,  //
      -4, 4, 7, -7;
  for (Scalar s : {Scalar(-0.6), Scalar(0.75), Scalar(0), Scalar(0.01)}) {
    tsnn::AllReLU<Scalar> f(s);
    CHECK(f.slope() == s);
    Mat<Scalar> a(z.rows(), z.cols());
    f.forward(z, a);
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      for (Eigen::Index i = 0; i < z.rows(); ++i) {
        const Scalar expected = z(i, j) < 0 ? s * z(i, j) : z(i, j);
        CHECK(a(i, j) == expected);  // one multiplication: exact
      }
    // The output may alias the input.
    Mat<Scalar> inPlace = z;
    f.forward(inPlace, inPlace);
    CHECK(inPlace == a);
  }
}

TEMPLATE_TEST_CASE(
    "AllReLU backward multiplies by 1 for z >= 0 (zero included) and by the slope "
    "for z < 0",
    "[activations][all-relu]", float, double) {
  using Scalar = TestType;
  Mat<Scalar> z(2, 3);
  z << -1, 0, 2,  //
      0.25, -3, -0.0;
  Mat<Scalar> g(2, 3);
  g << 1, 2, 3,  //
      4, 5, 6;
  const Scalar s = Scalar(-0.6);
  Mat<Scalar> out = g;
  tsnn::AllReLU<Scalar>(s).backward(z, out);
  CHECK(out(0, 0) == s * Scalar(1));
  CHECK(out(0, 1) == Scalar(2));  // z = 0 takes derivative 1
  CHECK(out(0, 2) == Scalar(3));
  CHECK(out(1, 0) == Scalar(4));
  CHECK(out(1, 1) == s * Scalar(5));
  CHECK(out(1, 2) == Scalar(6));  // -0.0 is not < 0
}

TEST_CASE("AllReLU derivative matches central finite differences away from zero",
          "[activations][all-relu][gradcheck]") {
  const auto seed = tsnn::test::testSeed(1101);
  const Mat<double> z0 = awayFromZero(6, 5, 1e-2, seed);
  const Mat<double> r = awayFromZero(6, 5, 0.0, seed + 1);  // weights of the scalar test function
  for (double s : {-0.6, 0.75, 0.0}) {
    tsnn::AllReLU<double> f(s);
    Mat<double> z = z0;
    // L(Z) = sum(f(Z) .* R), so dL/dZ = R .* f'(Z) = backward(Z, R).
    auto loss = [&] {
      Mat<double> a(z.rows(), z.cols());
      f.forward(z, a);
      return (a.array() * r.array()).sum();
    };
    Mat<double> analytic = r;
    f.backward(z, analytic);
    Mat<double> numeric(z.rows(), z.cols());
    for (Eigen::Index j = 0; j < z.cols(); ++j)
      for (Eigen::Index i = 0; i < z.rows(); ++i)
        numeric(i, j) = tsnn::test::centralDifference(loss, z(i, j));
    INFO("slope " << s);
    CHECK(tsnn::test::maxAbsDifferenceMatrix(analytic, numeric) < 1e-8);
  }
}

TEMPLATE_TEST_CASE("AllReLU propagates NaN instead of hiding it", "[activations][all-relu]", float,
                   double) {
  using Scalar = TestType;
  Mat<Scalar> z(1, 2);
  z << std::numeric_limits<Scalar>::quiet_NaN(), Scalar(1);
  Mat<Scalar> a(1, 2);
  tsnn::AllReLU<Scalar>(Scalar(-0.6)).forward(z, a);
  CHECK(std::isnan(a(0, 0)));
  CHECK(a(0, 1) == Scalar(1));
}

TEMPLATE_TEST_CASE("AllReLU gives the bits of `z < 0 ? s * z : z` for every kind of value",
                   "[activations][all-relu]", float, double) {
  // The layer computes z * f'(z) with f'(z) picked from z's bits (detail::allReluFactor): the
  // same bits as the plain select, for signed zeros, subnormals, infinities and NaN (where only
  // NaN-ness is compared: a signalling NaN comes out quiet).
  using Scalar = TestType;
  using Bits = std::conditional_t<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>;
  using L = std::numeric_limits<Scalar>;
  std::vector<Scalar> values = {
      Scalar(0),        -Scalar(0),     Scalar(1),      Scalar(-1),      L::denorm_min(),
      -L::denorm_min(), L::min(),       -L::min(),      L::max(),        L::lowest(),
      L::infinity(),    -L::infinity(), L::quiet_NaN(), -L::quiet_NaN(), L::signaling_NaN(),
      Scalar(-1e-30),   Scalar(3.5)};
  std::mt19937_64 rng(0xA11);
  for (int i = 0; i < 20000; ++i) {  // random bit patterns: every exponent, both signs, NaNs
    const Bits b = static_cast<Bits>(rng());
    Scalar v;
    std::memcpy(&v, &b, sizeof v);
    values.push_back(v);
  }
  const Eigen::Index n = static_cast<Eigen::Index>(values.size());
  const Mat<Scalar> z = Eigen::Map<const Mat<Scalar>>(values.data(), 1, n);
  Mat<Scalar> g(1, n);
  for (Eigen::Index i = 0; i < n; ++i) g(0, i) = Scalar(0.25) * static_cast<Scalar>(i % 7 - 3);
  const auto sameBits = [](Scalar got, Scalar want) {
    if (std::isnan(want)) return static_cast<bool>(std::isnan(got));
    return std::memcmp(&got, &want, sizeof got) == 0;
  };
  for (Scalar s : {Scalar(-0.6), Scalar(0.6), Scalar(0), -Scalar(0), Scalar(1e-30), Scalar(-7)}) {
    INFO("slope " << s);
    Mat<Scalar> a(1, n), grad = g;
    tsnn::AllReLU<Scalar>(s).forward(z, a);
    tsnn::AllReLU<Scalar>(s).backward(z, grad);
    int wrongForward = 0, wrongBackward = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      const Scalar v = z(0, i);
      wrongForward += !sameBits(a(0, i), v < Scalar(0) ? s * v : v);
      wrongBackward += !sameBits(grad(0, i), v < Scalar(0) ? s * g(0, i) : g(0, i));
    }
    CHECK(wrongForward == 0);
    CHECK(wrongBackward == 0);
  }
}
