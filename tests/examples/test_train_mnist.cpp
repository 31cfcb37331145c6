// End-to-end runs of the train_mnist example on a small IDX data set that the test writes.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tsnn/data/idx.hpp"
#include "tsnn/detail/random.hpp"

namespace fs = std::filesystem;

#ifdef TSNN_TRAIN_MNIST

namespace {

struct Run {
  int status;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Run runExample(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = std::string("\"") + TSNN_TRAIN_MNIST + "\" " + args + " >\"" +
                          out.string() + "\" 2>\"" + err.string() + "\" </dev/null";
  const int raw = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// Writes a 10-class problem of 8x8 images in which class c lights up row c % 8 (plus noise),
// in the MNIST file layout, gzip-compressed like the Debian package's files.
fs::path makeDataset(const fs::path& dir, int nTrain, int nTest) {
  fs::create_directories(dir);
  tsnn::Rng rng(7);
  auto write = [&](const std::string& prefix, int n) {
    tsnn::data::IdxArray images, labels;
    images.dims = {static_cast<std::uint32_t>(n), 8, 8};
    labels.dims = {static_cast<std::uint32_t>(n)};
    for (int s = 0; s < n; ++s) {
      const int c = static_cast<int>(rng.below(10));
      labels.data.push_back(static_cast<std::uint8_t>(c));
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          int v = static_cast<int>(rng.below(60));
          if (y == c % 8) v += 150;
          if (c >= 8 && x < 4) v += 80;
          images.data.push_back(static_cast<std::uint8_t>(std::min(v, 255)));
        }
    }
    tsnn::data::writeIdx((dir / (prefix + "-images-idx3-ubyte.gz")).string(), images, true);
    tsnn::data::writeIdx((dir / (prefix + "-labels-idx1-ubyte.gz")).string(), labels, true);
  };
  write("train", nTrain);
  write("t10k", nTest);
  return dir;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("tsnn_train_mnist_" + std::to_string(std::random_device{}()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("train_mnist trains on a small data set and writes the metrics CSV", "[examples]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path / "data", 1200, 300);
  const fs::path csv = tmp.path / "metrics.csv";
  const Run r = runExample("--data " + data.string() +
                               " --hidden 64,64 --epsilon 8 --epochs 3 --batch 32 --lr 0.05"
                               " --threads 2 --metrics " + csv.string(),
                           tmp.path);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("epoch   3") != std::string::npos);
  std::ifstream in(csv);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "epoch,train_loss,train_accuracy,test_accuracy,epoch_seconds,nnz");
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
    REQUIRE(row.size() == 6);
    rows.push_back(row);
  }
  REQUIRE(rows.size() == 3);
  for (std::size_t e = 0; e < rows.size(); ++e) {
    CHECK(rows[e][0] == Approx(e + 1));
    CHECK(std::isfinite(rows[e][1]));
    CHECK(rows[e][4] > 0);
    CHECK(rows[e][5] == rows[0][5]);  // SET keeps the number of connections
  }
  // The problem is easy: the sparse network must learn it well beyond chance (10%).
  CHECK(rows.back()[3] > 0.8);
  CHECK(!fs::exists(csv.string() + ".tmp"));
}

TEST_CASE("train_mnist rejects bad flags and bad data with one line and a non-zero exit",
          "[examples]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path / "data", 50, 20);
  const std::string base = "--data " + data.string() + " --epochs 1 --hidden 8 ";
  const std::vector<std::string> bad = {
      "--bogus 1",        "--epochs abc",      "--dropout 1",     "--zeta 1.5",
      "--lr -1",          "--lr nan",          "--hidden 10,,3",  "--hidden 0",
      "--batch 0",        "--epsilon inf",     "--threads -2",    "--momentum 1",
      "--epochs",         "stray",             "--nesterov=yes",  "--alpha -0.1",
      "--trainer magic",  "--workers -1",      "--clip-norm -1",  "--on-nonfinite maybe",
      "--wasap-local 2",  "--seed -5",         "--limit-train x", "--weight-decay 1"};
  for (const auto& args : bad) {
    const Run r = runExample(base + args, tmp.path);
    INFO("args: " << args << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.rfind("train_mnist: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  // Missing directory, truncated file, corrupt file: exit 1, message names the file.
  {
    const Run r = runExample("--data " + (tmp.path / "nowhere").string(), tmp.path);
    CHECK(r.status == 1);
    CHECK(r.err.find("nowhere") != std::string::npos);
  }
  // Corrupt: a valid gzip header followed by garbage.
  {
    const fs::path bad = tmp.path / "corrupt";
    fs::create_directories(bad);
    for (const auto& e : fs::directory_iterator(data)) fs::copy(e.path(), bad / e.path().filename());
    std::ofstream out(bad / "t10k-labels-idx1-ubyte.gz", std::ios::binary | std::ios::trunc);
    const unsigned char junk[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03, 0xde, 0xad, 0xbe,
                                  0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
    out.write(reinterpret_cast<const char*>(junk), sizeof(junk));
    out.close();
    const Run r = runExample("--data " + bad.string() + " --epochs 1 --hidden 8", tmp.path);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("t10k-labels-idx1-ubyte") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  // Wrong dimensions: test images of another size than the training images, and a label file
  // with a different sample count.
  {
    const fs::path bad = tmp.path / "dims";
    fs::create_directories(bad);
    for (const auto& e : fs::directory_iterator(data)) fs::copy(e.path(), bad / e.path().filename());
    tsnn::data::IdxArray images;
    images.dims = {20, 5, 5};
    images.data.assign(500, 7);
    tsnn::data::writeIdx((bad / "t10k-images-idx3-ubyte.gz").string(), images, true);
    Run r = runExample("--data " + bad.string() + " --epochs 1 --hidden 8", tmp.path);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("features") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    tsnn::data::IdxArray labels;
    labels.dims = {7};
    labels.data.assign(7, 1);
    images.dims = {20, 8, 8};
    images.data.assign(20 * 64, 7);
    tsnn::data::writeIdx((bad / "t10k-images-idx3-ubyte.gz").string(), images, true);
    tsnn::data::writeIdx((bad / "t10k-labels-idx1-ubyte.gz").string(), labels, true);
    r = runExample("--data " + bad.string() + " --epochs 1 --hidden 8", tmp.path);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("t10k-labels-idx1-ubyte") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  {
    const fs::path img = data / "train-images-idx3-ubyte.gz";
    fs::resize_file(img, fs::file_size(img) / 2);
    const Run r = runExample(base, tmp.path);
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("train-images-idx3-ubyte") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

TEST_CASE("train_mnist --help lists the flags and exits 0", "[examples]") {
  TempDir tmp;
  const Run r = runExample("--help", tmp.path);
  CHECK(r.status == 0);
  for (const char* flag : {"--data", "--hidden", "--epsilon", "--zeta", "--alpha", "--lr",
                           "--momentum", "--weight-decay", "--dropout", "--batch", "--epochs",
                           "--seed", "--threads", "--metrics"})
    CHECK(r.out.find(flag) != std::string::npos);
}

TEST_CASE("train_mnist runs briefly on the installed Fashion-MNIST", "[examples][fashion]") {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  TempDir tmp;
  const Run r = runExample("--epochs 1 --limit-train 3000 --threads 2", tmp.path);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("60000 train") == std::string::npos);
  CHECK(r.out.find("3000 train, 10000 test, 784 features, 10 classes") != std::string::npos);
}

#else

TEST_CASE("train_mnist end-to-end tests need the examples", "[examples]") {
  WARN("built with TSNN_BUILD_EXAMPLES=OFF: the example is not run");
}

#endif
