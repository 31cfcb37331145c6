// Tests for tsnn/data/standard_scaler.hpp against a plain double-precision reference.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/data/standard_scaler.hpp"

namespace {

using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default

// Reference statistics computed the textbook way, in double: mean, then the population
// standard deviation (divide by N) from the squared deviations.
template <class Scalar>
void referenceStats(const tsnn::data::MatrixRowMajor<Scalar>& X, std::vector<double>& mean,
                    std::vector<double>& sd) {
  const auto n = X.rows();
  const auto d = X.cols();
  mean.assign(static_cast<std::size_t>(d), 0.0);
  sd.assign(static_cast<std::size_t>(d), 0.0);
  for (Eigen::Index j = 0; j < d; ++j) {
    double s = 0;
    for (Eigen::Index i = 0; i < n; ++i) s += static_cast<double>(X(i, j));
    const double m = s / static_cast<double>(n);
    double q = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      const double e = static_cast<double>(X(i, j)) - m;
      q += e * e;
    }
    mean[static_cast<std::size_t>(j)] = m;
    sd[static_cast<std::size_t>(j)] = std::sqrt(q / static_cast<double>(n));
  }
}

template <class Scalar>
tsnn::data::MatrixRowMajor<Scalar> randomMatrix(Eigen::Index n, Eigen::Index d,
                                                std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  tsnn::data::MatrixRowMajor<Scalar> X(n, d);
  for (Eigen::Index j = 0; j < d; ++j) {
    // Column j has its own offset and spread, so a mix-up of columns would show.
    const double offset = 10.0 * static_cast<double>(j) - 20.0;
    const double spread = 0.5 + static_cast<double>(j);
    for (Eigen::Index i = 0; i < n; ++i) {
      X(i, j) = static_cast<Scalar>(offset + spread * noise(rng));
    }
  }
  return X;
}

// Relative tolerance for values stored in Scalar.
template <class Scalar>
double tolerance() {
  return std::is_same_v<Scalar, float> ? 1e-5 : 1e-12;
}

}  // namespace

TEST_CASE("StandardScaler reproduces the numpy example", "[data][scaler]") {
  // numpy: X = [[1, 2], [3, 4], [5, 6]]; X.mean(0) = [3, 4]; X.std(0) = sqrt(8/3) each.
  tsnn::data::MatrixRowMajor<double> X(3, 2);
  X << 1, 2, 3, 4, 5, 6;
  tsnn::data::StandardScaler<double> scaler;
  CHECK_FALSE(scaler.fitted());
  scaler.fit(X);
  CHECK(scaler.fitted());
  CHECK(scaler.mean()(0) == Approx(3.0));
  CHECK(scaler.mean()(1) == Approx(4.0));
  CHECK(scaler.scale()(0) == Approx(std::sqrt(8.0 / 3.0)));
  CHECK(scaler.scale()(1) == Approx(std::sqrt(8.0 / 3.0)));
  scaler.transform(X);
  const double z = 2.0 / std::sqrt(8.0 / 3.0);  // 1.224744871391589
  CHECK(X(0, 0) == Approx(-z));
  CHECK(X(1, 0) == Approx(0.0).margin(1e-15));
  CHECK(X(2, 1) == Approx(z));
}

TEMPLATE_TEST_CASE("StandardScaler matches a double-precision reference", "[data][scaler]", float,
                   double) {
  const Eigen::Index n = 257;
  const Eigen::Index d = 6;
  const auto original = randomMatrix<TestType>(n, d, testSeed());
  std::vector<double> mean, sd;
  referenceStats(original, mean, sd);

  tsnn::data::StandardScaler<TestType> scaler;
  scaler.fit(original);
  REQUIRE(scaler.mean().size() == d);
  REQUIRE(scaler.scale().size() == d);
  const double tol = tolerance<TestType>();
  for (Eigen::Index j = 0; j < d; ++j) {
    const auto js = static_cast<std::size_t>(j);
    CHECK(static_cast<double>(scaler.mean()(j)) ==
          Approx(mean[js]).epsilon(tol).margin(tol * sd[js]));
    CHECK(static_cast<double>(scaler.scale()(j)) == Approx(sd[js]).epsilon(tol));
  }

  auto X = original;
  scaler.transform(X);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < d; ++j) {
      const auto js = static_cast<std::size_t>(j);
      const double expected = (static_cast<double>(original(i, j)) - mean[js]) / sd[js];
      CHECK(static_cast<double>(X(i, j)) == Approx(expected).margin(10 * tol));
    }
  }
  // Standardised columns have mean 0 and population variance 1.
  for (Eigen::Index j = 0; j < d; ++j) {
    double s = 0, q = 0;
    for (Eigen::Index i = 0; i < n; ++i) s += static_cast<double>(X(i, j));
    for (Eigen::Index i = 0; i < n; ++i) q += static_cast<double>(X(i, j)) * X(i, j);
    CHECK(s / n == Approx(0.0).margin(10 * tol));
    CHECK(q / n == Approx(1.0).epsilon(10 * tol));
  }
}

TEMPLATE_TEST_CASE("StandardScaler transforms new data with the statistics of the fit data",
                   "[data][scaler]", float, double) {
  const auto fitData = randomMatrix<TestType>(100, 4, testSeed());
  auto other = randomMatrix<TestType>(7, 4, testSeed() + 1);
  const auto otherCopy = other;
  std::vector<double> mean, sd;
  referenceStats(fitData, mean, sd);

  tsnn::data::StandardScaler<TestType> scaler;
  scaler.fit(fitData);
  scaler.transform(other);
  for (Eigen::Index i = 0; i < other.rows(); ++i) {
    for (Eigen::Index j = 0; j < other.cols(); ++j) {
      const auto js = static_cast<std::size_t>(j);
      const double expected = (static_cast<double>(otherCopy(i, j)) - mean[js]) / sd[js];
      CHECK(static_cast<double>(other(i, j)) ==
            Approx(expected).margin(10 * tolerance<TestType>()));
    }
  }

  // An empty matrix with the right number of columns is fine.
  tsnn::data::MatrixRowMajor<TestType> empty(0, 4);
  CHECK_NOTHROW(scaler.transform(empty));
}

TEMPLATE_TEST_CASE("StandardScaler keeps accuracy for a large offset with a small spread",
                   "[data][scaler]", double) {
  // A naive one-pass E[x^2] - E[x]^2 loses every digit here; the two-pass algorithm does not.
  tsnn::data::MatrixRowMajor<TestType> X(4, 1);
  X << 1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4;
  tsnn::data::StandardScaler<TestType> scaler;
  scaler.fit(X);
  CHECK(scaler.mean()(0) == Approx(1e9 + 2.5).epsilon(1e-15));
  CHECK(scaler.scale()(0) == Approx(std::sqrt(1.25)).epsilon(1e-9));
}

TEMPLATE_TEST_CASE("StandardScaler centres constant columns without dividing", "[data][scaler]",
                   float, double) {
  auto X = randomMatrix<TestType>(50, 3, testSeed());
  X.col(1).setConstant(static_cast<TestType>(0.1));  // 0.1 is not exact in binary
  tsnn::data::MatrixRowMajor<TestType> zeros = X;
  zeros.col(2).setZero();

  tsnn::data::StandardScaler<TestType> scaler;
  scaler.fit(X);
  CHECK(scaler.mean()(1) == static_cast<TestType>(0.1));
  CHECK(scaler.scale()(1) == TestType(1));
  scaler.transform(X);
  CHECK(X.allFinite());
  for (Eigen::Index i = 0; i < X.rows(); ++i) CHECK(X(i, 1) == TestType(0));

  // An all-zero column likewise stays all zero.
  scaler.fit(zeros);
  CHECK(scaler.mean()(2) == TestType(0));
  CHECK(scaler.scale()(2) == TestType(1));
  scaler.transform(zeros);
  CHECK(zeros.allFinite());
  CHECK(zeros.col(2).isZero(0));

  // A single row makes every column constant.
  tsnn::data::MatrixRowMajor<TestType> one(1, 3);
  one << 5, -2, 7;
  scaler.fit(one);
  scaler.transform(one);
  CHECK(one.isZero(0));
}

TEST_CASE("StandardScaler::transform rejects a matrix with a different number of columns",
          "[data][scaler]") {
  tsnn::data::StandardScaler<float> scaler;
  scaler.fit(randomMatrix<float>(10, 4, testSeed()));
  auto X = randomMatrix<float>(10, 5, testSeed());
  const auto before = X;
  CHECK_THROWS_AS(scaler.transform(X), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(scaler.transform(X), Catch::Contains("StandardScaler::transform") &&
                                             Catch::Contains("5 columns") &&
                                             Catch::Contains("4 columns"));
  CHECK(X == before);
}

TEST_CASE("StandardScaler::transform before fit throws", "[data][scaler]") {
  tsnn::data::StandardScaler<double> scaler;
  auto X = randomMatrix<double>(3, 2, testSeed());
  CHECK(scaler.mean().size() == 0);
  CHECK_THROWS_AS(scaler.transform(X), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(scaler.transform(X),
                    Catch::Contains("StandardScaler::transform") && Catch::Contains("before fit"));
}

TEST_CASE("StandardScaler::fit on zero rows throws", "[data][scaler]") {
  tsnn::data::StandardScaler<float> scaler;
  tsnn::data::MatrixRowMajor<float> X(0, 3);
  CHECK_THROWS_AS(scaler.fit(X), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(scaler.fit(X),
                    Catch::Contains("StandardScaler::fit") && Catch::Contains("0 rows"));
  CHECK_FALSE(scaler.fitted());
}

TEMPLATE_TEST_CASE("StandardScaler rejects NaN and infinity, naming the row and column",
                   "[data][scaler]", float, double) {
  const auto good = randomMatrix<TestType>(6, 3, testSeed());
  const TestType bad = GENERATE(std::numeric_limits<TestType>::quiet_NaN(),
                                std::numeric_limits<TestType>::infinity(),
                                -std::numeric_limits<TestType>::infinity());
  auto X = good;
  X(4, 2) = bad;

  tsnn::data::StandardScaler<TestType> scaler;
  CHECK_THROWS_AS(scaler.fit(X), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(scaler.fit(X), Catch::Contains("StandardScaler::fit") &&
                                       Catch::Contains("row 4") && Catch::Contains("column 2"));
  CHECK_FALSE(scaler.fitted());

  // A failed fit keeps the previous statistics; a failed transform leaves X unchanged.
  scaler.fit(good);
  const auto meanBefore = scaler.mean();
  CHECK_THROWS_AS(scaler.fit(X), tsnn::InvalidArgument);
  CHECK(scaler.mean() == meanBefore);
  CHECK_THROWS_WITH(scaler.transform(X), Catch::Contains("StandardScaler::transform") &&
                                             Catch::Contains("row 4") &&
                                             Catch::Contains("column 2"));
  CHECK(X.block(0, 0, 4, 3) == good.block(0, 0, 4, 3));
}

TEST_CASE("StandardScaler::fitTransform equals fit followed by transform", "[data][scaler]") {
  const auto original = randomMatrix<float>(20, 3, testSeed());
  auto a = original;
  auto b = original;
  tsnn::data::StandardScaler<float> s1, s2;
  s1.fitTransform(a);
  s2.fit(b);
  s2.transform(b);
  CHECK(a == b);
  CHECK(s1.mean() == s2.mean());
  CHECK(s1.scale() == s2.scale());
}

TEST_CASE("StandardScaler::setParameters restores a fitted scaler bit for bit", "[data][scaler]") {
  auto data = randomMatrix<float>(30, 4, testSeed());
  data.col(2).setConstant(3.5f);  // a constant feature keeps scale 1
  tsnn::data::StandardScaler<float> fitted, restored;
  fitted.fit(data);
  restored.setParameters(fitted.meanParameters(), fitted.scaleParameters());
  CHECK(restored.fitted());
  CHECK(restored.scaleParameters()[2] == 1.0);
  auto a = data, b = data;
  fitted.transform(a);
  restored.transform(b);
  CHECK(a == b);
  CHECK(restored.mean() == fitted.mean());

  tsnn::data::StandardScaler<float> bad;
  CHECK_THROWS_WITH(bad.setParameters({1.0, 2.0}, {1.0}),
                    Catch::Contains("setParameters()") && Catch::Contains("2 means and 1 scales"));
  CHECK_THROWS_AS(bad.setParameters({}, {}), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(bad.setParameters({0.0, std::nan("")}, {1.0, 1.0}),
                    Catch::Contains("mean of feature 1"));
  CHECK_THROWS_WITH(bad.setParameters({0.0, 0.0}, {1.0, 0.0}),
                    Catch::Contains("scale of feature 1"));
  CHECK_THROWS_AS(bad.setParameters({0.0}, {-1.0}), tsnn::InvalidArgument);
  CHECK(!bad.fitted());
}
