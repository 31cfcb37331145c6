// Tests for tsnn/core/memory.hpp: resizeWithHugePages() really gets a large buffer backed by
// transparent huge pages where the system lets a program ask for them, and leaves small buffers
// and contents alone.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "tsnn/core/memory.hpp"

namespace {

// The THP policy, e.g. "always [madvise] never" -> "madvise"; empty where there is none.
std::string thpPolicy() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto a = line.find('['), b = line.find(']');
  return a == std::string::npos || b == std::string::npos ? "" : line.substr(a + 1, b - a - 1);
}

// AnonHugePages (kB) summed over the mappings of /proc/self/smaps that overlap [p, p + bytes)
// (the advice splits the allocation's mapping at the 2 MiB boundaries); -1 if none is found.
long long hugeKilobytesIn(const void* p, std::size_t bytes) {
  std::ifstream in("/proc/self/smaps");
  const auto lo = reinterpret_cast<std::uintptr_t>(p), hi = lo + bytes;
  std::string line;
  bool inside = false, found = false;
  long long total = 0;
  while (std::getline(in, line)) {
    unsigned long long a = 0, b = 0;
    char dash = 0;
    std::istringstream head(line);
    if ((head >> std::hex >> a >> dash >> b) && dash == '-' && line.find(':') > line.find(' ')) {
      inside = a < hi && lo < b;
      continue;
    }
    long long kb = 0;
    if (inside && std::sscanf(line.c_str(), "AnonHugePages: %lld kB", &kb) == 1) {
      total += kb;
      found = true;
    }
  }
  return found ? total : -1;
}

}  // namespace

TEST_CASE("resizeWithHugePages backs a large activation buffer with huge pages", "[core][memory]") {
  const std::string policy = thpPolicy();
  if (policy != "madvise" && policy != "always") {
    WARN("transparent huge pages are '" << policy << "' here: nothing to check");
    return;
  }
  Eigen::MatrixXf m;
  tsnn::resizeWithHugePages(m, 128, 256 * 1024);  // 128 MiB
  m.setConstant(1.0f);                            // the first touch faults the pages in
  const long long kb = hugeKilobytesIn(m.data(), static_cast<std::size_t>(m.size()) * 4);
  INFO("AnonHugePages of the buffer's mapping: " << kb << " kB (policy " << policy << ")");
  // At least half of the buffer: the 2 MiB-aligned interior, less what the kernel could not
  // find contiguous memory for on a fragmented machine.
  CHECK(kb >= 64 * 1024);
  CHECK(m.sum() == 128.0f * 256 * 1024);
}

TEST_CASE("resizeWithHugePages keeps Eigen's resize semantics", "[core][memory]") {
  Eigen::MatrixXf m(3, 4);
  m.setConstant(2.0f);
  const float* before = m.data();
  tsnn::resizeWithHugePages(m, 3, 4);  // same size: no reallocation, contents kept
  CHECK(m.data() == before);
  CHECK((m.array() == 2.0f).all());
  tsnn::resizeWithHugePages(m, 5, 7);
  CHECK(m.rows() == 5);
  CHECK(m.cols() == 7);
  Eigen::VectorXd v;
  tsnn::resizeWithHugePages(v, 10, 1);
  CHECK(v.size() == 10);
  tsnn::resizeWithHugePages(v, 0, 1);
  CHECK(v.size() == 0);
  CHECK_NOTHROW(tsnn::adviseHugePages(nullptr, std::size_t{1} << 30));
}
