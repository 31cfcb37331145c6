// End-to-end runs of the train_cifar10 example on a small directory of real-format CIFAR-10
// batches (3073-byte records) that the test writes, and of predict on its checkpoint.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "support/programs.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/data/cifar10.hpp"

namespace fs = std::filesystem;

#ifdef TSNN_TRAIN_CIFAR10

namespace {

using tsnn::test::numberAfter;
using tsnn::test::Run;
using tsnn::test::TempDir;

// Class c brightens all of channel c % 3 by 45 (c / 3 + 1) over noise, a signal that flips and
// small shifts keep, so a small network learns it in a few epochs.
void writeBatch(const fs::path& path, int n, tsnn::Rng& rng) {
  std::vector<std::uint8_t> labels, pixels;
  for (int s = 0; s < n; ++s) {
    const int c = static_cast<int>(rng.below(10));
    labels.push_back(static_cast<std::uint8_t>(c));
    for (int ch = 0; ch < 3; ++ch)
      for (int p = 0; p < 32 * 32; ++p) {
        int v = static_cast<int>(rng.below(80));
        if (ch == c % 3) v += 45 * (c / 3 + 1);
        pixels.push_back(static_cast<std::uint8_t>(std::min(v, 255)));
      }
  }
  tsnn::data::writeCifar10Batch(path.string(), labels, pixels);
}

}  // namespace

TEST_CASE("train_cifar10 trains on real-format batches and predict reproduces its accuracy",
          "[examples][cifar10]") {
  TempDir tmp;
  const fs::path data = tmp.path() / "cifar-10-batches-bin";
  fs::create_directories(data);
  tsnn::Rng rng(11);
  writeBatch(data / "data_batch_1.bin", 300, rng);
  writeBatch(data / "data_batch_2.bin", 300, rng);
  writeBatch(data / "test_batch.bin", 200, rng);
  const fs::path ckpt = tmp.path() / "c.ckpt", plots = tmp.path() / "plots";
  // The parent directory is accepted too.
  Run r = tsnn::test::runProgram(TSNN_TRAIN_CIFAR10,
                                 "--data " + tmp.path().string() +
                                     " --hidden 64,32,64 --epsilon 4 --epochs 3 --batch 32"
                                     " --lr 0.02 --threads 2 --augment-flip --augment-shift 2"
                                     " --save " +
                                     ckpt.string() + " --plots " + plots.string(),
                                 tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("600 train, 200 test, 3072 features, 10 classes") != std::string::npos);
  CHECK(r.out.find("airplane") != std::string::npos);  // the confusion matrix names classes
  const double trained = numberAfter(r.out, "final test accuracy ");
  CHECK(trained > 0.5);
  CHECK(fs::file_size(plots / "connectivity.png") > 0);
  r = tsnn::test::runProgram(
      TSNN_PREDICT, "--model " + ckpt.string() + " --cifar " + (data / "test_batch.bin").string(),
      tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(numberAfter(r.out, "accuracy ") == trained);
}

TEST_CASE("train_cifar10 names a missing batch and rejects a bad shift", "[examples][cifar10]") {
  TempDir tmp;
  Run r = tsnn::test::runProgram(TSNN_TRAIN_CIFAR10, "--data " + tmp.path().string(), tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("data_batch_1.bin") != std::string::npos);
  r = tsnn::test::runProgram(TSNN_TRAIN_CIFAR10, "--augment-shift x", tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("--augment-shift: 'x'") != std::string::npos);
  r = tsnn::test::runProgram(TSNN_TRAIN_CIFAR10, "--help", tmp.path());
  CHECK(r.status == 0);
  for (const char* flag : {"--augment-flip", "--augment-shift", "--config", "--write-config"})
    CHECK(r.out.find(flag) != std::string::npos);
  CHECK(r.out.find("--alpha A=0.75") != std::string::npos);  // the CIFAR-10 default
}

#else

TEST_CASE("train_cifar10 end-to-end tests need the examples", "[examples]") {
  WARN("built with TSNN_BUILD_EXAMPLES=OFF: the example is not run");
}

#endif
