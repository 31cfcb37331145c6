// Tests for tsnn/sparse/coo_matrix.hpp: bounds-checked push, stable sorting, duplicate
// summation and the canonical-form check.

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/sparse/coo_matrix.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using tsnn::test::Types;

#define TSNN_COO_TYPES                                                                       \
  (Types<float, std::int32_t>), (Types<float, std::int64_t>), (Types<double, std::int32_t>), \
      (Types<double, std::int64_t>)

TEMPLATE_TEST_CASE("A COO matrix starts empty with the given shape", "[sparse][coo]",
                   TSNN_COO_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const tsnn::CooMatrix<Scalar, Index> d;
  CHECK(d.rows() == 0);
  CHECK(d.cols() == 0);
  CHECK(d.nonZeros() == 0);
  CHECK(d.check().empty());

  const tsnn::CooMatrix<Scalar, Index> m(4, 6);
  CHECK(m.rows() == 4);
  CHECK(m.cols() == 6);
  CHECK(m.nonZeros() == 0);
  CHECK(m.density() == 0.0);
  CHECK(m.bytes() == 0);
  CHECK(m.check().empty());
  CHECK_NOTHROW(m.validate());
}

TEMPLATE_TEST_CASE("A negative COO shape is rejected with a message naming the constructor",
                   "[sparse][coo][errors]", TSNN_COO_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  using M = tsnn::CooMatrix<Scalar, Index>;
  CHECK_THROWS_AS(M(-1, 2), tsnn::InvalidArgument);
  CHECK_THAT(tsnn::test::messageOf([] { M(3, -5); }),
             StartsWith("tsnn: CooMatrix::CooMatrix()") && Contains("3 x -5"));
}

TEMPLATE_TEST_CASE("push appends in-bounds entries and rejects out-of-bounds ones unchanged",
                   "[sparse][coo][errors]", TSNN_COO_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  tsnn::CooMatrix<Scalar, Index> m(3, 4);
  m.push(0, 0, Scalar(1));
  m.push(2, 3, Scalar(-2));
  REQUIRE(m.nonZeros() == 2);
  CHECK(m.rowIdx() == std::vector<Index>{0, 2});
  CHECK(m.colIdx() == std::vector<Index>{0, 3});
  CHECK(m.values() == std::vector<Scalar>{Scalar(1), Scalar(-2)});
  CHECK(m.density() == Approx(2.0 / 12.0).epsilon(1e-15));
  CHECK(m.bytes() == 4 * sizeof(Index) + 2 * sizeof(Scalar));

  Index r = 0, c = 0;
  std::string where;
  SECTION("row equal to rows") {
    r = 3;
    c = 1;
    where = "(3, 1)";
  }
  SECTION("negative row") {
    r = -1;
    c = 1;
    where = "(-1, 1)";
  }
  SECTION("column equal to cols") {
    r = 1;
    c = 4;
    where = "(1, 4)";
  }
  SECTION("negative column") {
    r = 1;
    c = -3;
    where = "(1, -3)";
  }
  CHECK_THROWS_AS(m.push(r, c, Scalar(5)), tsnn::InvalidArgument);
  CHECK_THAT(tsnn::test::messageOf([&] { m.push(r, c, Scalar(5)); }),
             StartsWith("tsnn: CooMatrix::push()") && Contains(where) && Contains("3 x 4"));
  // A refused push leaves the matrix as it was.
  CHECK(m.nonZeros() == 2);
  CHECK(m.rowIdx().size() == 2);
  CHECK(m.colIdx().size() == 2);
  CHECK(m.check().empty());
}

TEMPLATE_TEST_CASE("sort orders by row then column and keeps repeated positions in push order",
                   "[sparse][coo]", TSNN_COO_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC001;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  const Index rows = 7, cols = 5;
  tsnn::CooMatrix<Scalar, Index> m(rows, cols);
  // Values record the push order, so stability can be read back from them. 200 entries in a
  // 35-position shape force many repeats.
  std::multimap<std::pair<Index, Index>, Scalar> expected;
  for (int i = 0; i < 200; ++i) {
    const auto r = static_cast<Index>(rng.below(rows));
    const auto c = static_cast<Index>(rng.below(cols));
    m.push(r, c, static_cast<Scalar>(i));
    expected.emplace(std::make_pair(r, c), static_cast<Scalar>(i));  // multimap keeps order
  }
  m.sort();
  REQUIRE(m.nonZeros() == 200);
  std::size_t k = 0;
  for (const auto& [pos, v] : expected) {
    CHECK(m.rowIdx()[k] == pos.first);
    CHECK(m.colIdx()[k] == pos.second);
    CHECK(m.values()[k] == v);
    ++k;
  }
  // Sorted but still holding duplicates: not canonical.
  CHECK_THAT(m.check(), Contains("out of order or duplicated"));
}

TEMPLATE_TEST_CASE("sumDuplicates adds the values that share a position", "[sparse][coo]",
                   TSNN_COO_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const std::uint64_t stream = 0xC002;
  INFO("seed " << tsnn::test::streamSeed(stream));
  auto rng = tsnn::test::testRng(stream);
  const Index rows = 9, cols = 11;
  tsnn::CooMatrix<Scalar, Index> m(rows, cols);
  // Reference: sums in push order, which is the order a stable sort leaves them in, so the
  // result must match bit for bit.
  std::map<std::pair<Index, Index>, Scalar> expected;
  for (int i = 0; i < 150; ++i) {
    const auto r = static_cast<Index>(rng.below(rows));
    const auto c = static_cast<Index>(rng.below(cols));
    const auto v = static_cast<Scalar>(rng.uniform(-1.0, 1.0));
    m.push(r, c, v);
    auto it = expected.find({r, c});
    if (it == expected.end())
      expected.emplace(std::make_pair(r, c), v);
    else
      it->second += v;
  }
  m.sumDuplicates();
  CHECK(m.check().empty());
  REQUIRE(static_cast<std::size_t>(m.nonZeros()) == expected.size());
  std::size_t k = 0;
  for (const auto& [pos, v] : expected) {
    CHECK(m.rowIdx()[k] == pos.first);
    CHECK(m.colIdx()[k] == pos.second);
    CHECK(m.values()[k] == v);
    ++k;
  }
}

TEMPLATE_TEST_CASE("sort and sumDuplicates accept an empty matrix", "[sparse][coo]",
                   TSNN_COO_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  tsnn::CooMatrix<Scalar, Index> m(2, 2);
  m.sort();
  m.sumDuplicates();
  CHECK(m.nonZeros() == 0);
  CHECK(m.check().empty());
}

TEMPLATE_TEST_CASE("check accepts canonical order and describes the first problem otherwise",
                   "[sparse][coo][errors]", TSNN_COO_TYPES) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  tsnn::CooMatrix<Scalar, Index> m(3, 3);
  m.push(0, 1, Scalar(1));
  m.push(1, 0, Scalar(2));
  m.push(1, 2, Scalar(3));
  REQUIRE(m.check().empty());

  std::string fragment;
  SECTION("an entry before its predecessor's row") {
    m.push(0, 2, Scalar(4));
    fragment = "entry 3 at (0, 2) is out of order or duplicated";
  }
  SECTION("an entry before its predecessor's column in the same row") {
    m.push(1, 1, Scalar(4));
    fragment = "entry 3 at (1, 1) is out of order or duplicated";
  }
  SECTION("a repeated position") {
    m.push(1, 2, Scalar(4));
    fragment = "entry 3 at (1, 2) is out of order or duplicated";
  }
  SECTION("value array longer than the index arrays") {
    m.values().push_back(Scalar(9));
    fragment = "index and value arrays differ in length";
  }
  CHECK_THAT(m.check(), Contains(fragment));
  CHECK_THROWS_AS(m.validate(), tsnn::InvalidArgument);
  CHECK_THAT(tsnn::test::messageOf([&] { m.validate("Loader::read()"); }),
             StartsWith("tsnn: Loader::read(): invalid COO matrix: ") && Contains(fragment));
  CHECK_THAT(tsnn::test::messageOf([&] { m.validate(); }),
             StartsWith("tsnn: CooMatrix::validate(): "));
}
