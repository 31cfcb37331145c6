// Tests for tsnn/io/crc32.hpp: published CRC-32 check values, continuation across any split, and
// the zlib-backed crc32() agreeing with the table-driven crc32Portable() (and with zlib itself).

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#if defined(TSNN_HAS_ZLIB)
#include <zlib.h>
#endif

#include "support/oracle.hpp"
#include "tsnn/io/crc32.hpp"

namespace {

const unsigned char* bytesOf(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

TEST_CASE("CRC-32 gives the published check values", "[io][crc32]") {
  // Values of the CRC-32 of zlib, gzip and PNG (e.g. RFC 1952's; "123456789" is the standard
  // check input of every CRC catalogue).
  struct Vector {
    std::string input;
    std::uint32_t crc;
  };
  std::string all(256, '\0');
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<char>(i);
  const std::vector<Vector> vectors = {
      {"", 0x00000000u},
      {"a", 0xE8B7BE43u},
      {"abc", 0x352441C2u},
      {"123456789", 0xCBF43926u},
      {"The quick brown fox jumps over the lazy dog", 0x414FA339u},
      {std::string(32, '\0'), 0x190A55ADu},
      {std::string(32, '\xff'), 0xFF6CAB0Bu},
      {all, 0x29058C73u},
  };
  for (const Vector& v : vectors) {
    INFO("input of " << v.input.size() << " bytes");
    CHECK(tsnn::detail::crc32Portable(bytesOf(v.input), v.input.size()) == v.crc);
    CHECK(tsnn::detail::crc32(bytesOf(v.input), v.input.size()) == v.crc);
  }
}

TEST_CASE("CRC-32 continues from the CRC of the bytes before, at any split", "[io][crc32]") {
  const std::string s = "The quick brown fox jumps over the lazy dog";
  for (std::size_t k = 0; k <= s.size(); ++k) {
    INFO("split after " << k << " bytes");
    const std::uint32_t head = tsnn::detail::crc32Portable(bytesOf(s), k);
    CHECK(tsnn::detail::crc32Portable(bytesOf(s) + k, s.size() - k, head) == 0x414FA339u);
    const std::uint32_t head2 = tsnn::detail::crc32(bytesOf(s), k);
    CHECK(tsnn::detail::crc32(bytesOf(s) + k, s.size() - k, head2) == 0x414FA339u);
  }
}

TEST_CASE("crc32 and crc32Portable agree on random data of every length", "[io][crc32]") {
  tsnn::Rng rng = tsnn::test::testRng(0xC32);
  std::string data(70001, '\0');
  for (auto& c : data) c = static_cast<char>(rng() & 0xFFu);
  for (std::size_t n : {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9},
                        std::size_t{4095}, std::size_t{65536}, data.size()}) {
    INFO(n << " bytes");
    const std::uint32_t portable = tsnn::detail::crc32Portable(bytesOf(data), n);
    CHECK(tsnn::detail::crc32(bytesOf(data), n) == portable);
#if defined(TSNN_HAS_ZLIB)
    CHECK(static_cast<std::uint32_t>(::crc32(0L, bytesOf(data), static_cast<uInt>(n))) == portable);
#endif
  }
}
