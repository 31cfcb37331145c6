// Tests for tsnn/io/png.hpp. Files are decoded with stb_image (Debian's libstb-dev), an
// independent decoder, and the chunk structure is checked byte by byte.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "support/oracle.hpp"
#include "support/files.hpp"
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

using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default
using tsnn::test::TempDir;
using tsnn::test::readBytes;
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

// CRC-32 computed bit by bit from the polynomial, independent of the table in png.hpp.
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

TEST_CASE("Every chunk carries a correct CRC and large images span several IDAT chunks",
          "[io][png]") {
  // Random bytes do not compress, so 300 x 200 x 3 bytes need more than one 64 KiB chunk.
  const Image img = randomImage(300, 200, testSeed());
  const std::vector<Chunk> cs = chunks(tsnn::encodePng(img));
  REQUIRE(cs.size() >= 3);
  CHECK(cs.front().type == "IHDR");
  CHECK(cs.back().type == "IEND");
  std::size_t idat = 0;
  for (std::size_t i = 0; i < cs.size(); ++i) {
    INFO("chunk " << i << " " << cs[i].type);
    CHECK(cs[i].crc == slowCrc32(cs[i].type, cs[i].data));
    if (cs[i].type == "IDAT") {
      ++idat;
      CHECK(cs[i].data.size() <= tsnn::kPngIdatBytes);
      CHECK((i >= 1 && i + 1 < cs.size()));
    }
  }
  CHECK(idat == cs.size() - 2);  // IDATs are consecutive between IHDR and IEND
  CHECK(idat >= 2);
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

TEST_CASE("The built-in checksums match known values and zlib", "[io][png]") {
  const std::string digits = "123456789";
  const auto* p = reinterpret_cast<const std::uint8_t*>(digits.data());
  CHECK(tsnn::detail::pngCrc32(0, p, digits.size()) == 0xCBF43926U);  // the CRC-32 check value
  // Feeding in two pieces continues the checksum.
  CHECK(tsnn::detail::pngCrc32(tsnn::detail::pngCrc32(0, p, 4), p + 4, 5) == 0xCBF43926U);
  const std::string wiki = "Wikipedia";
  CHECK(tsnn::detail::pngAdler32(reinterpret_cast<const std::uint8_t*>(wiki.data()), wiki.size()) ==
        0x11E60398U);
  CHECK(tsnn::detail::pngAdler32(nullptr, 0) == 1U);

  // Long runs of 0xFF are the worst case for the deferred modulo of Adler-32.
  const std::size_t n =
      GENERATE(std::size_t{1}, std::size_t{5552}, std::size_t{5553}, std::size_t{100000});
  std::vector<std::uint8_t> ones(n, 0xFF);
  std::uint32_t a = 1;
  std::uint32_t b = 0;
  for (std::uint8_t v : ones) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  CHECK(tsnn::detail::pngAdler32(ones.data(), ones.size()) == ((b << 16) | a));
#if defined(TSNN_HAS_ZLIB)
  std::mt19937 rng(testSeed());
  std::vector<std::uint8_t> data(n);
  for (auto& v : data) v = static_cast<std::uint8_t>(rng() & 0xFFU);
  CHECK(tsnn::detail::pngCrc32(0, data.data(), n) ==
        ::crc32(0UL, data.data(), static_cast<uInt>(n)));
  CHECK(tsnn::detail::pngAdler32(data.data(), n) ==
        ::adler32(1UL, data.data(), static_cast<uInt>(n)));
#endif
}

TEST_CASE("The stored-block zlib stream used without zlib inflates back to its input",
          "[io][png]") {
  // Sizes around the 65535-byte block limit, and the empty stream.
  const std::size_t n = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{65535},
                                 std::size_t{65536}, std::size_t{200000});
  std::vector<std::uint8_t> raw(n);
  std::mt19937 rng(testSeed());
  for (auto& v : raw) v = static_cast<std::uint8_t>(rng() & 0xFFU);
  const std::vector<std::uint8_t> z = tsnn::detail::zlibStored(raw);
  const std::size_t blocks = n == 0 ? 1 : (n + 65534) / 65535;
  CHECK(z.size() == 2 + 5 * blocks + n + 4);
  CHECK(((z[0] << 8) | z[1]) % 31 == 0);  // zlib header check bits

  int outLen = -1;
  char* out = stbi_zlib_decode_malloc(reinterpret_cast<const char*>(z.data()),
                                      static_cast<int>(z.size()), &outLen);
  REQUIRE(out != nullptr);
  const std::vector<std::uint8_t> back(out, out + outLen);
  STBI_FREE(out);
  CHECK(back == raw);
#if defined(TSNN_HAS_ZLIB)
  // zlib also verifies the Adler-32 trailer, which stb_image ignores.
  std::vector<std::uint8_t> inflated(n + 1);
  uLongf len = static_cast<uLongf>(inflated.size());
  REQUIRE(::uncompress(inflated.data(), &len, z.data(), static_cast<uLong>(z.size())) == Z_OK);
  inflated.resize(len);
  CHECK(inflated == raw);
#endif
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
