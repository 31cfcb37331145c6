// Tests for tsnn/extras/png.hpp. Files are decoded with stb_image (Debian's libstb-dev), a
// decoder independent of stb_image_write, which encodes them, and the chunk structure and CRCs
// are checked byte by byte.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/oracle.hpp"
#include "tsnn/extras/png.hpp"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#endif
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace fs = std::filesystem;
using tsnn::Image;
using tsnn::Rgb;

namespace {

using tsnn::test::readBytes;
using tsnn::test::TempDir;
using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default
using tsnn::test::writeBytes;

Image randomImage(int w, int h, std::uint32_t seed) {
  Image img(w, h);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& v : img.rgb) v = static_cast<std::uint8_t>(byte(rng));
  return img;
}

// A decoded image: size, channels in the file, and pixels with `channels` bytes each.
struct Decoded {
  int width = 0;
  int height = 0;
  int fileChannels = 0;
  std::vector<std::uint8_t> pixels;
};

Decoded decode(const std::vector<std::uint8_t>& png, int channels) {
  Decoded d;
  unsigned char* p = stbi_load_from_memory(png.data(), static_cast<int>(png.size()), &d.width,
                                           &d.height, &d.fileChannels, channels);
  INFO("stb_image: " << (p == nullptr ? stbi_failure_reason() : "ok"));
  REQUIRE(p != nullptr);
  d.pixels.assign(p, p + static_cast<std::size_t>(d.width) * d.height * channels);
  stbi_image_free(p);
  return d;
}

std::uint32_t be32(const std::vector<std::uint8_t>& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

struct Chunk {
  std::string type;
  std::vector<std::uint8_t> data;
  std::uint32_t crc = 0;
};

// Splits a PNG file after its signature into chunks; fails the test on a truncated chunk.
std::vector<Chunk> chunks(const std::vector<std::uint8_t>& png) {
  std::vector<Chunk> out;
  std::size_t pos = 8;
  while (pos < png.size()) {
    REQUIRE(pos + 12 <= png.size());
    const std::uint32_t len = be32(png, pos);
    REQUIRE(pos + 12 + len <= png.size());
    Chunk c;
    c.type.assign(png.begin() + static_cast<std::ptrdiff_t>(pos + 4),
                  png.begin() + static_cast<std::ptrdiff_t>(pos + 8));
    c.data.assign(png.begin() + static_cast<std::ptrdiff_t>(pos + 8),
                  png.begin() + static_cast<std::ptrdiff_t>(pos + 8 + len));
    c.crc = be32(png, pos + 8 + len);
    out.push_back(std::move(c));
    pos += 12 + len;
  }
  return out;
}

// CRC-32 computed bit by bit from the polynomial, independent of any table.
std::uint32_t slowCrc32(const std::string& type, const std::vector<std::uint8_t>& data) {
  std::uint32_t crc = 0xFFFFFFFFU;
  const auto feed = [&](std::uint8_t byte) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320U & (0U - (crc & 1U)));
  };
  for (char ch : type) feed(static_cast<std::uint8_t>(ch));
  for (std::uint8_t byte : data) feed(byte);
  return ~crc;
}

}  // namespace

TEST_CASE("writePng then stb_image reads back the same size and every pixel", "[io][png]") {
  TempDir dir;
  const auto size = GENERATE(std::make_pair(1, 1), std::make_pair(7, 3), std::make_pair(3, 7),
                             std::make_pair(64, 48), std::make_pair(300, 200));
  const Image img = randomImage(size.first, size.second, testSeed());
  const std::string path = dir.file("a.png");
  tsnn::writePng(path, img);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const std::vector<std::uint8_t> bytes = readBytes(path);
  CHECK(bytes == tsnn::encodePng(img));
  const Decoded d = decode(bytes, 3);
  CHECK(d.width == img.width);
  CHECK(d.height == img.height);
  CHECK(d.fileChannels == 3);
  REQUIRE(d.pixels.size() == img.rgb.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < img.rgb.size(); ++i) mismatches += d.pixels[i] != img.rgb[i];
  CHECK(mismatches == 0);
}

TEST_CASE("Pixels set through Image::set land at their (x, y) in the decoded file", "[io][png]") {
  Image img(5, 4, Rgb{10, 20, 30});
  img.set(0, 0, Rgb{255, 0, 0});
  img.set(4, 0, Rgb{0, 255, 0});
  img.set(0, 3, Rgb{0, 0, 255});
  img.set(4, 3, Rgb{1, 2, 3});
  CHECK(img.at(4, 3) == Rgb{1, 2, 3});
  CHECK(img.at(2, 2) == Rgb{10, 20, 30});
  const Decoded d = decode(tsnn::encodePng(img), 3);
  const auto px = [&](int x, int y) {
    const std::size_t i = 3 * (static_cast<std::size_t>(y) * 5 + static_cast<std::size_t>(x));
    return Rgb{d.pixels[i], d.pixels[i + 1], d.pixels[i + 2]};
  };
  CHECK(px(0, 0) == Rgb{255, 0, 0});
  CHECK(px(4, 0) == Rgb{0, 255, 0});
  CHECK(px(0, 3) == Rgb{0, 0, 255});
  CHECK(px(4, 3) == Rgb{1, 2, 3});
  CHECK(px(2, 1) == Rgb{10, 20, 30});
}

TEST_CASE("A PNG file starts with the signature and an IHDR chunk holding size and format",
          "[io][png]") {
  const Image img = randomImage(258, 3, testSeed());
  const std::vector<std::uint8_t> png = tsnn::encodePng(img);
  REQUIRE(png.size() > 33);
  const std::vector<std::uint8_t> signature = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  CHECK(std::vector<std::uint8_t>(png.begin(), png.begin() + 8) == signature);
  CHECK(be32(png, 8) == 13);  // IHDR data length
  CHECK(std::string(png.begin() + 12, png.begin() + 16) == "IHDR");
  const std::vector<std::uint8_t> ihdr(png.begin() + 16, png.begin() + 29);
  // width 258 = 0x102, height 3, depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
  CHECK(ihdr == std::vector<std::uint8_t>{0, 0, 1, 2, 0, 0, 0, 3, 8, 2, 0, 0, 0});
  CHECK(be32(png, 29) == slowCrc32("IHDR", ihdr));
  // The file ends with the empty IEND chunk, whose CRC is the constant AE 42 60 82.
  const std::vector<std::uint8_t> iend = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  CHECK(std::vector<std::uint8_t>(png.end() - 12, png.end()) == iend);
}

TEST_CASE("Every chunk carries a correct CRC and the image data lies between IHDR and IEND",
          "[io][png]") {
  // Random bytes do not compress: about 180 KB of image data.
  const Image img = randomImage(300, 200, testSeed());
  const std::vector<Chunk> cs = chunks(tsnn::encodePng(img));
  REQUIRE(cs.size() >= 3);
  CHECK(cs.front().type == "IHDR");
  CHECK(cs.back().type == "IEND");
  std::size_t idat = 0, idatBytes = 0;
  for (std::size_t i = 0; i < cs.size(); ++i) {
    INFO("chunk " << i << " " << cs[i].type);
    CHECK(cs[i].crc == slowCrc32(cs[i].type, cs[i].data));
    if (cs[i].type == "IDAT") {
      ++idat;
      idatBytes += cs[i].data.size();
      CHECK((i >= 1 && i + 1 < cs.size()));
    }
  }
  CHECK(idat == cs.size() - 2);  // IDATs are consecutive between IHDR and IEND
  CHECK(idatBytes > img.rgb.size());
}

TEST_CASE("writePngGray writes an 8-bit grayscale file that decodes to the same bytes",
          "[io][png]") {
  TempDir dir;
  const int w = 29;
  const int h = 17;
  std::vector<std::uint8_t> gray(static_cast<std::size_t>(w * h));
  std::mt19937 rng(testSeed());
  for (auto& v : gray) v = static_cast<std::uint8_t>(rng() & 0xFFU);
  const std::string path = dir.file("g.png");
  tsnn::writePngGray(path, w, h, gray);
  const std::vector<std::uint8_t> bytes = readBytes(path);
  REQUIRE(bytes.size() > 29);
  CHECK(bytes[25] == 0);  // IHDR colour type: greyscale
  const Decoded d = decode(bytes, 1);
  CHECK(d.width == w);
  CHECK(d.height == h);
  CHECK(d.fileChannels == 1);
  CHECK(d.pixels == gray);
}

TEST_CASE("Empty or inconsistent images are rejected with InvalidArgument naming the sizes",
          "[io][png]") {
  TempDir dir;
  const std::string path = dir.file("bad.png");

  CHECK_THROWS_AS(tsnn::writePng(path, Image()), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::writePng(path, Image()),
                    Catch::StartsWith("tsnn: writePng()") && Catch::Contains("0 x 0"));
  CHECK_THROWS_AS(tsnn::writePng(path, Image(0, 5)), tsnn::InvalidArgument);

  Image wrong(2, 2);
  wrong.rgb.pop_back();
  CHECK_THROWS_AS(tsnn::writePng(path, wrong), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::writePng(path, wrong), Catch::Contains("2 x 2") &&
                                                     Catch::Contains("needs 12 bytes") &&
                                                     Catch::Contains("got 11"));
  CHECK_THROWS_AS(tsnn::encodePng(wrong), tsnn::InvalidArgument);

  Image lying(3, 2);
  lying.width = 4;  // the buffer is for 3 x 2
  CHECK_THROWS_AS(tsnn::writePng(path, lying), tsnn::InvalidArgument);

  CHECK_THROWS_AS(tsnn::writePngGray(path, 3, 3, std::vector<std::uint8_t>(8)),
                  tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::writePngGray(path, 3, 3, std::vector<std::uint8_t>(8)),
                    Catch::StartsWith("tsnn: writePngGray()") && Catch::Contains("needs 9 bytes"));
  CHECK_THROWS_AS(tsnn::writePngGray(path, -1, 3, {}), tsnn::InvalidArgument);
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("Image rejects negative sizes and pixels outside it", "[io][png]") {
  CHECK_THROWS_AS(Image(-1, 2), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(Image(3, -4), Catch::Contains("Image::Image()") && Catch::Contains("3 x -4"));
  Image img(3, 2);
  CHECK(img.rgb.size() == 18);
  CHECK(img.at(2, 1) == Rgb{255, 255, 255});
  CHECK(img.contains(2, 1));
  CHECK_FALSE(img.contains(3, 1));
  CHECK_FALSE(img.contains(0, -1));
  CHECK_THROWS_AS(img.set(3, 0, Rgb{}), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(img.set(3, 0, Rgb{}), Catch::Contains("Image::set()") &&
                                              Catch::Contains("(3, 0)") &&
                                              Catch::Contains("3 x 2"));
  CHECK_THROWS_AS(img.at(0, 2), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(img.at(-1, 0), Catch::Contains("Image::at()") && Catch::Contains("(-1, 0)"));
  img.rgb.resize(5);
  CHECK_THROWS_AS(img.set(0, 0, Rgb{}), tsnn::InvalidArgument);
}

TEST_CASE("writePng into a missing directory throws IoError and leaves nothing behind",
          "[io][png]") {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/x.png");
  CHECK_THROWS_AS(tsnn::writePng(path, randomImage(4, 4, testSeed())), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::writePng(path, randomImage(4, 4, testSeed())),
                    Catch::Contains(path + ".tmp"));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("A failed write leaves an existing file intact", "[io][png]") {
  TempDir dir;
  const std::string path = dir.file("keep.png");
  const Image old = randomImage(6, 5, testSeed());
  tsnn::writePng(path, old);
  const std::vector<std::uint8_t> before = readBytes(path);

  SECTION("the image is invalid") {
    CHECK_THROWS_AS(tsnn::writePng(path, Image()), tsnn::InvalidArgument);
  }
  SECTION("the temporary file cannot be created") {
    // A directory where the temporary file would go makes opening it fail (also for root).
    fs::create_directories(path + ".tmp/blocker");
    CHECK_THROWS_AS(tsnn::writePng(path, randomImage(8, 8, testSeed() + 1)), tsnn::IoError);
  }
  CHECK(readBytes(path) == before);
  CHECK(decode(readBytes(path), 3).pixels == old.rgb);

  // And a successful write replaces it completely.
  const Image next = randomImage(2, 9, testSeed() + 2);
  std::error_code ec;
  fs::remove_all(path + ".tmp", ec);
  tsnn::writePng(path, next);
  const Decoded d = decode(readBytes(path), 3);
  CHECK(d.width == 2);
  CHECK(d.height == 9);
  CHECK(d.pixels == next.rgb);
}

TEST_CASE("writePng overwrites a file that is not a PNG", "[io][png]") {
  TempDir dir;
  const std::string path = dir.file("x.png");
  writeBytes(path, {1, 2, 3});
  const Image img = randomImage(3, 3, testSeed());
  tsnn::writePng(path, img);
  CHECK(readBytes(path) == tsnn::encodePng(img));
}
