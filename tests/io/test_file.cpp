// Tests for tsnn/io/file.hpp: readFile returns a file's bytes exactly (NUL, CR and all), reads
// files whose reported size is not their length, and refuses missing files and directories with
// an IoError naming the caller, the path and the reason.

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <string>

#include "support/files.hpp"
#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/io/file.hpp"

using tsnn::test::TempDir;

TEST_CASE("readFile returns the bytes of a file exactly", "[io][file]") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  const std::string small("a\0b\r\n\xff", 6);
  tsnn::test::writeString(path, small);
  CHECK(tsnn::readFile(path) == small);

  tsnn::test::writeString(path, "");
  CHECK(tsnn::readFile(path).empty());

  // Larger than any single read, and not a multiple of a page.
  tsnn::Rng rng = tsnn::test::testRng(0xF11E);
  std::string big((std::size_t{1} << 20) + 3, '\0');
  for (auto& c : big) c = static_cast<char>(rng() & 0xFFu);
  tsnn::test::writeString(path, big);
  CHECK(tsnn::readFile(path) == big);
}

TEST_CASE("readFile reads files whose reported size is not their length", "[io][file]") {
  // /proc files report a size of 0 but have contents; the reader reads to end of file.
  const std::string status = tsnn::readFile("/proc/self/status");
  CHECK_THAT(status, Catch::Contains("Name:") && Catch::Contains("Pid:"));
  CHECK(status.size() > 100);
}

TEST_CASE("readFile of a missing file or a directory throws IoError naming caller and path",
          "[io][file]") {
  TempDir dir;
  const std::string missing = dir.file("missing.bin");
  CHECK(tsnn::test::messageOf<tsnn::IoError>([&] { tsnn::readFile(missing, "loadThing()"); }) ==
        "tsnn: loadThing(): cannot open '" + missing + "': " + std::strerror(ENOENT));
  CHECK(tsnn::test::messageOf<tsnn::IoError>([&] { tsnn::readFile(dir.dir()); }) ==
        "tsnn: readFile(): cannot read '" + dir.dir() + "': it is a directory");
}
