#pragma once
/// \file
/// \brief Ids that tell sparsity patterns apart (see CsrMatrix::patternId()).

#include <atomic>
#include <cstdint>

namespace tsnn {
namespace detail {

/// A process-wide counter that gives every sparsity pattern a distinct id.
inline std::uint64_t nextPatternId() {
  static std::atomic<std::uint64_t> counter{1};
  return counter.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace tsnn
