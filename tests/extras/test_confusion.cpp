// Tests for tsnn/io/confusion.hpp: counts, derived ratios, the text table and the errors.

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/extras/confusion.hpp"

using tsnn::ConfusionMatrix;

namespace {

using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}

// Three classes, ten samples:
//            pred 0  pred 1  pred 2
//   true 0      3       1       0
//   true 1      0       2       2
//   true 2      1       0       1
ConfusionMatrix example() {
  ConfusionMatrix m(3);
  const int pairs[][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 1}, {1, 1},
                          {1, 1}, {1, 2}, {1, 2}, {2, 0}, {2, 2}};
  for (const auto& p : pairs) m.add(p[0], p[1]);
  return m;
}

}  // namespace

TEST_CASE("ConfusionMatrix counts each (true, predicted) pair", "[io][confusion]") {
  const ConfusionMatrix m = example();
  CHECK(m.classes() == 3);
  CHECK(m.total() == 10);
  const long long expected[3][3] = {{3, 1, 0}, {0, 2, 2}, {1, 0, 1}};
  for (int t = 0; t < 3; ++t)
    for (int p = 0; p < 3; ++p) {
      INFO("true " << t << " predicted " << p);
      CHECK(m.at(t, p) == expected[t][p]);
    }
  CHECK(m.rowTotal(0) == 4);
  CHECK(m.rowTotal(1) == 4);
  CHECK(m.rowTotal(2) == 2);
  CHECK(m.columnTotal(0) == 4);
  CHECK(m.columnTotal(1) == 3);
  CHECK(m.columnTotal(2) == 3);
}

TEST_CASE("Accuracy, recall and precision follow from the counts", "[io][confusion]") {
  const ConfusionMatrix m = example();
  CHECK(m.accuracy() == Approx(6.0 / 10));
  CHECK(m.recall(0) == Approx(3.0 / 4));
  CHECK(m.recall(1) == Approx(2.0 / 4));
  CHECK(m.recall(2) == Approx(1.0 / 2));
  CHECK(m.precision(0) == Approx(3.0 / 4));
  CHECK(m.precision(1) == Approx(2.0 / 3));
  CHECK(m.precision(2) == Approx(1.0 / 3));

  // Undefined ratios are NaN.
  ConfusionMatrix empty(2);
  CHECK(std::isnan(empty.accuracy()));
  CHECK(std::isnan(empty.recall(0)));
  empty.add(0, 0);
  CHECK(empty.accuracy() == 1.0);
  CHECK(std::isnan(empty.recall(1)));     // class 1 never occurred
  CHECK(std::isnan(empty.precision(1)));  // and was never predicted
}

TEST_CASE("format prints an aligned table with counts, recall, precision and accuracy",
          "[io][confusion]") {
  const ConfusionMatrix m = example();
  const std::string text = m.format();
  INFO(text);
  const auto ls = lines(text);
  REQUIRE(ls.size() == 6);  // header, 3 classes, precision, accuracy
  CHECK(ls[0].find("true\\pred") == 0);
  CHECK(ls[0].find("recall") != std::string::npos);
  // Header and class rows have the same width, so the columns line up.
  CHECK(ls[1].size() == ls[0].size());
  CHECK(ls[2].size() == ls[0].size());
  CHECK(ls[3].size() == ls[0].size());
  // Right-aligned columns: each count ends where its header ends.
  const std::size_t col1End = ls[0].find(" 1 ") + 1;
  CHECK(ls[1][col1End] == '1');  // (0, 1) = 1
  CHECK(ls[2][col1End] == '2');  // (1, 1) = 2
  CHECK(ls[3][col1End] == '0');  // (2, 1) = 0

  CHECK(ls[1].find("0") == 0);
  CHECK(ls[1].find("75.0%") != std::string::npos);
  CHECK(ls[2].find("50.0%") != std::string::npos);
  CHECK(ls[3].find("50.0%") != std::string::npos);
  CHECK(ls[4].find("precision") == 0);
  CHECK(ls[4].find("75.0%") != std::string::npos);
  CHECK(ls[4].find("66.7%") != std::string::npos);
  CHECK(ls[4].find("33.3%") != std::string::npos);
  CHECK(ls[5] == "accuracy 60.0% of 10 samples");
}

TEST_CASE("format uses class names and widens columns for them and for large counts",
          "[io][confusion]") {
  ConfusionMatrix m(2);
  for (int i = 0; i < 1234567; ++i) m.add(0, 0);
  m.add(1, 0);
  const std::string text = m.format({"T-shirt", "a very long name"});
  INFO(text);
  const auto ls = lines(text);
  REQUIRE(ls.size() == 5);
  CHECK(ls[0].find("T-shirt") != std::string::npos);
  CHECK(ls[0].find("a very long name") != std::string::npos);
  CHECK(ls[1].find("T-shirt") == 0);
  CHECK(ls[2].find("a very long name") == 0);
  CHECK(ls[1].find("1234567") != std::string::npos);
  CHECK(ls[1].size() == ls[0].size());
  CHECK(ls[2].size() == ls[0].size());
  CHECK(ls[2].find("0.0%") != std::string::npos);  // recall of class 1
  CHECK(ls[3].find("-") != std::string::npos);     // class 1 never predicted
  CHECK(ls[4].find("of 1234568 samples") != std::string::npos);

  CHECK_THROWS_AS(m.format({"only one"}), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(m.format({"only one"}), Catch::Contains("ConfusionMatrix::format()") &&
                                                Catch::Contains("1 class names for 2 classes"));
}

TEST_CASE("Labels outside [0, classes) are rejected with InvalidArgument naming the value",
          "[io][confusion]") {
  ConfusionMatrix m(10);
  CHECK_THROWS_AS(m.add(10, 0), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(m.add(10, 0), Catch::StartsWith("tsnn: ConfusionMatrix::add()") &&
                                      Catch::Contains("true label 10") &&
                                      Catch::Contains("[0, 10)"));
  CHECK_THROWS_WITH(m.add(0, -1), Catch::Contains("predicted label -1"));
  CHECK(m.total() == 0);  // nothing was counted
  CHECK_THROWS_WITH(m.at(3, 11), Catch::Contains("ConfusionMatrix::at()") &&
                                     Catch::Contains("predicted label 11"));
  CHECK_THROWS_AS(m.recall(-2), tsnn::InvalidArgument);
  CHECK_THROWS_AS(m.precision(10), tsnn::InvalidArgument);
  CHECK_THROWS_AS(m.rowTotal(10), tsnn::InvalidArgument);
  CHECK_THROWS_AS(m.columnTotal(-1), tsnn::InvalidArgument);
  CHECK_THROWS_AS(ConfusionMatrix(0), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(ConfusionMatrix(-3), Catch::Contains("-3 classes"));
}

TEST_CASE("confusionMatrix counts label vectors and checks them first", "[io][confusion]") {
  const int classes = 7;
  std::mt19937 rng(testSeed());
  std::uniform_int_distribution<std::int32_t> label(0, classes - 1);
  std::vector<std::int32_t> truth(500);
  std::vector<std::int32_t> predicted(500);
  for (std::size_t i = 0; i < truth.size(); ++i) {
    truth[i] = label(rng);
    predicted[i] = rng() % 3 == 0 ? label(rng) : truth[i];
  }
  const ConfusionMatrix m = tsnn::confusionMatrix(truth, predicted, classes);
  ConfusionMatrix byHand(classes);
  long long correct = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    byHand.add(truth[i], predicted[i]);
    correct += truth[i] == predicted[i];
  }
  CHECK(m.total() == 500);
  for (int t = 0; t < classes; ++t)
    for (int p = 0; p < classes; ++p) CHECK(m.at(t, p) == byHand.at(t, p));
  CHECK(m.accuracy() == Approx(static_cast<double>(correct) / 500));

  CHECK_THROWS_AS(tsnn::confusionMatrix(truth, {1, 2}, classes), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::confusionMatrix(truth, {1, 2}, classes),
                    Catch::StartsWith("tsnn: confusionMatrix()") &&
                        Catch::Contains("500 true labels but 2 predictions"));
  auto badTruth = truth;
  badTruth[42] = 7;
  CHECK_THROWS_WITH(tsnn::confusionMatrix(badTruth, predicted, classes),
                    Catch::Contains("true label 7 at index 42"));
  auto badPred = predicted;
  badPred[13] = -1;
  CHECK_THROWS_WITH(tsnn::confusionMatrix(truth, badPred, classes),
                    Catch::Contains("predicted label -1 at index 13"));
  CHECK_THROWS_AS(tsnn::confusionMatrix({}, {}, 0), tsnn::InvalidArgument);
  CHECK(tsnn::confusionMatrix({}, {}, 2).total() == 0);
}

TEST_CASE("operator+= merges matrices of the same number of classes", "[io][confusion]") {
  ConfusionMatrix a = example();
  const ConfusionMatrix b = example();
  a += b;
  CHECK(a.total() == 20);
  CHECK(a.at(0, 0) == 6);
  CHECK(a.at(1, 2) == 4);
  CHECK(a.accuracy() == Approx(0.6));
  ConfusionMatrix other(4);
  CHECK_THROWS_AS(a += other, tsnn::InvalidArgument);
  CHECK(a.total() == 20);
}
