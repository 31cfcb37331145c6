#pragma once
/// \file
/// \brief The library version, defined once here; CMake reads it from this file.

#define TSNN_VERSION_MAJOR 0
#define TSNN_VERSION_MINOR 1
#define TSNN_VERSION_PATCH 0

namespace tsnn {
/// \brief The version as "MAJOR.MINOR.PATCH".
inline constexpr const char* versionString() { return "0.1.0"; }
}  // namespace tsnn
