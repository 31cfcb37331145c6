// Tests for tsnn/io/atomic_file.hpp: a replaced file holds exactly the new bytes; the temporary
// is flushed to disk before it is renamed and the directory after; and whatever fails (the
// caller's writer, a write refused by the system, fsync, the rename, creating the temporary) the
// old file is untouched, no temporary is left and the IoError names the function and the path.
//
// Failures are real where the system can be made to fail: RLIMIT_FSIZE makes write() refuse
// with EFBIG (this works for root too, unlike an unwritable directory), and a directory at the
// target makes rename() fail. fsync cannot be made to fail that way, so this file defines fsync
// itself, which takes precedence over the C library's (as the operator new of test_checkpoint
// does for allocation): it records what is synced, and fails on request.

#include <limits.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/io/atomic_file.hpp"

namespace {

struct FsyncCall {
  std::string path;    // what the descriptor names
  std::string target;  // the target file's contents at that moment
};
std::vector<FsyncCall> gFsyncs;
std::string gWatched;     // the target whose contents each call records
int gFailFsyncCall = -1;  // index into gFsyncs of the call to fail with EIO, or -1

std::string pathOfDescriptor(int fd) {
  char buf[PATH_MAX + 1];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ::ssize_t n = ::readlink(link.c_str(), buf, PATH_MAX);
  return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}

}  // namespace

extern "C" int fsync(int fd) {
  const int index = static_cast<int>(gFsyncs.size());
  gFsyncs.push_back({pathOfDescriptor(fd), gWatched.empty() ? "" : tsnn::test::slurp(gWatched)});
  if (index == gFailFsyncCall) {
    errno = EIO;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

namespace {

namespace fs = std::filesystem;
using tsnn::test::slurp;
using tsnn::test::TempDir;

std::string ioErrorOf(const std::function<void()>& f) {
  return tsnn::test::messageOf<tsnn::IoError>(f);
}

// Watches \p path for the fsync hook and forgets earlier calls.
void watch(const std::string& path) {
  gFsyncs.clear();
  gWatched = path;
  gFailFsyncCall = -1;
}

// The file size limit for this process, restored (and SIGXFSZ's disposition with it) on exit.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &m_old) == 0);
    m_oldHandler = std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead
    rlimit lim = m_old;
    lim.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &m_old);
    std::signal(SIGXFSZ, m_oldHandler);
  }

 private:
  rlimit m_old{};
  void (*m_oldHandler)(int) = nullptr;
};

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  return s;
}

}  // namespace

TEST_CASE("An atomic write replaces the file with exactly the new bytes", "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  const std::string first = pattern(100000);
  tsnn::writeBytesAtomically(path, first.data(), first.size());
  CHECK(slurp(path) == first);
  const std::string second = std::string("a\0b\r\n", 5);
  tsnn::writeBytesAtomically(path, second.data(), second.size());
  CHECK(slurp(path) == second);
  tsnn::writeBytesAtomically(path, nullptr, 0);
  CHECK(slurp(path).empty());
  CHECK(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // The stream form, with more than one buffer's worth of output.
  tsnn::writeFileAtomically(path, [&](std::ostream& os) {
    os << "head\n";
    os.write(first.data(), static_cast<std::streamsize>(first.size()));
  });
  CHECK(slurp(path) == "head\n" + first);
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("The temporary is flushed before the rename and the directory after it",
          "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  tsnn::writeBytesAtomically(path, "old", 3);
  watch(path);
  tsnn::writeBytesAtomically(path, "new!", 4);
  const std::vector<FsyncCall> calls = gFsyncs;
  gWatched.clear();
  REQUIRE(calls.size() == 2);
  // The file's data reaches the disk while the old file is still the one in place...
  CHECK(calls[0].path == fs::canonical(dir.path()).string() + "/f.bin.tmp");
  CHECK(calls[0].target == "old");
  // ... and the directory, which holds the rename, is synced once the new file is in place.
  CHECK(calls[1].path == fs::canonical(dir.path()).string());
  CHECK(calls[1].target == "new!");
  CHECK(slurp(path) == "new!");
}

TEST_CASE("A failed fsync of the temporary keeps the old file and removes the temporary",
          "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  tsnn::writeBytesAtomically(path, "old", 3);
  watch(path);
  gFailFsyncCall = 0;
  const std::string msg =
      ioErrorOf([&] { tsnn::writeBytesAtomically(path, "new!", 4, "saveThing()"); });
  gFailFsyncCall = -1;
  gWatched.clear();
  CHECK(msg == "tsnn: saveThing(): cannot flush '" + path + ".tmp' to disk: " + std::strerror(EIO));
  CHECK(slurp(path) == "old");
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("A failed fsync of the directory is reported although the file is in place",
          "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  watch(path);
  gFailFsyncCall = 1;
  const std::string msg = ioErrorOf([&] { tsnn::writeBytesAtomically(path, "new!", 4); });
  gFailFsyncCall = -1;
  gWatched.clear();
  CHECK_THAT(msg, Catch::Contains("'" + path + "' is written, but flushing its directory") &&
                      Catch::Contains(std::strerror(EIO)));
  CHECK(slurp(path) == "new!");
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("A write the system refuses keeps the old file and leaves no temporary",
          "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  const std::string old = pattern(1000);
  tsnn::writeBytesAtomically(path, old.data(), old.size());
  const std::string big = pattern(200000);
  std::string bytesMsg, streamMsg;
  {
    FileSizeLimit limit(64 * 1024);  // the new contents pass it, the old ones do not
    bytesMsg = ioErrorOf([&] { tsnn::writeBytesAtomically(path, big.data(), big.size(), "w()"); });
    streamMsg = ioErrorOf([&] {
      tsnn::writeFileAtomically(
          path,
          [&](std::ostream& os) {
            for (int i = 0; i < 4; ++i) os.write(big.data(), 50000);
          },
          "s()");
    });
  }
  CHECK(bytesMsg == "tsnn: w(): cannot write '" + path + ".tmp': " + std::strerror(EFBIG));
  CHECK(streamMsg == "tsnn: s(): cannot write '" + path + ".tmp': " + std::strerror(EFBIG));
  CHECK(slurp(path) == old);
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("An exception from the caller's writer keeps the old file and removes the temporary",
          "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("f.txt");
  tsnn::writeFileAtomically(path, [](std::ostream& os) { os << "old"; });
  const auto failing = [&](std::ostream& os) {
    os << std::string(200000, 'x');  // past the first buffer, so the temporary has data
    throw std::runtime_error("the writer gave up");
  };
  CHECK_THROWS_WITH(tsnn::writeFileAtomically(path, failing), "the writer gave up");
  CHECK(slurp(path) == "old");
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // An AtomicFile that is never committed changes nothing either.
  {
    tsnn::AtomicFile file(path);
    file.write("new", 3);
    CHECK(fs::exists(path + ".tmp"));
  }
  CHECK(slurp(path) == "old");
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("A failed rename keeps what is at the target and removes the temporary",
          "[io][atomic_file]") {
  TempDir dir;
  // A non-empty directory at the target: rename() cannot replace it.
  const std::string path = dir.file("target");
  fs::create_directories(path + "/inside");
  const std::string msg = ioErrorOf([&] { tsnn::writeBytesAtomically(path, "x", 1, "save()"); });
  CHECK_THAT(msg,
             Catch::StartsWith("tsnn: save(): cannot rename '" + path + ".tmp' to '" + path + "'"));
  CHECK(fs::is_directory(path + "/inside"));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("A temporary that cannot be created is reported and nothing is written",
          "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("missing/f.bin");
  const std::string msg = ioErrorOf([&] { tsnn::writeBytesAtomically(path, "x", 1, "save()"); });
  CHECK(msg == "tsnn: save(): cannot create '" + path + ".tmp': " + std::strerror(ENOENT));
  CHECK_FALSE(fs::exists(dir.file("missing")));

  // A symbolic link at the temporary's name is refused, not written through.
  const std::string target = dir.file("f.bin"), victim = dir.file("victim");
  tsnn::writeBytesAtomically(victim, "keep", 4);
  fs::create_symlink(victim, target + ".tmp");
  CHECK_THROWS_AS(tsnn::writeBytesAtomically(target, "x", 1), tsnn::IoError);
  CHECK(slurp(victim) == "keep");
  CHECK_FALSE(fs::exists(target));
}

TEST_CASE("A temporary left by an interrupted save is reused", "[io][atomic_file]") {
  TempDir dir;
  const std::string path = dir.file("f.bin");
  tsnn::test::writeString(path + ".tmp", pattern(5000));
  tsnn::writeBytesAtomically(path, "fresh", 5);
  CHECK(slurp(path) == "fresh");
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE(
    "checkWritableDestination refuses what a later save could not write, and leaves "
    "nothing behind",
    "[io][atomic_file]") {
  TempDir dir;
  const std::string good = dir.file("out.bin");
  CHECK_NOTHROW(tsnn::checkWritableDestination(good, "f()"));
  CHECK(!fs::exists(good));
  CHECK(!fs::exists(good + ".tmp"));
  // An existing file is left as it was.
  tsnn::writeBytesAtomically(good, "abc", 3);
  CHECK_NOTHROW(tsnn::checkWritableDestination(good, "f()"));
  CHECK(tsnn::test::slurp(good) == "abc");
  CHECK(!fs::exists(good + ".tmp"));
  CHECK_THROWS_WITH(tsnn::checkWritableDestination(dir.file("no/such/dir/x"), "f()"),
                    Catch::StartsWith("tsnn: f(): cannot create '") &&
                        Catch::Contains("no/such/dir/x.tmp") &&
                        Catch::Contains("No such file or directory"));
  CHECK_THROWS_AS(tsnn::checkWritableDestination(dir.path().string(), "f()"), tsnn::IoError);
  CHECK_THROWS_WITH(tsnn::checkWritableDestination(dir.path().string(), "f()"),
                    Catch::Contains("is a directory"));
  CHECK_THROWS_AS(tsnn::checkWritableDestination("", "f()"), tsnn::IoError);
}
