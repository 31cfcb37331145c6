// Tests for tsnn/data/idx.hpp (and the Dataset invariants of tsnn/data/dataset.hpp, which the
// loaders produce). Every test writes its own files into a fresh temporary directory.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#if defined(TSNN_HAS_ZLIB)
#include <zlib.h>
#endif

#include "support/files.hpp"
#include "support/oracle.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/data/idx.hpp"

namespace fs = std::filesystem;
using tsnn::data::IdxArray;

namespace {

using tsnn::test::readBytes;
using tsnn::test::TempDir;
using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default
using tsnn::test::writeBytes;

// The compression modes this build can write: gzip only with zlib support.
const std::vector<int>& gzipModes() {
#if defined(TSNN_HAS_ZLIB)
  static const std::vector<int> modes = {0, 1};
#else
  static const std::vector<int> modes = {0};
#endif
  return modes;
}

// The raw bytes of an unsigned-byte IDX file with the given dims and data.
std::vector<std::uint8_t> idxBytes(const std::vector<std::uint32_t>& dims,
                                   const std::vector<std::uint8_t>& data,
                                   std::uint8_t type = 0x08) {
  std::vector<std::uint8_t> b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) {
    b.push_back(static_cast<std::uint8_t>(d >> 24));
    b.push_back(static_cast<std::uint8_t>(d >> 16));
    b.push_back(static_cast<std::uint8_t>(d >> 8));
    b.push_back(static_cast<std::uint8_t>(d));
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

IdxArray randomArray(std::vector<std::uint32_t> dims, std::uint32_t seed) {
  IdxArray a;
  a.dims = std::move(dims);
  std::size_t n = 1;
  for (std::uint32_t d : a.dims) n *= d;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  a.data.resize(n);
  for (auto& v : a.data) v = static_cast<std::uint8_t>(byte(rng));
  return a;
}

// A synthetic MNIST-like split: n samples of rows x cols pixels, labels i % 10.
struct Split {
  IdxArray images;
  IdxArray labels;
};

Split makeSplit(std::uint32_t n, std::uint32_t rows, std::uint32_t cols, std::uint32_t seed) {
  Split s;
  s.images = randomArray({n, rows, cols}, seed);
  s.labels.dims = {n};
  for (std::uint32_t i = 0; i < n; ++i) s.labels.data.push_back(static_cast<std::uint8_t>(i % 10));
  return s;
}

template <class Scalar>
void checkMatches(const tsnn::data::Dataset<Scalar>& ds, const Split& s) {
  const std::uint32_t n = s.images.dims[0];
  const std::uint32_t d = s.images.dims[1] * s.images.dims[2];
  REQUIRE(ds.size() == n);
  REQUIRE(ds.dim() == d);
  CHECK(ds.numClasses == 10);
  REQUIRE(ds.labels.size() == n);
  for (std::uint32_t i = 0; i < n; ++i) {
    CHECK(ds.labels[i] == s.labels.data[i]);
    for (std::uint32_t j = 0; j < d; ++j) {
      CHECK(ds.features(i, j) == static_cast<Scalar>(s.images.data[i * d + j]));
    }
  }
  CHECK_NOTHROW(ds.validate("checkMatches"));
}

}  // namespace

TEST_CASE("writeIdx then readIdx returns the same dimensions and bytes, raw and gzip",
          "[data][idx]") {
  TempDir dir;
  const bool gzip = GENERATE(from_range(gzipModes())) != 0;
  const auto dims = GENERATE(std::vector<std::uint32_t>{7}, std::vector<std::uint32_t>{5, 4, 3},
                             std::vector<std::uint32_t>{3, 300, 2, 2});
  const IdxArray a = randomArray(dims, testSeed());
  const std::string path = dir.file(gzip ? "a.idx.gz" : "a.idx");
  tsnn::data::writeIdx(path, a, gzip);

  CHECK_FALSE(fs::exists(path + ".tmp"));
  const std::vector<std::uint8_t> bytes = readBytes(path);
  REQUIRE(bytes.size() >= 2);
  if (gzip) {
    CHECK(bytes[0] == 0x1F);
    CHECK(bytes[1] == 0x8B);
  } else {
    CHECK(bytes == idxBytes(a.dims, a.data));
  }

  const IdxArray b = tsnn::data::readIdx(path);
  CHECK(b.dims == a.dims);
  CHECK(b.data == a.data);
}

#if defined(TSNN_HAS_ZLIB)
TEST_CASE("readIdx detects gzip by content, not by file name", "[data][idx]") {
  TempDir dir;
  const IdxArray a = randomArray({4, 2}, testSeed());
  tsnn::data::writeIdx(dir.file("compressed.idx"), a, true);  // gzip without a .gz name
  tsnn::data::writeIdx(dir.file("plain.gz"), a, false);       // raw with a .gz name
  CHECK(tsnn::data::readIdx(dir.file("compressed.idx")).data == a.data);
  CHECK(tsnn::data::readIdx(dir.file("plain.gz")).data == a.data);
}

#else
TEST_CASE("Without zlib, gzip files give an IoError saying zlib support was not compiled in",
          "[data][idx][gzip]") {
  TempDir dir;
  const std::string path = dir.file("a.gz");
  writeBytes(path, {0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03, 0x03, 0x00});
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path),
                    Catch::Contains(path) && Catch::Contains("without zlib support"));
  const IdxArray a = randomArray({2}, testSeed());
  CHECK_THROWS_AS(tsnn::data::writeIdx(dir.file("b.gz"), a, true), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::writeIdx(dir.file("b.gz"), a, true),
                    Catch::Contains("without zlib support"));
}
#endif

TEST_CASE("writeIdx replaces an existing file and leaves no temporary file", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("x.idx");
  writeBytes(path, {1, 2, 3});
  const IdxArray a = randomArray({3, 3}, testSeed());
  tsnn::data::writeIdx(path, a, false);
  CHECK(tsnn::data::readIdx(path).data == a.data);
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("writeIdx rejects arrays that break the IdxArray invariant", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("bad.idx");
  IdxArray noDims;
  CHECK_THROWS_AS(tsnn::data::writeIdx(path, noDims, false), tsnn::InvalidArgument);

  IdxArray zeroDim;
  zeroDim.dims = {3, 0};
  CHECK_THROWS_AS(tsnn::data::writeIdx(path, zeroDim, false), tsnn::InvalidArgument);

  IdxArray wrongSize;
  wrongSize.dims = {2, 3};
  wrongSize.data.resize(5);
  CHECK_THROWS_AS(tsnn::data::writeIdx(path, wrongSize, false), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(
      tsnn::data::writeIdx(path, wrongSize, false),
      Catch::Contains("writeIdx()") && Catch::Contains("6 elements") && Catch::Contains("5 bytes"));

  IdxArray tooBig;
  tooBig.dims = {65536, 65536};
  CHECK_THROWS_AS(tsnn::data::writeIdx(path, tooBig, false), tsnn::InvalidArgument);
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("writeIdx into a missing directory throws IoError and leaves nothing behind",
          "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/x.idx");
  const IdxArray a = randomArray({2, 2}, testSeed());
  const bool gzip = GENERATE(from_range(gzipModes())) != 0;
  CHECK_THROWS_AS(tsnn::data::writeIdx(path, a, gzip), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::writeIdx(path, a, gzip), Catch::Contains(path + ".tmp"));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("readIdx of a missing file throws IoError naming the path", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("does-not-exist.idx");
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path),
                    Catch::StartsWith("tsnn: readIdx()") && Catch::Contains(path));
}

TEST_CASE("readIdx of a directory throws IoError naming the path", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.path().string();
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path), Catch::Contains(path));
}

TEST_CASE("readIdx of an empty file throws FormatError naming the path", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("empty.idx");
  writeBytes(path, {});
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path),
                    Catch::Contains(path) && Catch::Contains("file has 0 bytes"));
}

TEST_CASE("readIdx rejects a truncated header", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("short-header.idx");
  // Magic says 3 dimensions (12 bytes of sizes) but only 6 bytes follow.
  writeBytes(path, {0, 0, 0x08, 3, 0, 0, 0, 5, 0, 0});
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path), Catch::Contains(path) &&
                                                   Catch::Contains("expected 12") &&
                                                   Catch::Contains("file has 6"));

  const std::string magicOnly = dir.file("three-bytes.idx");
  writeBytes(magicOnly, {0, 0, 0x08});
  CHECK_THROWS_AS(tsnn::data::readIdx(magicOnly), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(magicOnly),
                    Catch::Contains(magicOnly) && Catch::Contains("file has 3 bytes"));
}

TEST_CASE("readIdx rejects truncated data with the expected and actual byte counts",
          "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("short-data.idx");
  std::vector<std::uint8_t> bytes = idxBytes({5, 4, 3}, std::vector<std::uint8_t>(60, 7));
  bytes.resize(bytes.size() - 10);
  writeBytes(path, bytes);
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(
      tsnn::data::readIdx(path),
      Catch::Contains(path) && Catch::Contains("expected 60 data bytes, file has 50"));
}

TEST_CASE("readIdx rejects a wrong magic number", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("wrong-magic.idx");
  std::vector<std::uint8_t> bytes = idxBytes({4}, {1, 2, 3, 4});
  bytes[0] = 0x12;
  bytes[1] = 0x34;
  writeBytes(path, bytes);
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path),
                    Catch::Contains(path) && Catch::Contains("found 0x12 0x34"));
}

TEST_CASE("readIdx rejects an unsupported element type and names the type byte", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("float.idx");
  writeBytes(path, idxBytes({2}, std::vector<std::uint8_t>(8, 0), 0x0D));
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path), Catch::Contains(path) && Catch::Contains("0x0d"));
}

TEST_CASE("readIdx rejects zero dimensions and element counts above 2^31", "[data][idx]") {
  TempDir dir;
  const std::string noDims = dir.file("no-dims.idx");
  writeBytes(noDims, {0, 0, 0x08, 0});
  CHECK_THROWS_AS(tsnn::data::readIdx(noDims), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(noDims), Catch::Contains(noDims));

  const std::string zero = dir.file("zero-dim.idx");
  writeBytes(zero, idxBytes({3, 0}, {}));
  CHECK_THROWS_AS(tsnn::data::readIdx(zero), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(zero), Catch::Contains(zero) && Catch::Contains("size 0"));

  // 2^32-1 cubed overflows 64 bits if multiplied naively; must be refused, not wrapped.
  const std::string huge = dir.file("huge.idx");
  writeBytes(huge, idxBytes({0xFFFFFFFFU, 0xFFFFFFFFU, 0xFFFFFFFFU}, {1, 2, 3}));
  CHECK_THROWS_AS(tsnn::data::readIdx(huge), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(huge), Catch::Contains(huge) && Catch::Contains("2^31"));

  // 2^31 + 1 elements: just over the limit.
  const std::string over = dir.file("over.idx");
  writeBytes(over, idxBytes({0x80000001U}, {1, 2, 3}));
  CHECK_THROWS_AS(tsnn::data::readIdx(over), tsnn::FormatError);

  // A header that declares a large but allowed size in a tiny file is reported as truncated,
  // not as an allocation failure.
  const std::string big = dir.file("big.idx");
  writeBytes(big, idxBytes({0x80000000U}, std::vector<std::uint8_t>(1000, 1)));
  CHECK_THROWS_AS(tsnn::data::readIdx(big), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(big),
                    Catch::Contains("expected 2147483648 data bytes, file has 1000"));
}

TEST_CASE("readIdx rejects trailing bytes after the data", "[data][idx]") {
  TempDir dir;
  const std::string path = dir.file("trailing.idx");
  std::vector<std::uint8_t> bytes = idxBytes({2, 2}, {1, 2, 3, 4});
  bytes.insert(bytes.end(), {9, 9, 9});
  writeBytes(path, bytes);
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path),
                    Catch::Contains(path) && Catch::Contains("3 trailing bytes"));
}

#if defined(TSNN_HAS_ZLIB)
TEST_CASE("readIdx rejects a corrupt gzip stream", "[data][idx][gzip]") {
  TempDir dir;
  const std::string path = dir.file("corrupt.gz");
  // A valid 10-byte gzip member header (ID1 ID2, CM = deflate, no flags, mtime 0, XFL 0,
  // OS = Unix), then bytes that are not a deflate stream: 0xFF starts a block of the reserved
  // type 3, which inflate rejects.
  std::vector<std::uint8_t> bytes = {0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03};
  bytes.insert(bytes.end(), 64, 0xFF);
  writeBytes(path, bytes);
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path), Catch::Contains(path) && Catch::Contains("gzip"));
}

TEST_CASE("readIdx rejects a gzip stream cut short", "[data][idx][gzip]") {
  TempDir dir;
  const IdxArray a = randomArray({20, 10, 10}, testSeed());
  const std::string full = dir.file("full.gz");
  tsnn::data::writeIdx(full, a, true);
  const std::vector<std::uint8_t> bytes = readBytes(full);

  // Cut inside the deflate data: the IDX data comes up short.
  const std::string half = dir.file("half.gz");
  writeBytes(half, std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  CHECK_THROWS_AS(tsnn::data::readIdx(half), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(half),
                    Catch::Contains(half) && Catch::Contains("expected 2000 data bytes"));

  // Drop only the 8-byte trailer (CRC-32, length): all data arrives but cannot be verified.
  const std::string noTrailer = dir.file("no-trailer.gz");
  writeBytes(noTrailer, std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 8));
  CHECK_THROWS_AS(tsnn::data::readIdx(noTrailer), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(noTrailer), Catch::Contains(noTrailer));

  // Just the two gzip magic bytes.
  const std::string magic = dir.file("magic-only.gz");
  writeBytes(magic, {0x1F, 0x8B});
  CHECK_THROWS_AS(tsnn::data::readIdx(magic), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(magic), Catch::Contains(magic));
}

TEST_CASE("readIdx rejects a gzip stream whose CRC does not match", "[data][idx][gzip]") {
  TempDir dir;
  const IdxArray a = randomArray({50}, testSeed());
  const std::string path = dir.file("crc.gz");
  tsnn::data::writeIdx(path, a, true);
  std::vector<std::uint8_t> bytes = readBytes(path);
  bytes[bytes.size() - 8] ^= 0xFF;  // first byte of the CRC-32 trailer
  writeBytes(path, bytes);
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path), Catch::Contains(path));
}

TEST_CASE("readIdx rejects bytes that are not gzip data after the compressed stream",
          "[data][idx][gzip]") {
  // zlib's gzread skips such bytes silently; the reader must not (found by fuzzing).
  TempDir dir;
  const IdxArray a = randomArray({40}, testSeed());
  const std::string path = dir.file("junk.gz");
  tsnn::data::writeIdx(path, a, true);
  std::vector<std::uint8_t> bytes = readBytes(path);
  for (const char c : std::string("garbage")) bytes.push_back(static_cast<std::uint8_t>(c));
  writeBytes(path, bytes);
  CHECK_THROWS_AS(tsnn::data::readIdx(path), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx(path),
                    Catch::Contains(path) && Catch::Contains("follow the compressed data"));
}

TEST_CASE("readIdx reads concatenated gzip members as one stream, as gzip -d does",
          "[data][idx][gzip]") {
  // An IDX file compressed in two pieces: header + first half, then the second half.
  TempDir dir;
  const IdxArray a = randomArray({64}, testSeed());
  tsnn::data::writeIdx(dir.file("whole"), a, false);
  const std::vector<std::uint8_t> raw = readBytes(dir.file("whole"));
  const std::size_t cut = raw.size() / 2;
  auto gzipOf = [&](const std::vector<std::uint8_t>& part, const std::string& name) {
    // writeIdx compresses what it writes; a 1-D IDX array of the raw bytes would add a header,
    // so compress with zlib directly.
    gzFile gz = gzopen(dir.file(name).c_str(), "wb");
    REQUIRE(gz != nullptr);
    REQUIRE(gzwrite(gz, part.data(), static_cast<unsigned>(part.size())) ==
            static_cast<int>(part.size()));
    REQUIRE(gzclose(gz) == Z_OK);
    return readBytes(dir.file(name));
  };
  std::vector<std::uint8_t> both =
      gzipOf(std::vector<std::uint8_t>(raw.begin(), raw.begin() + static_cast<long>(cut)), "p1");
  const std::vector<std::uint8_t> second =
      gzipOf(std::vector<std::uint8_t>(raw.begin() + static_cast<long>(cut), raw.end()), "p2");
  both.insert(both.end(), second.begin(), second.end());
  writeBytes(dir.file("two.gz"), both);
  const IdxArray b = tsnn::data::readIdx(dir.file("two.gz"));
  CHECK(b.dims == a.dims);
  CHECK(b.data == a.data);
}
#endif

TEMPLATE_TEST_CASE("loadIdxPair converts 3-D images and labels into a Dataset", "[data][idx]",
                   float, double) {
  TempDir dir;
  const Split s = makeSplit(5, 4, 3, testSeed());
  const bool gzip = GENERATE(from_range(gzipModes())) != 0;
  tsnn::data::writeIdx(dir.file("images"), s.images, gzip);
  tsnn::data::writeIdx(dir.file("labels"), s.labels, gzip);
  const auto ds = tsnn::data::loadIdxPair<TestType>(dir.file("images"), dir.file("labels"));
  checkMatches(ds, s);
}

TEST_CASE("loadIdxPair accepts 2-D images as N x features", "[data][idx]") {
  TempDir dir;
  IdxArray images = randomArray({6, 5}, testSeed());
  IdxArray labels;
  labels.dims = {6};
  labels.data = {0, 1, 2, 0, 1, 2};
  tsnn::data::writeIdx(dir.file("images"), images, false);
  tsnn::data::writeIdx(dir.file("labels"), labels, false);
  const auto ds = tsnn::data::loadIdxPair(dir.file("images"), dir.file("labels"), 3);
  REQUIRE(ds.size() == 6);
  REQUIRE(ds.dim() == 5);
  CHECK(ds.numClasses == 3);
  CHECK(ds.features(4, 3) == static_cast<float>(images.data[4 * 5 + 3]));
  CHECK(ds.labels == std::vector<std::int32_t>{0, 1, 2, 0, 1, 2});
}

TEST_CASE("loadIdxPair rejects label counts that differ from the image count", "[data][idx]") {
  TempDir dir;
  const Split s = makeSplit(5, 4, 3, testSeed());
  IdxArray labels;
  labels.dims = {4};
  labels.data = {0, 1, 2, 3};
  const std::string imagesPath = dir.file("images");
  const std::string labelsPath = dir.file("labels");
  tsnn::data::writeIdx(imagesPath, s.images, false);
  tsnn::data::writeIdx(labelsPath, labels, false);
  CHECK_THROWS_AS(tsnn::data::loadIdxPair(imagesPath, labelsPath), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadIdxPair(imagesPath, labelsPath),
                    Catch::Contains(imagesPath) && Catch::Contains(labelsPath) &&
                        Catch::Contains("5 samples") && Catch::Contains("4 labels"));
}

TEST_CASE("loadIdxPair rejects labels at or above numClasses", "[data][idx]") {
  TempDir dir;
  Split s = makeSplit(5, 4, 3, testSeed());
  s.labels.data[3] = 10;
  const std::string imagesPath = dir.file("images");
  const std::string labelsPath = dir.file("labels");
  tsnn::data::writeIdx(imagesPath, s.images, false);
  tsnn::data::writeIdx(labelsPath, s.labels, false);
  CHECK_THROWS_AS(tsnn::data::loadIdxPair(imagesPath, labelsPath, 10), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadIdxPair(imagesPath, labelsPath, 10),
                    Catch::Contains(labelsPath) && Catch::Contains("label 10 at index 3"));
  // With 11 classes the same file is fine.
  CHECK_NOTHROW(tsnn::data::loadIdxPair(imagesPath, labelsPath, 11));
  CHECK_THROWS_AS(tsnn::data::loadIdxPair(imagesPath, labelsPath, 0), tsnn::InvalidArgument);
}

TEST_CASE("loadIdxPair rejects images and labels of the wrong rank", "[data][idx]") {
  TempDir dir;
  const Split s = makeSplit(5, 4, 3, testSeed());
  const std::string imagesPath = dir.file("images");
  const std::string labelsPath = dir.file("labels");
  tsnn::data::writeIdx(imagesPath, s.images, false);
  tsnn::data::writeIdx(labelsPath, s.labels, false);
  // Swapped arguments: 1-D "images", 3-D "labels".
  CHECK_THROWS_AS(tsnn::data::loadIdxPair(labelsPath, imagesPath), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadIdxPair(labelsPath, imagesPath), Catch::Contains(labelsPath));
  CHECK_THROWS_AS(tsnn::data::loadIdxPair(imagesPath, imagesPath), tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::loadIdxPair(imagesPath, imagesPath),
                    Catch::Contains("expected 1 (N labels)"));
}

TEST_CASE("loadMnist reads a synthetic directory with .gz names and with raw names",
          "[data][idx]") {
  TempDir dir;
  const Split train = makeSplit(5, 4, 3, testSeed());
  const Split test = makeSplit(3, 4, 3, testSeed() + 1);
  const bool gzip = GENERATE(from_range(gzipModes())) != 0;
  const std::string suffix = gzip ? ".gz" : "";
  tsnn::data::writeIdx(dir.file("train-images-idx3-ubyte" + suffix), train.images, gzip);
  tsnn::data::writeIdx(dir.file("train-labels-idx1-ubyte" + suffix), train.labels, gzip);
  tsnn::data::writeIdx(dir.file("t10k-images-idx3-ubyte" + suffix), test.images, gzip);
  tsnn::data::writeIdx(dir.file("t10k-labels-idx1-ubyte" + suffix), test.labels, gzip);

  const auto [trainSet, testSet] = tsnn::data::loadMnist(dir.path().string());
  checkMatches(trainSet, train);
  checkMatches(testSet, test);
}

#if defined(TSNN_HAS_ZLIB)
TEST_CASE("loadMnist accepts a mix of raw and .gz names and prefers the raw file", "[data][idx]") {
  TempDir dir;
  const Split train = makeSplit(5, 4, 3, testSeed());
  const Split test = makeSplit(3, 4, 3, testSeed() + 1);
  tsnn::data::writeIdx(dir.file("train-images-idx3-ubyte"), train.images, false);
  tsnn::data::writeIdx(dir.file("train-labels-idx1-ubyte.gz"), train.labels, true);
  tsnn::data::writeIdx(dir.file("t10k-images-idx3-ubyte.gz"), test.images, true);
  tsnn::data::writeIdx(dir.file("t10k-labels-idx1-ubyte"), test.labels, false);
  // A broken .gz next to a good raw file must not be read.
  writeBytes(dir.file("train-images-idx3-ubyte.gz"), {1, 2, 3});

  const auto data = tsnn::data::loadMnist<double>(dir.path().string());
  checkMatches(data.first, train);
  checkMatches(data.second, test);
}

#endif

TEST_CASE("loadMnist of a directory without the files throws IoError listing the names tried",
          "[data][idx]") {
  TempDir dir;
  const std::string d = dir.path().string();
  CHECK_THROWS_AS(tsnn::data::loadMnist(d), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::data::loadMnist(d),
                    Catch::Contains("loadMnist()") && Catch::Contains("train-images-idx3-ubyte'") &&
                        Catch::Contains("train-images-idx3-ubyte.gz'") && Catch::Contains(d));
}

TEST_CASE("Dataset::validate accepts a consistent dataset and names the caller otherwise",
          "[data][dataset]") {
  tsnn::data::Dataset<float> ds;
  ds.features.resize(3, 2);
  ds.features << 1, 2, 3, 4, 5, 6;
  ds.labels = {0, 1, 2};
  ds.numClasses = 3;
  CHECK(ds.size() == 3);
  CHECK(ds.dim() == 2);
  CHECK_NOTHROW(ds.validate("test"));

  SECTION("label count differs from the number of rows") {
    ds.labels.push_back(0);
    CHECK_THROWS_AS(ds.validate("myCaller"), tsnn::InvalidArgument);
    CHECK_THROWS_WITH(ds.validate("myCaller"), Catch::Contains("myCaller") &&
                                                   Catch::Contains("3 feature rows") &&
                                                   Catch::Contains("4 labels"));
  }
  SECTION("label out of range") {
    ds.labels[1] = 3;
    CHECK_THROWS_AS(ds.validate("myCaller"), tsnn::InvalidArgument);
    CHECK_THROWS_WITH(ds.validate("myCaller"),
                      Catch::Contains("myCaller") && Catch::Contains("label 3 at index 1"));
    ds.labels[1] = -1;
    CHECK_THROWS_AS(ds.validate("myCaller"), tsnn::InvalidArgument);
  }
  SECTION("non-finite feature") {
    ds.features(2, 1) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(ds.validate("myCaller"), tsnn::InvalidArgument);
    CHECK_THROWS_WITH(ds.validate("myCaller"),
                      Catch::Contains("myCaller") && Catch::Contains("row 2") &&
                          Catch::Contains("column 1") && Catch::Contains("nan"));
  }
  SECTION("no classes") {
    ds.numClasses = 0;
    CHECK_THROWS_AS(ds.validate("myCaller"), tsnn::InvalidArgument);
  }
}

TEST_CASE("loadMnist reads Fashion-MNIST when it is installed", "[data][idx][fashion-mnist]") {
  // Debian's dataset-fashion-mnist installs the gzip files here; TSNN_FASHION_MNIST_DIR overrides.
  const char* env = std::getenv("TSNN_FASHION_MNIST_DIR");
  const std::string dir = env != nullptr ? env : "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte")) {
#if defined(TSNN_HAS_ZLIB)
    const bool found = fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz");
#else
    const bool found = false;  // the .gz files cannot be read without zlib
#endif
    if (!found) {
      WARN("Fashion-MNIST not found in " << dir << "; skipping");
      return;
    }
  }
  const auto [train, test] = tsnn::data::loadMnist(dir);
  CHECK(train.size() == 60000);
  CHECK(test.size() == 10000);
  CHECK(train.dim() == 784);
  CHECK(test.dim() == 784);
  CHECK(train.numClasses == 10);
  CHECK(test.numClasses == 10);
  CHECK_NOTHROW(train.validate("fashion-mnist train"));
  CHECK_NOTHROW(test.validate("fashion-mnist test"));
  // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
  std::vector<int> trainCounts(10, 0);
  std::vector<int> testCounts(10, 0);
  for (std::int32_t y : train.labels) ++trainCounts[static_cast<std::size_t>(y)];
  for (std::int32_t y : test.labels) ++testCounts[static_cast<std::size_t>(y)];
  CHECK(trainCounts == std::vector<int>(10, 6000));
  CHECK(testCounts == std::vector<int>(10, 1000));
  CHECK(train.features.minCoeff() == 0.0f);
  CHECK(train.features.maxCoeff() == 255.0f);
}

TEST_CASE("loadIdxImages reads images alone as loadIdxPair reads their features", "[data][idx]") {
  TempDir dir;
  const std::vector<std::uint8_t> pixels = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
  writeBytes(dir.file("img3"), idxBytes({2, 2, 3}, pixels));
  writeBytes(dir.file("img2"), idxBytes({3, 4}, pixels));
  writeBytes(dir.file("lab"), idxBytes({2}, {1, 0}));
  writeBytes(dir.file("flat"), idxBytes({12}, pixels));
  const auto three = tsnn::data::loadIdxImages<double>(dir.file("img3"));
  REQUIRE(three.rows() == 2);
  REQUIRE(three.cols() == 6);
  CHECK(three(1, 0) == 250.0);
  CHECK(three == tsnn::data::loadIdxPair<double>(dir.file("img3"), dir.file("lab")).features);
  const auto two = tsnn::data::loadIdxImages<float>(dir.file("img2"));
  REQUIRE(two.rows() == 3);
  REQUIRE(two.cols() == 4);
  CHECK(two(2, 3) == 255.0f);
  CHECK_THROWS_WITH(
      tsnn::data::loadIdxImages<float>(dir.file("flat")),
      Catch::StartsWith("tsnn: loadIdxImages(): '") && Catch::Contains("has 1 dimensions"));
  CHECK_THROWS_WITH(tsnn::data::loadIdxPair<float>(dir.file("flat"), dir.file("lab")),
                    Catch::StartsWith("tsnn: loadIdxPair(): '"));
}

#if defined(TSNN_HAS_ZLIB)
TEST_CASE("writeIdx compresses a file larger than its output buffer into one gzip stream",
          "[data][idx]") {
  // Random bytes do not compress, so the gzip stream (about 600 KB) spans several of the
  // writer's 128 KiB output blocks; zlib itself must inflate it to exactly the file.
  TempDir dir;
  const IdxArray a = randomArray({600, 1000}, testSeed());
  const std::string path = dir.file("big.idx.gz");
  tsnn::data::writeIdx(path, a, true);
  const std::vector<std::uint8_t> gz = readBytes(path);
  REQUIRE(gz.size() > 3 * (std::size_t{1} << 17));
  z_stream zs{};
  REQUIRE(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK);
  std::vector<std::uint8_t> raw(a.data.size() + 100);
  zs.next_in = const_cast<std::uint8_t*>(gz.data());
  zs.avail_in = static_cast<uInt>(gz.size());
  zs.next_out = raw.data();
  zs.avail_out = static_cast<uInt>(raw.size());
  const int rc = inflate(&zs, Z_FINISH);
  const std::size_t consumed = gz.size() - zs.avail_in;
  raw.resize(raw.size() - zs.avail_out);
  inflateEnd(&zs);
  CHECK(rc == Z_STREAM_END);
  CHECK(consumed == gz.size());
  CHECK(raw == idxBytes(a.dims, a.data));
  const IdxArray back = tsnn::data::readIdx(path);
  CHECK(back.dims == a.dims);
  CHECK(back.data == a.data);
}
#endif
