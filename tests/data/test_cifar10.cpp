// Tests for tsnn/data/cifar10.hpp. Every test writes its own batch files into a fresh temporary
// directory; the real dataset is read only when it is installed.

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/oracle.hpp"
#include "tsnn/data/cifar10.hpp"
#include "tsnn/data/dataset.hpp"

namespace fs = std::filesystem;
using tsnn::data::kCifar10ImageBytes;
using tsnn::data::kCifar10RecordBytes;

namespace {

using tsnn::test::readBytes;
using tsnn::test::TempDir;
using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default
using tsnn::test::writeBytes;

// n images of random pixels with labels (first + i) % 10.
struct Batch {
  std::vector<std::uint8_t> labels;
  std::vector<std::uint8_t> pixels;
};

Batch randomBatch(std::size_t n, std::uint32_t seed, int first = 0) {
  Batch b;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t i = 0; i < n; ++i)
    b.labels.push_back(static_cast<std::uint8_t>((first + i) % 10));
  b.pixels.resize(n * kCifar10ImageBytes);
  for (auto& p : b.pixels) p = static_cast<std::uint8_t>(byte(rng));
  return b;
}

// The bytes of a batch file, built by hand from the documented record layout.
std::vector<std::uint8_t> recordBytes(const Batch& b) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < b.labels.size(); ++i) {
    out.push_back(b.labels[i]);
    out.insert(out.end(), b.pixels.begin() + static_cast<std::ptrdiff_t>(i * kCifar10ImageBytes),
               b.pixels.begin() + static_cast<std::ptrdiff_t>((i + 1) * kCifar10ImageBytes));
  }
  return out;
}

// Checks rows [row0, row0 + batch size) of ds against the batch: labels and pixel / 255.
template <class Scalar>
void checkRows(const tsnn::data::Dataset<Scalar>& ds, Eigen::Index row0, const Batch& b) {
  for (std::size_t i = 0; i < b.labels.size(); ++i) {
    const auto r = row0 + static_cast<Eigen::Index>(i);
    REQUIRE(ds.labels[static_cast<std::size_t>(r)] == b.labels[i]);
    for (std::size_t j = 0; j < kCifar10ImageBytes; ++j) {
      const Scalar expected = static_cast<Scalar>(b.pixels[i * kCifar10ImageBytes + j] / 255.0);
      if (ds.features(r, static_cast<Eigen::Index>(j)) != expected) {
        FAIL_CHECK("row " << r << " feature " << j << ": " << ds.features(r, j)
                          << " != " << expected);
        return;
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("writeCifar10Batch then loadCifar10Batch returns the labels and pixels / 255",
                   "[data][cifar10]", float, double) {
  TempDir dir;
  Batch b = randomBatch(7, testSeed(), 3);
  // A marked pixel pins down the CHW order: image 2, green channel, row 5, column 7.
  b.pixels[2 * kCifar10ImageBytes + 1024 + 5 * 32 + 7] = 255;
  b.pixels[2 * kCifar10ImageBytes + 0] = 0;
  const std::string path = dir.file("data_batch_1.bin");
  tsnn::data::writeCifar10Batch(path, b.labels, b.pixels);

  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(readBytes(path) == recordBytes(b));

  const auto ds = tsnn::data::loadCifar10Batch<TestType>(path);
  REQUIRE(ds.size() == 7);
  REQUIRE(ds.dim() == 3072);
  CHECK(ds.numClasses == 10);
  checkRows(ds, 0, b);
  CHECK(ds.features(2, 1024 + 5 * 32 + 7) == TestType(1));
  CHECK(ds.features(2, 0) == TestType(0));
  CHECK_NOTHROW(ds.validate("test"));
}

TEST_CASE("loadCifar10Batch reads a file written byte by byte from the format description",
          "[data][cifar10]") {
  TempDir dir;
  const Batch b = randomBatch(3, testSeed() + 1);
  const std::string path = dir.file("hand.bin");
  writeBytes(path, recordBytes(b));
  checkRows(tsnn::data::loadCifar10Batch(path), 0, b);
}

TEST_CASE("loadCifar10Batch rejects a size that is not a positive multiple of 3073 bytes",
          "[data][cifar10]") {
  TempDir dir;
  const std::vector<std::uint8_t> bytes = recordBytes(randomBatch(2, testSeed()));

  const std::string cut = dir.file("truncated.bin");
  writeBytes(cut, std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 100));
  CHECK_THROWS_AS(tsnn::data::loadCifar10Batch(cut), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10Batch(cut),
                    Catch::StartsWith("tsnn: loadCifar10Batch()") && Catch::Contains(cut) &&
                        Catch::Contains("6046 bytes") && Catch::Contains("1 whole records") &&
                        Catch::Contains("2973 leftover bytes"));

  const std::string longer = dir.file("extra.bin");
  std::vector<std::uint8_t> extra = bytes;
  extra.push_back(0);
  writeBytes(longer, extra);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10Batch(longer),
                    Catch::Contains("2 whole records and 1 leftover bytes"));

  const std::string empty = dir.file("empty.bin");
  writeBytes(empty, {});
  CHECK_THROWS_AS(tsnn::data::loadCifar10Batch(empty), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10Batch(empty),
                    Catch::Contains(empty) && Catch::Contains("0 whole records"));
}

TEST_CASE("loadCifar10Batch rejects a label byte above 9 and names the record and value",
          "[data][cifar10]") {
  TempDir dir;
  std::vector<std::uint8_t> bytes = recordBytes(randomBatch(4, testSeed()));
  bytes[2 * kCifar10RecordBytes] = 10;  // label of record 2
  const std::string path = dir.file("bad_label.bin");
  writeBytes(path, bytes);
  CHECK_THROWS_AS(tsnn::data::loadCifar10Batch(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10Batch(path), Catch::Contains(path) &&
                                                            Catch::Contains("record 2") &&
                                                            Catch::Contains("label 10"));
  bytes[2 * kCifar10RecordBytes] = 255;
  writeBytes(path, bytes);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10Batch(path), Catch::Contains("label 255"));
}

TEST_CASE("loadCifar10Batch of a missing file or a directory throws IoError naming the path",
          "[data][cifar10]") {
  TempDir dir;
  const std::string missing = dir.file("nope.bin");
  CHECK_THROWS_AS(tsnn::data::loadCifar10Batch(missing), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10Batch(missing),
                    Catch::Contains(missing) && Catch::Contains(std::strerror(ENOENT)));
  CHECK_THROWS_AS(tsnn::data::loadCifar10Batch(dir.path().string()), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10Batch(dir.path().string()),
                    Catch::Contains(dir.path().string()));
}

TEST_CASE("loadCifar10 concatenates the data batches in order and loads the test batch",
          "[data][cifar10]") {
  TempDir dir;
  // Batches 1, 2 and 4 only: loading is lenient about which of batches 2..5 exist.
  const Batch b1 = randomBatch(3, testSeed() + 11, 0);
  const Batch b2 = randomBatch(2, testSeed() + 12, 5);
  const Batch b4 = randomBatch(4, testSeed() + 14, 1);
  const Batch test = randomBatch(5, testSeed() + 20, 7);
  const bool nested = GENERATE(false, true);
  const fs::path folder = nested ? dir.path() / "cifar-10-batches-bin" : dir.path();
  fs::create_directories(folder);
  tsnn::data::writeCifar10Batch((folder / "data_batch_1.bin").string(), b1.labels, b1.pixels);
  tsnn::data::writeCifar10Batch((folder / "data_batch_2.bin").string(), b2.labels, b2.pixels);
  tsnn::data::writeCifar10Batch((folder / "data_batch_4.bin").string(), b4.labels, b4.pixels);
  tsnn::data::writeCifar10Batch((folder / "test_batch.bin").string(), test.labels, test.pixels);

  const auto [tr, te] = tsnn::data::loadCifar10<double>(dir.path().string());
  REQUIRE(tr.size() == 9);
  REQUIRE(te.size() == 5);
  CHECK(tr.dim() == 3072);
  CHECK(tr.numClasses == 10);
  CHECK(te.numClasses == 10);
  checkRows(tr, 0, b1);
  checkRows(tr, 3, b2);
  checkRows(tr, 5, b4);
  checkRows(te, 0, test);
  CHECK_NOTHROW(tr.validate("train"));
}

TEST_CASE("loadCifar10 without data_batch_1.bin or test_batch.bin lists the paths it tried",
          "[data][cifar10]") {
  TempDir dir;
  const Batch b = randomBatch(1, testSeed());
  const std::string root = dir.path().string();
  CHECK_THROWS_AS(tsnn::data::loadCifar10(root), tsnn::IoError);

  SECTION("no test batch") {
    tsnn::data::writeCifar10Batch(dir.file("data_batch_1.bin"), b.labels, b.pixels);
  }
  SECTION("no first data batch") {
    tsnn::data::writeCifar10Batch(dir.file("data_batch_2.bin"), b.labels, b.pixels);
    tsnn::data::writeCifar10Batch(dir.file("test_batch.bin"), b.labels, b.pixels);
  }
  CHECK_THROWS_AS(tsnn::data::loadCifar10(root), tsnn::IoError);
  CHECK_THROWS_WITH(
      tsnn::data::loadCifar10(root),
      Catch::StartsWith("tsnn: loadCifar10()") &&
          Catch::Contains((dir.path() / "data_batch_1.bin").string()) &&
          Catch::Contains((dir.path() / "test_batch.bin").string()) &&
          Catch::Contains((dir.path() / "cifar-10-batches-bin" / "test_batch.bin").string()));
}

TEST_CASE("loadCifar10 reports a corrupt batch with that batch's path", "[data][cifar10]") {
  TempDir dir;
  const Batch b = randomBatch(2, testSeed());
  tsnn::data::writeCifar10Batch(dir.file("data_batch_1.bin"), b.labels, b.pixels);
  tsnn::data::writeCifar10Batch(dir.file("test_batch.bin"), b.labels, b.pixels);
  writeBytes(dir.file("data_batch_3.bin"), {1, 2, 3});
  CHECK_THROWS_AS(tsnn::data::loadCifar10(dir.path().string()), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadCifar10(dir.path().string()),
                    Catch::Contains(dir.file("data_batch_3.bin")) && Catch::Contains("3 bytes"));
}

TEST_CASE("writeCifar10Batch rejects inconsistent input and writes nothing", "[data][cifar10]") {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  const Batch b = randomBatch(2, testSeed());
  std::vector<std::uint8_t> shortPixels(b.pixels.begin(), b.pixels.end() - 1);
  CHECK_THROWS_AS(tsnn::data::writeCifar10Batch(path, b.labels, shortPixels),
                  tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::data::writeCifar10Batch(path, b.labels, shortPixels),
                    Catch::Contains("6144") && Catch::Contains("6143"));
  CHECK_THROWS_AS(tsnn::data::writeCifar10Batch(path, {}, {}), tsnn::InvalidArgument);
  std::vector<std::uint8_t> badLabels = b.labels;
  badLabels[1] = 10;
  CHECK_THROWS_AS(tsnn::data::writeCifar10Batch(path, badLabels, b.pixels), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::data::writeCifar10Batch(path, badLabels, b.pixels),
                    Catch::Contains("label 10 at index 1"));
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK_THROWS_AS(tsnn::data::writeCifar10Batch(dir.file("no/such/dir/x.bin"), b.labels, b.pixels),
                  tsnn::IoError);
}

TEST_CASE("loadCifar10 reads CIFAR-10 when it is installed", "[data][cifar10][cifar10-real]") {
  // TSNN_CIFAR10_DIR names the extracted cifar-10-batches-bin folder (or its parent).
  const char* env = std::getenv("TSNN_CIFAR10_DIR");
  if (env == nullptr) {
    WARN("TSNN_CIFAR10_DIR is not set; skipping the real CIFAR-10 check");
    return;
  }
  const auto [train, test] = tsnn::data::loadCifar10(env);
  CHECK(train.size() == 50000);
  CHECK(test.size() == 10000);
  CHECK(train.dim() == 3072);
  CHECK_NOTHROW(train.validate("cifar10 train"));
  CHECK_NOTHROW(test.validate("cifar10 test"));
  std::vector<int> testCounts(10, 0);
  for (std::int32_t y : test.labels) ++testCounts[static_cast<std::size_t>(y)];
  CHECK(testCounts == std::vector<int>(10, 1000));
  CHECK(train.features.minCoeff() == 0.0f);
  CHECK(train.features.maxCoeff() == 1.0f);
}
