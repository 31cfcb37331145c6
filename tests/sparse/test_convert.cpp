// Tests for tsnn/sparse/convert.hpp: CSR <-> COO, CSR <-> Eigen::SparseMatrix (both storage
// orders, compressed or not) and CSR -> dense. Every conversion only moves values, so every
// comparison here is exact.

#include <Eigen/SparseCore>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/sparse/convert.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using tsnn::test::Types;

#define TSNN_CONVERT_TYPES                                                                   \
  (Types<float, std::int32_t>), (Types<float, std::int64_t>), (Types<double, std::int32_t>), \
      (Types<double, std::int64_t>)

namespace {

// Same shape, pattern and values, compared array by array.
template <class Scalar, class Index>
void requireSameCsr(const tsnn::CsrMatrix<Scalar, Index>& a,
                    const tsnn::CsrMatrix<Scalar, Index>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  CHECK(a.rowPtr() == b.rowPtr());
  CHECK(a.colIdx() == b.colIdx());
  CHECK(a.values() == b.values());
}

// A random matrix with a few empty rows and columns and one explicitly stored zero.
template <class Scalar, class Index>
tsnn::CsrMatrix<Scalar, Index> sampleMatrix(std::uint64_t stream) {
  auto rng = tsnn::test::testRng(stream);
  auto m = tsnn::test::randomCsr<Scalar, Index>(23, 31, 0.15, rng);
  m = tsnn::test::withoutLines<Scalar, Index>(m, {0, 5, 22}, {3, 30});
  if (m.nonZeros() > 0) m.values()[static_cast<std::size_t>(m.nonZeros()) / 2] = Scalar(0);
  return m;
}

// An Eigen matrix of the given storage order holding exactly the entries of a (explicit zeros
// included). Built with insert() after a per-vector reserve, so it stays uncompressed unless
// compress is set.
template <int Order, class EigenIndex, class Scalar, class Index>
Eigen::SparseMatrix<Scalar, Order, EigenIndex> eigenCopy(const tsnn::CsrMatrix<Scalar, Index>& a,
                                                         bool compress) {
  Eigen::SparseMatrix<Scalar, Order, EigenIndex> e(a.rows(), a.cols());
  // Two spare slots per outer vector keep the uncompressed layout's gaps visible.
  e.reserve(Eigen::VectorXi::Constant(Order == Eigen::RowMajor ? a.rows() : a.cols(),
                                      static_cast<int>(a.cols() + 2)));
  for (Index r = 0; r < a.rows(); ++r)
    for (Index k = a.rowBegin(r); k < a.rowEnd(r); ++k)
      e.insert(r, a.colIdx()[static_cast<std::size_t>(k)]) =
          a.values()[static_cast<std::size_t>(k)];
  if (compress) e.makeCompressed();
  return e;
}

}  // namespace

TEMPLATE_TEST_CASE("CSR to COO gives the canonical entries and converts back exactly",
                   "[sparse][convert]", TSNN_CONVERT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC0A1;
  INFO("seed " << tsnn::test::streamSeed(stream));
  const auto a = sampleMatrix<Scalar, Index>(stream);
  REQUIRE(a.check().empty());

  const auto coo = tsnn::toCoo(a);
  CHECK(coo.check().empty());
  CHECK(coo.rows() == a.rows());
  CHECK(coo.cols() == a.cols());
  REQUIRE(coo.nonZeros() == a.nonZeros());
  for (Index r = 0; r < a.rows(); ++r)
    for (Index k = a.rowBegin(r); k < a.rowEnd(r); ++k) {
      const auto kk = static_cast<std::size_t>(k);
      CHECK(coo.rowIdx()[kk] == r);
      CHECK(coo.colIdx()[kk] == a.colIdx()[kk]);
      CHECK(coo.values()[kk] == a.values()[kk]);
    }

  const auto back = tsnn::toCsr(coo);
  CHECK(back.check().empty());
  requireSameCsr(back, a);
}

TEMPLATE_TEST_CASE("COO entries pushed in any order convert to the same CSR matrix",
                   "[sparse][convert]", TSNN_CONVERT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC0A2;
  INFO("seed " << tsnn::test::streamSeed(stream));
  const auto a = sampleMatrix<Scalar, Index>(stream);
  const auto sorted = tsnn::toCoo(a);
  std::vector<std::size_t> order(sorted.values().size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  auto rng = tsnn::test::testRng(stream + 1);
  std::shuffle(order.begin(), order.end(), rng);

  tsnn::CooMatrix<Scalar, Index> shuffled(a.rows(), a.cols());
  for (std::size_t k : order)
    shuffled.push(sorted.rowIdx()[k], sorted.colIdx()[k], sorted.values()[k]);
  const auto b = tsnn::toCsr(shuffled);
  CHECK(b.check().empty());
  requireSameCsr(b, a);
}

TEMPLATE_TEST_CASE("toCsr rejects a repeated position and points to sumDuplicates",
                   "[sparse][convert][errors]", TSNN_CONVERT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  tsnn::CooMatrix<Scalar, Index> m(4, 5);
  m.push(3, 1, Scalar(1));
  m.push(0, 4, Scalar(2));
  m.push(3, 1, Scalar(3));
  CHECK_THROWS_AS(tsnn::toCsr(m), tsnn::InvalidArgument);
  CHECK_THAT(tsnn::test::messageOf([&] { tsnn::toCsr(m); }),
             StartsWith("tsnn: toCsr(): duplicate entry at (3, 1)") && Contains("sumDuplicates"));
  // Summing first makes it convertible.
  m.sumDuplicates();
  const auto c = tsnn::toCsr(m);
  CHECK(c.check().empty());
  CHECK(c.nonZeros() == 2);
  CHECK(c.coeff(3, 1) == Scalar(4));
  CHECK(c.coeff(0, 4) == Scalar(2));
}

TEMPLATE_TEST_CASE("Empty and degenerate shapes convert between CSR and COO", "[sparse][convert]",
                   TSNN_CONVERT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::vector<std::pair<Index, Index>> shapes{{0, 0}, {0, 5}, {4, 0}, {3, 3}};
  for (const auto& [rows, cols] : shapes) {
    INFO(rows << " x " << cols);
    const tsnn::CooMatrix<Scalar, Index> coo(rows, cols);
    const auto csr = tsnn::toCsr(coo);
    CHECK(csr.check().empty());
    CHECK(csr.rows() == rows);
    CHECK(csr.cols() == cols);
    CHECK(csr.nonZeros() == 0);
    const auto again = tsnn::toCoo(csr);
    CHECK(again.rows() == rows);
    CHECK(again.cols() == cols);
    CHECK(again.nonZeros() == 0);
    const auto e = tsnn::toEigen(csr);
    CHECK(e.rows() == rows);
    CHECK(e.cols() == cols);
    CHECK(e.nonZeros() == 0);
    requireSameCsr(tsnn::fromEigen<Scalar, Index>(e), csr);
    CHECK(tsnn::toDense(csr).rows() == rows);
    CHECK(tsnn::toDense(csr).cols() == cols);
  }
}

TEMPLATE_TEST_CASE("toEigen gives a compressed row-major matrix with the same stored entries",
                   "[sparse][convert]", TSNN_CONVERT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC0A3;
  INFO("seed " << tsnn::test::streamSeed(stream));
  const auto a = sampleMatrix<Scalar, Index>(stream);
  const auto e = tsnn::toEigen(a);
  static_assert(std::remove_const_t<decltype(e)>::IsRowMajor,
                "toEigen must give a row-major matrix");
  CHECK(e.isCompressed());
  CHECK(e.rows() == a.rows());
  CHECK(e.cols() == a.cols());
  REQUIRE(e.nonZeros() == a.nonZeros());  // the explicit zero is kept
  CHECK(std::equal(a.rowPtr().begin(), a.rowPtr().end(), e.outerIndexPtr()));
  CHECK(std::equal(a.colIdx().begin(), a.colIdx().end(), e.innerIndexPtr()));
  CHECK(std::equal(a.values().begin(), a.values().end(), e.valuePtr()));
  // And Eigen itself reads the same matrix.
  CHECK(tsnn::test::maxAbsDiff(tsnn::test::Dense<Scalar>(e), tsnn::toDense(a)) == 0.0);
}

TEMPLATE_TEST_CASE("fromEigen reads either storage order, compressed or not", "[sparse][convert]",
                   TSNN_CONVERT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC0A4;
  INFO("seed " << tsnn::test::streamSeed(stream));
  const auto a = sampleMatrix<Scalar, Index>(stream);

  SECTION("row-major, Eigen's int indices") {
    for (bool compress : {true, false}) {
      const auto e = eigenCopy<Eigen::RowMajor, int>(a, compress);
      REQUIRE(e.isCompressed() == compress);
      requireSameCsr(tsnn::fromEigen<Scalar, Index>(e), a);
    }
  }
  SECTION("column-major, Eigen's int indices") {
    for (bool compress : {true, false}) {
      const auto e = eigenCopy<Eigen::ColMajor, int>(a, compress);
      REQUIRE(e.isCompressed() == compress);
      requireSameCsr(tsnn::fromEigen<Scalar, Index>(e), a);
    }
  }
  SECTION("row-major, the same index type as the CSR matrix") {
    for (bool compress : {true, false}) {
      const auto e = eigenCopy<Eigen::RowMajor, Index>(a, compress);
      REQUIRE(e.isCompressed() == compress);
      requireSameCsr(tsnn::fromEigen<Scalar, Index>(e), a);
    }
  }
  SECTION("column-major, the same index type as the CSR matrix") {
    for (bool compress : {true, false}) {
      const auto e = eigenCopy<Eigen::ColMajor, Index>(a, compress);
      REQUIRE(e.isCompressed() == compress);
      requireSameCsr(tsnn::fromEigen<Scalar, Index>(e), a);
    }
  }
  SECTION("toEigen then fromEigen") {
    requireSameCsr(tsnn::fromEigen<Scalar, Index>(tsnn::toEigen(a)), a);
  }
}

TEMPLATE_TEST_CASE("fromEigen rejects a shape that does not fit a 32-bit index",
                   "[sparse][convert][errors]", float, double) {
  // 1 x 3e9, row-major: one outer vector. The arrays are written directly because Eigen's
  // insert() would reserve 2 * cols slots.
  const Eigen::Index wide = 3000000000LL;
  Eigen::SparseMatrix<TestType, Eigen::RowMajor, std::int64_t> e(1, wide);
  e.resizeNonZeros(1);
  e.outerIndexPtr()[0] = 0;
  e.outerIndexPtr()[1] = 1;
  e.innerIndexPtr()[0] = wide - 1;
  e.valuePtr()[0] = TestType(1);
  REQUIRE(e.nonZeros() == 1);
  CHECK_THROWS_AS((tsnn::fromEigen<TestType, std::int32_t>(e)), tsnn::InvalidArgument);
  CHECK_THAT(tsnn::test::messageOf([&] { tsnn::fromEigen<TestType, std::int32_t>(e); }),
             StartsWith("tsnn: fromEigen(): 1 x 3000000000") && Contains("index type"));
  // The same matrix fits a 64-bit index.
  const auto ok = tsnn::fromEigen<TestType, std::int64_t>(e);
  CHECK(ok.check().empty());
  CHECK(ok.cols() == wide);
  CHECK(ok.coeff(0, wide - 1) == TestType(1));
}

TEMPLATE_TEST_CASE("toDense places every stored value and zeros elsewhere", "[sparse][convert]",
                   TSNN_CONVERT_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC0A5;
  INFO("seed " << tsnn::test::streamSeed(stream));
  const auto a = sampleMatrix<Scalar, Index>(stream);
  const auto d = tsnn::toDense(a);
  REQUIRE(d.rows() == a.rows());
  REQUIRE(d.cols() == a.cols());
  Index nonzeroCount = 0, storedZeros = 0;
  for (Index r = 0; r < a.rows(); ++r)
    for (Index c = 0; c < a.cols(); ++c) {
      CHECK(d(r, c) == a.coeff(r, c));
      if (d(r, c) != Scalar(0)) ++nonzeroCount;
    }
  for (Scalar v : a.values())
    if (v == Scalar(0)) ++storedZeros;
  CHECK(nonzeroCount + storedZeros == a.nonZeros());
  // The dropped rows and columns are zero in the dense matrix.
  CHECK(d.row(5).isZero(0));
  CHECK(d.col(30).isZero(0));
}
