#pragma once
// Scratch files for tests: a temporary directory removed with its contents, and whole-file reads
// and writes in binary mode.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace tsnn::test {

/// A uniquely named directory under the system's temporary directory, removed with everything in
/// it when it goes out of scope. The name joins \p tag, a clock reading, a random number and a
/// per-process counter, so parallel test processes never share one.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    static int counter = 0;
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    std::random_device rd;
    m_path = std::filesystem::temp_directory_path() /
             ("tsnn_" + tag + "_" + std::to_string(stamp) + "_" + std::to_string(rd()) + "_" +
              std::to_string(counter++));
    std::filesystem::create_directories(m_path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }

  const std::filesystem::path& path() const { return m_path; }
  std::string dir() const { return m_path.string(); }
  /// The path of \p name inside the directory (nothing is created).
  std::string file(const std::string& name) const { return (m_path / name).string(); }
  /// Writes \p text to \p name in the directory, byte for byte, and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = file(name);
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
    return path;
  }

 private:
  std::filesystem::path m_path;
};

/// The whole file as bytes; empty if it cannot be read.
inline std::vector<std::uint8_t> readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in),
                                   std::istreambuf_iterator<char>());
}

/// The whole file as a string; empty if it cannot be read.
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Replaces \p path with \p bytes.
inline void writeBytes(const std::string& path, const char* bytes, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes, static_cast<std::streamsize>(size));
  REQUIRE(out.good());
}
inline void writeBytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  writeBytes(path, reinterpret_cast<const char*>(bytes.data()), bytes.size());
}
/// Replaces \p path with the bytes of \p text (a separate name, so that a braced list of bytes
/// passed to writeBytes is never ambiguous).
inline void writeString(const std::string& path, const std::string& text) {
  writeBytes(path, text.data(), text.size());
}

}  // namespace tsnn::test
