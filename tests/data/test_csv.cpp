// Tests for tsnn/data/csv.hpp. Every test writes its own files into a fresh temporary directory.

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "tsnn/data/csv.hpp"
#include "tsnn/data/dataset.hpp"

namespace fs = std::filesystem;
using tsnn::data::CsvOptions;
using tsnn::data::loadCsv;

namespace {

using tsnn::test::TempDir;

CsvOptions withLabelColumn(const std::string& name) {
  CsvOptions o;
  o.labelColumn = name;
  return o;
}

CsvOptions withLabelIndex(int index, bool header = true) {
  CsvOptions o;
  o.labelIndex = index;
  o.header = header;
  return o;
}

}  // namespace

TEMPLATE_TEST_CASE("loadCsv reads features and the last column as labels by default", "[data][csv]",
                   float, double) {
  TempDir dir;
  const std::string path = dir.write("iris.csv",
                                     "a,b,c,label\n"
                                     "1.5,-2,3e-2,0\n"
                                     "+4,.5,6.25,2\n"
                                     "0,0,-0.125,1\n");
  const auto ds = loadCsv<TestType>(path);
  REQUIRE(ds.size() == 3);
  REQUIRE(ds.dim() == 3);
  CHECK(ds.numClasses == 3);
  CHECK(ds.labels == std::vector<std::int32_t>{0, 2, 1});
  tsnn::data::MatrixRowMajor<TestType> expected(3, 3);
  expected << TestType(1.5), TestType(-2), TestType(3e-2), TestType(4), TestType(0.5),
      TestType(6.25), TestType(0), TestType(0), TestType(-0.125);
  CHECK(ds.features == expected);
  CHECK_NOTHROW(ds.validate("test"));
}

TEST_CASE("loadCsv chooses the label column by name or by index", "[data][csv]") {
  TempDir dir;
  const std::string path = dir.write("d.csv",
                                     "x1,y,x2\n"
                                     "10,1,20\n"
                                     "30,0,40\n");
  SECTION("by name") {
    const auto ds = loadCsv(path, withLabelColumn("y"));
    CHECK(ds.labels == std::vector<std::int32_t>{1, 0});
    CHECK(ds.numClasses == 2);
    REQUIRE(ds.dim() == 2);
    CHECK(ds.features(0, 0) == 10.0f);
    CHECK(ds.features(0, 1) == 20.0f);
    CHECK(ds.features(1, 0) == 30.0f);
    CHECK(ds.features(1, 1) == 40.0f);
  }
  SECTION("by index from the start") {
    const auto ds = loadCsv(path, withLabelIndex(1));
    CHECK(ds.labels == std::vector<std::int32_t>{1, 0});
    CHECK(ds.features(1, 1) == 40.0f);
  }
  SECTION("by negative index from the end") {
    const auto ds = loadCsv(path, withLabelIndex(-2));
    CHECK(ds.labels == std::vector<std::int32_t>{1, 0});
  }
  SECTION("first column") {
    const std::string p2 = dir.write("first.csv", "label,f\n7,0.25\n3,0.5\n");
    const auto ds = loadCsv(p2, withLabelIndex(0));
    CHECK(ds.labels == std::vector<std::int32_t>{7, 3});
    CHECK(ds.numClasses == 8);
    CHECK(ds.features(0, 0) == 0.25f);
  }
}

TEST_CASE("loadCsv without a header reads the first line as data", "[data][csv]") {
  TempDir dir;
  const std::string path = dir.write("noheader.csv", "1,2,0\n3,4,1\n");
  const auto ds = loadCsv(path, withLabelIndex(-1, false));
  REQUIRE(ds.size() == 2);
  CHECK(ds.labels == std::vector<std::int32_t>{0, 1});
  CHECK(ds.features(0, 0) == 1.0f);
  CHECK(ds.features(1, 1) == 4.0f);
  // With the default header = true the first row would be taken as names.
  CHECK(loadCsv(path).size() == 1);
}

TEST_CASE("loadCsv handles CRLF, a byte order mark, blank lines, spaces and quoted fields",
          "[data][csv]") {
  TempDir dir;
  const std::string path =
      dir.write("windows.csv",
                "\xEF\xBB\xBF\"f 1\", \"f,2\" ,\"say \"\"hi\"\"\",\"label\"\r\n"
                " 1 ,\t2\t, \"3\" ,1\r\n"
                "\r\n"
                "4,5,6,0\r\n"
                "\r\n"
                "  \r\n");
  SECTION("by index") {
    const auto ds = loadCsv(path);
    REQUIRE(ds.size() == 2);
    REQUIRE(ds.dim() == 3);
    CHECK(ds.labels == std::vector<std::int32_t>{1, 0});
    CHECK(ds.features(0, 0) == 1.0f);
    CHECK(ds.features(0, 1) == 2.0f);
    CHECK(ds.features(0, 2) == 3.0f);
    CHECK(ds.features(1, 2) == 6.0f);
  }
  SECTION("by quoted names") {
    CHECK(loadCsv(path, withLabelColumn("label")).labels == std::vector<std::int32_t>{1, 0});
    // The quoted delimiter and the doubled quote belong to the names.
    const auto ds = loadCsv(path, withLabelColumn("say \"hi\""));
    CHECK(ds.numClasses == 7);
    CHECK(ds.labels == std::vector<std::int32_t>{3, 6});
    CHECK(loadCsv(path, withLabelColumn("f,2")).labels == std::vector<std::int32_t>{2, 5});
  }
}

TEST_CASE("loadCsv reads other delimiters", "[data][csv]") {
  TempDir dir;
  CsvOptions semi;
  semi.delimiter = ';';
  const auto s = loadCsv(dir.write("semi.csv", "a;b;label\n1.5;-2;1\n"), semi);
  REQUIRE(s.dim() == 2);
  CHECK(s.features(0, 0) == 1.5f);
  CHECK(s.features(0, 1) == -2.0f);
  CHECK(s.labels == std::vector<std::int32_t>{1});
  // A comma is then an ordinary character of the field (no decimal commas).
  CHECK_THROWS_WITH(loadCsv(dir.write("comma.csv", "a;label\n1,5;0\n"), semi),
                    Catch::Contains("'1,5' is not a number"));

  CsvOptions tab;
  tab.delimiter = '\t';
  const auto t = loadCsv(dir.write("tab.tsv", "a\tlabel\n2.5\t1\n"), tab);
  CHECK(t.features(0, 0) == 2.5f);
  CHECK(t.labels == std::vector<std::int32_t>{1});
}

TEST_CASE("loadCsv rejects a field that is not a number with line, column and text",
          "[data][csv]") {
  TempDir dir;
  const std::string path = dir.write("bad.csv",
                                     "a,b,label\n"
                                     "1,2,0\n"
                                     "3,abc,1\n");
  CHECK_THROWS_AS(loadCsv(path), tsnn::FormatError);
  CHECK_THROWS_WITH(loadCsv(path), Catch::StartsWith("tsnn: loadCsv(): '" + path + "' line 3") &&
                                       Catch::Contains("column 2 ('b')") &&
                                       Catch::Contains("'abc' is not a number"));

  const auto bad = [&](const std::string& field) {
    return dir.write("one.csv", "a,label\n" + field + ",0\n");
  };
  CHECK_THROWS_WITH(loadCsv(bad("1.5x")), Catch::Contains("'1.5x' is not a number"));
  CHECK_THROWS_WITH(loadCsv(bad("nan")), Catch::Contains("'nan' is not a finite number"));
  CHECK_THROWS_WITH(loadCsv(bad("-inf")), Catch::Contains("'-inf' is not a finite number"));
  CHECK_THROWS_WITH(loadCsv(bad("")),
                    Catch::Contains("line 2, column 1") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(loadCsv(bad("0x10")), Catch::Contains("not a number"));
  CHECK_THROWS_WITH(loadCsv(bad("1 2")), Catch::Contains("'1 2' is not a number"));
  CHECK_THROWS_WITH(loadCsv(bad("++1")), Catch::Contains("not a number"));
  CHECK_THROWS_WITH(loadCsv(bad("1e999")), Catch::Contains("outside the range of double"));
  // Finite in double but not in float.
  CHECK_THROWS_WITH(loadCsv<float>(bad("1e39")), Catch::Contains("overflows"));
  CHECK(loadCsv<double>(bad("1e39")).features(0, 0) == 1e39);
}

TEST_CASE("loadCsv rejects ragged rows with the expected and found field counts", "[data][csv]") {
  TempDir dir;
  const std::string path = dir.write("ragged.csv",
                                     "a,b,label\n"
                                     "1,2,0\n"
                                     "\n"
                                     "3,1\n");
  CHECK_THROWS_AS(loadCsv(path), tsnn::FormatError);
  CHECK_THROWS_WITH(loadCsv(path), Catch::Contains(path) && Catch::Contains("line 4") &&
                                       Catch::Contains("found 2 fields, expected 3"));
  const std::string longer = dir.write("long.csv", "a,label\n1,0\n1,2,3\n");
  CHECK_THROWS_WITH(loadCsv(longer),
                    Catch::Contains("line 3") && Catch::Contains("found 3 fields, expected 2"));
  const std::string trailingComma = dir.write("comma.csv", "a,label\n1,0,\n");
  CHECK_THROWS_WITH(loadCsv(trailingComma), Catch::Contains("found 3 fields, expected 2"));
}

TEST_CASE("loadCsv rejects labels that are not non-negative integers", "[data][csv]") {
  TempDir dir;
  const auto file = [&](const std::string& label) {
    return dir.write("l.csv", "x,label\n1,0\n2," + label + "\n");
  };
  CHECK_THROWS_AS(loadCsv(file("-1")), tsnn::FormatError);
  CHECK_THROWS_WITH(loadCsv(file("-1")),
                    Catch::Contains("line 3, column 2 ('label')") && Catch::Contains("label '-1'"));
  CHECK_THROWS_WITH(loadCsv(file("1.5")), Catch::Contains("label '1.5'"));
  CHECK_THROWS_WITH(loadCsv(file("cat")),
                    Catch::Contains("'cat' is not a number") && Catch::Contains("label column"));
  CHECK_THROWS_WITH(loadCsv(file("3000000000")), Catch::Contains("label '3000000000'"));
  // An integral value written with a decimal point is accepted.
  const auto ds = loadCsv(file("4.0"));
  CHECK(ds.labels == std::vector<std::int32_t>{0, 4});
  CHECK(ds.numClasses == 5);
}

TEST_CASE("loadCsv with an unknown label column name lists the header", "[data][csv]") {
  TempDir dir;
  const std::string path = dir.write("h.csv", "alpha,beta,gamma\n1,2,0\n");
  CHECK_THROWS_AS(loadCsv(path, withLabelColumn("class")), tsnn::FormatError);
  CHECK_THROWS_WITH(
      loadCsv(path, withLabelColumn("class")),
      Catch::Contains("no column named 'class'") && Catch::Contains("'alpha', 'beta', 'gamma'"));
  const std::string dup = dir.write("dup.csv", "y,a,y\n1,2,0\n");
  CHECK_THROWS_WITH(loadCsv(dup, withLabelColumn("y")), Catch::Contains("more than one"));
}

TEST_CASE("loadCsv rejects inconsistent options and out-of-range label indices", "[data][csv]") {
  TempDir dir;
  const std::string path = dir.write("o.csv", "a,b,c\n1,2,0\n");
  CsvOptions nameWithoutHeader = withLabelColumn("c");
  nameWithoutHeader.header = false;
  CHECK_THROWS_AS(loadCsv(path, nameWithoutHeader), tsnn::InvalidArgument);
  CsvOptions quote;
  quote.delimiter = '"';
  CHECK_THROWS_AS(loadCsv(path, quote), tsnn::InvalidArgument);

  CHECK_THROWS_AS(loadCsv(path, withLabelIndex(3)), tsnn::FormatError);
  CHECK_THROWS_WITH(loadCsv(path, withLabelIndex(3)),
                    Catch::Contains("labelIndex 3") && Catch::Contains("3 columns"));
  CHECK_THROWS_AS(loadCsv(path, withLabelIndex(-4)), tsnn::FormatError);
  CHECK(loadCsv(path, withLabelIndex(-3)).labels == std::vector<std::int32_t>{1});
}

TEST_CASE("loadCsv rejects malformed quotes", "[data][csv]") {
  TempDir dir;
  const std::string inside = dir.write("q1.csv", "a,label\n1\"2,0\n");
  CHECK_THROWS_AS(loadCsv(inside), tsnn::FormatError);
  CHECK_THROWS_WITH(loadCsv(inside), Catch::Contains("line 2, column 1") &&
                                         Catch::Contains("quote inside an unquoted field"));
  const std::string open = dir.write("q2.csv", "a,label\n1,\"0\n2,1\n");
  CHECK_THROWS_WITH(loadCsv(open),
                    Catch::Contains("line 2, column 2") && Catch::Contains("unterminated"));
  const std::string after = dir.write("q3.csv", "a,label\n\"1\"2,0\n");
  CHECK_THROWS_WITH(loadCsv(after), Catch::Contains("after the closing quote"));
}

TEST_CASE("loadCsv rejects files without data and single-column files", "[data][csv]") {
  TempDir dir;
  CHECK_THROWS_AS(loadCsv(dir.write("empty.csv", "")), tsnn::FormatError);
  CHECK_THROWS_WITH(loadCsv(dir.write("blank.csv", "\n \r\n")), Catch::Contains("no data rows"));
  CHECK_THROWS_WITH(loadCsv(dir.write("header.csv", "a,label\n\n")),
                    Catch::Contains("no data rows"));
  CHECK_THROWS_WITH(loadCsv(dir.write("one.csv", "label\n1\n")),
                    Catch::Contains("line 1") && Catch::Contains("at least 2"));
}

TEST_CASE("loadCsv of a missing file or a directory throws IoError naming the path",
          "[data][csv]") {
  TempDir dir;
  const std::string missing = dir.file("missing.csv");
  CHECK_THROWS_AS(loadCsv(missing), tsnn::IoError);
  CHECK_THROWS_WITH(loadCsv(missing), Catch::StartsWith("tsnn: loadCsv()") &&
                                          Catch::Contains(missing) &&
                                          Catch::Contains(std::strerror(ENOENT)));
  const std::string folder = fs::path(dir.file("x")).parent_path().string();
  CHECK_THROWS_AS(loadCsv(folder), tsnn::IoError);
}

TEST_CASE("loadCsv keeps many rows in file order", "[data][csv]") {
  TempDir dir;
  std::string text = "f0,f1,label\n";
  for (int i = 0; i < 500; ++i) {
    text += std::to_string(i) + "," + std::to_string(-0.5 * i) + "," + std::to_string(i % 7) + "\n";
  }
  const auto ds = loadCsv<double>(dir.write("big.csv", text));
  REQUIRE(ds.size() == 500);
  CHECK(ds.numClasses == 7);
  for (int i = 0; i < 500; ++i) {
    REQUIRE(ds.features(i, 0) == i);
    REQUIRE(ds.features(i, 1) == -0.5 * i);
    REQUIRE(ds.labels[static_cast<std::size_t>(i)] == i % 7);
  }
}
