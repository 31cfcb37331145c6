#pragma once
/// \file
/// \brief The exceptions tsnn throws. Every message starts with "tsnn: " and then names the
/// function that refused and the offending value, so a log line can be searched for.
///
/// Hierarchy (all derive from std::runtime_error through tsnn::Error):
///   Error            base of everything tsnn throws
///   InvalidArgument  a bad shape, size, hyperparameter or option value
///   IoError          a file could not be opened, read, written or renamed
///   FormatError      a file was readable but its contents are truncated, corrupt or inconsistent
///   NumericalError   a loss, activation or weight became NaN or infinite

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tsnn {

/// \brief Base class of every exception tsnn throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// \brief A function was given an argument it cannot accept (shape, size, range, NaN).
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& what) : Error(what) {}
};

/// \brief A file could not be opened, read, written or renamed.
class IoError : public Error {
 public:
  explicit IoError(const std::string& what) : Error(what) {}
};

/// \brief A file's contents are truncated, corrupt or do not match what the caller expects.
class FormatError : public Error {
 public:
  explicit FormatError(const std::string& what) : Error(what) {}
};

/// \brief Training produced a non-finite value.
class NumericalError : public Error {
 public:
  explicit NumericalError(const std::string& what) : Error(what) {}
};

namespace detail {

/// Concatenates the arguments with operator<< into "tsnn: <args...>" and throws E with it.
template <class E, class... Args>
[[noreturn]] void raise(Args&&... args) {
  std::ostringstream os;
  os << "tsnn: ";
  (os << ... << std::forward<Args>(args));
  throw E(os.str());
}

}  // namespace detail
}  // namespace tsnn
