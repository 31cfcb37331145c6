// Tests for tsnn/sparse/simd.hpp: naming and parsing the SIMD paths, choosing one with
// setSimdPath() and TSNN_SIMD, and the refusals of a path the build or CPU lacks (shown on this
// machine by pretending, through detail::cpuSimdSupport(), that the CPU lacks it). Whether the
// kernels really run the chosen path is tested in test_kernels.cpp.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "tsnn/sparse/simd.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using tsnn::SimdPath;

namespace {

const SimdPath kPaths[] = {SimdPath::Generic, SimdPath::Avx2, SimdPath::Avx512};

// Restores the selected path and the CPU support a test changed.
class SimdStateGuard {
 public:
  SimdStateGuard()
      : m_slot(tsnn::detail::simdPathSlot().load()), m_cpu(tsnn::detail::cpuSimdSupport()) {}
  ~SimdStateGuard() {
    tsnn::detail::cpuSimdSupport() = m_cpu;
    tsnn::detail::simdPathSlot().store(m_slot);
  }
  SimdStateGuard(const SimdStateGuard&) = delete;
  SimdStateGuard& operator=(const SimdStateGuard&) = delete;

 private:
  int m_slot;
  tsnn::detail::CpuSimdSupport m_cpu;
};

}  // namespace

// Declared first, so that in a run of the whole file nothing has chosen a path before it; ctest
// also runs it alone with TSNN_SIMD set to a good and a bad value (tests/CMakeLists.txt).
TEST_CASE("The first simdPath() call takes the path TSNN_SIMD names or else the best one",
          "[sparse][simd][environment][first-call]") {
  if (tsnn::detail::simdPathSlot().load() >= 0) {
    WARN("TSNN-SIMD-SKIP: another test chose a path first; run this test case alone");
    return;
  }
  SimdStateGuard guard;
  const char* env = std::getenv("TSNN_SIMD");
  const std::string value = env != nullptr ? env : "";
  INFO("TSNN_SIMD='" << value << "'");
  bool valid = value.empty();
  for (SimdPath p : kPaths)
    valid = valid || (value == tsnn::simdPathName(p) && tsnn::simdPathSupported(p));
  if (valid) {
    const SimdPath expected = value.empty() ? tsnn::bestSimdPath() : tsnn::parseSimdPath(value);
    CHECK(tsnn::simdPath() == expected);
    CHECK(tsnn::simdPath() == expected);  // read once, then kept
  } else {
    // Refused on every call, naming the variable, until a path is set explicitly.
    CHECK_THROWS_WITH(tsnn::simdPath(), StartsWith("tsnn: TSNN_SIMD=" + value + ": "));
    CHECK_THROWS_AS(tsnn::simdPath(), tsnn::InvalidArgument);
    tsnn::setSimdPath(SimdPath::Generic);
    CHECK(tsnn::simdPath() == SimdPath::Generic);
  }
}

// One test case per path, which ctest reports as skipped (TSNN-SIMD-SKIP, tests/CMakeLists.txt)
// where this build or CPU lacks the path: the kernel tests, which run on every path there is,
// then did not cover it here. Nothing else is checked in them, so a skip hides no failure.
TEST_CASE("The kernel tests cover the generic SIMD path here", "[sparse][simd][coverage]") {
  CHECK(tsnn::simdPathSupported(SimdPath::Generic));
}
TEST_CASE("The kernel tests cover the avx2 SIMD path here", "[sparse][simd][coverage]") {
  if (!tsnn::simdPathSupported(SimdPath::Avx2))
    WARN("TSNN-SIMD-SKIP: the avx2 path is not tested on this machine (the "
         << (tsnn::simdPathCompiled(SimdPath::Avx2) ? "CPU" : "build") << " lacks it)");
  else
    SUCCEED("avx2 tested");
}
TEST_CASE("The kernel tests cover the avx512 SIMD path here", "[sparse][simd][coverage]") {
  if (!tsnn::simdPathSupported(SimdPath::Avx512))
    WARN("TSNN-SIMD-SKIP: the avx512 path is not tested on this machine (the "
         << (tsnn::simdPathCompiled(SimdPath::Avx512) ? "CPU" : "build") << " lacks it)");
  else
    SUCCEED("avx512 tested");
}

TEST_CASE("SIMD paths have names that parse back, and other names are refused", "[sparse][simd]") {
  CHECK(std::string(tsnn::simdPathName(SimdPath::Generic)) == "generic");
  CHECK(std::string(tsnn::simdPathName(SimdPath::Avx2)) == "avx2");
  CHECK(std::string(tsnn::simdPathName(SimdPath::Avx512)) == "avx512");
  for (SimdPath p : kPaths) CHECK(tsnn::parseSimdPath(tsnn::simdPathName(p)) == p);
  for (const char* bad : {"", "AVX512", "avx", "sse2", "avx512 "}) {
    INFO("name '" << bad << "'");
    CHECK_THROWS_AS(tsnn::parseSimdPath(bad), tsnn::InvalidArgument);
    CHECK_THROWS_WITH(
        tsnn::parseSimdPath(bad),
        StartsWith("tsnn: parseSimdPath(): unknown SIMD path '" + std::string(bad) + "'") &&
            Contains("expected generic, avx2 or avx512"));
  }
}

TEST_CASE("setSimdPath() selects every path this CPU runs", "[sparse][simd]") {
  SimdStateGuard guard;
  CHECK(tsnn::simdPathSupported(SimdPath::Generic));
  CHECK(tsnn::simdPathCompiled(SimdPath::Generic));
  for (SimdPath p : kPaths) {
    INFO("path " << tsnn::simdPathName(p));
    if (!tsnn::simdPathSupported(p)) {
      WARN("SIMD path " << tsnn::simdPathName(p) << " not tested: "
                        << (tsnn::simdPathCompiled(p) ? "this CPU cannot run it"
                                                      : "not in this build"));
      CHECK_THROWS_AS(tsnn::setSimdPath(p), tsnn::InvalidArgument);
      continue;
    }
    tsnn::setSimdPath(p);
    CHECK(tsnn::simdPath() == p);
  }
  // The best path is one this CPU runs, and nothing it runs is wider.
  const SimdPath best = tsnn::bestSimdPath();
  CHECK(tsnn::simdPathSupported(best));
  for (SimdPath p : kPaths)
    if (static_cast<int>(p) > static_cast<int>(best)) CHECK_FALSE(tsnn::simdPathSupported(p));
#if TSNN_SIMD_DISPATCH
  // GCC or clang on x86-64: every path is compiled whatever the flags.
  for (SimdPath p : kPaths) CHECK(tsnn::simdPathCompiled(p));
#endif
}

TEST_CASE("A path the CPU lacks is refused by name, and the best path falls back",
          "[sparse][simd]") {
  SimdStateGuard guard;
  tsnn::detail::CpuSimdSupport& cpu = tsnn::detail::cpuSimdSupport();

  SECTION("a CPU with AVX2 but without AVX-512") {
    cpu.avx512 = false;
    cpu.avx2 = true;
    CHECK_FALSE(tsnn::simdPathSupported(SimdPath::Avx512));
    if (tsnn::simdPathCompiled(SimdPath::Avx2)) CHECK(tsnn::bestSimdPath() == SimdPath::Avx2);
    const std::string expected =
        tsnn::simdPathCompiled(SimdPath::Avx512)
            ? "tsnn: setSimdPath(): this CPU cannot run the avx512 path (it needs AVX-512 F, VL, "
              "BW and DQ); the best it can run is " +
                  std::string(tsnn::simdPathName(tsnn::bestSimdPath()))
            : "tsnn: setSimdPath(): this build has no avx512 path";
    CHECK_THROWS_WITH(tsnn::setSimdPath(SimdPath::Avx512), StartsWith(expected));
    CHECK_THROWS_AS(tsnn::setSimdPath(SimdPath::Avx512), tsnn::InvalidArgument);
    // The refusal leaves the selection as it was.
    tsnn::setSimdPath(SimdPath::Generic);
    CHECK_THROWS(tsnn::setSimdPath(SimdPath::Avx512));
    CHECK(tsnn::simdPath() == SimdPath::Generic);
    CHECK_THROWS_WITH(tsnn::detail::simdPathFromEnvironment("avx512"),
                      StartsWith("tsnn: TSNN_SIMD=avx512: this ") && Contains("avx512 path"));
  }
  SECTION("a CPU with neither") {
    cpu.avx512 = false;
    cpu.avx2 = false;
    CHECK(tsnn::bestSimdPath() == SimdPath::Generic);
    CHECK_THROWS_WITH(tsnn::setSimdPath(SimdPath::Avx2),
                      Contains("the avx2 path") && Contains("AVX2 and FMA"));
    CHECK_THROWS_WITH(tsnn::detail::simdPathFromEnvironment("avx2"),
                      StartsWith("tsnn: TSNN_SIMD=avx2: "));
    CHECK(tsnn::detail::simdPathFromEnvironment(nullptr) == SimdPath::Generic);
    CHECK(tsnn::detail::simdPathFromEnvironment("") == SimdPath::Generic);
    CHECK(tsnn::detail::simdPathFromEnvironment("generic") == SimdPath::Generic);
  }
}

TEST_CASE("TSNN_SIMD values are parsed and checked", "[sparse][simd][environment]") {
  CHECK(tsnn::detail::simdPathFromEnvironment(nullptr) == tsnn::bestSimdPath());
  CHECK(tsnn::detail::simdPathFromEnvironment("") == tsnn::bestSimdPath());
  for (SimdPath p : kPaths)
    if (tsnn::simdPathSupported(p))
      CHECK(tsnn::detail::simdPathFromEnvironment(tsnn::simdPathName(p)) == p);
  CHECK_THROWS_WITH(tsnn::detail::simdPathFromEnvironment("avx1024"),
                    StartsWith("tsnn: TSNN_SIMD=avx1024: unknown SIMD path") &&
                        Contains("expected generic, avx2 or avx512"));
  CHECK_THROWS_AS(tsnn::detail::simdPathFromEnvironment("Generic"), tsnn::InvalidArgument);
}
