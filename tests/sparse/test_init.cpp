// Tests for tsnn/sparse/init.hpp: the Erdos-Renyi density formula, the random topology (its
// storage, its statistics, its cost) and the initial weight distributions.
//
// Statistical checks use bands of 6 standard deviations (or a chi-square bound of the same
// width), so a correct implementation fails one of them with probability below 1e-8 for any
// TSNN_TEST_SEED, while a biased one fails for almost every seed.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/sparse/init.hpp"

#if defined(__linux__)
#include <sys/resource.h>
#endif

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using tsnn::test::Types;

#define TSNN_INIT_TYPES                                                                      \
  (Types<float, std::int32_t>), (Types<float, std::int64_t>), (Types<double, std::int32_t>), \
      (Types<double, std::int64_t>)

namespace {

// |observed - n p| <= 6 sqrt(n p (1 - p)) + 1 for a Binomial(n, p) count.
bool withinBinomialBand(double observed, double n, double p) {
  const double mean = n * p;
  const double sd = std::sqrt(n * p * (1.0 - p));
  return std::abs(observed - mean) <= 6.0 * sd + 1.0;
}

// Pearson's statistic of per-column counts against the expectation rows * p per column, and
// its 6-sigma upper bound. Each count is Binomial(rows, p), so the statistic has mean
// (cols - 1)(1 - p) and roughly chi-square spread.
template <class Scalar, class Index>
void checkColumnsUniform(const tsnn::CsrMatrix<Scalar, Index>& m, double p) {
  std::vector<double> count(static_cast<std::size_t>(m.cols()), 0.0);
  for (Index c : m.colIdx()) count[static_cast<std::size_t>(c)] += 1.0;
  const double expected = static_cast<double>(m.rows()) * p;
  double chi2 = 0.0;
  for (double o : count) chi2 += (o - expected) * (o - expected) / expected;
  const double dof = static_cast<double>(m.cols() - 1);
  INFO("chi-square " << chi2 << " over " << dof << " degrees of freedom");
  CHECK(chi2 <= dof + 6.0 * std::sqrt(2.0 * dof));
  // Each column on its own, which catches one starved column (say, the last) that the pooled
  // statistic dilutes when there are many columns.
  for (std::size_t c = 0; c < count.size(); ++c) {
    INFO("column " << c << " holds " << count[c] << " entries, expected " << expected);
    CHECK(withinBinomialBand(count[c], static_cast<double>(m.rows()), p));
  }
}

}  // namespace

TEST_CASE("erdosRenyiDensity follows SET's formula eps (n_in + n_out) / (n_in n_out)",
          "[sparse][init]") {
  CHECK(tsnn::erdosRenyiDensity(784, 1000, 20.0) ==
        Approx(20.0 * 1784.0 / 784000.0).epsilon(1e-15));
  CHECK(tsnn::erdosRenyiDensity(1000, 1000, 1.0) == Approx(2000.0 / 1e6).epsilon(1e-15));
  CHECK(tsnn::erdosRenyiDensity(1000000, 1000000, 1.0) == Approx(2e-6).epsilon(1e-15));
  CHECK(tsnn::erdosRenyiDensity(3, 5, 0.5) == Approx(0.5 * 8.0 / 15.0).epsilon(1e-15));
  // Sizes beyond 32 bits are fine: the product is formed in double.
  CHECK(tsnn::erdosRenyiDensity(3000000000LL, 3000000000LL, 1.0) ==
        Approx(2.0 / 3e9).epsilon(1e-12));
}

TEST_CASE("erdosRenyiDensity is capped at 1 for small layers or large epsilon", "[sparse][init]") {
  CHECK(tsnn::erdosRenyiDensity(2, 3, 10.0) == 1.0);     // 10 * 5 / 6 > 1
  CHECK(tsnn::erdosRenyiDensity(1, 1, 0.5) == 1.0);      // 0.5 * 2 / 1 = 1 exactly
  CHECK(tsnn::erdosRenyiDensity(1, 1, 0.25) == 0.5);     // just below the cap
  CHECK(tsnn::erdosRenyiDensity(10, 10, 1e300) == 1.0);  // huge but finite
}

TEST_CASE("erdosRenyiDensity rejects non-positive sizes and bad epsilon naming itself",
          "[sparse][init][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double eps : {0.0, -1.0, nan, inf, -inf}) {
    INFO("epsilon " << eps);
    CHECK_THROWS_AS(tsnn::erdosRenyiDensity(10, 10, eps), tsnn::InvalidArgument);
    CHECK_THAT(tsnn::test::messageOf([&] { tsnn::erdosRenyiDensity(10, 10, eps); }),
               StartsWith("tsnn: erdosRenyiDensity(): epsilon must be positive and finite"));
  }
  const std::pair<long long, long long> badSizes[] = {{0, 10}, {10, 0}, {-5, 10}, {10, -1}};
  for (const auto& sizes : badSizes) {
    // Plain variables: lambdas may not capture structured bindings in C++17.
    const long long nIn = sizes.first, nOut = sizes.second;
    INFO(nIn << " x " << nOut);
    CHECK_THROWS_AS(tsnn::erdosRenyiDensity(nIn, nOut, 1.0), tsnn::InvalidArgument);
    CHECK_THAT(tsnn::test::messageOf([&] { tsnn::erdosRenyiDensity(nIn, nOut, 1.0); }),
               StartsWith("tsnn: erdosRenyiDensity(): layer sizes must be positive") &&
                   Contains(std::to_string(nIn) + " x " + std::to_string(nOut)));
  }
}

TEMPLATE_TEST_CASE("erdosRenyi rejects bad shapes and densities naming itself",
                   "[sparse][init][errors]", TSNN_INIT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  tsnn::Rng rng(1);
  auto make = [&](Index rows, Index cols, double density) {
    return tsnn::erdosRenyi<Scalar, Index>(rows, cols, density, rng, tsnn::WeightInit::HeUniform,
                                           10, 10);
  };
  CHECK_THAT(tsnn::test::messageOf([&] { make(0, 5, 0.5); }),
             StartsWith("tsnn: erdosRenyi(): shape must be positive") && Contains("0 x 5"));
  CHECK_THAT(tsnn::test::messageOf([&] { make(5, -1, 0.5); }),
             StartsWith("tsnn: erdosRenyi(): shape must be positive") && Contains("5 x -1"));
  for (double d : {0.0, -0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    INFO("density " << d);
    CHECK_THROWS_AS(make(5, 5, d), tsnn::InvalidArgument);
    CHECK_THAT(tsnn::test::messageOf([&] { make(5, 5, d); }),
               StartsWith("tsnn: erdosRenyi(): density must be in (0, 1]"));
  }
}

TEST_CASE("erdosRenyi refuses a 32-bit index when the expected nonzeros overflow it",
          "[sparse][init][errors]") {
  tsnn::Rng rng(2);
  // 100000^2 * 0.5 = 5e9 expected entries: refused before anything is allocated.
  CHECK_THAT(tsnn::test::messageOf([&] {
               tsnn::erdosRenyi<float, std::int32_t>(100000, 100000, 0.5, rng,
                                                     tsnn::WeightInit::HeUniform, 100000, 100000);
             }),
             StartsWith("tsnn: erdosRenyi(): about ") && Contains("use a 64-bit Index"));
}

TEST_CASE("parseWeightInit accepts the documented names and rejects others",
          "[sparse][init][errors]") {
  CHECK(tsnn::parseWeightInit("he-uniform") == tsnn::WeightInit::HeUniform);
  CHECK(tsnn::parseWeightInit("he_uniform") == tsnn::WeightInit::HeUniform);
  CHECK(tsnn::parseWeightInit("xavier-uniform") == tsnn::WeightInit::XavierUniform);
  CHECK(tsnn::parseWeightInit("xavier_uniform") == tsnn::WeightInit::XavierUniform);
  CHECK(tsnn::parseWeightInit("normal") == tsnn::WeightInit::Normal);
  CHECK(tsnn::parseWeightInit("he-uniform-sparse") == tsnn::WeightInit::HeUniformSparse);
  CHECK(tsnn::parseWeightInit("xavier-uniform-sparse") == tsnn::WeightInit::XavierUniformSparse);
  for (auto init :
       {tsnn::WeightInit::HeUniform, tsnn::WeightInit::XavierUniform, tsnn::WeightInit::Normal,
        tsnn::WeightInit::HeUniformSparse, tsnn::WeightInit::XavierUniformSparse})
    CHECK(tsnn::parseWeightInit(tsnn::weightInitName(init)) == init);
  CHECK_THAT(tsnn::test::messageOf([] { tsnn::parseWeightInit("He-Uniform"); }),
             StartsWith("tsnn: parseWeightInit(): unknown initialisation 'He-Uniform'"));
  CHECK_THROWS_AS(tsnn::parseWeightInit(""), tsnn::InvalidArgument);
}

TEMPLATE_TEST_CASE("erdosRenyi gives valid storage whose nonzeros match the expected count",
                   "[sparse][init][statistics]", TSNN_INIT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x1A17;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  struct Case {
    Index rows, cols;
    double density;
  };
  // SET's MNIST layer, a skewed shape, a dense-ish case (k > n/2 draws the complement) and a
  // very sparse one where most rows are empty.
  const Case cases[] = {{1000, 784, tsnn::erdosRenyiDensity(784, 1000, 20.0)},
                        {37, 1500, 0.1},
                        {120, 90, 0.7},
                        {2000, 300, 0.0005}};
  for (const Case& c : cases) {
    INFO(c.rows << " x " << c.cols << " at density " << c.density);
    const auto m = tsnn::erdosRenyi<Scalar, Index>(c.rows, c.cols, c.density, rng,
                                                   tsnn::WeightInit::HeUniform, c.cols, c.rows);
    REQUIRE(m.check().empty());
    CHECK(m.rows() == c.rows);
    CHECK(m.cols() == c.cols);
    const double cells = static_cast<double>(c.rows) * static_cast<double>(c.cols);
    INFO("nnz " << m.nonZeros() << ", expected " << cells * c.density);
    CHECK(withinBinomialBand(static_cast<double>(m.nonZeros()), cells, c.density));
    // Every row length is Binomial(cols, p).
    for (Index r = 0; r < m.rows(); ++r)
      CHECK(withinBinomialBand(static_cast<double>(m.rowNonZeros(r)), static_cast<double>(c.cols),
                               c.density));
  }
}

TEMPLATE_TEST_CASE("erdosRenyi picks columns uniformly, including the complement path",
                   "[sparse][init][statistics]", TSNN_INIT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x1A18;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  // Many columns for the pooled statistic; few columns and many rows so that a single column
  // drawn too rarely or too often stands out.
  const std::pair<Index, Index> shapes[] = {{400, 250}, {5000, 8}};
  for (const auto& shape : shapes) {
    for (double p : {0.05, 0.7}) {
      INFO(shape.first << " x " << shape.second << " at density " << p);
      const auto m =
          tsnn::erdosRenyi<Scalar, Index>(shape.first, shape.second, p, rng,
                                          tsnn::WeightInit::HeUniform, shape.second, shape.first);
      REQUIRE(m.check().empty());
      checkColumnsUniform(m, p);
    }
  }
}

TEMPLATE_TEST_CASE("erdosRenyi at density 1 stores every position", "[sparse][init]",
                   TSNN_INIT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  auto rng = tsnn::test::testRng(0x1A19);
  const auto m =
      tsnn::erdosRenyi<Scalar, Index>(7, 13, 1.0, rng, tsnn::WeightInit::HeUniform, 13, 7);
  REQUIRE(m.check().empty());
  CHECK(m.nonZeros() == 91);
  CHECK(m.density() == 1.0);
  for (Index r = 0; r < 7; ++r) {
    REQUIRE(m.rowNonZeros(r) == 13);
    for (Index c = 0; c < 13; ++c)
      CHECK(m.colIdx()[static_cast<std::size_t>(m.rowBegin(r) + c)] == c);
  }
  // Density from the capped formula also fills the layer.
  const auto full = tsnn::erdosRenyi<Scalar, Index>(3, 4, tsnn::erdosRenyiDensity(4, 3, 20.0), rng,
                                                    tsnn::WeightInit::HeUniform, 4, 3);
  CHECK(full.nonZeros() == 12);
}

TEMPLATE_TEST_CASE("He-uniform weights lie within sqrt(6 / fan_in) and are centred",
                   "[sparse][init][statistics]", TSNN_INIT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x1A1A;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  const long long fanIn = 400, fanOut = 200;
  const auto m = tsnn::erdosRenyi<Scalar, Index>(200, 400, 0.25, rng, tsnn::WeightInit::HeUniform,
                                                 fanIn, fanOut);
  const double limit = std::sqrt(6.0 / static_cast<double>(fanIn));
  const double n = static_cast<double>(m.nonZeros());
  REQUIRE(n > 10000);
  double sum = 0.0, sumSq = 0.0, lo = limit, hi = -limit;
  for (Scalar v : m.values()) {
    const double x = static_cast<double>(v);
    REQUIRE(std::isfinite(x));
    // Rounding to float may land exactly on the limit, never beyond it.
    CHECK(std::abs(x) <= static_cast<double>(static_cast<Scalar>(limit)));
    sum += x;
    sumSq += x * x;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  const double mean = sum / n;
  const double var = sumSq / n - mean * mean;
  // U(-l, l): mean 0 with standard error l / sqrt(3 n); variance l^2 / 3 with relative standard
  // error sqrt(0.8 / n) < 1% here, so a 10% band is wide.
  CHECK(std::abs(mean) <= 6.0 * limit / std::sqrt(3.0 * n));
  CHECK(var == Approx(limit * limit / 3.0).epsilon(0.1));
  // The extremes reach close to the limit (P(max < 0.99 l) < 1e-40), which pins the scale.
  CHECK(hi >= 0.99 * limit);
  CHECK(lo <= -0.99 * limit);
}

TEMPLATE_TEST_CASE("Sparse-fan rules scale each row by its real fan-in, not the dense one",
                   "[sparse][init][statistics]", TSNN_INIT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x1A1B;
  INFO("seed " << tsnn::test::streamSeed(stream));
  for (auto init : {tsnn::WeightInit::HeUniformSparse, tsnn::WeightInit::XavierUniformSparse}) {
    INFO(tsnn::weightInitName(init));
    auto rng = tsnn::test::testRng(stream);
    // 300 rows of about 50 inputs each out of 2000: the dense He limit sqrt(6/2000) is 6x
    // smaller than a row's sqrt(6/50).
    const Index rows = 300, cols = 2000;
    const auto m = tsnn::erdosRenyi<Scalar, Index>(rows, cols, 0.025, rng, init, cols, rows);
    const double meanOut = static_cast<double>(m.nonZeros()) / static_cast<double>(cols);
    double sumRatioSq = 0;
    long long n = 0, nearLimit = 0;
    for (Index r = 0; r < rows; ++r) {
      const double k = static_cast<double>(m.rowEnd(r) - m.rowBegin(r));
      const double limit = init == tsnn::WeightInit::HeUniformSparse
                               ? std::sqrt(6.0 / k)
                               : std::sqrt(6.0 / (k + meanOut));
      for (Index e = m.rowBegin(r); e < m.rowEnd(r); ++e) {
        const double x = static_cast<double>(m.values()[static_cast<std::size_t>(e)]);
        REQUIRE(std::isfinite(x));
        CHECK(std::abs(x) <= static_cast<double>(static_cast<Scalar>(limit)));
        sumRatioSq += (x / limit) * (x / limit);
        nearLimit += std::abs(x) >= 0.9 * limit;
        ++n;
      }
    }
    REQUIRE(n > 10000);
    // x / l_j is U(-1, 1) in every row: E = 1/3 with relative standard error sqrt(0.8 / n) < 1%;
    // a dense-fan draw gives 1/36 of it. P(|U| >= 0.9) = 0.1, binomial band.
    CHECK(sumRatioSq / static_cast<double>(n) == Approx(1.0 / 3.0).epsilon(0.05));
    CHECK(withinBinomialBand(static_cast<double>(nearLimit), static_cast<double>(n), 0.1));
  }
}

TEST_CASE("layerFans gives the dense fans, or for sparse rules the mean real ones",
          "[sparse][init]") {
  using P = std::pair<double, double>;
  CHECK(tsnn::layerFans(tsnn::WeightInit::HeUniform, 100, 400, 2000) == P{400.0, 100.0});
  CHECK(tsnn::layerFans(tsnn::WeightInit::XavierUniform, 100, 400, 2000) == P{400.0, 100.0});
  CHECK(tsnn::layerFans(tsnn::WeightInit::HeUniformSparse, 100, 400, 2000) == P{20.0, 5.0});
  CHECK(tsnn::layerFans(tsnn::WeightInit::XavierUniformSparse, 100, 400, 2000) == P{20.0, 5.0});
  CHECK(tsnn::usesSparseFans(tsnn::WeightInit::HeUniformSparse));
  CHECK_FALSE(tsnn::usesSparseFans(tsnn::WeightInit::HeUniform));
  // An empty row or layer is scaled as fan 1, never divided by zero.
  tsnn::Rng rng(3);
  const double w = tsnn::sampleWeight(tsnn::WeightInit::HeUniformSparse, 0.0, 0.0, rng);
  CHECK(std::abs(w) <= std::sqrt(6.0));
}

TEMPLATE_TEST_CASE("Xavier-uniform and normal weights have their documented spread",
                   "[sparse][init][statistics]", float, double) {
  const std::uint64_t stream = 0x1A1B;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  SECTION("Xavier-uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))") {
    const auto m = tsnn::erdosRenyi<TestType, std::int32_t>(
        200, 300, 0.2, rng, tsnn::WeightInit::XavierUniform, 300, 200);
    const double limit = std::sqrt(6.0 / 500.0);
    double hi = 0.0;
    for (TestType v : m.values()) {
      CHECK(std::abs(static_cast<double>(v)) <= static_cast<double>(static_cast<TestType>(limit)));
      hi = std::max(hi, std::abs(static_cast<double>(v)));
    }
    CHECK(hi >= 0.99 * limit);
  }
  SECTION("normal: N(0, 0.1^2)") {
    const auto m = tsnn::erdosRenyi<TestType, std::int32_t>(200, 300, 0.2, rng,
                                                            tsnn::WeightInit::Normal, 300, 200);
    const double n = static_cast<double>(m.nonZeros());
    double sum = 0.0, sumSq = 0.0;
    for (TestType v : m.values()) {
      sum += static_cast<double>(v);
      sumSq += static_cast<double>(v) * static_cast<double>(v);
    }
    const double mean = sum / n, sd = std::sqrt(sumSq / n - mean * mean);
    CHECK(std::abs(mean) <= 6.0 * 0.1 / std::sqrt(n));
    CHECK(sd == Approx(0.1).epsilon(0.05));
  }
}

TEMPLATE_TEST_CASE("erdosRenyi is reproducible from the seed and changes with it", "[sparse][init]",
                   TSNN_INIT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t seed = tsnn::test::streamSeed(0x1A1C);
  INFO("seed " << seed);
  auto make = [](std::uint64_t s) {
    tsnn::Rng rng(s);
    return tsnn::erdosRenyi<Scalar, Index>(60, 80, 0.1, rng, tsnn::WeightInit::HeUniform, 80, 60);
  };
  const auto a = make(seed), b = make(seed), c = make(seed + 1);
  CHECK(a.rowPtr() == b.rowPtr());
  CHECK(a.colIdx() == b.colIdx());
  CHECK(tsnn::test::bitIdentical(a.values(), b.values()));
  CHECK((a.colIdx() != c.colIdx() || !tsnn::test::bitIdentical(a.values(), c.values())));
  CHECK_FALSE(tsnn::test::bitIdentical(a.values(), c.values()));
  // One generator drawn twice gives two different layers.
  tsnn::Rng rng(seed);
  const auto first =
      tsnn::erdosRenyi<Scalar, Index>(60, 80, 0.1, rng, tsnn::WeightInit::HeUniform, 80, 60);
  const auto second =
      tsnn::erdosRenyi<Scalar, Index>(60, 80, 0.1, rng, tsnn::WeightInit::HeUniform, 80, 60);
  CHECK(first.colIdx() == a.colIdx());
  CHECK(first.colIdx() != second.colIdx());
}

TEST_CASE("The pattern from a seed does not depend on the scalar or index type", "[sparse][init]") {
  const std::uint64_t seed = tsnn::test::streamSeed(0x1A1D);
  INFO("seed " << seed);
  tsnn::Rng r1(seed), r2(seed);
  const auto f =
      tsnn::erdosRenyi<float, std::int32_t>(50, 70, 0.2, r1, tsnn::WeightInit::HeUniform, 70, 50);
  const auto d =
      tsnn::erdosRenyi<double, std::int64_t>(50, 70, 0.2, r2, tsnn::WeightInit::HeUniform, 70, 50);
  REQUIRE(f.nonZeros() == d.nonZeros());
  CHECK(std::equal(f.rowPtr().begin(), f.rowPtr().end(), d.rowPtr().begin()));
  CHECK(std::equal(f.colIdx().begin(), f.colIdx().end(), d.colIdx().begin()));
  // The float values are the double draws rounded once.
  for (std::size_t k = 0; k < f.values().size(); ++k)
    CHECK(f.values()[k] == static_cast<float>(d.values()[k]));
}

TEMPLATE_TEST_CASE("A 1,000,000 x 1,000,000 layer initialises in memory proportional to nnz",
                   "[sparse][init][large]", (Types<float, std::int32_t>),
                   (Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x1A1E;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  const Index n = 1000000;
  // eps = 1 gives density 2e-6 and about 2 million connections; a dense mask would be 1e12
  // cells (4 TB as floats), so finishing at all shows that none is formed.
  const double p = tsnn::erdosRenyiDensity(n, n, 1.0);
  const auto m = tsnn::erdosRenyi<Scalar, Index>(n, n, p, rng, tsnn::WeightInit::HeUniform, n, n);
  const double nnz = static_cast<double>(m.nonZeros());
  INFO("nnz " << nnz);
  CHECK(withinBinomialBand(nnz, 1e12, p));
  CHECK(m.check().empty());
  CHECK(m.bytes() == static_cast<std::size_t>(n + 1) * sizeof(Index) +
                         static_cast<std::size_t>(m.nonZeros()) * (sizeof(Index) + sizeof(Scalar)));
#if defined(__linux__)
  // Peak resident memory of the whole process stays far below anything dense.
  rusage usage{};
  REQUIRE(getrusage(RUSAGE_SELF, &usage) == 0);
  INFO("peak resident set " << usage.ru_maxrss << " KiB");
  CHECK(usage.ru_maxrss < 1024L * 1024L);  // 1 GiB
#endif
}

TEST_CASE("bernoulliPositions appends sorted distinct positions at the expected rate",
          "[sparse][init]") {
  const std::uint64_t stream = 0x1A1F;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  for (std::int32_t n : {1, 2, 7, 50, 5000}) {
    for (double p : {0.001, 0.1, 0.5, 0.9, 1.0}) {
      INFO("n " << n << ", p " << p);
      std::vector<std::int32_t> out{-7};  // existing content must be kept
      long long total = 0;
      const int trials = 40;
      for (int t = 0; t < trials; ++t) {
        out.assign(1, -7);
        tsnn::detail::bernoulliPositions<std::int32_t>(n, p, rng, out);
        CHECK(out.front() == -7);
        for (std::size_t i = 1; i < out.size(); ++i) {
          CHECK(out[i] >= 0);
          CHECK(out[i] < n);
          if (i > 1) CHECK(out[i] > out[i - 1]);
        }
        total += static_cast<long long>(out.size()) - 1;
      }
      // Binomial(trials * n, p): within 6 standard deviations (plus 1 for tiny cases).
      const double mean = trials * n * p;
      const double sd = std::sqrt(trials * n * p * (1 - p));
      CHECK(std::abs(static_cast<double>(total) - mean) <= 6 * sd + 1);
      if (p == 1.0) CHECK(total == static_cast<long long>(trials) * n);
    }
  }
}
