// Tests for tsnn/sparse/kernels.hpp: the forward product, the input gradient, the sampled
// weight gradient and the transpose index, each against a dense Eigen oracle computed in double
// from the same values (toDense) and against finite differences, plus the determinism promises
// (serial vs parallel, one vs two threads, inside an enclosing parallel region) and the argument
// checks. Every test of the kernels' arithmetic runs on each SIMD path this build has and this
// CPU can run (onEverySimdPath()); a path the CPU lacks is skipped with a warning.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/oracle.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/sparse/kernels.hpp"
#include "tsnn/sparse/simd.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using tsnn::test::Dense;
using tsnn::test::Types;

#define TSNN_KERNEL_TYPES                                                                    \
  (Types<float, std::int32_t>), (Types<float, std::int64_t>), (Types<double, std::int32_t>), \
      (Types<double, std::int64_t>)

namespace {

template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

// Batch sizes around every tile boundary: tiles are powers of two up to 8 vector registers
// (128 floats or 64 doubles with AVX-512, 64 or 32 with AVX2, 32 or 16 with SSE2), so 3, 17 and
// 130 need several tile sizes and 1 the smallest; 9, 48 and 100 reach every whole-register tile
// of the vector paths with and without a narrower tile after it (a masked register with
// AVX-512, plain loops with AVX2).
const Eigen::Index kBatches[] = {1, 3, 9, 17, 48, 64, 100, 128, 130};

struct Shape {
  std::int32_t nOut, nIn;
  double density;
};
// Single connection, tiny, skewed both ways, and wider than one 128-lane tile.
const Shape kShapes[] = {{1, 1, 1.0},   {5, 3, 0.5},   {17, 33, 0.3},
                         {40, 70, 0.2}, {70, 40, 0.2}, {9, 150, 0.1}};

// One layer's data: weights, their transpose index, a bias and random activations.
template <class Scalar, class Index>
struct Problem {
  tsnn::CsrMatrix<Scalar, Index> w;
  tsnn::TransposeIndex<Index> t;
  Vector<Scalar> bias;
  Dense<Scalar> x, dy;
};

template <class Scalar, class Index>
Problem<Scalar, Index> makeProblem(tsnn::Rng& rng, Index nOut, Index nIn, double density,
                                   Eigen::Index batch) {
  Problem<Scalar, Index> p;
  p.w = tsnn::test::randomCsr<Scalar, Index>(nOut, nIn, density, rng);
  p.t.build(p.w);
  p.bias = tsnn::test::randomVector<Scalar>(nOut, rng);
  p.x = tsnn::test::randomDense<Scalar>(batch, nIn, rng);
  p.dy = tsnn::test::randomDense<Scalar>(batch, nOut, rng);
  return p;
}

// The oracle: the weights as a dense double matrix.
template <class Scalar, class Index>
Eigen::MatrixXd denseWeights(const tsnn::CsrMatrix<Scalar, Index>& w) {
  return tsnn::toDense(w).template cast<double>();
}

// The tolerances are relTolerance times a bound on the magnitude of the summed terms (at least
// 1): for Y = X W^T that is max|X| times the largest row sum of |W|, which bounds every
// |X| |W|^T entry.

// Y = X W^T + 1 b^T.
template <class Scalar, class Index, class YType>
void checkForward(const tsnn::CsrMatrix<Scalar, Index>& w, const Vector<Scalar>& bias,
                  const Dense<Scalar>& x, const YType& y) {
  const Eigen::MatrixXd W = denseWeights(w);
  const Eigen::MatrixXd X = x.template cast<double>();
  Eigen::MatrixXd expected = X * W.transpose();
  double magnitude = w.rows() > 0 && x.size() > 0
                         ? tsnn::test::maxAbs(X) * W.cwiseAbs().rowwise().sum().maxCoeff()
                         : 0.0;
  if (bias.size() != 0) {
    expected.rowwise() += bias.template cast<double>().transpose();
    magnitude += tsnn::test::maxAbs(bias);
  }
  const double tol = tsnn::test::relTolerance<Scalar>() * std::max(1.0, magnitude);
  const double err = tsnn::test::maxAbsDiff(y, expected);
  INFO("forward: max error " << err << ", tolerance " << tol);
  CHECK(err <= tol);
}

// dX = dY W.
template <class Scalar, class Index, class DxType>
void checkBackwardInput(const tsnn::CsrMatrix<Scalar, Index>& w, const Dense<Scalar>& dy,
                        const DxType& dx) {
  const Eigen::MatrixXd W = denseWeights(w);
  const Eigen::MatrixXd DY = dy.template cast<double>();
  const Eigen::MatrixXd expected = DY * W;
  const double magnitude = w.cols() > 0 && dy.size() > 0
                               ? tsnn::test::maxAbs(DY) * W.cwiseAbs().colwise().sum().maxCoeff()
                               : 0.0;
  const double tol = tsnn::test::relTolerance<Scalar>() * std::max(1.0, magnitude);
  const double err = tsnn::test::maxAbsDiff(dx, expected);
  INFO("input gradient: max error " << err << ", tolerance " << tol);
  CHECK(err <= tol);
}

// grad[k] = scale * (dY^T X)(j, c_k) at every stored k = (j, c_k).
template <class Scalar, class Index>
void checkWeightGradient(const tsnn::CsrMatrix<Scalar, Index>& w, const Dense<Scalar>& x,
                         const Dense<Scalar>& dy, double scale, const std::vector<Scalar>& grad) {
  REQUIRE(grad.size() == static_cast<std::size_t>(w.nonZeros()));
  const Eigen::MatrixXd X = x.template cast<double>();
  const Eigen::MatrixXd DY = dy.template cast<double>();
  const Eigen::MatrixXd full = scale * (DY.transpose() * X);
  const double magnitude = std::abs(scale) * static_cast<double>(x.rows()) * tsnn::test::maxAbs(X) *
                           tsnn::test::maxAbs(DY);
  std::vector<double> expected(grad.size());
  for (Index j = 0; j < w.rows(); ++j)
    for (Index k = w.rowBegin(j); k < w.rowEnd(j); ++k)
      expected[static_cast<std::size_t>(k)] = full(j, w.colIdx()[static_cast<std::size_t>(k)]);
  const double tol = tsnn::test::relTolerance<Scalar>() * std::max(1.0, magnitude);
  const double err = tsnn::test::maxAbsDiff(grad, expected);
  INFO("weight gradient: max error " << err << ", tolerance " << tol);
  CHECK(err <= tol);
}

// All three kernels on p, checked against the oracle; the forward product with and without
// the bias.
template <class Scalar, class Index>
void checkAllKernels(const Problem<Scalar, Index>& p) {
  const Eigen::Index batch = p.x.rows();
  for (const Vector<Scalar>& bias : {p.bias, Vector<Scalar>()}) {
    INFO((bias.size() != 0 ? "with bias" : "without bias"));
    Dense<Scalar> y = Dense<Scalar>::Constant(batch, p.w.rows(), Scalar(7));
    tsnn::sparseForward(p.w, bias, p.x, y);
    checkForward(p.w, bias, p.x, y);
  }

  Dense<Scalar> dx = Dense<Scalar>::Constant(batch, p.w.cols(), Scalar(7));
  tsnn::sparseBackwardInput(p.w, p.t, p.dy, dx);
  checkBackwardInput(p.w, p.dy, dx);

  std::vector<Scalar> grad(3, Scalar(7));  // wrong size and stale contents on purpose
  const Scalar scale = Scalar(1) / static_cast<Scalar>(std::max<Eigen::Index>(batch, 1));
  tsnn::sparseWeightGradient(p.w, p.x, p.dy, scale, grad);
  checkWeightGradient(p.w, p.x, p.dy, static_cast<double>(scale), grad);

  // The fused backward pass: the oracle's values, and the two kernels' bits.
  Dense<Scalar> fusedDx = Dense<Scalar>::Constant(batch, p.w.cols(), Scalar(7));
  std::vector<Scalar> fusedGrad(3, Scalar(7));
  tsnn::sparseBackwardFused(p.w, p.t, p.x, p.dy, fusedDx, scale, fusedGrad);
  checkBackwardInput(p.w, p.dy, fusedDx);
  checkWeightGradient(p.w, p.x, p.dy, static_cast<double>(scale), fusedGrad);
  INFO("fused against the separate kernels");
  CHECK(tsnn::test::bitIdentical(fusedDx, dx));
  CHECK(tsnn::test::bitIdentical(fusedGrad, grad));
  // In place, the input gradient written over the inputs: the same bits.
  Dense<Scalar> inPlace = p.x;
  std::vector<Scalar> inPlaceGrad;
  tsnn::sparseBackwardFused(p.w, p.t, inPlace, p.dy, inPlace, scale, inPlaceGrad);
  INFO("fused in place");
  CHECK(tsnn::test::bitIdentical(inPlace, dx));
  CHECK(tsnn::test::bitIdentical(inPlaceGrad, grad));
}

// Every SIMD path there is.
const tsnn::SimdPath kSimdPaths[] = {tsnn::SimdPath::Generic, tsnn::SimdPath::Avx2,
                                     tsnn::SimdPath::Avx512};

// Restores the SIMD path a test changed.
class SimdPathGuard {
 public:
  SimdPathGuard() : m_saved(tsnn::simdPath()) {}
  ~SimdPathGuard() { tsnn::setSimdPath(m_saved); }
  SimdPathGuard(const SimdPathGuard&) = delete;
  SimdPathGuard& operator=(const SimdPathGuard&) = delete;

 private:
  tsnn::SimdPath m_saved;
};

// Runs body(path) once on each SIMD path, selected with setSimdPath() and named in every
// failure message. A path this build lacks or this CPU cannot run is skipped with a warning,
// which Catch prints even when the test passes; ctest lists the skipped paths themselves as
// skipped tests (test_simd.cpp), so that a machine without AVX-512 never passes silently.
template <class F>
void onEverySimdPath(F&& body) {
  SimdPathGuard guard;
  for (tsnn::SimdPath path : kSimdPaths) {
    const char* name = tsnn::simdPathName(path);
    if (!tsnn::simdPathSupported(path)) {
      WARN("SIMD path " << name << " not tested: "
                        << (tsnn::simdPathCompiled(path) ? "this CPU cannot run it"
                                                         : "this build has no such path"));
      continue;
    }
    tsnn::setSimdPath(path);
    INFO("SIMD path " << name);
    body(path);
  }
}

// Outputs of the three kernels for one setting, for bitwise comparison.
template <class Scalar>
struct Outputs {
  Dense<Scalar> y, dx, fusedDx;
  std::vector<Scalar> grad, fusedGrad;
};

template <class Scalar, class Index>
Outputs<Scalar> runAll(const Problem<Scalar, Index>& p, tsnn::Threads threads) {
  Outputs<Scalar> o;
  o.y.resize(p.x.rows(), p.w.rows());
  o.dx.resize(p.x.rows(), p.w.cols());
  tsnn::sparseForward(p.w, p.bias, p.x, o.y, threads);
  tsnn::sparseBackwardInput(p.w, p.t, p.dy, o.dx, threads);
  tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(0.5), o.grad, threads);
  o.fusedDx.resize(p.x.rows(), p.w.cols());
  tsnn::sparseBackwardFused(p.w, p.t, p.x, p.dy, o.fusedDx, Scalar(0.5), o.fusedGrad, threads);
  return o;
}

template <class Scalar>
void checkBitIdentical(const Outputs<Scalar>& a, const Outputs<Scalar>& b) {
  CHECK(tsnn::test::bitIdentical(a.y, b.y));
  CHECK(tsnn::test::bitIdentical(a.dx, b.dx));
  CHECK(tsnn::test::bitIdentical(a.grad, b.grad));
  CHECK(tsnn::test::bitIdentical(a.fusedDx, b.fusedDx));
  CHECK(tsnn::test::bitIdentical(a.fusedGrad, b.fusedGrad));
}

}  // namespace

TEST_CASE("The oracle's difference treats NaN and infinity as failures",
          "[sparse][kernels][oracle]") {
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(2, 2), b = a;
  CHECK(tsnn::test::maxAbsDiff(a, b) == 0.0);
  b(1, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(tsnn::test::maxAbsDiff(a, b) <= 1e300);
  CHECK_FALSE(tsnn::test::maxAbsDiff(b, a) <= 1e300);
  CHECK_FALSE(tsnn::test::maxAbs(b) <= 1e300);
  b(1, 0) = std::numeric_limits<double>::infinity();
  CHECK_FALSE(tsnn::test::maxAbsDiff(a, b) <= 1e300);
  CHECK_FALSE(tsnn::test::maxAbsDiff(a, Eigen::MatrixXd::Zero(2, 3)) <= 1e300);
  const std::vector<float> u{1.0f, std::numeric_limits<float>::quiet_NaN()}, v{1.0f, 2.0f};
  CHECK_FALSE(tsnn::test::maxAbsDiff(u, v) <= 1e300);
  CHECK_FALSE(tsnn::test::bitIdentical(u, v));
}

TEMPLATE_TEST_CASE("TransposeIndex lists each column's rows in order with their value positions",
                   "[sparse][kernels][transpose]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E01;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  auto w = tsnn::test::randomCsr<Scalar, Index>(31, 45, 0.15, rng);
  w = tsnn::test::withoutLines<Scalar, Index>(w, {0, 10, 30}, {0, 7, 44});
  tsnn::TransposeIndex<Index> t;
  t.build(w);
  REQUIRE(t.colPtr.size() == 46);
  CHECK(t.colPtr.front() == 0);
  CHECK(t.colPtr.back() == w.nonZeros());
  REQUIRE(t.rowIdx.size() == static_cast<std::size_t>(w.nonZeros()));
  REQUIRE(t.valuePos.size() == static_cast<std::size_t>(w.nonZeros()));
  for (Index c = 0; c < w.cols(); ++c) {
    // Reference: scan rows in order and collect the ones that hold column c.
    std::vector<Index> rows, positions;
    for (Index r = 0; r < w.rows(); ++r) {
      const Index k = w.find(r, c);
      if (k >= 0) {
        rows.push_back(r);
        positions.push_back(k);
      }
    }
    const auto b = static_cast<std::size_t>(t.colPtr[static_cast<std::size_t>(c)]);
    const auto e = static_cast<std::size_t>(t.colPtr[static_cast<std::size_t>(c) + 1]);
    REQUIRE(e >= b);
    CHECK(std::vector<Index>(t.rowIdx.begin() + b, t.rowIdx.begin() + e) == rows);
    CHECK(std::vector<Index>(t.valuePos.begin() + b, t.valuePos.begin() + e) == positions);
  }
  CHECK(t.colPtr[1] == t.colPtr[0]);    // column 0 was emptied
  CHECK(t.colPtr[45] == t.colPtr[44]);  // and so was the last one

  // Rebuilding after a topology change replaces everything.
  const auto w2 = tsnn::test::randomCsr<Scalar, Index>(8, 5, 0.5, rng);
  t.build(w2);
  CHECK(t.colPtr.size() == 6);
  CHECK(t.rowIdx.size() == static_cast<std::size_t>(w2.nonZeros()));
  CHECK(t.colPtr.back() == w2.nonZeros());
}

TEMPLATE_TEST_CASE("The three kernels match the dense oracle for every shape and batch size",
                   "[sparse][kernels][oracle]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E02;
  INFO("seed " << tsnn::test::streamSeed(stream));
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(stream);
    for (const Shape& s : kShapes) {
      for (Eigen::Index batch : kBatches) {
        INFO("W is " << s.nOut << " x " << s.nIn << " at density " << s.density << ", batch "
                     << batch);
        const auto p = makeProblem<Scalar, Index>(rng, s.nOut, s.nIn, s.density, batch);
        checkAllKernels(p);
      }
    }
  });
}

TEMPLATE_TEST_CASE("The kernels handle empty rows, empty columns and an empty matrix",
                   "[sparse][kernels]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E03;
  INFO("seed " << tsnn::test::streamSeed(stream));
  bool dropEverything = false;
  SECTION("some rows and columns empty") { dropEverything = false; }
  SECTION("no entries at all") { dropEverything = true; }
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(stream);
    for (Eigen::Index batch : {Eigen::Index{3}, Eigen::Index{17}, Eigen::Index{130}}) {
      INFO("batch " << batch << (dropEverything ? ", no entries" : ", some empty lines"));
      auto p = makeProblem<Scalar, Index>(rng, 24, 36, 0.3, batch);
      if (dropEverything) {
        std::vector<Index> allRows(24);
        for (Index r = 0; r < 24; ++r) allRows[static_cast<std::size_t>(r)] = r;
        p.w = tsnn::test::withoutLines<Scalar, Index>(p.w, allRows, {});
        REQUIRE(p.w.nonZeros() == 0);
      } else {
        p.w = tsnn::test::withoutLines<Scalar, Index>(p.w, {0, 5, 6, 23}, {0, 1, 17, 35});
      }
      p.t.build(p.w);
      checkAllKernels(p);
      // An empty row of W outputs exactly its bias; an empty column gets exactly zero gradient.
      Dense<Scalar> y(batch, 24), dx(batch, 36);
      tsnn::sparseForward(p.w, p.bias, p.x, y);
      tsnn::sparseBackwardInput(p.w, p.t, p.dy, dx);
      CHECK((y.col(5).array() == p.bias[5]).all());
      CHECK((dx.col(17).array() == Scalar(0)).all());
    }
  });
}

TEMPLATE_TEST_CASE("The kernels accept a batch of zero rows", "[sparse][kernels]",
                   TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  auto rng = tsnn::test::testRng(0x7E04);
  const auto p = makeProblem<Scalar, Index>(rng, 6, 9, 0.5, 0);
  Dense<Scalar> y(0, 6), dx(0, 9);
  CHECK_NOTHROW(tsnn::sparseForward(p.w, p.bias, p.x, y));
  CHECK_NOTHROW(tsnn::sparseBackwardInput(p.w, p.t, p.dy, dx));
  std::vector<Scalar> grad(2, Scalar(5));
  tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(1), grad);
  REQUIRE(grad.size() == static_cast<std::size_t>(p.w.nonZeros()));
  for (Scalar g : grad) CHECK(g == Scalar(0));  // an empty sum, not stale contents
  std::vector<Scalar> fused(2, Scalar(5));
  CHECK_NOTHROW(tsnn::sparseBackwardFused(p.w, p.t, p.x, p.dy, dx, Scalar(1), fused));
  REQUIRE(fused.size() == static_cast<std::size_t>(p.w.nonZeros()));
  for (Scalar g : fused) CHECK(g == Scalar(0));
}

TEMPLATE_TEST_CASE("The fused backward pass zeroes a gradient whose stale contents it overwrites",
                   "[sparse][kernels][fused]", TSNN_KERNEL_TYPES) {
  // Each entry is written first by the first batch tile (an assignment, not an addition), so a
  // gradient buffer reused from the last step must come out equal to a fresh one's.
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  auto rng = tsnn::test::testRng(0x7E11);
  onEverySimdPath([&](tsnn::SimdPath) {
    for (Eigen::Index batch : {Eigen::Index{3}, Eigen::Index{130}}) {
      const auto p = makeProblem<Scalar, Index>(rng, 30, 20, 0.3, batch);
      Dense<Scalar> dx(batch, 20), dx2(batch, 20);
      std::vector<Scalar> fresh, reused(static_cast<std::size_t>(p.w.nonZeros()), Scalar(1e6));
      tsnn::sparseBackwardFused(p.w, p.t, p.x, p.dy, dx, Scalar(1), fresh);
      tsnn::sparseBackwardFused(p.w, p.t, p.x, p.dy, dx2, Scalar(1), reused);
      CHECK(tsnn::test::bitIdentical(fresh, reused));
      CHECK(tsnn::test::bitIdentical(dx, dx2));
    }
  });
}

TEMPLATE_TEST_CASE("The kernels read and write blocks of rows of larger matrices",
                   "[sparse][kernels]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E05;
  INFO("seed " << tsnn::test::streamSeed(stream));
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(stream);
    const Index nOut = 21, nIn = 34;
    const Eigen::Index total = 160;
    const auto w = tsnn::test::randomCsr<Scalar, Index>(nOut, nIn, 0.25, rng);
    tsnn::TransposeIndex<Index> t;
    t.build(w);
    const Vector<Scalar> bias = tsnn::test::randomVector<Scalar>(nOut, rng);
    const Dense<Scalar> xBig = tsnn::test::randomDense<Scalar>(total, nIn, rng);
    const Dense<Scalar> dyBig = tsnn::test::randomDense<Scalar>(total, nOut, rng);
    const Scalar sentinel = Scalar(12345);

    // (first row, rows): blocks at the top, in the middle with odd sizes, and up to the end.
    const std::pair<Eigen::Index, Eigen::Index> blocks[] = {
        {0, 17}, {5, 3}, {7, 130}, {29, 131}, {159, 1}};
    for (const auto& [first, count] : blocks) {
      INFO("rows [" << first << ", " << first + count << ") of " << total);
      const Dense<Scalar> x = xBig.middleRows(first, count);
      const Dense<Scalar> dy = dyBig.middleRows(first, count);

      Dense<Scalar> yBig = Dense<Scalar>::Constant(total, nOut, sentinel);
      tsnn::sparseForward(w, bias, xBig.middleRows(first, count), yBig.middleRows(first, count));
      checkForward(w, bias, x, yBig.middleRows(first, count));
      CHECK((yBig.topRows(first).array() == sentinel).all());
      CHECK((yBig.bottomRows(total - first - count).array() == sentinel).all());

      Dense<Scalar> dxBig = Dense<Scalar>::Constant(total, nIn, sentinel);
      tsnn::sparseBackwardInput(w, t, dyBig.middleRows(first, count),
                                dxBig.middleRows(first, count));
      checkBackwardInput(w, dy, dxBig.middleRows(first, count));
      CHECK((dxBig.topRows(first).array() == sentinel).all());
      CHECK((dxBig.bottomRows(total - first - count).array() == sentinel).all());

      std::vector<Scalar> grad, gradCopy;
      tsnn::sparseWeightGradient(w, xBig.middleRows(first, count), dyBig.middleRows(first, count),
                                 Scalar(1), grad);
      checkWeightGradient(w, x, dy, 1.0, grad);
      // A view and a contiguous copy of the same rows give the same bits.
      tsnn::sparseWeightGradient(w, x, dy, Scalar(1), gradCopy);
      CHECK(tsnn::test::bitIdentical(grad, gradCopy));
      Dense<Scalar> yCopy(count, nOut);
      tsnn::sparseForward(w, bias, x, yCopy);
      CHECK(tsnn::test::bitIdentical(yCopy, yBig.middleRows(first, count)));
    }
    // A block input may feed a full output and the other way round.
    Dense<Scalar> y(17, nOut);
    tsnn::sparseForward(w, bias, xBig.topRows(17), y);
    checkForward(w, bias, Dense<Scalar>(xBig.topRows(17)), y);
    Dense<Scalar> dxBig = Dense<Scalar>::Constant(total, nIn, sentinel);
    tsnn::sparseBackwardInput(w, t, Dense<Scalar>(dyBig.topRows(17)), dxBig.topRows(17));
    checkBackwardInput(w, Dense<Scalar>(dyBig.topRows(17)), dxBig.topRows(17));
    CHECK((dxBig.bottomRows(total - 17).array() == sentinel).all());
  });
}

TEMPLATE_TEST_CASE("Serial and parallel kernels give bit-identical results",
                   "[sparse][kernels][openmp]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E06;
  INFO("seed " << tsnn::test::streamSeed(stream));
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(stream);
    for (Eigen::Index batch : {Eigen::Index{1}, Eigen::Index{17}, Eigen::Index{130}}) {
      INFO("batch " << batch);
      const auto p = makeProblem<Scalar, Index>(rng, 67, 53, 0.2, batch);
      const auto serial = runAll(p, tsnn::Threads::serial());
      // Two threads whatever the OpenMP default, so that the parallel path really opens a region.
      const auto parallel = runAll(p, tsnn::Threads::count(2));
      checkBitIdentical(serial, parallel);
      checkForward(p.w, p.bias, p.x, parallel.y);
    }
  });
}

TEMPLATE_TEST_CASE("Two, three and the default number of threads give bit-identical results",
                   "[sparse][kernels][openmp]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E07;
  INFO("seed " << tsnn::test::streamSeed(stream));
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(stream);
    for (Eigen::Index batch : {Eigen::Index{3}, Eigen::Index{64}, Eigen::Index{130}}) {
      INFO("batch " << batch);
      const auto p = makeProblem<Scalar, Index>(rng, 45, 71, 0.2, batch);
      const auto two = runAll(p, tsnn::Threads::count(2));
      checkBitIdentical(two, runAll(p, tsnn::Threads::count(3)));
      checkBitIdentical(two, runAll(p, tsnn::Threads::automatic()));
    }
  });
}

#if defined(_OPENMP)
TEMPLATE_TEST_CASE("Kernels called inside a parallel region give the serial bits",
                   "[sparse][kernels][openmp]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E08;
  INFO("seed " << tsnn::test::streamSeed(stream));
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(stream);
    const auto p = makeProblem<Scalar, Index>(rng, 33, 29, 0.3, 19);
    const auto serial = runAll(p, tsnn::Threads::serial());
    // Each thread of the enclosing region runs the kernels on its own outputs, as the
    // data-parallel trainer does; the kernels must stay serial and agree bit for bit.
    std::vector<Outputs<Scalar>> perThread(2);
    int team = 0;
#pragma omp parallel num_threads(2)
    {
      const int id = omp_get_thread_num();
#pragma omp single
      team = omp_get_num_threads();
      perThread[static_cast<std::size_t>(id)] = runAll(p, tsnn::Threads::count(2));
    }
    REQUIRE(team >= 1);
    for (int id = 0; id < team; ++id) {
      INFO("thread " << id);
      checkBitIdentical(serial, perThread[static_cast<std::size_t>(id)]);
    }
  });
}
#endif

// The team a kernel's region asks for comes from its Threads argument, through num_threads,
// and not from the process's OpenMP default (which the test sets to 1 for the occasion).
TEST_CASE("forThreadBlocks opens a region of the team its Threads asks for",
          "[sparse][kernels][openmp]") {
#if defined(_OPENMP)
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
#endif
  for (int n : {1, 3, 4}) {
    INFO("threads " << n);
    // What the runtime grants a region asking for n (less under OMP_THREAD_LIMIT; 1 without
    // OpenMP).
    int expected = 1;
#if defined(_OPENMP)
#pragma omp parallel num_threads(n)
#pragma omp single
    expected = omp_get_num_threads();
#endif
    std::vector<std::pair<long long, long long>> blocks(static_cast<std::size_t>(n), {-1, -1});
    int team = 0;
    tsnn::detail::forThreadBlocks(100LL, tsnn::Threads::count(n), [&](long long lo, long long hi) {
      const auto t = static_cast<std::size_t>(tsnn::threadId());
      blocks[t] = {lo, hi};
      if (t == 0) team = tsnn::teamSize();
    });
    CHECK(team == expected);
    long long next = 0;
    for (int t = 0; t < expected; ++t) {
      CHECK(blocks[static_cast<std::size_t>(t)].first == next);
      next = blocks[static_cast<std::size_t>(t)].second;
    }
    CHECK(next == 100);
  }
  // Serial: one call on the whole range, on the caller.
  int calls = 0;
  tsnn::detail::forThreadBlocks(10, tsnn::Threads::serial(),
                                [&](int lo, int hi) { calls += (lo == 0 && hi == 10) ? 1 : 100; });
  CHECK(calls == 1);
#if defined(_OPENMP)
  omp_set_num_threads(saved);
#endif
}

TEMPLATE_TEST_CASE("The weight gradient is multiplied by its scale", "[sparse][kernels]",
                   TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0x7E09;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  const auto p = makeProblem<Scalar, Index>(rng, 19, 23, 0.3, 37);
  std::vector<Scalar> g1, gQuarter, gZero, gThird;
  tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(1), g1);
  tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(0.25), gQuarter);
  tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(0), gZero);
  tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(1) / Scalar(37), gThird);
  REQUIRE(g1.size() == static_cast<std::size_t>(p.w.nonZeros()));
  // A power of two scales exactly.
  for (std::size_t k = 0; k < g1.size(); ++k) {
    CHECK(gQuarter[k] == g1[k] * Scalar(0.25));
    CHECK(gZero[k] == Scalar(0));
  }
  checkWeightGradient(p.w, p.x, p.dy, 1.0, g1);
  checkWeightGradient(p.w, p.x, p.dy, -2.5, [&] {
    std::vector<Scalar> g;
    tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(-2.5), g);
    return g;
  }());
  checkWeightGradient(p.w, p.x, p.dy, static_cast<double>(Scalar(1) / Scalar(37)), gThird);
}

TEMPLATE_TEST_CASE("The kernels reject mismatched shapes naming themselves",
                   "[sparse][kernels][errors]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  auto rng = tsnn::test::testRng(0x7E0A);
  const Index nOut = 6, nIn = 4;
  const Eigen::Index batch = 5;
  const auto p = makeProblem<Scalar, Index>(rng, nOut, nIn, 0.5, batch);
  std::vector<Scalar> grad;
  using tsnn::test::messageOf;

  SECTION("sparseForward") {
    const auto forward = [&](Eigen::Index xr, Eigen::Index xc, Eigen::Index yr, Eigen::Index yc,
                             Eigen::Index biasSize) {
      const Dense<Scalar> x = Dense<Scalar>::Zero(xr, xc);
      Dense<Scalar> y(yr, yc);
      const Vector<Scalar> bias = Vector<Scalar>::Zero(biasSize);
      return messageOf([&] { tsnn::sparseForward(p.w, bias, x, y); });
    };
    CHECK(forward(batch, nIn, batch, nOut, nOut) == "<no exception>");
    CHECK(forward(batch, nIn, batch, nOut, 0) == "<no exception>");
    const std::string name = "tsnn: sparseForward(): ", weights = "weights are 6 x 4";
    CHECK_THAT(forward(batch, nIn + 1, batch, nOut, nOut),
               StartsWith(name) && Contains(weights) && Contains("input is 5 x 5"));
    CHECK_THAT(forward(batch, nIn, batch, nOut - 1, nOut),
               StartsWith(name) && Contains(weights) && Contains("output 5 x 5"));
    CHECK_THAT(forward(batch, nIn, batch + 1, nOut, nOut),
               StartsWith(name) && Contains(weights) && Contains("output 6 x 6"));
    CHECK_THAT(forward(batch, nIn, batch, nOut, nOut + 1),
               StartsWith(name) && Contains(weights) && Contains("bias 7"));
  }
  SECTION("sparseBackwardInput") {
    const auto backward = [&](Eigen::Index dyr, Eigen::Index dyc, Eigen::Index dxr,
                              Eigen::Index dxc) {
      const Dense<Scalar> dy = Dense<Scalar>::Zero(dyr, dyc);
      Dense<Scalar> dx(dxr, dxc);
      return messageOf([&] { tsnn::sparseBackwardInput(p.w, p.t, dy, dx); });
    };
    CHECK(backward(batch, nOut, batch, nIn) == "<no exception>");
    const std::string name = "tsnn: sparseBackwardInput(): ", weights = "weights are 6 x 4";
    CHECK_THAT(backward(batch, nOut + 2, batch, nIn),
               StartsWith(name) && Contains(weights) && Contains("output gradient is 5 x 8"));
    CHECK_THAT(backward(batch, nOut, batch, nIn - 1),
               StartsWith(name) && Contains(weights) && Contains("input gradient 5 x 3"));
    CHECK_THAT(backward(batch, nOut, batch - 1, nIn),
               StartsWith(name) && Contains(weights) && Contains("input gradient 4 x 4"));
  }
  SECTION("sparseWeightGradient") {
    const auto gradient = [&](Eigen::Index xr, Eigen::Index xc, Eigen::Index dyr,
                              Eigen::Index dyc) {
      const Dense<Scalar> x = Dense<Scalar>::Zero(xr, xc);
      const Dense<Scalar> dy = Dense<Scalar>::Zero(dyr, dyc);
      return messageOf([&] { tsnn::sparseWeightGradient(p.w, x, dy, Scalar(1), grad); });
    };
    CHECK(gradient(batch, nIn, batch, nOut) == "<no exception>");
    const std::string name = "tsnn: sparseWeightGradient(): ", weights = "weights are 6 x 4";
    CHECK_THAT(gradient(batch, nIn + 1, batch, nOut),
               StartsWith(name) && Contains(weights) && Contains("input is 5 x 5"));
    CHECK_THAT(gradient(batch, nIn, batch, nOut + 1),
               StartsWith(name) && Contains(weights) && Contains("output gradient 5 x 7"));
    CHECK_THAT(gradient(batch + 1, nIn, batch, nOut),
               StartsWith(name) && Contains(weights) && Contains("input is 6 x 4"));
  }
}

TEMPLATE_TEST_CASE("sparseBackwardFused rejects mismatched shapes and a stale index",
                   "[sparse][kernels][errors]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  auto rng = tsnn::test::testRng(0x7E12);
  const Index nOut = 6, nIn = 4;
  const Eigen::Index batch = 5;
  const auto p = makeProblem<Scalar, Index>(rng, nOut, nIn, 0.5, batch);
  std::vector<Scalar> grad;
  using tsnn::test::messageOf;
  const auto fused = [&](Eigen::Index xr, Eigen::Index xc, Eigen::Index dyr, Eigen::Index dyc,
                         Eigen::Index dxr, Eigen::Index dxc) {
    const Dense<Scalar> x = Dense<Scalar>::Zero(xr, xc), dy = Dense<Scalar>::Zero(dyr, dyc);
    Dense<Scalar> dx(dxr, dxc);
    return messageOf([&] { tsnn::sparseBackwardFused(p.w, p.t, x, dy, dx, Scalar(1), grad); });
  };
  CHECK(fused(batch, nIn, batch, nOut, batch, nIn) == "<no exception>");
  const std::string name = "tsnn: sparseBackwardFused(): ", weights = "weights are 6 x 4";
  CHECK_THAT(fused(batch, nIn + 1, batch, nOut, batch, nIn),
             StartsWith(name) && Contains(weights) && Contains("input is 5 x 5"));
  CHECK_THAT(fused(batch, nIn, batch, nOut + 1, batch, nIn),
             StartsWith(name) && Contains(weights) && Contains("output gradient 5 x 7"));
  CHECK_THAT(fused(batch, nIn, batch, nOut, batch, nIn - 1),
             StartsWith(name) && Contains(weights) && Contains("input gradient 5 x 3"));
  CHECK_THAT(fused(batch, nIn, batch + 1, nOut, batch, nIn),
             StartsWith(name) && Contains("output gradient 6 x 6"));
  CHECK_THAT(fused(batch, nIn, batch, nOut, batch - 1, nIn),
             StartsWith(name) && Contains("input gradient 4 x 4"));
  const tsnn::TransposeIndex<Index> empty;
  Dense<Scalar> dx(batch, nIn);
  CHECK_THAT(
      messageOf([&] { tsnn::sparseBackwardFused(p.w, empty, p.x, p.dy, dx, Scalar(1), grad); }),
      StartsWith("tsnn: sparseBackwardFused(): transpose index is stale"));
}

TEMPLATE_TEST_CASE("sparseBackwardInput rejects a transpose index built for other weights",
                   "[sparse][kernels][errors]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  auto rng = tsnn::test::testRng(0x7E0B);
  const auto p = makeProblem<Scalar, Index>(rng, 12, 10, 0.4, 4);
  Dense<Scalar> dx(4, 10);
  const std::string stale = "tsnn: sparseBackwardInput(): transpose index is stale";

  SECTION("never built") {
    const tsnn::TransposeIndex<Index> empty;
    CHECK_THROWS_AS(tsnn::sparseBackwardInput(p.w, empty, p.dy, dx), tsnn::InvalidArgument);
    CHECK_THAT(tsnn::test::messageOf([&] { tsnn::sparseBackwardInput(p.w, empty, p.dy, dx); }),
               StartsWith(stale));
  }
  SECTION("built before connections were removed") {
    // Drop the fullest row so the count certainly changes.
    Index fullest = 0;
    for (Index r = 0; r < p.w.rows(); ++r)
      if (p.w.rowNonZeros(r) > p.w.rowNonZeros(fullest)) fullest = r;
    REQUIRE(p.w.rowNonZeros(fullest) > 0);
    const auto pruned = tsnn::test::withoutLines<Scalar, Index>(p.w, {fullest}, {});
    CHECK_THAT(tsnn::test::messageOf([&] { tsnn::sparseBackwardInput(pruned, p.t, p.dy, dx); }),
               StartsWith(stale) &&
                   Contains(std::to_string(p.w.nonZeros()) + " entries; weights have") &&
                   Contains(" with " + std::to_string(pruned.nonZeros()) + ")"));
  }
  SECTION("built for another pattern with the same shape and count") {
    // What a forgotten rebuild after a SET step looks like: same nnz, other positions.
    auto moved = p.w;
    moved.assignUnchecked(p.w.rows(), p.w.cols(), p.w.rowPtr(), p.w.colIdx(), p.w.values());
    CHECK_THAT(tsnn::test::messageOf([&] { tsnn::sparseBackwardInput(moved, p.t, p.dy, dx); }),
               StartsWith(stale));
  }
  SECTION("built for a different number of columns") {
    const auto wider = tsnn::test::randomCsr<Scalar, Index>(12, 11, 0.4, rng);
    Dense<Scalar> dxWide(4, 11);
    CHECK_THAT(tsnn::test::messageOf([&] { tsnn::sparseBackwardInput(wider, p.t, p.dy, dxWide); }),
               StartsWith(stale));
  }
}

TEMPLATE_TEST_CASE("COO kernels give bit-identical results to the CSR kernels on the same pattern",
                   "[sparse][kernels][coo]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(0xC00);
    for (const Shape& s : kShapes) {
      for (Eigen::Index batch : {Eigen::Index(3), Eigen::Index(130)}) {
        INFO("shape " << s.nOut << " x " << s.nIn << ", batch " << batch);
        auto p = makeProblem<Scalar, Index>(rng, s.nOut, s.nIn, s.density, batch);
        // Empty rows and columns exercise the COO row-run scan.
        p.w = tsnn::test::withoutLines<Scalar, Index>(p.w, {0}, {Index(s.nIn - 1)});
        p.t.build(p.w);
        const tsnn::CooMatrix<Scalar, Index> coo = tsnn::toCoo(p.w);
        tsnn::TransposeIndex<Index> tc;
        tc.build(coo);
        CHECK(tc.rowIdx == p.t.rowIdx);
        CHECK(tc.valuePos == p.t.valuePos);
        for (tsnn::Threads parallel : {tsnn::Threads::serial(), tsnn::Threads::count(2)}) {
          Dense<Scalar> y1(batch, s.nOut), y2(batch, s.nOut);
          tsnn::sparseForward(p.w, p.bias, p.x, y1, parallel);
          tsnn::sparseForward(coo, p.bias, p.x, y2, parallel);
          CHECK(tsnn::test::bitIdentical(y1, y2));
          Dense<Scalar> dx1(batch, s.nIn), dx2(batch, s.nIn);
          tsnn::sparseBackwardInput(p.w, p.t, p.dy, dx1, parallel);
          tsnn::sparseBackwardInput(coo, tc, p.dy, dx2, parallel);
          CHECK(tsnn::test::bitIdentical(dx1, dx2));
          std::vector<Scalar> g1, g2;
          tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(0.5), g1, parallel);
          tsnn::sparseWeightGradient(coo, p.x, p.dy, Scalar(0.5), g2, parallel);
          CHECK(tsnn::test::bitIdentical(g1, g2));
        }
        // The CSR index does not pass for the COO matrix: patterns are told apart by id.
        Dense<Scalar> dx(batch, s.nIn);
        CHECK_THROWS_AS(tsnn::sparseBackwardInput(coo, p.t, p.dy, dx), tsnn::InvalidArgument);
      }
    }
  });
}

TEMPLATE_TEST_CASE("sparseWeightGradientRows over row ranges gives sparseWeightGradient's bits",
                   "[sparse][kernels][rows]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  using Ref = tsnn::ConstActivationsRef<Scalar>;
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(0x5EC7);
    for (const Shape& s : kShapes) {
      for (Eigen::Index batch : {Eigen::Index(1), Eigen::Index(17), Eigen::Index(130)}) {
        INFO("shape " << s.nOut << " x " << s.nIn << ", batch " << batch);
        auto p = makeProblem<Scalar, Index>(rng, s.nOut, s.nIn, s.density, batch);
        p.w = tsnn::test::withoutLines<Scalar, Index>(p.w, {0}, {});
        const tsnn::CooMatrix<Scalar, Index> coo = tsnn::toCoo(p.w);
        std::vector<Scalar> whole;
        tsnn::sparseWeightGradient(p.w, p.x, p.dy, Scalar(0.5), whole, tsnn::Threads::serial());
        const Ref x(p.x), dy(p.dy);
        // Three uneven ranges, one possibly empty, covering every row; the gradient starts as
        // NaN, so an entry left unwritten fails the comparison.
        const Index a = s.nOut / 3, b = s.nOut - 1;
        const Index cuts[] = {0, a, b, s.nOut};
        std::vector<Scalar> csr(whole.size(), std::numeric_limits<Scalar>::quiet_NaN());
        std::vector<Scalar> cooGrad = csr;
        for (int r = 2; r >= 0; --r) {  // out of order: ranges are independent
          tsnn::sparseWeightGradientRows(p.w, &x, &dy, 1, Scalar(0.5), csr, cuts[r], cuts[r + 1]);
          tsnn::sparseWeightGradientRows(coo, &x, &dy, 1, Scalar(0.5), cooGrad, cuts[r],
                                         cuts[r + 1]);
        }
        CHECK(tsnn::test::bitIdentical(csr, whole));
        CHECK(tsnn::test::bitIdentical(cooGrad, whole));
      }
    }
  });
}

TEMPLATE_TEST_CASE("sparseWeightGradientRows writes only its rows and sums blocks of samples",
                   "[sparse][kernels][rows]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  using Ref = tsnn::ConstActivationsRef<Scalar>;
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(0xB10C);
    for (const Shape& s : kShapes) {
      INFO("shape " << s.nOut << " x " << s.nIn);
      const Eigen::Index batch = 130;
      const auto p = makeProblem<Scalar, Index>(rng, s.nOut, s.nIn, s.density, batch);
      // The minibatch as three shards of rows, the way a data-parallel trainer holds it: two of
      // equal size (summed as a pair, gatherDotTile2()) and a short one on its own.
      const Eigen::Index cut[] = {0, 64, 128, batch};
      std::vector<Dense<Scalar>> xs, dys;
      for (int b = 0; b < 3; ++b) {
        xs.push_back(p.x.middleRows(cut[b], cut[b + 1] - cut[b]));
        dys.push_back(p.dy.middleRows(cut[b], cut[b + 1] - cut[b]));
      }
      const std::vector<Ref> x(xs.begin(), xs.end()), dy(dys.begin(), dys.end());
      const Scalar sentinel = Scalar(-12345);
      std::vector<Scalar> grad(static_cast<std::size_t>(p.w.nonZeros()), sentinel);
      const Index first = s.nOut / 2, last = s.nOut;
      tsnn::sparseWeightGradientRows(p.w, x.data(), dy.data(), 3, Scalar(0.25), grad, first, last);
      for (Index k = 0; k < p.w.rowBegin(first); ++k)
        CHECK(grad[static_cast<std::size_t>(k)] == sentinel);
      tsnn::sparseWeightGradientRows(p.w, x.data(), dy.data(), 3, Scalar(0.25), grad, Index(0),
                                     first);
      checkWeightGradient(p.w, p.x, p.dy, 0.25, grad);
      // No blocks: a gradient of zero.
      tsnn::sparseWeightGradientRows(p.w, x.data(), dy.data(), 0, Scalar(1), grad, Index(0),
                                     Index(s.nOut));
      CHECK(std::all_of(grad.begin(), grad.end(), [](Scalar g) { return g == Scalar(0); }));
    }
  });
}

TEMPLATE_TEST_CASE("sparseWeightGradientRows rejects bad ranges, shapes and buffers",
                   "[sparse][kernels][rows]", TSNN_KERNEL_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  using Ref = tsnn::ConstActivationsRef<Scalar>;
  auto rng = tsnn::test::testRng(0xBAD);
  const auto p = makeProblem<Scalar, Index>(rng, Index(6), Index(5), 0.5, 4);
  const Ref x(p.x), dy(p.dy);
  std::vector<Scalar> grad(static_cast<std::size_t>(p.w.nonZeros()));
  const auto call = [&](Index first, Index last) {
    tsnn::sparseWeightGradientRows(p.w, &x, &dy, 1, Scalar(1), grad, first, last);
  };
  CHECK_NOTHROW(call(6, 6));
  CHECK_THROWS_WITH(call(-1, 2), StartsWith("tsnn: sparseWeightGradientRows(): rows [-1, 2)"));
  CHECK_THROWS_WITH(call(4, 3), Contains("rows [4, 3) are not within [0, 6]"));
  CHECK_THROWS_WITH(call(0, 7), Contains("rows [0, 7)"));
  const Dense<Scalar> narrow = p.x.leftCols(4);
  const Ref bad(narrow);
  CHECK_THROWS_WITH(
      tsnn::sparseWeightGradientRows(p.w, &bad, &dy, 1, Scalar(1), grad, Index(0), Index(6)),
      Contains("block 0 has input 4 x 4"));
  std::vector<Scalar> small(2);
  CHECK_THROWS_WITH(
      tsnn::sparseWeightGradientRows(p.w, &x, &dy, 1, Scalar(1), small, Index(0), Index(6)),
      Contains("gradient has 2 entries"));
}

TEMPLATE_TEST_CASE("On every SIMD path the gradients match finite differences of sum(G .* Y)",
                   "[sparse][kernels][gradcheck]", float, double) {
  using Scalar = TestType;
  using Index = std::int32_t;
  // L(X, W) = sum_{b,j} G(b,j) Y(b,j) with Y = X W^T + 1 b^T is linear in each parameter, so
  // the central difference has no truncation error, only the rounding of L: about eps |L| / h,
  // with a float step large enough for that to stay near 1e-5.
  const double h = std::is_same_v<Scalar, float> ? 1e-2 : 1e-6;
  const double tol = std::is_same_v<Scalar, float> ? 2e-3 : 1e-6;
  const std::uint64_t stream = 0x7E0C;
  INFO("seed " << tsnn::test::streamSeed(stream));
  onEverySimdPath([&](tsnn::SimdPath) {
    auto rng = tsnn::test::testRng(stream);
    for (Eigen::Index batch : {Eigen::Index{3}, Eigen::Index{20}, Eigen::Index{130}}) {
      INFO("batch " << batch);
      auto p = makeProblem<Scalar, Index>(rng, 9, 13, 0.4, batch);
      const Dense<Scalar> g = p.dy;  // dL/dY
      Dense<Scalar> y(batch, 9);
      auto loss = [&] {
        tsnn::sparseForward(p.w, p.bias, p.x, y);
        return (y.template cast<double>().array() * g.template cast<double>().array()).sum();
      };
      // dL/dX = G W and dL/dW_k = sum_b G(b, j) X(b, c_k).
      Dense<Scalar> dx(batch, 13);
      tsnn::sparseBackwardInput(p.w, p.t, g, dx);
      std::vector<Scalar> dw;
      tsnn::sparseWeightGradient(p.w, p.x, g, Scalar(1), dw);
      const std::vector<double> numDx =
          tsnn::test::numericalGradient(loss, p.x.data(), static_cast<std::size_t>(p.x.size()), h);
      const std::vector<double> numDw =
          tsnn::test::numericalGradient(loss, p.w.values().data(), dw.size(), h);
      const std::vector<Scalar> dxFlat(dx.data(), dx.data() + dx.size());
      const double errDx = tsnn::test::maxAbsDifference(dxFlat, numDx);
      const double errDw = tsnn::test::maxAbsDifference(dw, numDw);
      INFO("input gradient error " << errDx << ", weight gradient error " << errDw << ", tolerance "
                                   << tol);
      CHECK(errDx <= tol);
      CHECK(errDw <= tol);
    }
  });
}

namespace {

// The weight gradient computed by the loops of one path directly, without the dispatch.
std::vector<float> weightGradientOnPath(tsnn::SimdPath path, const tsnn::CsrMatrix<float>& w,
                                        const Dense<float>& x, const Dense<float>& dy) {
  const tsnn::ConstActivationsRef<float> xr(x), dyr(dy);
  std::vector<float> g(static_cast<std::size_t>(w.nonZeros()), -1.0f);
  namespace simd = tsnn::detail::simd;
  switch (path) {
#if TSNN_SIMD_HAS_AVX512
    case tsnn::SimdPath::Avx512:
      weightGradientRows(simd::avx512::Arch{}, w, &xr, &dyr, 1, 1.0f, g.data(), 0, w.rows());
      break;
#endif
#if TSNN_SIMD_HAS_AVX2
    case tsnn::SimdPath::Avx2:
      weightGradientRows(simd::avx2::Arch{}, w, &xr, &dyr, 1, 1.0f, g.data(), 0, w.rows());
      break;
#endif
    case tsnn::SimdPath::Generic:
      weightGradientRows(simd::generic::Arch{}, w, &xr, &dyr, 1, 1.0f, g.data(), 0, w.rows());
      break;
    default:
      FAIL("no body for SIMD path " << tsnn::simdPathName(path));
  }
  return g;
}

}  // namespace

TEST_CASE("setSimdPath() makes the kernels run that path's own loops", "[sparse][kernels][simd]") {
  // The paths round the weight gradient's dot products differently (tile widths, reduction
  // trees), so on this problem their bits tell them apart: each kernel call must give exactly
  // the bits of the loops of the path that is set, and no other path's.
  auto rng = tsnn::test::testRng(0x7E0D);
  const auto p = makeProblem<float, std::int32_t>(rng, 70, 40, 0.3, 130);
  std::vector<tsnn::SimdPath> ran;
  std::vector<std::vector<float>> direct;
  onEverySimdPath([&](tsnn::SimdPath path) {
    std::vector<float> g;
    tsnn::sparseWeightGradient(p.w, p.x, p.dy, 1.0f, g, tsnn::Threads::serial());
    direct.push_back(weightGradientOnPath(path, p.w, p.x, p.dy));
    CHECK(tsnn::test::bitIdentical(g, direct.back()));
    checkWeightGradient(p.w, p.x, p.dy, 1.0, g);
    ran.push_back(path);
  });
  for (std::size_t a = 0; a < ran.size(); ++a)
    for (std::size_t b = a + 1; b < ran.size(); ++b) {
      INFO(tsnn::simdPathName(ran[a]) << " against " << tsnn::simdPathName(ran[b]));
      CHECK_FALSE(tsnn::test::bitIdentical(direct[a], direct[b]));
    }
}

TEST_CASE("By default the kernels take the widest SIMD path this CPU has",
          "[sparse][kernels][simd]") {
  // An independent reading of the CPU's features: a CPU with AVX-512 must get the avx512 path
  // in a portable build as well as in this file's -march=native build (TSNN_TEST_NATIVE).
#if TSNN_SIMD_DISPATCH
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq");
  const tsnn::SimdPath expected = avx512 ? tsnn::SimdPath::Avx512
                                  : avx2 ? tsnn::SimdPath::Avx2
                                         : tsnn::SimdPath::Generic;
#else
  const tsnn::SimdPath expected = TSNN_SIMD_HAS_AVX512 ? tsnn::SimdPath::Avx512
                                  : TSNN_SIMD_HAS_AVX2 ? tsnn::SimdPath::Avx2
                                                       : tsnn::SimdPath::Generic;
#endif
  INFO("expected " << tsnn::simdPathName(expected) << ", best "
                   << tsnn::simdPathName(tsnn::bestSimdPath()));
  CHECK(tsnn::bestSimdPath() == expected);
  if (std::getenv("TSNN_SIMD") == nullptr) {
    const auto saved = tsnn::detail::simdPathSlot().exchange(-1);  // as if nothing chose yet
    CHECK(tsnn::simdPath() == expected);
    tsnn::detail::simdPathSlot().store(saved);
  }
#if defined(TSNN_TEST_NATIVE) && defined(__AVX512F__)
  // Built with -march=native on an AVX-512 machine, every body is compiled with its flags.
#define TSNN_TEST_NAME_OF(x) #x
#define TSNN_TEST_EXPANDED_NAME_OF(x) TSNN_TEST_NAME_OF(x)
  CHECK(std::string(TSNN_TEST_EXPANDED_NAME_OF(TSNN_SIMD_BASELINE)) == "baseline_avx512");
#endif
}

namespace {

// Values in (-1, 1) with a full mantissa, made from a hash by exact operations only (an integer
// below 2^24, or 2^53, converted and scaled by a power of two), so that the inputs of the digest
// below are the same bits in every build while the kernels' sums still round.
template <class Scalar>
Scalar hashedValue(std::uint64_t i) {
  constexpr int kBits = std::numeric_limits<Scalar>::digits;  // 24 or 53
  const auto m = static_cast<long long>(tsnn::mix64(i) >> (64 - kBits));
  return static_cast<Scalar>(m - (1ll << (kBits - 1))) / static_cast<Scalar>(1ll << (kBits - 1));
}

// FNV-1a over the bytes of \p n values.
template <class Scalar>
std::uint64_t digestOf(const Scalar* p, std::size_t n, std::uint64_t h) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n * sizeof(Scalar); ++i) h = (h ^ bytes[i]) * 0x100000001B3ull;
  return h;
}

// The bits of all three kernels on one path for a fixed layer, as one number.
template <class Scalar>
std::uint64_t kernelDigest() {
  const std::int32_t nOut = 90, nIn = 70;
  std::vector<std::int32_t> rowPtr{0}, colIdx;
  std::vector<Scalar> values;
  for (std::int32_t r = 0; r < nOut; ++r) {
    for (std::int32_t c = 0; c < nIn; ++c)
      if (tsnn::mix64(static_cast<std::uint64_t>(r * nIn + c)) % 5 == 0) {
        colIdx.push_back(c);
        values.push_back(hashedValue<Scalar>(0x1000000u + colIdx.size()));
      }
    rowPtr.push_back(static_cast<std::int32_t>(colIdx.size()));
  }
  const tsnn::CsrMatrix<Scalar> w(nOut, nIn, rowPtr, colIdx, values);
  tsnn::TransposeIndex<std::int32_t> t;
  t.build(w);
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (Eigen::Index batch : {Eigen::Index{7}, Eigen::Index{128}, Eigen::Index{130}}) {
    Dense<Scalar> x(batch, nIn), dy(batch, nOut), y(batch, nOut), dx(batch, nIn);
    Vector<Scalar> bias(nOut);
    for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = hashedValue<Scalar>(0x2000000u + i);
    for (Eigen::Index i = 0; i < dy.size(); ++i) dy.data()[i] = hashedValue<Scalar>(0x3000000u + i);
    for (Eigen::Index i = 0; i < bias.size(); ++i) bias[i] = hashedValue<Scalar>(0x4000000u + i);
    std::vector<Scalar> g;
    tsnn::sparseForward(w, bias, x, y);
    tsnn::sparseBackwardInput(w, t, dy, dx);
    tsnn::sparseWeightGradient(w, x, dy, Scalar(0.25), g);
    h = digestOf(y.data(), static_cast<std::size_t>(y.size()), h);
    h = digestOf(dx.data(), static_cast<std::size_t>(dx.size()), h);
    h = digestOf(g.data(), g.size(), h);
  }
  return h;
}

}  // namespace

// Hidden: tests/support/compare_kernel_digests.cmake runs it in the portable and the
// -march=native build of this file and requires the same digest for each path compiled in a
// target region: the dispatched avx2 and avx512 bodies must not depend on the unit's flags.
TEST_CASE("Kernel digests per SIMD path, for comparing two builds", "[.digest]") {
  onEverySimdPath([&](tsnn::SimdPath path) {
    std::printf("TSNN-DIGEST %s float %016llx double %016llx\n", tsnn::simdPathName(path),
                static_cast<unsigned long long>(kernelDigest<float>()),
                static_cast<unsigned long long>(kernelDigest<double>()));
    SUCCEED();
  });
}

// The bfloat16 kernels against the float kernels on the widened values: every operand of a
// bfloat16 kernel widens exactly, so its sums are the float kernel's sums, bit for bit; only the
// stored input gradient is rounded, once, and that rounding must be Eigen's (round to nearest
// even), which the SIMD paths implement on their own.
TEST_CASE("bfloat16 kernels give the float kernels' bits on the widened values",
          "[sparse][kernels][bf16]") {
  using tsnn::BFloat16;
  using Dense16 = Dense<BFloat16>;
  tsnn::Rng rng(77);
  onEverySimdPath([&](tsnn::SimdPath) {
    for (const Shape& s : kShapes)
      for (Eigen::Index batch : kBatches) {
        INFO(s.nOut << " x " << s.nIn << " density " << s.density << " batch " << batch);
        const auto p = makeProblem<float, std::int32_t>(rng, s.nOut, s.nIn, s.density, batch);
        const Dense16 x16 = p.x.cast<BFloat16>(), dy16 = p.dy.cast<BFloat16>();
        const Dense<float> xw = x16.cast<float>(), dyw = dy16.cast<float>();
        const float scale = 0.25f;

        Dense<float> y(batch, p.w.rows()), yRef(batch, p.w.rows());
        tsnn::sparseForward(p.w, p.bias, x16, y);
        tsnn::sparseForward(p.w, p.bias, xw, yRef);
        INFO("forward");
        CHECK(tsnn::test::bitIdentical(y, yRef));

        // Output gradients in float (the output layer's) and in bfloat16 (a hidden layer's).
        for (bool dyInBf16 : {false, true}) {
          INFO((dyInBf16 ? "bfloat16 output gradients" : "float output gradients"));
          const Dense<float>& dyRefIn = dyInBf16 ? dyw : p.dy;
          Dense<float> dxRef(batch, p.w.cols());
          std::vector<float> gradRef, grad(3, 7.0f);
          tsnn::sparseBackwardFused(p.w, p.t, xw, dyRefIn, dxRef, scale, gradRef);
          Dense16 dx = Dense16::Constant(batch, p.w.cols(), BFloat16(7.0f));
          if (dyInBf16)
            tsnn::sparseBackwardFused(p.w, p.t, x16, dy16, dx, scale, grad);
          else
            tsnn::sparseBackwardFused(p.w, p.t, x16, p.dy, dx, scale, grad);
          CHECK(tsnn::test::bitIdentical(dx, Dense16(dxRef.cast<BFloat16>())));
          CHECK(tsnn::test::bitIdentical(grad, gradRef));
          // In place: the input gradient over the inputs.
          Dense16 inPlace = x16;
          std::vector<float> inPlaceGrad;
          if (dyInBf16)
            tsnn::sparseBackwardFused(p.w, p.t, inPlace, dy16, inPlace, scale, inPlaceGrad);
          else
            tsnn::sparseBackwardFused(p.w, p.t, inPlace, p.dy, inPlace, scale, inPlaceGrad);
          INFO("in place");
          CHECK(tsnn::test::bitIdentical(inPlace, dx));
          CHECK(tsnn::test::bitIdentical(inPlaceGrad, gradRef));
        }

        std::vector<float> g, gRef;
        tsnn::sparseWeightGradient(p.w, p.x, dy16, scale, g);
        tsnn::sparseWeightGradient(p.w, p.x, dyw, scale, gRef);
        INFO("weight gradient of bfloat16 output gradients");
        CHECK(tsnn::test::bitIdentical(g, gRef));
      }
  });
}

TEST_CASE(
    "The bfloat16 input gradient rounds to nearest even as Eigen does, NaN and infinity "
    "included",
    "[sparse][kernels][bf16]") {
  using tsnn::BFloat16;
  // One connection of weight 1: dX is 0 + 1 * dY in float (dY itself, but -0 becomes +0 and a
  // signalling NaN turns quiet), so the stored dX shows the rounding alone.
  tsnn::CsrMatrix<float, std::int32_t> w(1, 1, {0, 1}, {0}, {1.0f});
  tsnn::TransposeIndex<std::int32_t> t;
  t.build(w);
  const std::uint32_t specials[] = {
      0x3F808000u,               // a tie with an even kept part: down
      0x3F818000u,               // a tie with an odd kept part: up
      0x3F808001u,               // just above a tie: up
      0x3F807FFFu,               // just below a tie: down
      0x7F800001u,               // a signalling NaN whose payload truncation would lose: stays NaN
      0xFF800001u,               // its negative
      0x7FC00000u,               // the quiet NaN
      0x7F800000u, 0xFF800000u,  // infinities
      0x7F7FFFFFu,               // the largest float: rounds up to infinity
      0x80000000u,               // -0
      0x00000001u, 0x807FFFFFu,  // subnormals
      0xBF7FFFFFu,               // just below -1: carries into the exponent
  };
  const int n = static_cast<int>(sizeof(specials) / sizeof(specials[0]));
  onEverySimdPath([&](tsnn::SimdPath) {
    for (Eigen::Index batch : kBatches) {
      INFO("batch " << batch);
      Dense<float> dy(batch, 1);
      for (Eigen::Index b = 0; b < batch; ++b) {
        std::uint32_t bits = specials[b % n];
        float v;
        std::memcpy(&v, &bits, sizeof v);
        dy(b, 0) = v;
      }
      const Dense<BFloat16> x = Dense<BFloat16>::Zero(batch, 1);
      Dense<BFloat16> dx(batch, 1);
      std::vector<float> grad;
      tsnn::sparseBackwardFused(w, t, x, dy, dx, 1.0f, grad);
      for (Eigen::Index b = 0; b < batch; ++b) {
        const BFloat16 expected(std::fma(1.0f, dy(b, 0), 0.0f));
        INFO("row " << b << " float bits " << std::hex << specials[b % n] << " stored "
                    << dx(b, 0).value << " Eigen " << expected.value);
        CHECK(dx(b, 0).value == expected.value);
      }
    }
  });
}
