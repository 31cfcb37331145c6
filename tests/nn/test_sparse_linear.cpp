// Tests for tsnn/layers/sparse_linear.hpp: the three products against a dense Eigen oracle built
// from the same values, the parameter gradients against central finite differences, row shards
// passed as block views, and the validation in the constructors and setTopology().

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/sparse/csr_matrix.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using Vec = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

template <class Scalar>
Mat<Scalar> randomMatrix(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Mat<Scalar> m(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) m(i, j) = static_cast<Scalar>(u(rng));
  return m;
}

// A layer with random Erdos-Renyi weights and random (nonzero) biases.
template <class Scalar, class Index>
tsnn::SparseLinear<Scalar, Index> randomLayer(Index inputs, Index outputs, double density,
                                              std::uint64_t seed) {
  tsnn::Rng rng(seed);
  tsnn::SparseLinear<Scalar, Index> layer(inputs, outputs, density, rng);
  layer.bias() = randomMatrix<Scalar>(outputs, 1, seed + 99);
  return layer;
}

template <class Scalar>
double tol() {
  return std::is_same<Scalar, float>::value ? 2e-5 : 1e-13;
}

// A valid 3 x 4 CSR matrix:  [1 0 2 0; 0 0 0 0; 0 3 0 4].
template <class Scalar, class Index>
tsnn::CsrMatrix<Scalar, Index> smallMatrix() {
  return tsnn::CsrMatrix<Scalar, Index>(3, 4, {0, 2, 2, 4}, {0, 2, 1, 3},
                                        {Scalar(1), Scalar(2), Scalar(3), Scalar(4)});
}

}  // namespace

TEMPLATE_TEST_CASE("SparseLinear forward, backwardInput and gradients match the dense oracle",
                   "[layers][sparse-linear]", (std::pair<float, std::int32_t>),
                   (std::pair<double, std::int32_t>), (std::pair<double, std::int64_t>)) {
  using Scalar = typename TestType::first_type;
  using Index = typename TestType::second_type;
  const auto seed = tsnn::test::testSeed(7701);
  const Index nIn = 23, nOut = 17;
  const auto layer = randomLayer<Scalar, Index>(nIn, nOut, 0.3, seed);
  REQUIRE(layer.inputs() == nIn);
  REQUIRE(layer.outputs() == nOut);
  REQUIRE(layer.nonZeros() > 0);
  REQUIRE(layer.weights().check().empty());
  const Mat<Scalar> w = tsnn::toDense(layer.weights());
  const Mat<double> wd = w.template cast<double>();
  const Vec<double> bd = layer.bias().template cast<double>();

  // Batch sizes that hit full tiles, partial tiles and a single sample.
  for (Eigen::Index batch :
       {Eigen::Index(1), Eigen::Index(7), Eigen::Index(37), Eigen::Index(100)}) {
    INFO("batch " << batch);
    const Mat<Scalar> x = randomMatrix<Scalar>(batch, nIn, seed + 1);
    const Mat<Scalar> dy = randomMatrix<Scalar>(batch, nOut, seed + 2);
    const Mat<double> xd = x.template cast<double>(), dyd = dy.template cast<double>();

    Mat<Scalar> y(batch, nOut);
    layer.forward(x, y);
    Mat<double> yRef = xd * wd.transpose();
    yRef.rowwise() += bd.transpose();
    CHECK(tsnn::test::maxAbsDifferenceMatrix(y.template cast<double>(), yRef) <= tol<Scalar>());

    Mat<Scalar> dx(batch, nIn);
    layer.backwardInput(dy, dx);
    CHECK(tsnn::test::maxAbsDifferenceMatrix(dx.template cast<double>(), (dyd * wd).eval()) <=
          tol<Scalar>());

    std::vector<Scalar> gw;
    Vec<Scalar> gb;
    const Scalar scale = Scalar(0.25);
    layer.gradients(x, dy, gw, gb, scale);
    REQUIRE(gw.size() == static_cast<std::size_t>(layer.nonZeros()));
    REQUIRE(gb.size() == nOut);
    const Mat<double> gDense = 0.25 * dyd.transpose() * xd;  // nOut x nIn
    const auto& wm = layer.weights();
    std::vector<double> gwRef;
    for (Index r = 0; r < wm.rows(); ++r)
      for (Index k = wm.rowBegin(r); k < wm.rowEnd(r); ++k)
        gwRef.push_back(gDense(r, wm.colIdx()[static_cast<std::size_t>(k)]));
    CHECK(tsnn::test::maxAbsDifference(gw, gwRef) <=
          4 * tol<Scalar>() * static_cast<double>(batch));
    const Vec<double> gbRef = 0.25 * dyd.colwise().sum().transpose();
    CHECK(tsnn::test::maxAbsDifferenceMatrix(gb.template cast<double>(), gbRef) <=
          tol<Scalar>() * static_cast<double>(batch));
  }
}

TEST_CASE("SparseLinear weight and bias gradients match finite differences of sum(Y .* R)",
          "[layers][sparse-linear][gradcheck]") {
  const auto seed = tsnn::test::testSeed(7702);
  auto layer = randomLayer<double, std::int32_t>(9, 6, 0.5, seed);
  const Mat<double> x = randomMatrix<double>(5, 9, seed + 1);
  const Mat<double> r = randomMatrix<double>(5, 6, seed + 2);
  auto loss = [&] {
    Mat<double> y(5, 6);
    layer.forward(x, y, tsnn::Threads::serial());
    return (y.array() * r.array()).sum();
  };
  std::vector<double> gw;
  Vec<double> gb;
  layer.gradients(x, r, gw, gb);  // dL/dY = R
  const auto numW =
      tsnn::test::numericalGradient(loss, layer.values().data(), layer.values().size());
  const auto numB =
      tsnn::test::numericalGradient(loss, layer.bias().data(), static_cast<std::size_t>(6));
  CHECK(tsnn::test::maxAbsDifference(gw, numW) < 1e-8);
  CHECK(tsnn::test::maxAbsDifference(gb, numB) < 1e-8);

  // The input gradient is the same function's derivative with respect to X.
  Mat<double> xv = x;
  auto lossX = [&] {
    Mat<double> y(5, 6);
    layer.forward(xv, y, tsnn::Threads::serial());
    return (y.array() * r.array()).sum();
  };
  Mat<double> dx(5, 9);
  layer.backwardInput(r, dx);
  Mat<double> numX(5, 9);
  for (Eigen::Index j = 0; j < 9; ++j)
    for (Eigen::Index i = 0; i < 5; ++i)
      numX(i, j) = tsnn::test::centralDifference(lossX, xv(i, j));
  CHECK(tsnn::test::maxAbsDifferenceMatrix(dx, numX) < 1e-8);
}

TEMPLATE_TEST_CASE("SparseLinear on row blocks of a batch gives the rows of the whole batch",
                   "[layers][sparse-linear][shards]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(7703);
  const auto layer = randomLayer<Scalar, std::int32_t>(19, 11, 0.4, seed);
  const Eigen::Index batch = 45, split = 13;
  const Mat<Scalar> x = randomMatrix<Scalar>(batch, 19, seed + 1);
  const Mat<Scalar> dy = randomMatrix<Scalar>(batch, 11, seed + 2);
  Mat<Scalar> y(batch, 11), dx(batch, 19);
  layer.forward(x, y);
  layer.backwardInput(dy, dx);
  std::vector<Scalar> gw;
  Vec<Scalar> gb;
  layer.gradients(x, dy, gw, gb);

  // Shards as block views (outer stride = batch), written into blocks of the outputs.
  Mat<Scalar> yS(batch, 11), dxS(batch, 19);
  std::vector<Scalar> gw1, gw2;
  Vec<Scalar> gb1, gb2;
  layer.forward(x.topRows(split), yS.topRows(split));
  layer.forward(x.bottomRows(batch - split), yS.bottomRows(batch - split));
  layer.backwardInput(dy.topRows(split), dxS.topRows(split));
  layer.backwardInput(dy.bottomRows(batch - split), dxS.bottomRows(batch - split));
  layer.gradients(x.topRows(split), dy.topRows(split), gw1, gb1);
  layer.gradients(x.bottomRows(batch - split), dy.bottomRows(batch - split), gw2, gb2);
  CHECK(yS == y);  // each output element is computed from the same operands in the same order
  CHECK(dxS == dx);
  std::vector<double> sum(gw.size());
  for (std::size_t k = 0; k < gw.size(); ++k) sum[k] = static_cast<double>(gw1[k]) + gw2[k];
  CHECK(tsnn::test::maxAbsDifference(gw, sum) <= 10 * tol<Scalar>() * batch);
  CHECK(tsnn::test::maxAbsDifferenceMatrix(gb, (gb1 + gb2).eval()) <= 10 * tol<Scalar>() * batch);
}

TEMPLATE_TEST_CASE("SparseLinear gives bit-identical results serially and on three threads",
                   "[layers][sparse-linear][openmp]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(7704);
  const auto layer = randomLayer<Scalar, std::int32_t>(64, 48, 0.2, seed);
  const Mat<Scalar> x = randomMatrix<Scalar>(33, 64, seed + 1);
  const Mat<Scalar> dy = randomMatrix<Scalar>(33, 48, seed + 2);
  Mat<Scalar> y1(33, 48), y2(33, 48), dx1(33, 64), dx2(33, 64);
  std::vector<Scalar> g1, g2;
  Vec<Scalar> b1, b2;
  // Three threads whatever the OpenMP default, so that a region really opens.
  const auto three = tsnn::Threads::count(3), serial = tsnn::Threads::serial();
  layer.forward(x, y1, three);
  layer.forward(x, y2, serial);
  layer.backwardInput(dy, dx1, three);
  layer.backwardInput(dy, dx2, serial);
  layer.gradients(x, dy, g1, b1, Scalar(0.5), three);
  layer.gradients(x, dy, g2, b2, Scalar(0.5), serial);
  CHECK(y1 == y2);
  CHECK(dx1 == dx2);
  CHECK(g1 == g2);
  CHECK(b1 == b2);
}

TEMPLATE_TEST_CASE("SparseLinear built from given weights keeps them", "[layers][sparse-linear]",
                   float, double) {
  using Scalar = TestType;
  Vec<Scalar> bias(3);
  bias << Scalar(0.5), Scalar(-1), Scalar(2);
  const tsnn::SparseLinear<Scalar> layer(smallMatrix<Scalar, std::int32_t>(), bias);
  CHECK(layer.inputs() == 4);
  CHECK(layer.outputs() == 3);
  CHECK(layer.nonZeros() == 4);
  CHECK(layer.density() == Approx(4.0 / 12.0));
  CHECK(layer.bias() == bias);
  Mat<Scalar> x(1, 4);
  x << 1, 10, 100, 1000;
  Mat<Scalar> y(1, 3);
  layer.forward(x, y);
  CHECK(y(0, 0) == Scalar(1 * 1 + 2 * 100 + 0.5));
  CHECK(y(0, 1) == Scalar(-1));
  CHECK(y(0, 2) == Scalar(3 * 10 + 4 * 1000 + 2));
}

TEST_CASE("SparseLinear constructors reject bad sizes, densities, biases and values",
          "[layers][sparse-linear][errors]") {
  tsnn::Rng rng(1);
  using Layer = tsnn::SparseLinear<double, std::int32_t>;
  CHECK_THROWS_AS(Layer(0, 5, 0.5, rng), tsnn::InvalidArgument);
  CHECK_THROWS_AS(Layer(5, 0, 0.5, rng), tsnn::InvalidArgument);
  CHECK_THROWS_AS(Layer(-3, 5, 0.5, rng), tsnn::InvalidArgument);
  CHECK_THROWS_AS(Layer(5, 5, 0.0, rng), tsnn::InvalidArgument);
  CHECK_THROWS_AS(Layer(5, 5, 1.5, rng), tsnn::InvalidArgument);
  CHECK_THROWS_AS(Layer(5, 5, std::numeric_limits<double>::quiet_NaN(), rng),
                  tsnn::InvalidArgument);
  CHECK_NOTHROW(Layer(5, 5, 1.0, rng));

  CHECK_THROWS_AS(Layer(smallMatrix<double, std::int32_t>(), Vec<double>::Zero(4)),
                  tsnn::InvalidArgument);
  CHECK_THROWS_WITH(Layer(smallMatrix<double, std::int32_t>(), Vec<double>::Zero(2)),
                    Catch::Contains("SparseLinear::SparseLinear()") && Catch::Contains("bias"));
  auto nanWeights = smallMatrix<double, std::int32_t>();
  nanWeights.values()[2] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(Layer(nanWeights, Vec<double>::Zero(3)), tsnn::InvalidArgument);
  auto infWeights = smallMatrix<double, std::int32_t>();
  infWeights.values()[0] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(Layer(infWeights, Vec<double>::Zero(3)), tsnn::InvalidArgument);
  Vec<double> nanBias = Vec<double>::Zero(3);
  nanBias(1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(Layer(smallMatrix<double, std::int32_t>(), nanBias), tsnn::InvalidArgument);
  tsnn::CsrMatrix<double, std::int32_t> unsorted;
  unsorted.assignUnchecked(2, 3, {0, 2, 2}, {2, 0}, {1.0, 2.0});
  CHECK_THROWS_AS(Layer(unsorted, Vec<double>::Zero(2)), tsnn::InvalidArgument);
}

TEST_CASE("SparseLinear rejects a mismatched shape in the products",
          "[layers][sparse-linear][errors]") {
  const auto layer = randomLayer<double, std::int32_t>(6, 4, 0.5, tsnn::test::testSeed(7705));
  Mat<double> x(3, 5), y(3, 4);
  x.setZero();
  CHECK_THROWS_AS(layer.forward(x, y), tsnn::InvalidArgument);
  Mat<double> x6 = Mat<double>::Zero(3, 6), y5(3, 5);
  CHECK_THROWS_AS(layer.forward(x6, y5), tsnn::InvalidArgument);
  Mat<double> dy = Mat<double>::Zero(3, 4), dx(2, 6);
  CHECK_THROWS_AS(layer.backwardInput(dy, dx), tsnn::InvalidArgument);
}

TEST_CASE("SparseLinear::gradientsRows writes only its neurons and checks the bias buffer",
          "[layers][sparse-linear][rows]") {
  const auto layer = randomLayer<double, std::int32_t>(6, 4, 0.5, tsnn::test::testSeed(7706));
  std::mt19937_64 rng(7706);
  std::uniform_real_distribution<double> u(-1, 1);
  Mat<double> x(5, 6), dy(5, 4);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = u(rng);
  for (Eigen::Index i = 0; i < dy.size(); ++i) dy.data()[i] = u(rng);
  std::vector<double> gw;
  Vec<double> gb;
  layer.gradients(x, dy, gw, gb, 0.5);
  const tsnn::ConstActivationsRef<double> xr(x), dyr(dy);
  std::vector<double> rw(gw.size(), -7.0);
  Vec<double> rb = Vec<double>::Constant(4, -7.0);
  layer.gradientsRows(&xr, &dyr, 1, rw, rb, 0.5, 1, 3);
  for (std::int32_t j = 0; j < 4; ++j) {
    const bool inside = j >= 1 && j < 3;
    CHECK(rb(j) == (inside ? gb(j) : -7.0));
    for (auto k = layer.weights().rowBegin(j); k < layer.weights().rowEnd(j); ++k)
      CHECK(rw[static_cast<std::size_t>(k)] == (inside ? gw[static_cast<std::size_t>(k)] : -7.0));
  }
  Vec<double> shortBias(3);
  CHECK_THROWS_WITH(layer.gradientsRows(&xr, &dyr, 1, rw, shortBias, 0.5, 0, 4),
                    Catch::StartsWith("tsnn: SparseLinear::gradientsRows(): bias gradient has 3 "
                                      "entries, layer has 4 outputs"));
}

TEMPLATE_TEST_CASE(
    "setTopology installs a new pattern, keeps the biases and rebuilds the column index",
    "[layers][sparse-linear][topology]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(7706);
  auto layer = randomLayer<Scalar, std::int32_t>(4, 3, 0.5, seed);
  const Vec<Scalar> biasBefore = layer.bias();
  const std::uint64_t patternBefore = layer.weights().patternId();
  layer.setTopology(smallMatrix<Scalar, std::int32_t>());
  CHECK(layer.nonZeros() == 4);
  CHECK(layer.weights().patternId() != patternBefore);
  CHECK(layer.bias() == biasBefore);
  const Mat<Scalar> dy = randomMatrix<Scalar>(5, 3, seed + 1);
  Mat<Scalar> dx(5, 4);
  layer.backwardInput(dy, dx);
  const Mat<Scalar> w = tsnn::toDense(smallMatrix<Scalar, std::int32_t>());
  CHECK(tsnn::test::maxAbsDifferenceMatrix(dx, (dy * w).eval()) <= tol<Scalar>());
  const auto& t = layer.transposeIndex();
  CHECK(t.colPtr == std::vector<std::int32_t>{0, 1, 2, 3, 4});
  CHECK(t.rowIdx == std::vector<std::int32_t>{0, 2, 0, 2});
  CHECK(t.valuePos == std::vector<std::int32_t>{0, 2, 1, 3});

  // The input size may change (a neuron removed upstream).
  layer.setTopology(
      tsnn::CsrMatrix<Scalar, std::int32_t>(3, 2, {0, 1, 1, 2}, {1, 0}, {Scalar(5), Scalar(6)}));
  CHECK(layer.inputs() == 2);
  Mat<Scalar> x(1, 2);
  x << 1, 2;
  Mat<Scalar> y(1, 3);
  layer.forward(x, y);
  CHECK(y(0, 0) == Scalar(10) + biasBefore(0));
  CHECK(y(0, 1) == biasBefore(1));
  CHECK(y(0, 2) == Scalar(6) + biasBefore(2));
}

TEST_CASE(
    "setTopology and reshape reject a wrong row count or an invalid matrix and leave the layer "
    "unchanged",
    "[layers][sparse-linear][topology][errors]") {
  auto layer = randomLayer<double, std::int32_t>(4, 3, 0.5, tsnn::test::testSeed(7707));
  const auto before = layer.weights().values();
  const auto beforeCols = layer.weights().colIdx();
  const Vec<double> biasBefore = layer.bias();
  // 2 rows, layer has 3 outputs.
  tsnn::CsrMatrix<double, std::int32_t> twoRows(2, 4, {0, 1, 2}, {0, 3}, {1.0, 2.0});
  CHECK_THROWS_AS(layer.setTopology(twoRows), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(layer.setTopology(twoRows),
                    Catch::Contains("SparseLinear::setTopology()") && Catch::Contains("rows"));
  // Duplicate column in a row.
  tsnn::CsrMatrix<double, std::int32_t> dup;
  dup.assignUnchecked(3, 4, {0, 2, 2, 2}, {1, 1}, {1.0, 2.0});
  CHECK_THROWS_AS(layer.setTopology(dup), tsnn::InvalidArgument);
  // Column out of range.
  tsnn::CsrMatrix<double, std::int32_t> outOfRange;
  outOfRange.assignUnchecked(3, 4, {0, 1, 1, 1}, {4}, {1.0});
  CHECK_THROWS_AS(layer.setTopology(outOfRange), tsnn::InvalidArgument);
  // reshape: the bias must have one entry per row.
  CHECK_THROWS_WITH(
      layer.reshape(twoRows, Vec<double>::Zero(3)),
      Catch::Contains("SparseLinear::reshape()") && Catch::Contains("bias has 3 entries"));
  CHECK_THROWS_AS(layer.reshape(dup, Vec<double>::Zero(3)), tsnn::InvalidArgument);

  CHECK(layer.weights().values() == before);
  CHECK(layer.weights().colIdx() == beforeCols);
  CHECK(layer.bias() == biasBefore);
  Mat<double> dy = Mat<double>::Ones(2, 3), dx(2, 4);
  CHECK_NOTHROW(layer.backwardInput(dy, dx));
}

TEST_CASE("A COO-backed SparseLinear computes exactly what the CSR layer computes",
          "[layers][sparse_linear][coo]") {
  tsnn::Rng rng(tsnn::mix64(0xC001));
  tsnn::SparseLinear<double> csr(37, 23, 0.2, rng);
  csr.bias().setRandom();
  tsnn::SparseLinear<double, std::int32_t, tsnn::CooMatrix> coo(tsnn::toCoo(csr.weights()),
                                                                csr.bias());
  REQUIRE(coo.nonZeros() == csr.nonZeros());
  REQUIRE(coo.inputs() == 37);
  REQUIRE(coo.outputs() == 23);
  tsnn::Activations<double> x = tsnn::Activations<double>::Random(19, 37);
  tsnn::Activations<double> dy = tsnn::Activations<double>::Random(19, 23);
  tsnn::Activations<double> y1(19, 23), y2(19, 23), dx1(19, 37), dx2(19, 37);
  csr.forward(x, y1);
  coo.forward(x, y2);
  CHECK((y1 - y2).cwiseAbs().maxCoeff() == 0.0);
  csr.backwardInput(dy, dx1);
  coo.backwardInput(dy, dx2);
  CHECK((dx1 - dx2).cwiseAbs().maxCoeff() == 0.0);
  std::vector<double> g1, g2;
  Eigen::VectorXd b1, b2;
  csr.gradients(x, dy, g1, b1, 0.25);
  coo.gradients(x, dy, g2, b2, 0.25);
  CHECK(g1 == g2);
  CHECK((b1 - b2).cwiseAbs().maxCoeff() == 0.0);
  // An Erdos-Renyi COO layer is canonical.
  tsnn::SparseLinear<float, std::int32_t, tsnn::CooMatrix> er(100, 50, 0.1, rng);
  CHECK(er.weights().check().empty());
  // Unsorted COO is refused.
  tsnn::CooMatrix<double> bad(2, 2);
  bad.push(1, 0, 1.0);
  bad.push(0, 1, 2.0);
  CHECK_THROWS_AS(
      (tsnn::SparseLinear<double, std::int32_t, tsnn::CooMatrix>(bad, Eigen::VectorXd::Zero(2))),
      tsnn::InvalidArgument);
}

TEST_CASE("SparseLinear on bfloat16 activations gives the float results of the widened values",
          "[nn][sparse_linear][bf16]") {
  using tsnn::BFloat16;
  const auto layer = randomLayer<float, std::int32_t>(37, 23, 0.3, 8);
  const Eigen::Index batch = 70;
  const Mat<BFloat16> x16 = randomMatrix<float>(batch, 37, 1).cast<BFloat16>();
  const Mat<BFloat16> dy16 = randomMatrix<float>(batch, 23, 2).cast<BFloat16>();
  const Mat<float> xw = x16.cast<float>(), dyw = dy16.cast<float>();
  const Mat<float> dyTop = randomMatrix<float>(batch, 23, 3);

  Mat<float> y(batch, 23), yRef(batch, 23);
  layer.forward(x16, y);
  layer.forward(xw, yRef);
  CHECK(tsnn::test::bitIdentical(y, yRef));

  for (bool hidden : {false, true}) {
    INFO((hidden ? "bfloat16 output gradients" : "float output gradients"));
    Mat<BFloat16> dx(batch, 37);
    Mat<float> dxRef(batch, 37);
    std::vector<float> gw, gwRef;
    Vec<float> gb, gbRef;
    if (hidden)
      layer.backwardFused(x16, dy16, dx, gw, gb, 0.5f);
    else
      layer.backwardFused(x16, dyTop, dx, gw, gb, 0.5f);
    layer.backwardFused(xw, hidden ? dyw : dyTop, dxRef, gwRef, gbRef, 0.5f);
    CHECK(tsnn::test::bitIdentical(dx, Mat<BFloat16>(dxRef.cast<BFloat16>())));
    CHECK(tsnn::test::bitIdentical(gw, gwRef));
    CHECK(tsnn::test::bitIdentical(gb, gbRef));
  }

  // The first layer: float inputs, bfloat16 deltas.
  const Mat<float> x = randomMatrix<float>(batch, 37, 4);
  std::vector<float> gw, gwRef;
  Vec<float> gb, gbRef;
  layer.gradients(x, dy16, gw, gb, 0.25f);
  layer.gradients(x, dyw, gwRef, gbRef, 0.25f);
  CHECK(tsnn::test::bitIdentical(gw, gwRef));
  CHECK(tsnn::test::bitIdentical(gb, gbRef));
}
