#pragma once
/// \file
/// \brief Reading a whole file into memory: the one reader behind the checkpoint, CSV, LIBSVM and
/// CIFAR-10 loaders.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tsnn/core/errors.hpp"

namespace tsnn {

/// \brief The bytes of the file at \p path, exactly as stored (no line-end translation).
/// \param caller the function named in error messages, e.g. "loadCsv()".
/// \throws IoError naming \p caller, the path and the system's reason when the file cannot be
/// opened or read, or when \p path is a directory.
inline std::string readFile(const std::string& path, const char* caller = "readFile()") {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) detail::raise<IoError>(caller, ": cannot open '", path, "': ", std::strerror(errno));
  // Closes fd on every path out, the exceptions included.
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0)
    detail::raise<IoError>(caller, ": cannot read '", path, "': ", std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    detail::raise<IoError>(caller, ": cannot read '", path, "': it is a directory");

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

}  // namespace tsnn
