#pragma once
/// \file
/// \brief Atomic file replacement: write a temporary file next to the target, flush it, then
/// rename it over the target. A crash or error at any point leaves either the old file or the
/// new one, never a half-written one.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include <unistd.h>

#include "tsnn/core/errors.hpp"

namespace tsnn {

/// \brief Calls \p write on a stream for "<path>.tmp", then renames it to \p path.
/// \throws IoError naming the path if the file cannot be written or renamed (the temporary is
/// removed and \p path is untouched); exceptions from \p write propagate after the same clean-up.
inline void writeFileAtomically(const std::string& path,
                                const std::function<void(std::ostream&)>& write,
                                std::ios::openmode mode = std::ios::out) {
  const std::string tmp = path + ".tmp";
  try {
    std::ofstream out(tmp, mode | std::ios::trunc);
    if (!out)
      detail::raise<IoError>("writeFileAtomically(): cannot open '", tmp,
                             "' for writing: ", std::strerror(errno));
    write(out);
    out.flush();
    if (!out) detail::raise<IoError>("writeFileAtomically(): writing '", tmp, "' failed");
    out.close();
    if (out.fail()) detail::raise<IoError>("writeFileAtomically(): closing '", tmp, "' failed");
  } catch (...) {
    ::unlink(tmp.c_str());  // unlink, unlike remove, never deletes a directory
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());  // unlink, unlike remove, never deletes a directory
    detail::raise<IoError>("writeFileAtomically(): cannot rename '", tmp, "' to '", path,
                           "': ", std::strerror(err));
  }
}

}  // namespace tsnn
