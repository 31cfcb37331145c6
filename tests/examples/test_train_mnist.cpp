// End-to-end runs of the train_mnist example on a small IDX data set that the test writes.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "support/programs.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/data/idx.hpp"
#include "tsnn/io/checkpoint.hpp"

namespace fs = std::filesystem;

#ifdef TSNN_TRAIN_MNIST

namespace {

using tsnn::test::numberAfter;
using tsnn::test::Run;
using tsnn::test::TempDir;

Run runExample(const std::string& args, const fs::path& dir) {
  return tsnn::test::runProgram(TSNN_TRAIN_MNIST, args, dir);
}

Run runPredict(const std::string& args, const fs::path& dir) {
  return tsnn::test::runProgram(TSNN_PREDICT, args, dir);
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

// "--zeta 1.5" -> {"zeta", "1.5"}; "--nesterov=yes" -> {"nesterov", ""}; "stray" -> {"stray", ""}.
std::pair<std::string, std::string> flagAndValue(const std::string& args) {
  if (args.rfind("--", 0) != 0) return {args, ""};
  const auto end = args.find_first_of(" =");
  const std::string name = args.substr(2, end == std::string::npos ? end : end - 2);
  const bool spaced = end != std::string::npos && args[end] == ' ';
  return {name, spaced ? args.substr(end + 1) : ""};
}

// The data rows of a metrics CSV with epoch_seconds (a measurement, not a result) blanked.
std::vector<std::vector<std::string>> resultRows(const fs::path& csv) {
  std::vector<std::vector<std::string>> rows;
  const auto lines = tsnn::test::readLines(csv);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    rows.push_back(tsnn::test::splitCells(lines[i]));
    REQUIRE(rows.back().size() == 7);
    rows.back()[4] = "";
  }
  return rows;
}

}  // namespace

TEST_CASE("train_mnist trains on a small data set and writes the metrics CSV", "[examples]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 1200, 300);
  const fs::path csv = tmp.path() / "metrics.csv";
  const Run r = runExample("--data " + data.string() +
                               " --hidden 64,64 --epsilon 8 --epochs 3 --batch 32 --lr 0.05"
                               " --threads 2 --metrics " +
                               csv.string(),
                           tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("epoch   3") != std::string::npos);
  std::ifstream in(csv);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "epoch,train_loss,train_accuracy,test_accuracy,epoch_seconds,nnz,neurons");
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
    REQUIRE(row.size() == 7);
    rows.push_back(row);
  }
  REQUIRE(rows.size() == 3);
  for (std::size_t e = 0; e < rows.size(); ++e) {
    CHECK(rows[e][0] == Approx(e + 1));
    CHECK(std::isfinite(rows[e][1]));
    CHECK(rows[e][4] > 0);
    CHECK(rows[e][5] == rows[0][5]);  // SET keeps the number of connections
    CHECK(rows[e][6] == 128);         // no pruning: 64 + 64 hidden neurons
  }
  // The problem is easy: the sparse network must learn it well beyond chance (10%).
  CHECK(rows.back()[3] > 0.8);
  CHECK(!fs::exists(csv.string() + ".tmp"));
}

TEST_CASE("train_mnist rejects bad flags and bad data with one line and a non-zero exit",
          "[examples]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 50, 20);
  const std::string base = "--data " + data.string() + " --epochs 1 --hidden 8 ";
  const std::vector<std::string> bad = {
      "--bogus 1",       "--epochs abc",   "--dropout 1",     "--zeta 1.5",
      "--lr -1",         "--lr nan",       "--hidden 10,,3",  "--hidden 0",
      "--batch 0",       "--epsilon inf",  "--threads -2",    "--momentum 1",
      "--epochs",        "stray",          "--nesterov=yes",  "--alpha -0.1",
      "--trainer magic", "--workers -1",   "--clip-norm -1",  "--on-nonfinite maybe",
      "--wasap-local 2", "--seed -5",      "--limit-train x", "--weight-decay 1",
      "--init he",       "--limit-test -1"};
  for (const auto& args : bad) {
    const Run r = runExample(base + args, tmp.path());
    INFO("args: " << args << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.rfind("train_mnist: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    // The message names the flag ("--zeta 1.5": zeta) and the value given after a space.
    const auto [name, value] = flagAndValue(args);
    CHECK(r.err.find(name) != std::string::npos);
    CHECK(r.err.find(value) != std::string::npos);
  }
  // Missing directory, truncated file, corrupt file: exit 1, message names the file.
  {
    const Run r = runExample("--data " + (tmp.path() / "nowhere").string(), tmp.path());
    CHECK(r.status == 1);
    CHECK(r.err.find("nowhere") != std::string::npos);
  }
  // Corrupt: a valid gzip header followed by garbage.
  {
    const fs::path bad = tmp.path() / "corrupt";
    fs::create_directories(bad);
    for (const auto& e : fs::directory_iterator(data))
      fs::copy(e.path(), bad / e.path().filename());
    std::ofstream out(bad / "t10k-labels-idx1-ubyte.gz", std::ios::binary | std::ios::trunc);
    const unsigned char junk[] = {0x1f, 0x8b, 0x08, 0x00, 0,    0,    0,    0,    0,    0x03,
                                  0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06};
    out.write(reinterpret_cast<const char*>(junk), sizeof(junk));
    out.close();
    const Run r = runExample("--data " + bad.string() + " --epochs 1 --hidden 8", tmp.path());
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("t10k-labels-idx1-ubyte") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  // Wrong dimensions: test images of another size than the training images, and a label file
  // with a different sample count.
  {
    const fs::path bad = tmp.path() / "dims";
    fs::create_directories(bad);
    for (const auto& e : fs::directory_iterator(data))
      fs::copy(e.path(), bad / e.path().filename());
    tsnn::data::IdxArray images;
    images.dims = {20, 5, 5};
    images.data.assign(500, 7);
    tsnn::data::writeIdx((bad / "t10k-images-idx3-ubyte.gz").string(), images, true);
    Run r = runExample("--data " + bad.string() + " --epochs 1 --hidden 8", tmp.path());
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
    r = runExample("--data " + bad.string() + " --epochs 1 --hidden 8", tmp.path());
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("t10k-labels-idx1-ubyte") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  {
    const fs::path img = data / "train-images-idx3-ubyte.gz";
    fs::resize_file(img, fs::file_size(img) / 2);
    const Run r = runExample(base, tmp.path());
    INFO(r.err);
    CHECK(r.status == 1);
    CHECK(r.err.find("train-images-idx3-ubyte") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

TEST_CASE("train_mnist checks every file it will write before it reads data or trains",
          "[examples]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 50, 20);
  const std::string base = "--data " + data.string() + " --epochs 2 --hidden 8 ";
  const fs::path missing = tmp.path() / "nonexistent" / "dir";
  const fs::path file = tmp.path() / "a_file";
  std::ofstream(file) << "not a directory";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--save", (missing / "x.ckpt").string()},
      {"--save", tmp.path().string()},  // a directory
      {"--metrics", (missing / "m.csv").string()},
      {"--log-json", (missing / "log.jsonl").string()},
      {"--plots", file.string()},
      {"--plots", (file / "sub").string()},
  };
  for (const auto& [flag, path] : bad) {
    const Run r = runExample(base + flag + " " + path, tmp.path());
    INFO(flag << " " << path << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.rfind("train_mnist: " + flag + ": ", 0) == 0);
    CHECK(r.err.find(path) != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.out.find("epoch") == std::string::npos);  // refused before the first epoch
  }
  CHECK(!fs::exists(tmp.path() / "nonexistent"));
  // The checks leave nothing behind: no temporary next to a good destination.
  const Run ok =
      runExample(base + "--quiet --save " + (tmp.path() / "net.ckpt").string(), tmp.path());
  CHECK(ok.status == 0);
  CHECK(fs::exists(tmp.path() / "net.ckpt"));
  CHECK(!fs::exists(tmp.path() / "net.ckpt.tmp"));
}

TEST_CASE(
    "train_mnist --preset reference takes the authors' defaults for the trainer and data "
    "set, and flags given still win",
    "[examples][preset]") {
  TempDir tmp;
  // 300 samples: the preset drops the last partial minibatch, so the set must hold one of 128.
  const fs::path data = makeDataset(tmp.path() / "data", 300, 20);
  // --epochs 0: the settings are what is checked; the data are read and nothing is trained.
  auto settingsOf = [&](const std::string& flags) {
    const fs::path file = tmp.path() / "s.toml";
    const Run r = runExample("--data " + data.string() + " --epochs 0 --quiet --preset reference " +
                                 flags + " --write-config " + file.string(),
                             tmp.path());
    INFO(flags << "\n" << r.out << r.err);
    CHECK(r.status == 0);
    return tsnn::test::slurp(file);
  };
  auto has = [](const std::string& text, const char* line) {
    return text.find(std::string("\n") + line + "\n") != std::string::npos;
  };
  // The sequential script's values.
  std::string t = settingsOf("--trainer sequential");
  INFO(t);
  for (const char* line : {"preset=\"reference\"", "weight-decay=0.0002", "prune-start=211",
                           "prune-every=10", "prune-percentile=20", "importance-pruning=false",
                           "drop-last=true", "scaling=\"standard\"", "hidden=\"1000,1000,1000\"",
                           "epsilon=20", "zeta=0.3", "dropout=0.3", "batch=128", "alpha=0.6"})
    CHECK(has(t, line));
  // The MPI code's values for the parallel trainers.
  t = settingsOf("--trainer data-parallel --threads 2");
  for (const char* line : {"weight-decay=0", "importance-pruning=true", "prune-start=221",
                           "prune-every=20", "prune-percentile=10", "drop-last=true"})
    CHECK(has(t, line));
  // MNIST is divided by 255.
  CHECK(has(settingsOf("--trainer sequential --dataset mnist"), "scaling=\"unit\""));
  CHECK(has(settingsOf("--trainer sequential"), "dataset=\"fashion-mnist\""));
  // A flag given wins over the preset, and a file written with the preset reruns it.
  t = settingsOf("--trainer wasap --threads 2 --weight-decay 0.001 --prune-every 5");
  CHECK(has(t, "weight-decay=0.001"));
  CHECK(has(t, "prune-every=5"));
  CHECK(has(t, "prune-start=221"));
  std::ofstream(tmp.path() / "again.toml") << t;
  CHECK(settingsOf("--config " + (tmp.path() / "again.toml").string()) == t);
  // Without the preset, tsnn's own defaults.
  const Run r = runExample("--data " + data.string() + " --epochs 0 --quiet --write-config " +
                               (tmp.path() / "own.toml").string(),
                           tmp.path());
  REQUIRE(r.status == 0);
  t = tsnn::test::slurp(tmp.path() / "own.toml");
  CHECK(has(t, "preset=\"none\""));
  CHECK(has(t, "prune-start=200"));
  CHECK(has(t, "drop-last=false"));
  CHECK(has(t, "weight-decay=0.0002"));
}

TEST_CASE("train_mnist --scaling unit divides the inputs by 255, and predict does the same",
          "[examples][predict]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 400, 200);
  const fs::path ckpt = tmp.path() / "m.ckpt";
  const std::string base = "--data " + data.string() +
                           " --hidden 32 --epsilon 6 --batch 32 --lr 0.05 --epochs 2 --quiet";
  const fs::path unitCsv = tmp.path() / "unit.csv", standardCsv = tmp.path() / "standard.csv";
  Run r = runExample(
      base + " --scaling unit --save " + ckpt.string() + " --metrics " + unitCsv.string(),
      tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const double unit = numberAfter(r.out, "final test accuracy ");
  CHECK(unit > 0.5);
  r = runPredict("--model " + ckpt.string() + " --images " +
                     (data / "t10k-images-idx3-ubyte.gz").string() + " --labels " +
                     (data / "t10k-labels-idx1-ubyte.gz").string(),
                 tmp.path());
  REQUIRE(r.status == 0);
  CHECK(numberAfter(r.out, "accuracy ") == unit);
  // Standard scaling is another run.
  r = runExample(base + " --metrics " + standardCsv.string(), tmp.path());
  REQUIRE(r.status == 0);
  CHECK(resultRows(unitCsv) != resultRows(standardCsv));
  r = runExample(base + " --scaling minmax", tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("minmax") != std::string::npos);
}

TEST_CASE("train_mnist stopped after epoch 3 and resumed to 6 writes the uninterrupted run's rows",
          "[examples][checkpoint]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 600, 200);
  // Pruning is due after epoch 3, where the first part stops: the resumed run must take it.
  const std::string base = "--data " + data.string() +
                           " --hidden 48,48 --epsilon 6 --batch 32 --lr 0.05 --threads 2"
                           " --importance-pruning --prune-start 3 --prune-every 2"
                           " --prune-percentile 10 --quiet";
  const fs::path whole = tmp.path() / "whole.csv", parts = tmp.path() / "parts.csv";
  const fs::path ckpt = tmp.path() / "run.ckpt";
  Run r = runExample(base + " --epochs 6 --metrics " + whole.string(), tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  r = runExample(base + " --epochs 3 --save " + ckpt.string() + " --metrics " + parts.string(),
                 tmp.path());
  REQUIRE(r.status == 0);
  REQUIRE(fs::exists(ckpt));
  CHECK(tsnn::test::readLines(parts).size() == 4);
  r = runExample(base + " --epochs 6 --resume " + ckpt.string() + " --save " + ckpt.string() +
                     " --metrics " + parts.string(),
                 tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const auto a = tsnn::test::readLines(whole), b = tsnn::test::readLines(parts);
  REQUIRE(a.size() == 7);
  REQUIRE(b.size() == 7);
  CHECK(a[0] == b[0]);
  for (std::size_t i = 1; i < a.size(); ++i) {
    auto x = tsnn::test::splitCells(a[i]), y = tsnn::test::splitCells(b[i]);
    REQUIRE(x.size() == 7);
    REQUIRE(y.size() == 7);
    x[4] = y[4] = "";  // epoch_seconds is a measurement, not a result
    INFO("row " << i << ": " << a[i] << " vs " << b[i]);
    CHECK(x == y);
  }
  // Neurons were pruned after epoch 3. (The pruning after epoch 5 removes only neurons that
  // fell below the threshold since, as pruning does not compound; the rows match either way.)
  CHECK(tsnn::test::splitCells(a[3])[6] != tsnn::test::splitCells(a[2])[6]);

  // Resuming with a flag that changes the run is refused, naming the flag.
  r = runExample(base + " --epochs 6 --lr 0.02 --resume " + ckpt.string(), tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("lr=0.05") != std::string::npos);
  // A corrupt checkpoint is refused with its name; the file saved before is left as it was.
  const std::string saved = tsnn::test::slurp(ckpt);
  {
    std::ofstream out(tmp.path() / "bad.ckpt", std::ios::binary);
    out << saved.substr(0, saved.size() / 2);
  }
  r = runExample(base + " --epochs 6 --resume " + (tmp.path() / "bad.ckpt").string(), tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("bad.ckpt") != std::string::npos);
  CHECK(tsnn::test::slurp(ckpt) == saved);
}

TEST_CASE("train_mnist saves inside epochs, stops on SIGINT with 130, and resumes bit for bit",
          "[examples][checkpoint][signal]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 600, 200);
  const std::string base = "--data " + data.string() +
                           " --hidden 48,48 --epsilon 6 --batch 32 --lr 0.05 --threads 2"
                           " --epochs 150";
  const fs::path whole = tmp.path() / "whole.csv", parts = tmp.path() / "parts.csv";
  const fs::path ckpt = tmp.path() / "run.ckpt";
  Run r = runExample(base + " --quiet --metrics " + whole.string(), tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);

  // Every 7 minibatches (19 per epoch) a checkpoint inside the epoch; SIGINT once the program
  // has reported a checkpoint inside epoch 3. The shell waits for the line, sends the signal
  // and reports the program's exit status.
  const fs::path out = tmp.path() / "interrupted.out", err = tmp.path() / "interrupted.err";
  const fs::path status = tmp.path() / "status";
  const std::string cmd =
      "sh -c '\"" + std::string(TSNN_TRAIN_MNIST) + "\" " + base +
      " --checkpoint-batches 7 --save " + ckpt.string() + " --metrics " + parts.string() + " >" +
      out.string() + " 2>" + err.string() +
      " </dev/null & pid=$!; i=0; while [ $i -lt 3000 ] && ! grep -q " + "\"inside epoch 3\" " +
      out.string() +
      " 2>/dev/null; do sleep 0.01; i=$((i+1)); done; kill -INT $pid; wait $pid; "
      "echo $? >" +
      status.string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string printed = tsnn::test::slurp(out), errors = tsnn::test::slurp(err);
  INFO(printed << errors);
  CHECK(printed.find("saved " + ckpt.string() + " inside epoch 1 after minibatch 7\n") !=
        std::string::npos);
  CHECK(printed.find("inside epoch 1 after minibatch 14\n") != std::string::npos);
  REQUIRE(std::stoi(tsnn::test::slurp(status)) == 130);
  CHECK(errors.find("stopped by signal 2 inside epoch") != std::string::npos);
  CHECK(errors.find("continue with --resume " + ckpt.string()) != std::string::npos);
  const tsnn::CheckpointInfo info = tsnn::readCheckpointInfo(ckpt.string());
  CHECK(info.epoch >= 2);
  CHECK(info.epoch < 150);

  // Resumed inside its epoch, the run ends with the uninterrupted run's rows.
  r = runExample(base + " --quiet --resume " + ckpt.string() + " --metrics " + parts.string(),
                 tmp.path());
  REQUIRE(r.status == 0);
  CHECK(resultRows(parts) == resultRows(whole));

  // Without --save, a signal still stops the run with 130 and says that nothing was saved. Its
  // output goes to new files: with the first run's, the shell could find "epoch   2" in the old
  // output before the background redirection truncated it, and signal the program before its
  // handler was installed (seen once on a loaded machine: status 143).
  const fs::path out2 = tmp.path() / "unsaved.out", err2 = tmp.path() / "unsaved.err";
  const std::string unsaved = "sh -c '\"" + std::string(TSNN_TRAIN_MNIST) + "\" " + base + " >" +
                              out2.string() + " 2>" + err2.string() +
                              " </dev/null & pid=$!; i=0; while [ $i -lt 3000 ] && ! grep -q " +
                              "\"epoch   2 \" " + out2.string() +
                              " 2>/dev/null; do sleep 0.01; i=$((i+1)); done; kill -TERM $pid; "
                              "wait $pid; echo $? >" +
                              status.string() + "'";
  REQUIRE(std::system(unsaved.c_str()) == 0);
  CHECK(std::stoi(tsnn::test::slurp(status)) == 130);
  CHECK(tsnn::test::slurp(err2).find("stopped by signal 15") != std::string::npos);
  CHECK(tsnn::test::slurp(err2).find("nothing saved (no --save)") != std::string::npos);

  // The flags need --save, and refuse the wasap trainer.
  r = runExample(base + " --checkpoint-batches 5", tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("need --save FILE") != std::string::npos);
  r = runExample(base + " --checkpoint-minutes 1 --trainer wasap --save " + ckpt.string(),
                 tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("wasap") != std::string::npos);
}

TEST_CASE("predict reproduces the test accuracy that training reported for the checkpoint",
          "[examples][checkpoint][predict]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 600, 200);
  const fs::path ckpt = tmp.path() / "m.ckpt", pred = tmp.path() / "pred.csv";
  Run r = runExample("--data " + data.string() +
                         " --hidden 32 --epsilon 6 --batch 32 --lr 0.05 --epochs 2 --threads 2"
                         " --save-every 1 --save " +
                         ckpt.string(),
                     tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  // --save-every 1: after each epoch, and once more at the end.
  CHECK(r.out.find("saved " + ckpt.string() + " after epoch 1\n") != std::string::npos);
  CHECK(r.out.find("saved " + ckpt.string() + " after epoch 2\nsaved") != std::string::npos);
  const double trained = numberAfter(r.out, "final test accuracy ");
  REQUIRE(trained > 0.5);
  const std::string images = (data / "t10k-images-idx3-ubyte.gz").string();
  const std::string labels = (data / "t10k-labels-idx1-ubyte.gz").string();
  r = runPredict("--model " + ckpt.string() + " --images " + images + " --labels " + labels +
                     " --predictions " + pred.string(),
                 tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(numberAfter(r.out, "accuracy ") == trained);
  const auto rows = tsnn::test::readLines(pred);
  REQUIRE(rows.size() == 201);
  CHECK(rows[0] == "index,predicted,label");
  // Without labels: predictions only, no accuracy.
  r = runPredict("--model " + ckpt.string() + " --images " + images + " --print", tmp.path());
  REQUIRE(r.status == 0);
  CHECK(r.out.find("accuracy") == std::string::npos);
  CHECK(r.out.find("index,predicted\n0,") != std::string::npos);
  // Usage and data errors.
  r = runPredict("--help", tmp.path());
  CHECK(r.status == 0);
  CHECK(r.out.find("--libsvm") != std::string::npos);
  r = runPredict("--model " + ckpt.string() + " --images " + images + " --csv x.csv", tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("predict: ", 0) == 0);
  CHECK(runPredict("--images " + images, tmp.path()).status == 2);
  CHECK(runPredict("--model " + ckpt.string(), tmp.path()).status == 2);
  CHECK(runPredict("--model " + ckpt.string() + " --labels " + labels, tmp.path()).status == 2);
  r = runPredict("--model " + (tmp.path() / "none.ckpt").string() + " --images " + images,
                 tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("none.ckpt") != std::string::npos);
  r = runPredict("--model " + ckpt.string() + " --csv " + pred.string(), tmp.path());
  CHECK(r.status == 1);  // 2 feature columns for a 64-input model
  CHECK(r.err.find("64") != std::string::npos);
  // A LIBSVM file: one sample of class 3 with two features set; an index beyond the model's
  // 64 inputs is refused with the file's line.
  {
    std::ofstream(tmp.path() / "one.svm") << "3 1:0.5 64:2\n";
    std::ofstream(tmp.path() / "wide.svm") << "3 1:0.5 65:2\n";
  }
  r = runPredict("--model " + ckpt.string() + " --libsvm " + (tmp.path() / "one.svm").string(),
                 tmp.path());
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("1 samples, 64 features") != std::string::npos);
  r = runPredict("--model " + ckpt.string() + " --libsvm " + (tmp.path() / "wide.svm").string(),
                 tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("wide.svm") != std::string::npos);
}

TEST_CASE("train_mnist writes plots, a JSON log and only a final line with --quiet",
          "[examples][plots]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 300, 100);
  const fs::path plots = tmp.path() / "plots" / "nested", json = tmp.path() / "log.jsonl";
  const Run r = runExample("--data " + data.string() +
                               " --hidden 32,32 --epsilon 6 --epochs 3 --batch 32 --quiet"
                               " --regrow gradient --zeta-schedule cosine"
                               " --density-allocation erk --plots " +
                               plots.string() + " --log-json " + json.string(),
                           tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  CHECK(r.out.rfind("final test accuracy ", 0) == 0);
  const auto lines = tsnn::test::readLines(json);
  REQUIRE(lines.size() == 3);
  CHECK(lines[2].rfind("{\"epoch\":3,", 0) == 0);
  for (const char* name : {"learning_curves.png", "connectivity.png"}) {
    INFO(name);
    const std::string png = tsnn::test::slurp(plots / name);
    REQUIRE(png.size() > 33);
    CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
    auto be32 = [&](std::size_t at) {
      return (static_cast<unsigned>(static_cast<unsigned char>(png[at])) << 24) |
             (static_cast<unsigned>(static_cast<unsigned char>(png[at + 1])) << 16) |
             (static_cast<unsigned>(static_cast<unsigned char>(png[at + 2])) << 8) |
             static_cast<unsigned>(static_cast<unsigned char>(png[at + 3]));
    };
    CHECK(be32(16) >= 64);  // width and height from IHDR
    CHECK(be32(20) >= 64);
  }
}

TEST_CASE("train_mnist rejects bad values of the evolution and checkpoint flags", "[examples]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 50, 20);
  const std::string base = "--data " + data.string() + " --epochs 1 --hidden 8 ";
  for (const std::string args :
       {"--regrow sometimes", "--zeta-schedule exp", "--density-allocation uniform",
        "--save-every 2", "--resume x.ckpt --trainer wasap", "--save-every -1"}) {
    const Run r = runExample(base + args, tmp.path());
    INFO("args: " << args << "\nstderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find("--" + flagAndValue(args).first) != std::string::npos);
  }
}

TEST_CASE("train_mnist --help lists the flags and exits 0", "[examples]") {
  TempDir tmp;
  for (const char* help : {"--help", "-h", "--epochs 3 --help"}) {
    const Run r = runExample(help, tmp.path());
    INFO(help << "\n" << r.err);
    CHECK(r.status == 0);
    CHECK(r.err.empty());
    for (const char* flag :
         {"--data", "--hidden", "--epsilon", "--zeta", "--alpha", "--lr", "--momentum",
          "--weight-decay", "--dropout", "--batch", "--epochs", "--seed", "--threads", "--metrics",
          "--resume", "--nesterov", "--config", "--write-config", "--help"})
      CHECK(r.out.find(flag) != std::string::npos);
    CHECK(r.out.find("--epochs N=10") != std::string::npos);   // defaults are shown
    CHECK(r.out.find("--augment-flip") == std::string::npos);  // train_cifar10's only
  }
}

TEST_CASE("train_mnist --write-config saves every setting and --config reruns the same run",
          "[examples][config]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 300, 100);
  const fs::path settings = tmp.path() / "run.toml";
  const fs::path a = tmp.path() / "a.csv", b = tmp.path() / "b.csv", c = tmp.path() / "c.csv";
  // Values other than the defaults, so that a setting the file loses changes the metrics.
  Run r = runExample("--data " + data.string() +
                         " --hidden 32,24 --epsilon 6 --epochs 3 --batch 32 --lr 0.05 --threads 2"
                         " --momentum 0.8 --nesterov --dropout 0.2 --zeta-schedule cosine"
                         " --seed 3 --quiet --metrics " +
                         a.string() + " --write-config " + settings.string(),
                     tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const std::string text = tsnn::test::slurp(settings);
  INFO(text);
  // Every setting, given or default, is in the file; the options about the file itself are not.
  for (const char* line :
       {"\ndata=\"", "\nhidden=\"32,24\"\n", "\nlr=0.05\n", "\nmomentum=0.8\n", "\nnesterov=true\n",
        "\nzeta-schedule=\"cosine\"\n", "\nseed=3\n", "\nweight-decay=0.0002\n", "\nzeta=0.3\n",
        "\ntrainer=\"auto\"\n", "\nimportance-pruning=false\n", "\nprune-start=200\n",
        "\nsave=\"\"\n", "\nquiet=true\n", "\nlimit-train=0\n"})
    CHECK(text.find(line) != std::string::npos);
  CHECK(text.find("write-config") == std::string::npos);
  CHECK(text.find("\nconfig") == std::string::npos);
  CHECK(text.find("\nhelp") == std::string::npos);
  CHECK(!fs::exists(settings.string() + ".tmp"));

  // The file alone (the metrics path overridden) reruns the run row for row.
  r = runExample("--config " + settings.string() + " --metrics " + b.string(), tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const auto rowsA = resultRows(a), rowsB = resultRows(b);
  REQUIRE(rowsA.size() == 3);
  CHECK(rowsB == rowsA);

  // A flag on the command line overrides the file: the first epoch of the same run.
  r = runExample("--config " + settings.string() + " --epochs 1 --metrics " + c.string(),
                 tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const auto rowsC = resultRows(c);
  REQUIRE(rowsC.size() == 1);
  CHECK(rowsC[0] == rowsA[0]);
  // and the file was read: with the defaults (momentum 0.9, no Nesterov, ...) epoch 1 differs.
  r = runExample("--data " + data.string() +
                     " --hidden 32,24 --epsilon 6 --epochs 1 --batch 32 --lr 0.05 --threads 2"
                     " --seed 3 --quiet --metrics " +
                     c.string(),
                 tmp.path());
  REQUIRE(r.status == 0);
  CHECK(resultRows(c)[0] != rowsA[0]);
}

TEST_CASE(
    "train_mnist --write-config writes the file before reading any data, only for a "
    "valid command line",
    "[examples][config]") {
  TempDir tmp;
  const fs::path settings = tmp.path() / "w.toml";
  const std::string nowhere = (tmp.path() / "nowhere").string();
  // Without --lr the file holds the learning rate in effect, the optimiser's default. Numbers
  // are decimal ("09" is 9, not a bad octal number) and a flag given twice takes the last value.
  Run r = runExample(
      "--data " + nowhere + " --batch 09 --epochs 5 --epochs 7 --write-config " + settings.string(),
      tmp.path());
  INFO(r.err);
  CHECK(r.status == 1);  // no data
  CHECK(r.err.find("nowhere") != std::string::npos);
  const std::string text = tsnn::test::slurp(settings);
  CHECK(text.find("\ndata=\"" + nowhere + "\"\n") != std::string::npos);
  CHECK(text.find("\nlr=0.01\n") != std::string::npos);
  CHECK(text.find("\nbatch=9\n") != std::string::npos);
  CHECK(text.find("\nepochs=7\n") != std::string::npos);
  // A bad command line writes nothing and leaves an earlier file as it was.
  r = runExample("--data " + nowhere + " --zeta 2 --write-config " + settings.string(), tmp.path());
  CHECK(r.status == 2);
  CHECK(tsnn::test::slurp(settings) == text);
  r = runExample("--zeta 2 --write-config " + (tmp.path() / "x.toml").string(), tmp.path());
  CHECK(r.status == 2);
  CHECK(!fs::exists(tmp.path() / "x.toml"));
}

TEST_CASE("train_mnist refuses a malformed --config file with exit 2, naming the file",
          "[examples][config]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 50, 20);
  const std::string base = "--data " + data.string() + " --epochs 0 --hidden 8 --config ";
  // A good file: TOML arrays read as comma lists, a flag set to false is off.
  const std::string good = tmp.write("good.toml",
                                     "# a comment\nhidden = [16, 12]\n"
                                     "nesterov = false\nlr = 0.5 # inline\n");
  Run r = runExample("--data " + data.string() + " --epochs 0 --config " + good, tmp.path());
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("16->12") != std::string::npos);
  const std::vector<std::string> bad = {"a line that is not a setting\n",
                                        "bogus = 3\n",
                                        "epochs = 1\nepochs = 2\n",
                                        "epochs = 1\nlr = 0.1\nepochs = 2\n",
                                        "[training]\nepochs = 1\n",
                                        "lr = \"fast\"\n",
                                        "dropout = 1\n",
                                        "nesterov = maybe\n",
                                        "epochs = [1, 2]\n",
                                        "write-config = \"x.toml\"\n",
                                        "hidden = \"8,,8\"\n"};
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const std::string file = tmp.write("bad" + std::to_string(i) + ".toml", bad[i]);
    r = runExample(base + file, tmp.path());
    INFO("file: " << bad[i] << "stderr: " << r.err);
    CHECK(r.status == 2);
    CHECK(r.err.rfind("train_mnist: " + file + ": ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
  r = runExample(base + tmp.file("missing.toml"), tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("missing.toml") != std::string::npos);
  // A bad flag with a good file is the flag's error.
  r = runExample(base + good + " --zeta 7", tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find(good) == std::string::npos);
  CHECK(r.err.find("--zeta") != std::string::npos);
}

TEST_CASE("train_mnist without --lr records the optimiser's default learning rate for resume",
          "[examples][checkpoint]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 100, 20);
  const std::string ckpt = tmp.file("d.ckpt");
  const std::string base = "--data " + data.string() + " --hidden 8 --epochs 1 --threads 2 --quiet";
  Run r = runExample(base + " --save " + ckpt, tmp.path());
  REQUIRE(r.status == 0);
  // --lr 0.01 is the run's learning rate spelt out; another one is a different run.
  r = runExample(base + " --lr 0.01 --resume " + ckpt, tmp.path());
  INFO(r.err);
  CHECK(r.status == 0);
  r = runExample(base + " --lr 0.02 --resume " + ckpt, tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("lr=0.01") != std::string::npos);
}

TEST_CASE("train_mnist --optimizer adam trains with Adam at its own learning rate",
          "[examples][optimizer]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 600, 100);
  const std::string base =
      "--data " + data.string() + " --hidden 32 --epsilon 8 --epochs 2 --batch 32 --threads 2";
  const std::string sgdCsv = tmp.file("sgd.csv"), adamCsv = tmp.file("adam.csv");
  Run r = runExample(base + " --quiet --metrics " + sgdCsv, tmp.path());
  REQUIRE(r.status == 0);
  r = runExample(base + " --quiet --optimizer adam --metrics " + adamCsv, tmp.path());
  INFO(r.err);
  REQUIRE(r.status == 0);
  // Another optimiser is another trajectory from the same start.
  CHECK(resultRows(sgdCsv) != resultRows(adamCsv));
  // Without --lr the settings record Adam's own default, and a resume must repeat the optimiser.
  const std::string toml = tmp.file("adam.toml"), ckpt = tmp.file("adam.ckpt");
  r = runExample(base + " --quiet --optimizer adam --save " + ckpt + " --write-config " + toml,
                 tmp.path());
  REQUIRE(r.status == 0);
  const std::string settings = tsnn::test::slurp(toml);
  CHECK(settings.find("lr=0.001") != std::string::npos);
  CHECK(settings.find("optimizer=\"adam\"") != std::string::npos);
  r = runExample(base + " --quiet --epochs 3 --resume " + ckpt, tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("flags differ from the saved run") != std::string::npos);
  r = runExample(base + " --optimizer rmsprop", tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("--optimizer") != std::string::npos);
}

TEST_CASE("train_mnist prints the memory report first and takes --init and --limit-test",
          "[examples][memory]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 300, 100);
  const fs::path ckpt = tmp.path() / "m.ckpt";
  const Run r = runExample("--data " + data.string() +
                               " --hidden 64,32 --epochs 1 --batch 32 --threads 1 --trainer "
                               "sequential --init he-uniform-sparse --limit-test 40 --save " +
                               ckpt.string(),
                           tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("300 train, 40 test") != std::string::npos);
  const auto report = r.out.find("memory: ");
  REQUIRE(report != std::string::npos);
  CHECK(report < r.out.find("epoch   1"));
  // The sequential trainer at batch 32: z and a of 96 hidden neurons, z and the output of 10
  // classes, and the output layer's delta (the hidden ones overwrite a):
  // (2 * 96 + 2 * 10 + 10) * 4 B = 888 B per sample.
  CHECK(r.out.find("888 B/sample") != std::string::npos);
  for (const char* kind : {"weights", "transpose index", "optimiser state", "total"})
    CHECK(r.out.find(kind, report) != std::string::npos);
  const auto info = tsnn::readCheckpointInfo(ckpt.string());
  CHECK(info.options.init == tsnn::WeightInit::HeUniformSparse);
}

TEST_CASE("train_mnist --bf16 trains in bfloat16, resumes bit for bit and refuses data-parallel",
          "[examples][bf16]") {
  TempDir tmp;
  const fs::path data = makeDataset(tmp.path() / "data", 600, 200);
  const std::string loud =
      "--data " + data.string() + " --hidden 64,32 --epsilon 6 --batch 32 --lr 0.05 --threads 2";
  const std::string base = loud + " --quiet";
  const fs::path whole = tmp.path() / "whole.csv", plain = tmp.path() / "plain.csv";
  const fs::path parts = tmp.path() / "parts.csv", ckpt = tmp.path() / "bf16.ckpt";
  // With two threads and no --trainer, auto picks the sequential trainer for --bf16.
  Run r = runExample(base + " --bf16 --epochs 4 --metrics " + whole.string(), tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  r = runExample(base + " --trainer sequential --epochs 4 --metrics " + plain.string(), tmp.path());
  REQUIRE(r.status == 0);
  // It learns as the float run does: the final test accuracies within 5 points.
  const auto half = resultRows(whole), full = resultRows(plain);
  REQUIRE(half.size() == 4);
  REQUIRE(full.size() == 4);
  const double accHalf = std::stod(half.back()[3]), accFull = std::stod(full.back()[3]);
  INFO("test accuracy " << accHalf << " in bfloat16, " << accFull << " in float");
  CHECK(accHalf > 0.8);
  CHECK(std::abs(accHalf - accFull) <= 0.05);
  CHECK(half != full);  // the storage changed the run

  // The memory report counts 2 bytes per hidden z and a: 2 * 96 * 2 + (64 + 2 * 10 + 10) * 4.
  r = runExample(
      loud + " --bf16 --epochs 2 --save " + ckpt.string() + " --metrics " + parts.string(),
      tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("760 B/sample") != std::string::npos);
  CHECK(tsnn::readCheckpointInfo(ckpt.string()).options.activationStorage ==
        tsnn::ActivationStorage::BFloat16);
  r = runExample(
      base + " --bf16 --epochs 4 --resume " + ckpt.string() + " --metrics " + parts.string(),
      tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(resultRows(parts) == half);

  // Resuming without --bf16 changes the run: refused, naming the flag.
  r = runExample(base + " --trainer sequential --epochs 4 --resume " + ckpt.string(), tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("bf16=1") != std::string::npos);
  r = runExample(base + " --bf16 --trainer data-parallel --epochs 1", tmp.path());
  CHECK(r.status == 2);
  CHECK(r.err.find("--bf16: the data-parallel trainer has no bfloat16 form") != std::string::npos);
}

TEST_CASE("train_mnist runs briefly on the installed Fashion-MNIST", "[examples][fashion]") {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "train-images-idx3-ubyte.gz")) {
    WARN("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  TempDir tmp;
  const Run r = runExample("--epochs 1 --limit-train 3000 --threads 2", tmp.path());
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
