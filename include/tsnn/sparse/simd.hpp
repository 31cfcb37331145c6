#pragma once
/// \file
/// \brief Which SIMD path the sparse kernels run, chosen at run time from the CPU.
///
/// The kernels (tsnn/sparse/kernels.hpp) have up to three bodies, each in its own namespace
/// under tsnn/sparse/arch/:
///   generic  plain C++ that the compiler vectorises for the translation unit's own flags
///            (SSE2 in a portable x86-64 build)
///   avx2     AVX2 + FMA register tiles (any x86-64 CPU since about 2013)
///   avx512   AVX-512 F/VL/BW/DQ register tiles (x86-64-v4)
/// With GCC or clang on x86-64 the avx2 and avx512 bodies are compiled in every build, each in a
/// region with its own target attributes, so that a program built without -march=native still
/// runs the widest path the CPU has. Elsewhere (other architectures or compilers) a path is
/// compiled only when the translation unit's own flags enable it (e.g. -march=native), and the
/// generic body always is.
///
/// The path is read once per call of a kernel (one relaxed atomic load), so every call runs one
/// path from start to end. The first call of simdPath() (or of a kernel) picks it: the
/// environment variable TSNN_SIMD (generic, avx2 or avx512) if it is set, else the fastest
/// path this build and CPU support. setSimdPath() changes it at any time.
///
/// Results: each path sums every output in the same order (storage order of the nonzeros), but
/// the paths round differently (fused multiply-adds, tile widths, reduction trees), so results
/// are bit for bit reproducible for one path, not across paths.

#include <atomic>
#include <cstdlib>
#include <string>

#include "tsnn/core/errors.hpp"

/// 1 where the avx2 and avx512 bodies can be compiled with target attributes whatever the
/// translation unit's flags (GCC or clang on x86-64). Define TSNN_NO_SIMD_DISPATCH to compile
/// only what the flags enable.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(TSNN_NO_SIMD_DISPATCH)
#define TSNN_SIMD_DISPATCH 1
#else
#define TSNN_SIMD_DISPATCH 0
#endif

/// 1 where this build has the avx2 body.
#if TSNN_SIMD_DISPATCH || (defined(__AVX2__) && defined(__FMA__))
#define TSNN_SIMD_HAS_AVX2 1
#else
#define TSNN_SIMD_HAS_AVX2 0
#endif

/// 1 where this build has the avx512 body.
#if TSNN_SIMD_DISPATCH || (defined(__AVX512F__) && defined(__AVX512VL__) && \
                           defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__FMA__))
#define TSNN_SIMD_HAS_AVX512 1
#else
#define TSNN_SIMD_HAS_AVX512 0
#endif

/// The instruction set the translation unit itself is compiled for. The kernel bodies live in an
/// inline namespace named after it, so that translation units compiled with different -m flags
/// get distinct copies of them (each correct for its unit) instead of one that the linker picks
/// arbitrarily: with -march=native the generic body is AVX-512 code, and the avx512 body is
/// compiled with the unit's tuning as well as its target region.
#if defined(__AVX512F__)
#define TSNN_SIMD_BASELINE baseline_avx512
#elif defined(__AVX2__) && defined(__FMA__)
#define TSNN_SIMD_BASELINE baseline_avx2
#elif defined(__AVX__)
#define TSNN_SIMD_BASELINE baseline_avx
#else
#define TSNN_SIMD_BASELINE baseline_default
#endif

namespace tsnn {

/// \brief A body of the sparse kernels (see the file comment).
enum class SimdPath {
  Generic,  ///< portable C++, vectorised for the translation unit's flags
  Avx2,     ///< AVX2 + FMA register tiles
  Avx512    ///< AVX-512 F/VL/BW/DQ register tiles
};

/// \brief "generic", "avx2" or "avx512".
inline const char* simdPathName(SimdPath path) {
  switch (path) {
    case SimdPath::Avx2:
      return "avx2";
    case SimdPath::Avx512:
      return "avx512";
    case SimdPath::Generic:
      break;
  }
  return "generic";
}

/// \brief The path named \p name ("generic", "avx2" or "avx512").
/// \throws InvalidArgument for any other name
inline SimdPath parseSimdPath(const std::string& name) {
  for (SimdPath p : {SimdPath::Generic, SimdPath::Avx2, SimdPath::Avx512})
    if (name == simdPathName(p)) return p;
  detail::raise<InvalidArgument>("parseSimdPath(): unknown SIMD path '", name,
                                 "' (expected generic, avx2 or avx512)");
}

namespace detail {

/// What the CPU (and the operating system, which must save the wider registers) can run.
struct CpuSimdSupport {
  bool avx2 = false;    ///< AVX2 and FMA
  bool avx512 = false;  ///< AVX-512 F, VL, BW and DQ, besides AVX2 and FMA
};

inline CpuSimdSupport detectCpuSimd() {
  CpuSimdSupport s;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // __builtin_cpu_supports also checks that the OS enabled the register state (XCR0).
  __builtin_cpu_init();
  s.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  s.avx512 = s.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
  // No run-time check here: a path exists only when the flags enable it, and then the program
  // can run only on a CPU that has it.
  s.avx2 = TSNN_SIMD_HAS_AVX2 != 0;
  s.avx512 = TSNN_SIMD_HAS_AVX512 != 0;
#endif
  return s;
}

/// The CPU's support, detected once. Writable for the tests only, which pretend that a CPU lacks
/// a path to see the refusals; nothing else may change it.
inline CpuSimdSupport& cpuSimdSupport() {
  static CpuSimdSupport s = detectCpuSimd();
  return s;
}

/// What the CPU lacks for \p path, for the error messages ("" when it has everything).
inline const char* simdPathNeeds(SimdPath path) {
  switch (path) {
    case SimdPath::Avx2:
      return "AVX2 and FMA";
    case SimdPath::Avx512:
      return "AVX-512 F, VL, BW and DQ";
    case SimdPath::Generic:
      break;
  }
  return "";
}

}  // namespace detail

/// \brief True when this build has a body for \p path (see TSNN_SIMD_DISPATCH).
inline bool simdPathCompiled(SimdPath path) {
  switch (path) {
    case SimdPath::Avx2:
      return TSNN_SIMD_HAS_AVX2 != 0;
    case SimdPath::Avx512:
      return TSNN_SIMD_HAS_AVX512 != 0;
    case SimdPath::Generic:
      break;
  }
  return true;
}

/// \brief True when this build has \p path and this CPU can run it.
inline bool simdPathSupported(SimdPath path) {
  if (!simdPathCompiled(path)) return false;
  const detail::CpuSimdSupport& cpu = detail::cpuSimdSupport();
  switch (path) {
    case SimdPath::Avx2:
      return cpu.avx2;
    case SimdPath::Avx512:
      return cpu.avx512;
    case SimdPath::Generic:
      break;
  }
  return true;
}

/// \brief The fastest path that this build and CPU support: avx512, else avx2, else generic.
inline SimdPath bestSimdPath() {
  for (SimdPath p : {SimdPath::Avx512, SimdPath::Avx2})
    if (simdPathSupported(p)) return p;
  return SimdPath::Generic;
}

namespace detail {

/// Throws the refusal of \p path by \p caller unless this build and CPU can run it.
inline void requireSimdPath(const char* caller, SimdPath path) {
  if (!simdPathCompiled(path))
    raise<InvalidArgument>(caller, "this build has no ", simdPathName(path),
                           " path (it needs GCC or clang on x86-64, or flags that enable ",
                           simdPathNeeds(path), ")");
  if (!simdPathSupported(path))
    raise<InvalidArgument>(caller, "this CPU cannot run the ", simdPathName(path),
                           " path (it needs ", simdPathNeeds(path), "); the best it can run is ",
                           simdPathName(bestSimdPath()));
}

/// The path that TSNN_SIMD asks for, given its value (nullptr or empty when unset: the best).
/// \throws InvalidArgument naming the variable for an unknown path or one this CPU lacks
inline SimdPath simdPathFromEnvironment(const char* value) {
  if (value == nullptr || *value == '\0') return bestSimdPath();
  const std::string name(value);
  for (SimdPath p : {SimdPath::Generic, SimdPath::Avx2, SimdPath::Avx512})
    if (name == simdPathName(p)) {
      requireSimdPath(("TSNN_SIMD=" + name + ": ").c_str(), p);
      return p;
    }
  raise<InvalidArgument>("TSNN_SIMD=", name,
                         ": unknown SIMD path (expected generic, avx2 or "
                         "avx512)");
}

/// The selected path as an int, or -1 until the first simdPath() call resolves it.
inline std::atomic<int>& simdPathSlot() {
  static std::atomic<int> slot{-1};
  return slot;
}

}  // namespace detail

/// \brief The path the kernels run now. The first call reads TSNN_SIMD (unless setSimdPath()
/// came first); later calls only load the stored choice.
/// \throws InvalidArgument when TSNN_SIMD names an unknown path or one this build or CPU lacks
/// (on every call, until setSimdPath() picks one)
inline SimdPath simdPath() {
  std::atomic<int>& slot = detail::simdPathSlot();
  int v = slot.load(std::memory_order_relaxed);
  if (v < 0) {
    const int resolved =
        static_cast<int>(detail::simdPathFromEnvironment(std::getenv("TSNN_SIMD")));
    // A concurrent setSimdPath() wins over the environment.
    if (slot.compare_exchange_strong(v, resolved, std::memory_order_relaxed)) v = resolved;
  }
  return static_cast<SimdPath>(v);
}

/// \brief Makes the kernels run \p path from their next call on (calls under way finish on the
/// path they started with).
/// \throws InvalidArgument when this build has no such path or this CPU cannot run it
inline void setSimdPath(SimdPath path) {
  detail::requireSimdPath("setSimdPath(): ", path);
  detail::simdPathSlot().store(static_cast<int>(path), std::memory_order_relaxed);
}

}  // namespace tsnn
