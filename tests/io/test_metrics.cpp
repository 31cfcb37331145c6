// Tests for tsnn/io/metrics_csv.hpp and tsnn/io/metrics_json.hpp: exact text for known records,
// NaN handling, and the atomic replacement of an existing file.

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "tsnn/io/metrics_csv.hpp"
#include "tsnn/io/metrics_json.hpp"

namespace {

std::vector<tsnn::EpochRecord> records() {
  tsnn::EpochRecord a;
  a.epoch = 1;
  a.trainLoss = 0.5;
  a.trainAccuracy = 0.75;
  a.testAccuracy = 0.8125;
  a.epochSeconds = 1.5;
  a.evolveSeconds = 0.25;
  a.nnz = 1234;
  a.hiddenNeurons = 300;
  tsnn::EpochRecord b = a;
  b.epoch = 2;
  b.testAccuracy = std::numeric_limits<double>::quiet_NaN();
  b.neuronsRemoved = 30;
  b.hiddenNeurons = 270;
  b.meanStaleness = 1.5;
  return {a, b};
}

}  // namespace

TEST_CASE("The metrics CSV has the documented header and one row per epoch", "[io][metrics]") {
  std::ostringstream os;
  tsnn::writeMetricsCsv(os, records());
  CHECK(os.str() ==
        "epoch,train_loss,train_accuracy,test_accuracy,epoch_seconds,nnz,neurons\n"
        "1,0.5,0.75,0.8125,1.5,1234,300\n"
        "2,0.5,0.75,nan,1.5,1234,270\n");
}

TEST_CASE("The JSON Lines log names every field and writes NaN as null", "[io][metrics]") {
  std::ostringstream os;
  tsnn::writeMetricsJson(os, records());
  CHECK(os.str() ==
        "{\"epoch\":1,\"train_loss\":0.5,\"train_accuracy\":0.75,\"test_accuracy\":0.8125,"
        "\"epoch_seconds\":1.5,\"evolve_seconds\":0.25,\"nnz\":1234,\"neurons\":300,"
        "\"neurons_removed\":0,\"skipped_batches\":0,\"clipped_batches\":0,\"mean_staleness\":0}\n"
        "{\"epoch\":2,\"train_loss\":0.5,\"train_accuracy\":0.75,\"test_accuracy\":null,"
        "\"epoch_seconds\":1.5,\"evolve_seconds\":0.25,\"nnz\":1234,\"neurons\":270,"
        "\"neurons_removed\":30,\"skipped_batches\":0,\"clipped_batches\":0,"
        "\"mean_staleness\":1.5}\n");
}

TEST_CASE("Saving metrics replaces the file whole and leaves no temporary", "[io][metrics]") {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("tsnn_metrics_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  const fs::path csv = dir / "m.csv", json = dir / "m.jsonl";
  auto r = records();
  tsnn::saveMetricsCsv(csv.string(), r);
  tsnn::saveMetricsJson(json.string(), r);
  r.pop_back();
  tsnn::saveMetricsCsv(csv.string(), r);
  tsnn::saveMetricsJson(json.string(), r);
  std::ostringstream c, j;
  tsnn::writeMetricsCsv(c, r);
  tsnn::writeMetricsJson(j, r);
  CHECK(tsnn::test::slurp(csv) == c.str());
  CHECK(tsnn::test::slurp(json) == j.str());
  CHECK(!fs::exists(csv.string() + ".tmp"));
  // An unwritable target throws IoError naming it and leaves the old file as it was.
  CHECK_THROWS_AS(tsnn::saveMetricsCsv((dir / "missing" / "m.csv").string(), r), tsnn::IoError);
  fs::remove_all(dir);
}
