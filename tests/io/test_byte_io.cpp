// Tests for tsnn/io/byte_io.hpp: the byte layout of every field ByteWriter writes (spelled out
// here byte by byte, not derived from the implementation), arrays written and read in bulk as
// their elements are, the streaming and counting writers passing on or counting exactly those
// bytes, ByteReader reading them back, and every
// short read, oversized count and leftover byte refused with a FormatError naming the caller, the
// file, what was being read and where.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/io/byte_io.hpp"
#include "tsnn/io/crc32.hpp"

namespace {

using tsnn::detail::ByteReader;
using tsnn::detail::ByteWriter;

std::vector<unsigned> bytesOf(ByteWriter& w) {
  std::vector<unsigned> out;
  for (char c : w.buffer()) out.push_back(static_cast<unsigned char>(c));
  return out;
}

ByteReader readerOf(const std::string& b, std::size_t offset = 0) {
  return ByteReader(reinterpret_cast<const unsigned char*>(b.data()), b.size(), offset, "f.bin",
                    "test()");
}

template <class F>
std::string formatErrorOf(F&& f) {
  return tsnn::test::messageOf<tsnn::FormatError>(std::forward<F>(f));
}

}  // namespace

TEST_CASE("ByteWriter writes integers little-endian and big-endian where asked", "[io][byte_io]") {
  ByteWriter w;
  w.u32(0x01020304u);
  CHECK(bytesOf(w) == std::vector<unsigned>{0x04, 0x03, 0x02, 0x01});
  w.buffer().clear();
  w.u32be(0x01020304u);
  CHECK(bytesOf(w) == std::vector<unsigned>{0x01, 0x02, 0x03, 0x04});
  w.buffer().clear();
  w.u64(0x0102030405060708ull);
  CHECK(bytesOf(w) == std::vector<unsigned>{8, 7, 6, 5, 4, 3, 2, 1});
  w.buffer().clear();
  w.i32(-2);
  w.i64(-1);
  w.u8(0xAB);
  CHECK(bytesOf(w) == std::vector<unsigned>{0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                            0xFF, 0xFF, 0xFF, 0xAB});
  w.buffer().clear();
  w.index<std::int16_t>(-3);
  w.index<std::int8_t>(5);
  w.index<std::int32_t>(0x7FFFFFFF);
  CHECK(bytesOf(w) == std::vector<unsigned>{0xFD, 0xFF, 0x05, 0xFF, 0xFF, 0xFF, 0x7F});
  w.buffer().clear();
  w.unsignedBe(0x0A0B0C, 3);
  w.unsignedLe(0x0A0B0C, 3);
  CHECK(bytesOf(w) == std::vector<unsigned>{0x0A, 0x0B, 0x0C, 0x0C, 0x0B, 0x0A});
}

TEST_CASE("ByteWriter writes floating-point numbers as their IEEE 754 bits", "[io][byte_io]") {
  ByteWriter w;
  w.f64(1.0);              // binary64 0x3FF0000000000000
  w.f32(-2.0f);            // binary32 0xC0000000
  w.scalar<float>(0.5f);   // 0x3F000000
  w.scalar<double>(-0.0);  // 0x8000000000000000
  CHECK(bytesOf(w) == std::vector<unsigned>{0, 0, 0, 0,    0, 0, 0xF0, 0x3F, 0, 0, 0, 0xC0,
                                            0, 0, 0, 0x3F, 0, 0, 0,    0,    0, 0, 0, 0x80});
}

TEST_CASE("ByteWriter writes arrays as it writes their elements", "[io][byte_io]") {
  const std::vector<float> f{1.0f, -2.0f, std::numeric_limits<float>::denorm_min()};
  const std::vector<double> d{0.5, -0.0};
  const std::vector<std::int16_t> i16{-300, 7, std::numeric_limits<std::int16_t>::min()};
  const std::vector<std::int64_t> i64{-1, std::numeric_limits<std::int64_t>::max()};
  ByteWriter bulk, each;
  bulk.scalars(f.data(), f.size());
  bulk.scalars(d.data(), d.size());
  bulk.indices(i16.data(), i16.size());
  bulk.indices(i64.data(), i64.size());
  bulk.scalars(f.data(), 0);
  for (float v : f) each.f32(v);
  for (double v : d) each.f64(v);
  for (std::int16_t v : i16) each.index(v);
  for (std::int64_t v : i64) each.index(v);
  REQUIRE(each.size() == 3 * 4 + 2 * 8 + 3 * 2 + 2 * 8);
  CHECK(bytesOf(bulk) == bytesOf(each));
  CHECK(bulk.size() == each.size());
  // -300 as int16 is 0xFED4, least significant byte first, after the 28 bytes of floats.
  CHECK(bytesOf(bulk)[28] == 0xD4);
  CHECK(bytesOf(bulk)[29] == 0xFE);

  const std::string b = bulk.buffer();
  ByteReader r = readerOf(b);
  std::vector<float> f2(f.size());
  std::vector<double> d2(d.size());
  std::vector<std::int16_t> i16b(i16.size());
  std::vector<std::int64_t> i64b(i64.size());
  r.scalars(f2.data(), f2.size(), "f");
  r.scalars(d2.data(), d2.size(), "d");
  r.indices(i16b.data(), i16b.size(), "i");
  r.indices(i64b.data(), i64b.size(), "j");
  CHECK(std::memcmp(f2.data(), f.data(), 12) == 0);
  CHECK(std::memcmp(d2.data(), d.data(), 16) == 0);  // -0.0 keeps its sign
  CHECK(i16b == i16);
  CHECK(i64b == i64);
  CHECK(r.atEnd());
}

TEST_CASE("A short array read names the array, its position and the bytes it needed",
          "[io][byte_io]") {
  const std::string b(10, '\0');
  std::vector<float> out(3);
  ByteReader r = readerOf(b, 100);
  CHECK(formatErrorOf([&] { r.scalars(out.data(), 3, "weights"); }) ==
        "tsnn: test(): 'f.bin': truncated weights at byte 100: needs 3 x 4 bytes, 10 remain");
  // A count near 2^64 cannot wrap around the check.
  CHECK_THROWS_AS(
      r.indices(reinterpret_cast<std::int64_t*>(out.data()), ~std::size_t{0} / 4 + 2, "ids"),
      tsnn::FormatError);
  CHECK(r.fileOffset() == 100);  // nothing was consumed
}

TEST_CASE("A streaming ByteWriter passes on every byte, in order, in blocks", "[io][byte_io]") {
  // The same fields to a writer in memory, to counters and to streaming writers of several
  // block sizes; arrays larger than a block go to the sink without being buffered.
  std::vector<float> big(300);
  for (std::size_t k = 0; k < big.size(); ++k) big[k] = 0.25f * static_cast<float>(k) - 7.0f;
  const auto fill = [&](ByteWriter& w) {
    w.u8(1);
    w.u64(0x0102030405060708ull);
    w.scalars(big.data(), big.size());
    w.bytes("abc", 3);
    for (int k = 0; k < 50; ++k) w.i32(-k);
    w.scalars(big.data(), 5);
  };
  ByteWriter memory;
  fill(memory);
  const std::string expected = memory.buffer();
  REQUIRE(expected.size() == 1 + 8 + 1200 + 3 + 200 + 20);
  CHECK(memory.crc() ==
        tsnn::detail::crc32Portable(reinterpret_cast<const unsigned char*>(expected.data()),
                                    expected.size()));

  ByteWriter counter = ByteWriter::counter();
  fill(counter);
  CHECK(counter.counting());
  CHECK(counter.size() == expected.size());
  CHECK(counter.buffer().empty());

  for (std::size_t block : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{4096}}) {
    INFO("block " << block);
    std::string got;
    std::vector<std::size_t> chunks;
    ByteWriter w(
        [&](const unsigned char* p, std::size_t n) {
          got.append(reinterpret_cast<const char*>(p), n);
          chunks.push_back(n);
        },
        block);
    fill(w);
    CHECK(w.size() == expected.size());
    CHECK(w.crc() == memory.crc());
    CHECK(w.buffer().size() < block);  // a full block is passed on at once
    w.flush();
    CHECK(w.buffer().empty());
    CHECK(got == expected);
    CHECK(w.crc() == memory.crc());
    // A buffered chunk is at most a block plus the rest of the field that filled it (8 bytes at
    // most); only the arrays, passed on where they lie, are larger.
    for (std::size_t n : chunks) CHECK((n < block + 8 || n == 1200 || n == 20));
    const std::size_t calls = chunks.size();
    if (block == 4096) CHECK(calls == 1);
    if (block == 64) CHECK(calls >= 5);  // 9 bytes, the array, three blocks of the rest, the tail
  }
}

TEST_CASE("ByteReader reads back every field ByteWriter writes", "[io][byte_io]") {
  ByteWriter w;
  w.u8(200);
  w.u32(0xDEADBEEFu);
  w.u64(~std::uint64_t{0} - 5);
  w.u32be(0x01020304u);
  w.i32(std::numeric_limits<std::int32_t>::min());
  w.i64(-1234567890123ll);
  w.f32(std::numeric_limits<float>::denorm_min());
  w.f64(std::numeric_limits<double>::quiet_NaN());
  w.f64(-std::numeric_limits<double>::infinity());
  w.index<std::int8_t>(-128);
  w.index<std::int16_t>(-300);
  w.index<std::int64_t>(std::numeric_limits<std::int64_t>::min());
  w.bytes("xyz", 3);
  const std::string b = w.buffer();
  ByteReader r = readerOf(b);
  CHECK(r.u8("a") == 200);
  CHECK(r.u32("a") == 0xDEADBEEFu);
  CHECK(r.u64("a") == ~std::uint64_t{0} - 5);
  CHECK(r.u32be("a") == 0x01020304u);
  CHECK(r.i32("a") == std::numeric_limits<std::int32_t>::min());
  CHECK(r.i64("a") == -1234567890123ll);
  CHECK(r.f32("a") == std::numeric_limits<float>::denorm_min());
  const double nan = r.f64("a");
  const double quiet = std::numeric_limits<double>::quiet_NaN();
  CHECK(std::memcmp(&nan, &quiet, 8) == 0);
  CHECK(r.f64("a") == -std::numeric_limits<double>::infinity());
  CHECK(r.index<std::int8_t>("a") == -128);
  CHECK(r.index<std::int16_t>("a") == -300);
  CHECK(r.index<std::int64_t>("a") == std::numeric_limits<std::int64_t>::min());
  CHECK(r.bytes(3, "a") == "xyz");
  CHECK(r.atEnd());
  CHECK_NOTHROW(r.expectEnd());
}

TEST_CASE("ByteReader refuses a truncated field, naming it and its position", "[io][byte_io]") {
  // One byte short of each width, at a file offset of 100.
  const std::string b = "1234567";
  {
    ByteReader r = readerOf(b.substr(0, 3), 100);
    CHECK(formatErrorOf([&] { r.u32("row count"); }) ==
          "tsnn: test(): 'f.bin': truncated row count at byte 100: needs 4 bytes, 3 remain");
  }
  {
    ByteReader r = readerOf(b, 100);
    r.skip(2, "prefix");
    CHECK(formatErrorOf([&] { r.f64("learning rate"); }) ==
          "tsnn: test(): 'f.bin': truncated learning rate at byte 102: needs 8 bytes, 5 remain");
    // The failed read consumed nothing.
    CHECK(r.remaining() == 5);
  }
  ByteReader r = readerOf(b);
  CHECK_THROWS_AS(r.u64("x"), tsnn::FormatError);
  CHECK_THROWS_AS(r.i64("x"), tsnn::FormatError);
  CHECK_THROWS_AS(r.index<std::int64_t>("x"), tsnn::FormatError);
  CHECK_THROWS_AS(r.scalar<double>("x"), tsnn::FormatError);
  CHECK_THROWS_AS(r.bytes(8, "x"), tsnn::FormatError);
  CHECK_THROWS_AS(r.skip(8, "x"), tsnn::FormatError);
  CHECK_NOTHROW(r.skip(7, "x"));
  CHECK_THROWS_AS(r.u8("x"), tsnn::FormatError);
  CHECK_THROWS_AS(r.u32be("x"), tsnn::FormatError);
}

TEST_CASE("A region reader stops at its end and names its region", "[io][byte_io]") {
  const std::string b = "ABCDEFGHIJ";
  ByteReader file = readerOf(b, 10);
  file.skip(2, "head");
  ByteReader part = file.sub(4, "section", "'OPTS'");
  CHECK(file.fileOffset() == 16);
  CHECK(part.fileOffset() == 12);
  CHECK(part.bytes(2, "tag") == "CD");
  CHECK(formatErrorOf([&] { part.u32("seed"); }) ==
        "tsnn: test(): 'f.bin': truncated seed at byte 14: needs 4 bytes, 2 remain in section "
        "'OPTS'");
  CHECK(formatErrorOf([&] { part.expectEnd(); }) ==
        "tsnn: test(): 'f.bin': section 'OPTS' has 2 unexpected bytes after its contents, at "
        "byte 14");
  CHECK(formatErrorOf([&] { file.expectEnd("the last section"); }) ==
        "tsnn: test(): 'f.bin': 4 unexpected bytes after the last section, at byte 16");
  CHECK_THROWS_AS(file.sub(5, "section", "'LAYR'"), tsnn::FormatError);
}

TEST_CASE("count() refuses a count whose items cannot fit in what is left", "[io][byte_io]") {
  ByteWriter w;
  w.u64(3);
  w.bytes("abcdefghijklmnopqrstuvwx", 24);  // exactly 3 items of 8 bytes
  std::string b = w.buffer();
  CHECK(readerOf(b).count("id", 8) == 3);
  b.pop_back();  // now only 2 whole items fit
  CHECK(formatErrorOf([&] { readerOf(b).count("id", 8); }) ==
        "tsnn: test(): 'f.bin': the id count at byte 0 is 3, but only 23 bytes remain (8 bytes "
        "each)");
  // Counts near 2^64 cannot wrap around the check.
  ByteWriter huge;
  huge.u64(~std::uint64_t{0});
  huge.bytes("abcdefgh", 8);
  const std::string h = huge.buffer();
  CHECK_THROWS_AS(readerOf(h).count("id", 16), tsnn::FormatError);
  CHECK_THROWS_AS(readerOf(h).count("id", 1), tsnn::FormatError);
}
