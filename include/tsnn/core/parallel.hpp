#pragma once
/// \file
/// \brief The OpenMP shims: every use of the OpenMP runtime goes through these, so that the
/// library builds and runs (serially) without OpenMP.

#include <thread>

#include "tsnn/core/config.hpp"

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

/// \brief Sets the number of threads later parallel regions use (a no-op without OpenMP).
inline void setThreads(int n) {
#if defined(_OPENMP)
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

namespace detail {

/// Whether a kernel asked to run in \p parallel should open an OpenMP region here: there is more
/// than one thread to use and no region is open yet (inside one, e.g. a trainer's, it stays
/// serial).
inline bool openRegion(bool parallel) { return parallel && maxThreads() > 1 && !inParallel(); }

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
