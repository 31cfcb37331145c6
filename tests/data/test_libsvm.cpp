// Tests for tsnn/data/libsvm.hpp. Every test writes its own files into a fresh temporary
// directory.

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
#include "tsnn/data/dataset.hpp"
#include "tsnn/data/libsvm.hpp"

namespace fs = std::filesystem;
using tsnn::data::loadLibsvm;

namespace {

using tsnn::test::TempDir;

}  // namespace

TEMPLATE_TEST_CASE("loadLibsvm places each index:value at column index - 1 and zeros elsewhere",
                   "[data][libsvm]", float, double) {
  TempDir dir;
  const std::string path = dir.write("a.svm",
                                     "# a comment line\n"
                                     "2 1:0.5 3:-1.25 # trailing comment\n"
                                     "\n"
                                     "0\t2:4  5:1e-3\r\n"
                                     "1\n"
                                     "2.0 5:7\n");
  const auto ds = loadLibsvm<TestType>(path);
  REQUIRE(ds.size() == 4);
  REQUIRE(ds.dim() == 5);
  CHECK(ds.numClasses == 3);
  CHECK(ds.labels == std::vector<std::int32_t>{2, 0, 1, 2});
  tsnn::data::MatrixRowMajor<TestType> expected = tsnn::data::MatrixRowMajor<TestType>::Zero(4, 5);
  expected(0, 0) = TestType(0.5);
  expected(0, 2) = TestType(-1.25);
  expected(1, 1) = TestType(4);
  expected(1, 4) = TestType(1e-3);
  expected(3, 4) = TestType(7);
  CHECK(ds.features == expected);
  CHECK_NOTHROW(ds.validate("test"));
}

TEST_CASE("loadLibsvm maps the binary labels -1 and +1 to 0 and 1", "[data][libsvm]") {
  TempDir dir;
  const auto ds = loadLibsvm(dir.write("b.svm", "+1 1:1\n-1 2:1\n1 1:2\n-1 1:3\n"));
  CHECK(ds.labels == std::vector<std::int32_t>{1, 0, 1, 0});
  CHECK(ds.numClasses == 2);
  // Without -1 the labels are used as they are: {0, +1} stays {0, 1}, {1, 2} keeps class 0 unused.
  CHECK(loadLibsvm(dir.write("c.svm", "0 1:1\n+1 1:1\n")).labels ==
        std::vector<std::int32_t>{0, 1});
  const auto oneBased = loadLibsvm(dir.write("d.svm", "1 1:1\n2 1:1\n"));
  CHECK(oneBased.labels == std::vector<std::int32_t>{1, 2});
  CHECK(oneBased.numClasses == 3);
}

TEST_CASE("loadLibsvm rejects negative labels outside the {-1, +1} convention", "[data][libsvm]") {
  TempDir dir;
  const std::string mixed = dir.write("m.svm", "0 1:1\n1 1:1\n-1 1:1\n-1 1:2\n");
  CHECK_THROWS_AS(loadLibsvm(mixed), tsnn::FormatError);
  CHECK_THROWS_WITH(loadLibsvm(mixed), Catch::Contains(mixed) && Catch::Contains("line 3") &&
                                           Catch::Contains("'-1'") &&
                                           Catch::Contains("negative label"));
  // Only -1: not the binary convention, so -1 is not a class.
  CHECK_THROWS_AS(loadLibsvm(dir.write("n.svm", "-1 1:1\n")), tsnn::FormatError);
  CHECK_THROWS_WITH(loadLibsvm(dir.write("o.svm", "1 1:1\n-2 1:1\n")),
                    Catch::Contains("line 2") && Catch::Contains("'-2'"));
}

TEST_CASE("loadLibsvm rejects labels that are not integers", "[data][libsvm]") {
  TempDir dir;
  const std::string frac = dir.write("f.svm", "1 1:1\n0.5 1:1\n");
  CHECK_THROWS_AS(loadLibsvm(frac), tsnn::FormatError);
  CHECK_THROWS_WITH(loadLibsvm(frac),
                    Catch::Contains("line 2, token '0.5'") && Catch::Contains("not an integer"));
  CHECK_THROWS_WITH(loadLibsvm(dir.write("g.svm", "cat 1:1\n")),
                    Catch::Contains("line 1, token 'cat'") && Catch::Contains("not a number"));
  CHECK_THROWS_WITH(loadLibsvm(dir.write("h.svm", "1:1 2:1\n")), Catch::Contains("token '1:1'"));
}

TEST_CASE("loadLibsvm uses a given dim and rejects an index beyond it", "[data][libsvm]") {
  TempDir dir;
  const std::string path = dir.write("d.svm", "0 1:1 3:2\n1 2:5\n");
  const auto wide = loadLibsvm(path, 6);
  CHECK(wide.dim() == 6);
  CHECK(wide.features(0, 2) == 2.0f);
  CHECK(wide.features.rightCols(3).isZero());
  CHECK(loadLibsvm(path, 3).dim() == 3);

  CHECK_THROWS_AS(loadLibsvm(path, 2), tsnn::FormatError);
  CHECK_THROWS_WITH(loadLibsvm(path, 2), Catch::Contains(path) && Catch::Contains("line 1") &&
                                             Catch::Contains("token '3:2'") &&
                                             Catch::Contains("dim 2"));
  CHECK_THROWS_AS(loadLibsvm(path, -1), tsnn::InvalidArgument);
}

TEST_CASE("loadLibsvm rejects indices that are zero, negative or not increasing",
          "[data][libsvm]") {
  TempDir dir;
  const auto check = [&](const std::string& line, const std::string& token,
                         const std::string& why) {
    const std::string path = dir.write("i.svm", "0 1:1\n" + line + "\n");
    CHECK_THROWS_AS(loadLibsvm(path), tsnn::FormatError);
    CHECK_THROWS_WITH(loadLibsvm(path),
                      Catch::Contains("line 2, token '" + token + "'") && Catch::Contains(why));
  };
  check("1 0:1", "0:1", "1-based");
  check("1 -3:1", "-3:1", "1-based");
  check("1 2:1 2:3", "2:3", "strictly increase");
  check("1 4:1 2:3", "2:3", "previous index 4");
  check("1 a:1", "a:1", "index is not an integer");
  check("1 :1", ":1", "index is not an integer");
  check("1 +2:1", "+2:1", "index is not an integer");
  check("1 99999999999:1", "99999999999:1", "outside");
  check("1 99999999999999999999999:1", "99999999999999999999999:1", "outside");
}

TEST_CASE("loadLibsvm rejects malformed feature tokens and values", "[data][libsvm]") {
  TempDir dir;
  const auto check = [&](const std::string& line, const std::string& token,
                         const std::string& why) {
    const std::string path = dir.write("v.svm", line + "\n");
    CHECK_THROWS_AS(loadLibsvm(path), tsnn::FormatError);
    CHECK_THROWS_WITH(loadLibsvm(path), Catch::StartsWith("tsnn: loadLibsvm(): '" + path) &&
                                            Catch::Contains("line 1, token '" + token + "'") &&
                                            Catch::Contains(why));
  };
  check("1 3", "3", "expected index:value");
  check("1 3:abc", "3:abc", "'abc' is not a number");
  check("1 3:", "3:", "empty");
  check("1 3:nan", "3:nan", "not a finite number");
  check("1 3:1.5.2", "3:1.5.2", "not a number");
  CHECK_THROWS_WITH(loadLibsvm<float>(dir.write("w.svm", "1 1:1e300\n")),
                    Catch::Contains("overflows"));
  CHECK(loadLibsvm<double>(dir.file("w.svm")).features(0, 0) == 1e300);
}

TEST_CASE("loadLibsvm skips a qid token after the label and rejects it elsewhere",
          "[data][libsvm]") {
  TempDir dir;
  const auto ds = loadLibsvm(dir.write("q.svm", "1 qid:3 1:2 2:4\n0 qid:3 2:1\n"));
  REQUIRE(ds.dim() == 2);
  CHECK(ds.features(0, 1) == 4.0f);
  CHECK(ds.labels == std::vector<std::int32_t>{1, 0});
  CHECK_THROWS_WITH(loadLibsvm(dir.write("r.svm", "1 1:2 qid:3\n")),
                    Catch::Contains("token 'qid:3'") && Catch::Contains("directly follow"));
  CHECK_THROWS_WITH(loadLibsvm(dir.write("s.svm", "1 qid:x 1:2\n")),
                    Catch::Contains("token 'qid:x'"));
}

TEST_CASE("loadLibsvm rejects files without samples or features", "[data][libsvm]") {
  TempDir dir;
  CHECK_THROWS_WITH(loadLibsvm(dir.write("e.svm", "")), Catch::Contains("no samples"));
  CHECK_THROWS_WITH(loadLibsvm(dir.write("c.svm", "# only\n\n  \r\n")),
                    Catch::Contains("no samples"));
  const std::string labelsOnly = dir.write("l.svm", "1\n0\n");
  CHECK_THROWS_AS(loadLibsvm(labelsOnly), tsnn::FormatError);
  CHECK_THROWS_WITH(loadLibsvm(labelsOnly), Catch::Contains("no features"));
  CHECK(loadLibsvm(labelsOnly, 4).features.isZero());
}

TEST_CASE("loadLibsvm of a missing file throws IoError naming the path", "[data][libsvm]") {
  TempDir dir;
  const std::string missing = dir.file("missing.svm");
  CHECK_THROWS_AS(loadLibsvm(missing), tsnn::IoError);
  CHECK_THROWS_WITH(loadLibsvm(missing), Catch::StartsWith("tsnn: loadLibsvm()") &&
                                             Catch::Contains(missing) &&
                                             Catch::Contains(std::strerror(ENOENT)));
  CHECK_THROWS_AS(loadLibsvm(dir.dir()), tsnn::IoError);
}
