// Tests for tsnn/sparse/csr_matrix.hpp: construction, the storage invariants that validate()
// enforces, element lookup and the size accessors.

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/sparse/csr_matrix.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using tsnn::test::Types;

#define TSNN_CSR_TYPES                                                                       \
  (Types<float, std::int32_t>), (Types<float, std::int64_t>), (Types<double, std::int32_t>), \
      (Types<double, std::int64_t>)

namespace {

// The 3 x 4 matrix
//   [ 0  1.5  0  -2 ]
//   [ 0   0   0   0 ]
//   [ 4   0  0.25 0 ]
template <class Scalar, class Index>
struct Example {
  Index rows = 3, cols = 4;
  std::vector<Index> rowPtr{0, 2, 2, 4};
  std::vector<Index> colIdx{1, 3, 0, 2};
  std::vector<Scalar> values{Scalar(1.5), Scalar(-2), Scalar(4), Scalar(0.25)};
  Scalar dense[3][4] = {
      {0, Scalar(1.5), 0, Scalar(-2)}, {0, 0, 0, 0}, {Scalar(4), 0, Scalar(0.25), 0}};
};

}  // namespace

TEMPLATE_TEST_CASE("A default-constructed CSR matrix is a valid empty 0 x 0 matrix",
                   "[sparse][csr]", TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const tsnn::CsrMatrix<Scalar, Index> m;
  CHECK(m.rows() == 0);
  CHECK(m.cols() == 0);
  CHECK(m.nonZeros() == 0);
  CHECK(m.rowPtr() == std::vector<Index>{0});
  CHECK(m.check().empty());
  CHECK_NOTHROW(m.validate());
  CHECK(m.density() == 0.0);
  CHECK(m.bytes() == sizeof(Index));
}

TEMPLATE_TEST_CASE("A CSR matrix constructed from a shape stores no entries", "[sparse][csr]",
                   TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const tsnn::CsrMatrix<Scalar, Index> m(3, 5);
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 5);
  CHECK(m.nonZeros() == 0);
  CHECK(m.rowPtr() == std::vector<Index>(4, 0));
  CHECK(m.check().empty());
  CHECK(m.density() == 0.0);
  for (Index r = 0; r < 3; ++r) {
    CHECK(m.rowNonZeros(r) == 0);
    for (Index c = 0; c < 5; ++c) {
      CHECK(m.find(r, c) == -1);
      CHECK(m.coeff(r, c) == Scalar(0));
    }
  }
  // Degenerate shapes are allowed.
  CHECK(tsnn::CsrMatrix<Scalar, Index>(0, 7).check().empty());
  CHECK(tsnn::CsrMatrix<Scalar, Index>(7, 0).check().empty());
}

TEMPLATE_TEST_CASE("A negative shape is rejected with a message naming the constructor",
                   "[sparse][csr][errors]", TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  using M = tsnn::CsrMatrix<Scalar, Index>;
  CHECK_THROWS_AS(M(-1, 3), tsnn::InvalidArgument);
  CHECK_THAT(tsnn::test::messageOf([] { M(-1, 3); }),
             StartsWith("tsnn: CsrMatrix::CsrMatrix()") && Contains("-1 x 3"));
  CHECK_THAT(tsnn::test::messageOf([] { M(2, -4); }),
             StartsWith("tsnn: CsrMatrix::CsrMatrix()") && Contains("2 x -4"));
}

TEMPLATE_TEST_CASE("The array constructor adopts valid arrays unchanged", "[sparse][csr]",
                   TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const Example<Scalar, Index> e;
  const tsnn::CsrMatrix<Scalar, Index> m(e.rows, e.cols, e.rowPtr, e.colIdx, e.values);
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 4);
  CHECK(m.nonZeros() == 4);
  CHECK(m.rowPtr() == e.rowPtr);
  CHECK(m.colIdx() == e.colIdx);
  CHECK(m.values() == e.values);
  CHECK(m.rowBegin(2) == 2);
  CHECK(m.rowEnd(2) == 4);
  CHECK(m.rowNonZeros(0) == 2);
  CHECK(m.rowNonZeros(1) == 0);
  CHECK(m.rowNonZeros(2) == 2);
  for (Index r = 0; r < 3; ++r)
    for (Index c = 0; c < 4; ++c) CHECK(m.coeff(r, c) == e.dense[r][c]);
}

TEMPLATE_TEST_CASE("validate() reports each broken invariant with a message naming the caller",
                   "[sparse][csr][errors]", TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  using M = tsnn::CsrMatrix<Scalar, Index>;
  Example<Scalar, Index> e;
  std::string fragment;

  SECTION("unsorted columns in a row") {
    e.colIdx = {3, 1, 0, 2};
    fragment = "not strictly increasing in row 0";
  }
  SECTION("a duplicated column in a row") {
    e.colIdx = {1, 3, 2, 2};
    fragment = "not strictly increasing in row 2";
  }
  SECTION("a column index equal to the number of columns") {
    e.colIdx = {1, 4, 0, 2};
    fragment = "column index 4 out of range in row 0";
  }
  SECTION("a negative column index") {
    e.colIdx = {1, 3, -1, 2};
    fragment = "column index -1 out of range in row 2";
  }
  SECTION("rowPtr one entry short") {
    e.rowPtr = {0, 2, 4};
    fragment = "rowPtr has 3 entries, expected 4";
  }
  SECTION("rowPtr one entry too long") {
    e.rowPtr = {0, 2, 2, 4, 4};
    fragment = "rowPtr has 5 entries, expected 4";
  }
  SECTION("rowPtr not starting at 0") {
    e.rowPtr = {1, 2, 2, 4};
    fragment = "rowPtr[0] is 1";
  }
  SECTION("rowPtr ending below nnz") {
    e.rowPtr = {0, 2, 2, 3};
    fragment = "rowPtr[rows] is 3, expected nnz 4";
  }
  SECTION("rowPtr ending above nnz") {
    e.rowPtr = {0, 2, 2, 5};
    fragment = "rowPtr[rows] is 5, expected nnz 4";
  }
  SECTION("rowPtr decreasing") {
    e.rowPtr = {0, 3, 2, 4};
    e.colIdx = {0, 1, 3, 2};
    fragment = "rowPtr decreases at row 1";
  }
  SECTION("rowPtr jumping past nnz and back") {
    // Row 0 would span [0, 5) of a 4-entry array: the check must not scan it (ASan finds it).
    e.rowPtr = {0, 5, 2, 4};
    fragment = "rowPtr decreases at row 1";
  }
  SECTION("colIdx and values of different lengths") {
    e.values.pop_back();
    e.rowPtr = {0, 2, 2, 3};
    fragment = "colIdx has 4 entries but values has 3";
  }

  INFO("expected problem: " << fragment);
  // Through the validating constructor...
  CHECK_THROWS_AS(M(e.rows, e.cols, e.rowPtr, e.colIdx, e.values), tsnn::InvalidArgument);
  CHECK_THAT(
      tsnn::test::messageOf([&] { M(e.rows, e.cols, e.rowPtr, e.colIdx, e.values); }),
      StartsWith("tsnn: CsrMatrix::CsrMatrix(): invalid CSR matrix: ") && Contains(fragment));
  // ...and through validate() with a caller's name, after an unchecked assignment.
  M m;
  m.assignUnchecked(e.rows, e.cols, e.rowPtr, e.colIdx, e.values);
  CHECK_THAT(m.check(), Contains(fragment));
  CHECK_THAT(
      tsnn::test::messageOf([&] { m.validate("SparseLinear::setWeights()"); }),
      StartsWith("tsnn: SparseLinear::setWeights(): invalid CSR matrix: ") && Contains(fragment));
  CHECK_THAT(tsnn::test::messageOf([&] { m.validate(); }),
             StartsWith("tsnn: CsrMatrix::validate(): "));
}

TEMPLATE_TEST_CASE("validate() rejects a negative shape set without checks",
                   "[sparse][csr][errors]", TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  tsnn::CsrMatrix<Scalar, Index> m;
  m.assignUnchecked(-2, 3, {0}, {}, {});
  CHECK(m.check() == "negative shape");
  CHECK_THROWS_AS(m.validate(), tsnn::InvalidArgument);
}

TEMPLATE_TEST_CASE("find and coeff locate every stored entry and nothing else", "[sparse][csr]",
                   TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC5A1;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  // Density 0.2 on 37 x 53 leaves some rows short and touches both ends of many rows.
  const auto m = tsnn::test::randomCsr<Scalar, Index>(37, 53, 0.2, rng);
  REQUIRE(m.check().empty());
  Index seen = 0;
  for (Index r = 0; r < m.rows(); ++r) {
    for (Index c = 0; c < m.cols(); ++c) {
      // Linear scan of the row as the reference.
      Index expected = -1;
      for (Index k = m.rowBegin(r); k < m.rowEnd(r); ++k)
        if (m.colIdx()[static_cast<std::size_t>(k)] == c) expected = k;
      const Index k = m.find(r, c);
      CHECK(k == expected);
      const Scalar v = expected < 0 ? Scalar(0) : m.values()[static_cast<std::size_t>(expected)];
      CHECK(m.coeff(r, c) == v);
      if (k >= 0) ++seen;
    }
  }
  CHECK(seen == m.nonZeros());
}

TEMPLATE_TEST_CASE("density and bytes follow from the shape and the stored arrays", "[sparse][csr]",
                   TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const Example<Scalar, Index> e;
  const tsnn::CsrMatrix<Scalar, Index> m(e.rows, e.cols, e.rowPtr, e.colIdx, e.values);
  CHECK(m.density() == Approx(4.0 / 12.0).epsilon(1e-15));
  CHECK(m.bytes() == 4 * sizeof(Index) + 4 * sizeof(Index) + 4 * sizeof(Scalar));
  CHECK(tsnn::CsrMatrix<Scalar, Index>(0, 5).density() == 0.0);
  CHECK(tsnn::CsrMatrix<Scalar, Index>(5, 0).density() == 0.0);
  CHECK(tsnn::CsrMatrix<Scalar, Index>(5, 0).bytes() == 6 * sizeof(Index));
  // A full matrix has density exactly 1.
  const tsnn::CsrMatrix<Scalar, Index> full(2, 2, {0, 2, 4}, {0, 1, 0, 1}, {1, 2, 3, 4});
  CHECK(full.density() == 1.0);
}

TEMPLATE_TEST_CASE("Writing through values() keeps the pattern and the invariants", "[sparse][csr]",
                   TSNN_CSR_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const Example<Scalar, Index> e;
  tsnn::CsrMatrix<Scalar, Index> m(e.rows, e.cols, e.rowPtr, e.colIdx, e.values);
  for (auto& v : m.values()) v = -v;
  m.values()[0] = Scalar(0);  // an explicit zero stays stored
  CHECK(m.check().empty());
  CHECK(m.nonZeros() == 4);
  CHECK(m.find(0, 1) == 0);
  CHECK(m.coeff(0, 1) == Scalar(0));
  CHECK(m.coeff(2, 0) == Scalar(-4));
  CHECK(m.colIdx() == e.colIdx);
}
