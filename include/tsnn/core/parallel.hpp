#pragma once
/// \file
/// \brief The OpenMP shims: every use of the OpenMP runtime goes through these, so that the
/// library builds and runs (serially) without OpenMP.
///
/// Team sizes travel as values: a caller says how many threads an operation may use with a
/// Threads value, and the operation opens its region with `num_threads`. Nothing here changes
/// the OpenMP runtime's process-wide settings (omp_set_num_threads and friends): a program that
/// trains a network keeps the OpenMP defaults it had, for its own regions too. The runtime may
/// still grant a smaller team than asked for (OMP_THREAD_LIMIT, nested regions, no OpenMP at
/// all), so every region reads its real team size with teamSize() and works for any size.

#include <thread>

#include "tsnn/core/config.hpp"
#include "tsnn/core/errors.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace tsnn {

/// \brief Threads an OpenMP parallel region opened here would use (1 without OpenMP).
inline int maxThreads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// \brief True inside any OpenMP parallel region, active or not. Kernels use it to stay serial
/// there, so that the trainer's region is the only level of parallelism.
inline bool inParallel() {
#if defined(_OPENMP)
  // The nesting level, not omp_in_parallel(): a trainer's region with a team of one is
  // inactive, and kernels inside it must still not open (and create threads for) a nested one.
  return omp_get_level() > 0;
#else
  return false;
#endif
}

/// \brief This thread's number in the innermost parallel region (0 outside one or without
/// OpenMP).
inline int threadId() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// \brief Threads in the innermost parallel region (1 outside one or without OpenMP).
inline int teamSize() {
#if defined(_OPENMP)
  return omp_get_num_threads();
#else
  return 1;
#endif
}

/// \brief How many threads an operation may open its OpenMP region with: the runtime's default
/// team, one thread (no region at all), or an explicit count, passed to the region's
/// `num_threads` clause. Built only through the named constructors, so that neither a bool nor
/// a bare int can be mistaken for one.
class Threads {
 public:
  /// \brief The runtime's default team size (omp_get_max_threads(): OMP_NUM_THREADS or the
  /// number of cores).
  static constexpr Threads automatic() noexcept { return Threads(0); }
  /// \brief One thread: the operation runs on the calling thread and opens no region.
  static constexpr Threads serial() noexcept { return Threads(1); }
  /// \brief \p n threads; 0 means automatic().
  /// \throws InvalidArgument if \p n is negative
  static Threads count(int n) {
    if (n < 0)
      detail::raise<InvalidArgument>("Threads::count(): thread count must be >= 0, got ", n);
    return Threads(n);
  }

  /// \brief The count asked for, 0 for automatic().
  constexpr int requested() const noexcept { return m_n; }
  /// \brief The team size to ask a region for: requested(), or maxThreads() when automatic.
  int resolve() const { return m_n > 0 ? m_n : maxThreads(); }
  constexpr bool operator==(Threads o) const noexcept { return m_n == o.m_n; }
  constexpr bool operator!=(Threads o) const noexcept { return m_n != o.m_n; }

 private:
  explicit constexpr Threads(int n) noexcept : m_n(n) {}
  int m_n;
};

namespace detail {

/// Whether an operation allowed \p threads should open an OpenMP region here: there is more than
/// one thread to use and no region is open yet (inside one, e.g. a trainer's, it stays serial).
inline bool openRegion(Threads threads) { return !inParallel() && threads.resolve() > 1; }

/// One step of a spin-wait for another thread: the CPU's pause hint for the first few thousand
/// polls (the wait is expected to be microseconds), then a yield, so that a thread that waits
/// for one which is not running (more threads than cores) gives its core away.
inline void spinWait(unsigned& polls) {
  if (++polls < 4096) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  } else {
    std::this_thread::yield();
  }
}

}  // namespace detail

}  // namespace tsnn
