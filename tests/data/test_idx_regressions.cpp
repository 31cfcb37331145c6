// Regression inputs for tsnn/data/idx.hpp: every file in tests/data/regressions/idx/ (inputs
// the fuzzer fuzz/fuzz_idx.cpp found, and hand-made hostile headers) is given to readIdx, which
// must return an array that keeps the IdxArray invariant or throw a tsnn::Error, and nothing
// else: no other exception, no crash, no huge allocation. Run under ASan and UBSan to get the
// full value of these tests.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/data/idx.hpp"

namespace fs = std::filesystem;

namespace {

// The regression inputs, found next to this source file, sorted by name.
std::vector<fs::path> regressionInputs() {
  const fs::path dir = fs::path(__FILE__).parent_path() / "regressions" / "idx";
  std::vector<fs::path> files;
  if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// What readIdx did with one file.
enum class Outcome { kReturned, kTsnnError, kOtherException };

struct Result {
  Outcome outcome = Outcome::kOtherException;
  tsnn::data::IdxArray array;
  std::string message;
};

Result readOne(const fs::path& path) {
  Result r;
  try {
    r.array = tsnn::data::readIdx(path.string());
    r.outcome = Outcome::kReturned;
  } catch (const tsnn::Error& e) {
    r.outcome = Outcome::kTsnnError;
    r.message = e.what();
  } catch (const std::exception& e) {
    r.message = e.what();
  } catch (...) {
    r.message = "an exception that is not a std::exception";
  }
  return r;
}

}  // namespace

TEST_CASE("The IDX regression inputs are present", "[data][idx][regression]") {
  // An empty list would make the next test pass vacuously, e.g. if the directory moved.
  CHECK(regressionInputs().size() >= 3);
}

TEST_CASE("readIdx returns a valid array or throws a tsnn::Error on every regression input",
          "[data][idx][regression]") {
  for (const fs::path& path : regressionInputs()) {
    INFO("input: " << path.string());
    const Result r = readOne(path);
    INFO("message: " << r.message);
    REQUIRE(r.outcome != Outcome::kOtherException);
    if (r.outcome == Outcome::kTsnnError) {
      // Messages start with "tsnn: readIdx(): " and name the file.
      CHECK(r.message.rfind("tsnn: readIdx(): ", 0) == 0);
      CHECK(r.message.find(path.string()) != std::string::npos);
    } else {
      const auto& a = r.array;
      REQUIRE_FALSE(a.dims.empty());
      CHECK(a.dims.size() <= 255);
      for (std::uint32_t d : a.dims) CHECK(d >= 1);
      CHECK(tsnn::detail::idxElementCount(a.dims) == a.data.size());
    }
  }
}

TEST_CASE("readIdx rejects the hand-made hostile headers with a FormatError",
          "[data][idx][regression]") {
  const fs::path dir = fs::path(__FILE__).parent_path() / "regressions" / "idx";
  // A header at the 2^31 limit with 16 bytes of data: truncated, not a 2 GiB allocation.
  CHECK_THROWS_AS(tsnn::data::readIdx((dir / "header_2pow31_elements_16_bytes.idx").string()),
                  tsnn::FormatError);
  CHECK_THROWS_WITH(tsnn::data::readIdx((dir / "header_2pow31_elements_16_bytes.idx").string()),
                    Catch::Contains("file has 16"));
  // 65536^4 = 2^64, which wraps to 0 in 64-bit arithmetic: more than 2^31 elements.
  CHECK_THROWS_WITH(tsnn::data::readIdx((dir / "dims_product_wraps_64bit_to_0.idx").string()),
                    Catch::Contains("more than the 2^31 elements"));
  CHECK_THROWS_WITH(tsnn::data::readIdx((dir / "dims_product_overflows_64bit.idx").string()),
                    Catch::Contains("more than the 2^31 elements"));
#if defined(TSNN_HAS_ZLIB)
  // 2 MiB of zeros decompressed from 2 KiB, under a header of 2^31 elements.
  CHECK_THROWS_WITH(tsnn::data::readIdx((dir / "gzip_bomb_claims_2pow31_elements.idx.gz").string()),
                    Catch::Contains("is truncated") && Catch::Contains("file has 2097152"));
#endif
}

TEST_CASE("readIdx accepts 255 dimensions of size 1", "[data][idx][regression]") {
  const fs::path path =
      fs::path(__FILE__).parent_path() / "regressions" / "idx" / "max_ndims_255_valid.idx";
  const tsnn::data::IdxArray a = tsnn::data::readIdx(path.string());
  CHECK(a.dims == std::vector<std::uint32_t>(255, 1));
  CHECK(a.data == std::vector<std::uint8_t>{7});
}
