#pragma once
/// \file
/// \brief Compile-time configuration: the debug assertion and the compiler hints.
///
/// TSNN_ASSERT guards invariants inside hot loops. It defaults to assert(), so it disappears
/// with NDEBUG; define TSNN_ASSERT before including any tsnn header to route it elsewhere.

#include <cassert>

#ifndef TSNN_ASSERT
#define TSNN_ASSERT(x) assert(x)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TSNN_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define TSNN_RESTRICT __restrict__
#else
#define TSNN_PREFETCH(p) ((void)0)
#define TSNN_RESTRICT
#endif
