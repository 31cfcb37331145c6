#pragma once
/// \file
/// \brief Atomic, durable file replacement: the one writer behind every file tsnn saves.
///
/// The new contents go to "<path>.tmp" in the target's own directory (so that the rename below
/// stays within one file system), and then:
///   1. fsync the temporary file, so its data is on disk before any name points at it;
///   2. rename it over \p path, which POSIX makes atomic: a reader sees the old file or the new
///      one, never a mixture;
///   3. fsync the directory, so that the rename itself survives a power cut.
/// Until step 2, any failure (an exception from the caller's writer included) removes the
/// temporary and leaves the old file untouched; a crash leaves at worst a stale "<path>.tmp",
/// which the next save truncates and reuses.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <ostream>
#include <streambuf>
#include <string>
#include <system_error>
#include <utility>

#include "tsnn/core/errors.hpp"

namespace tsnn {

/// \brief A file being replaced atomically: write() appends to "<path>.tmp", commit() makes it
/// \p path (see the file comment for the steps). Destroying an uncommitted AtomicFile removes the
/// temporary, so the old file survives every exception between construction and commit().
class AtomicFile {
 public:
  /// \brief Creates (or truncates) "<path>.tmp".
  /// \param caller the function named in error messages, e.g. "saveCheckpoint()".
  /// \throws IoError naming \p caller and the temporary's path if it cannot be created (for
  /// instance when the directory does not exist or is not writable).
  explicit AtomicFile(std::string path, const char* caller = "writeFileAtomically()")
      : m_path(std::move(path)), m_tmp(m_path + ".tmp"), m_caller(caller) {
    // O_NOFOLLOW: a symbolic link planted at the temporary's name is refused, not written
    // through. A file already there is a temporary left by a crash, and is reused.
    do {
      m_fd = ::open(m_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    } while (m_fd < 0 && errno == EINTR);
    if (m_fd < 0)
      detail::raise<IoError>(m_caller, ": cannot create '", m_tmp, "': ", std::strerror(errno));
  }

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  ~AtomicFile() { discard(); }

  /// \brief Appends \p n bytes to the temporary.
  /// \throws IoError naming the temporary and the system's reason (e.g. no space left); the
  /// temporary is removed by then
  void write(const void* data, std::size_t n) {
    if (m_fd < 0) detail::raise<IoError>(m_caller, ": '", m_tmp, "' is no longer open for writing");
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ::ssize_t w = ::write(m_fd, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        failWith("cannot write '", m_tmp, "': ", std::strerror(errno));
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      m_bytes += static_cast<std::size_t>(w);
    }
  }

  /// \brief Flushes the temporary to disk, renames it over the target and flushes the directory.
  /// \throws IoError naming the step, the path and the system's reason. If fsync, close or
  /// rename fails, the temporary is removed and the old file is untouched; if only the final
  /// fsync of the directory fails, the new file is in place but its rename may not survive a
  /// power cut.
  void commit() {
    if (m_fd < 0) detail::raise<IoError>(m_caller, ": '", m_tmp, "' is no longer open for writing");
    if (::fsync(m_fd) != 0) failWith("cannot flush '", m_tmp, "' to disk: ", std::strerror(errno));
    const int fd = m_fd;
    m_fd = -1;
    // close() may report a deferred write error (NFS); retrying after EINTR is not allowed.
    if (::close(fd) != 0) failWith("cannot close '", m_tmp, "': ", std::strerror(errno));
    if (std::rename(m_tmp.c_str(), m_path.c_str()) != 0)
      failWith("cannot rename '", m_tmp, "' to '", m_path, "': ", std::strerror(errno));
    m_committed = true;
    syncDirectory();
  }

  /// \brief Closes and removes the temporary unless commit() succeeded; the old file stays.
  void discard() noexcept {
    if (m_fd >= 0) {
      ::close(m_fd);
      m_fd = -1;
    }
    if (!m_committed && !m_removed) {
      ::unlink(m_tmp.c_str());  // unlink, unlike remove, never deletes a directory
      m_removed = true;
    }
  }

  const std::string& path() const { return m_path; }
  const std::string& tempPath() const { return m_tmp; }
  const char* caller() const { return m_caller; }
  /// Bytes written so far.
  std::size_t size() const { return m_bytes; }

 private:
  /// Removes the temporary and throws IoError "<caller>: <args>"; errno is read by the caller
  /// before this runs, since discard() may change it.
  template <class... Args>
  [[noreturn]] void failWith(Args&&... args) {
    const std::string message = (std::string() + ... + std::string(std::forward<Args>(args)));
    discard();
    detail::raise<IoError>(m_caller, ": ", message);
  }

  void syncDirectory() {
    std::string dir = std::filesystem::path(m_path).parent_path().string();
    if (dir.empty()) dir = ".";
    int fd;
    do {
      fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
      detail::raise<IoError>(m_caller, ": '", m_path, "' is written, but its directory '", dir,
                             "' cannot be opened to flush the rename: ", std::strerror(errno));
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    // EINVAL: the file system cannot sync a directory (some FUSE and network file systems);
    // there is nothing more to be done there, and the data itself is on disk.
    if (rc != 0 && err != EINVAL)
      detail::raise<IoError>(m_caller, ": '", m_path, "' is written, but flushing its directory '",
                             dir, "' failed: ", std::strerror(err));
  }

  std::string m_path;
  std::string m_tmp;
  const char* m_caller;
  int m_fd = -1;
  std::size_t m_bytes = 0;
  bool m_committed = false;
  bool m_removed = false;
};

/// \brief Replaces \p path atomically and durably with \p n bytes from \p data (see AtomicFile).
/// \param caller the function named in error messages.
/// \throws IoError naming \p caller and the path if it cannot be written, flushed or renamed;
/// the old file is then untouched and no temporary is left.
inline void writeBytesAtomically(const std::string& path, const void* data, std::size_t n,
                                 const char* caller = "writeBytesAtomically()") {
  AtomicFile file(path, caller);
  file.write(data, n);
  file.commit();
}

/// \brief Checks, without touching \p path, that a later atomic write of it can succeed as far
/// as the file system can tell now: \p path is not a directory, and its temporary
/// "<path>.tmp" can be created in its directory (it is created and removed again). Long runs
/// call it before they start, so that they do not lose their result at the end.
/// \param caller the function named in error messages.
/// \throws IoError naming \p caller and the path otherwise (no such directory, no permission,
/// a read-only file system, ...)
inline void checkWritableDestination(const std::string& path,
                                     const char* caller = "checkWritableDestination()") {
  if (path.empty()) detail::raise<IoError>(caller, ": empty path");
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    detail::raise<IoError>(caller, ": '", path, "' is a directory");
  AtomicFile probe(path, caller);  // destroyed uncommitted: the temporary goes, path is untouched
}

namespace detail {

/// A stream buffer that appends to an AtomicFile in 64 KiB blocks. A failed write is kept, not
/// thrown through the stream (an ostream would turn it into badbit and drop it), and rethrown by
/// finish().
class AtomicFileStreambuf : public std::streambuf {
 public:
  explicit AtomicFileStreambuf(AtomicFile& file) : m_file(file), m_buf(std::size_t{1} << 16, '\0') {
    setp(m_buf.data(), m_buf.data() + m_buf.size());
  }

  /// Writes what is buffered; rethrows the first write error.
  void finish() {
    flushBuffer();
    if (m_error) std::rethrow_exception(m_error);
  }

 protected:
  int_type overflow(int_type ch) override {
    if (!flushBuffer()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override { return flushBuffer() ? 0 : -1; }

 private:
  bool flushBuffer() {
    if (m_error) return false;
    try {
      m_file.write(pbase(), static_cast<std::size_t>(pptr() - pbase()));
    } catch (...) {
      m_error = std::current_exception();
      return false;
    }
    setp(m_buf.data(), m_buf.data() + m_buf.size());
    return true;
  }

  AtomicFile& m_file;
  std::string m_buf;
  std::exception_ptr m_error;
};

}  // namespace detail

/// \brief Replaces \p path atomically and durably with what \p write puts on the stream it is
/// given (see AtomicFile). The stream is binary: POSIX makes no difference between text and
/// binary files.
/// \param caller the function named in error messages.
/// \throws IoError naming \p caller and the path if it cannot be written, flushed or renamed;
/// exceptions from \p write propagate. In both cases the old file is untouched and no temporary
/// is left.
inline void writeFileAtomically(const std::string& path,
                                const std::function<void(std::ostream&)>& write,
                                const char* caller = "writeFileAtomically()") {
  AtomicFile file(path, caller);
  detail::AtomicFileStreambuf buf(file);
  std::ostream out(&buf);
  write(out);
  buf.finish();  // the write error, if any, is more telling than the stream's state
  if (!out)
    detail::raise<IoError>(caller, ": writing '", file.tempPath(),
                           "' failed: the output stream reports an error");
  file.commit();
}

}  // namespace tsnn
