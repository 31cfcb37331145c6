#pragma once
/// \file
/// \brief Reading files: readFile() reads a whole one into memory (the CSV, LIBSVM and CIFAR-10
/// loaders); FileByteSource reads one a window at a time (checkpoints, which may be larger than
/// the memory left beside the network they hold).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/byte_io.hpp"
#include "tsnn/io/crc32.hpp"

namespace tsnn {

namespace detail {

/// \brief Opens \p path for reading and fills \p st with its status: the one opening of
/// readFile() and FileByteSource.
/// \return the descriptor, which the caller closes
/// \throws IoError naming \p caller, the path and the system's reason when it cannot be opened
/// or its status read, or when it is a directory (nothing is left open then)
inline int openForReading(const std::string& path, const char* caller, struct stat& st) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) raise<IoError>(caller, ": cannot open '", path, "': ", std::strerror(errno));
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    raise<IoError>(caller, ": cannot read '", path, "': ", std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    raise<IoError>(caller, ": cannot read '", path, "': it is a directory");
  }
  return fd;
}

}  // namespace detail

/// \brief The bytes of the file at \p path, exactly as stored (no line-end translation).
/// \param caller the function named in error messages, e.g. "loadCsv()".
/// \throws IoError naming \p caller, the path and the system's reason when the file cannot be
/// opened or read, or when \p path is a directory.
inline std::string readFile(const std::string& path, const char* caller = "readFile()") {
  struct stat st {};
  const int fd = detail::openForReading(path, caller, st);
  // Closes fd on every path out, the exceptions included.
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  // The size is a hint, not a promise (a pipe reports 0, a file may change while it is read):
  // read until read() says end of file, growing the buffer when the hint was short.
  std::string bytes;
  bytes.resize(S_ISREG(st.st_mode) && st.st_size > 0 ? static_cast<std::size_t>(st.st_size) + 1
                                                     : std::size_t{1} << 16);
  std::size_t got = 0;
  for (;;) {
    if (got == bytes.size()) bytes.resize(2 * bytes.size());
    const ::ssize_t n = ::read(fd, &bytes[got], bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      detail::raise<IoError>(caller, ": cannot read '", path, "': ", std::strerror(errno),
                             " (after ", got, " bytes)");
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

namespace detail {

/// \brief A file read through one window of memory, for ByteReader: memory use is the window,
/// whatever the file's size. It also keeps the CRC-32 of the bytes it has delivered, in file
/// order, so that a reader can check a checksum over exactly the bytes it decoded, in the same
/// single pass over the file (crc32Through()). It reads with pread() at offsets, so the file must
/// be seekable, and its size is taken when it is opened: a pipe reads as empty.
class FileByteSource final : public ByteSource {
 public:
  /// \brief Opens \p path; size() is its size now.
  /// \param caller the function named in error messages, e.g. "loadCheckpoint()".
  /// \param windowBytes the bytes held at a time (at least 1, at most the file's size).
  /// \throws IoError naming \p caller and the path if it cannot be opened or is a directory
  FileByteSource(std::string path, const char* caller,
                 std::size_t windowBytes = std::size_t{1} << 20)
      : m_path(std::move(path)), m_caller(caller), m_window(std::max<std::size_t>(windowBytes, 1)) {
    struct stat st {};
    m_fd = openForReading(m_path, m_caller, st);
    m_size = st.st_size > 0 ? static_cast<std::size_t>(st.st_size) : 0;
    m_crcLimit = m_size;
    m_window = std::min(m_window, std::max<std::size_t>(m_size, 1));  // never more than the file
  }
  FileByteSource(const FileByteSource&) = delete;
  FileByteSource& operator=(const FileByteSource&) = delete;
  ~FileByteSource() override { ::close(m_fd); }

  /// The file's size when it was opened.
  std::size_t size() const { return m_size; }
  /// Bytes read from the file so far, for tests of the single pass.
  std::uint64_t bytesRead() const { return m_bytesRead; }

  void read(std::size_t at, void* dst, std::size_t n) override {
    auto* out = static_cast<unsigned char*>(dst);
    while (n > 0) {
      if (at < m_at || at >= m_at + m_len) load(at);
      const std::size_t k = std::min(n, m_at + m_len - at);
      std::memcpy(out, m_buf.data() + (at - m_at), k);
      out += k;
      at += k;
      n -= k;
    }
  }

  /// \brief Makes the running CRC-32 cover the file's bytes [0, \p end) only (by default it
  /// covers the whole file); call it before the first read().
  void trackCrc32Through(std::size_t end) { m_crcLimit = end; }

  /// \brief CRC-32 of the file's bytes [0, \p end). Where \p end is the tracked limit
  /// (trackCrc32Through()), it is the CRC of the bytes read() delivered, as it delivered them,
  /// continued over the ones it did not deliver, which are read now; otherwise all of them are
  /// read again.
  /// \throws IoError if the file is now shorter than \p end
  std::uint32_t crc32Through(std::size_t end) override {
    if (end == m_crcLimit) {
      while (m_crcEnd < end) load(m_crcEnd);
      return m_crc;
    }
    std::uint32_t crc = 0;
    for (std::size_t at = 0; at < end; at += m_len) {
      load(at);
      crc = crc32(m_buf.data(), std::min(m_len, end - at), crc);
    }
    return crc;
  }

 private:
  /// Fills the window from file offset \p at, and extends the running CRC over the new bytes that
  /// follow the ones it covers, up to its limit.
  void load(std::size_t at) {
    if (m_buf.empty()) m_buf.resize(m_window);
    const std::size_t want = at < m_size ? std::min(m_window, m_size - at) : 0;
    std::size_t got = 0;
    while (got < want) {
      const ::ssize_t r =
          ::pread(m_fd, m_buf.data() + got, want - got, static_cast<::off_t>(at + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        detail::raise<IoError>(m_caller, ": cannot read '", m_path, "': ", std::strerror(errno),
                               " (at byte ", at + got, ")");
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    m_bytesRead += got;
    m_at = at;
    m_len = got;
    if (got == 0 || got < want)
      detail::raise<IoError>(m_caller, ": cannot read '", m_path, "': it ends at byte ", at + got,
                             ", but had ", m_size,
                             " bytes when it was opened (it changed while it was read)");
    if (at <= m_crcEnd && m_crcEnd < at + got) {
      const std::size_t stop = std::min(at + got, m_crcLimit);
      if (stop > m_crcEnd) {
        m_crc = crc32(m_buf.data() + (m_crcEnd - at), stop - m_crcEnd, m_crc);
        m_crcEnd = stop;
      }
    }
  }

  std::string m_path;
  const char* m_caller;
  int m_fd = -1;
  std::size_t m_size = 0;
  std::size_t m_window;
  std::vector<unsigned char> m_buf;
  std::size_t m_at = 0, m_len = 0;  ///< the window: file bytes [m_at, m_at + m_len)
  std::uint32_t m_crc = 0;          ///< CRC-32 of the file's bytes [0, m_crcEnd)
  std::size_t m_crcEnd = 0;
  std::size_t m_crcLimit = 0;
  std::uint64_t m_bytesRead = 0;
};

}  // namespace detail

}  // namespace tsnn
