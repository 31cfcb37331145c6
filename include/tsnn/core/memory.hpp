#pragma once
/// \file
/// \brief Transparent huge pages for the large activation buffers.
///
/// Why. At widths where a batch's activations take hundreds of megabytes, every connection of a
/// random sparse topology gathers one neuron's row from anywhere in such a buffer. With 4 KiB
/// pages nearly every gather also misses the TLB (a 512 MB buffer spans 131,072 pages, the
/// second-level TLB holds a few thousand), and the page walk adds to a latency that already
/// bounds the kernels. With 2 MiB pages the same buffer spans 256 pages. Linux's default policy
/// (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise on Debian) backs memory with huge
/// pages only where the program asks, with madvise(MADV_HUGEPAGE); adviseHugePages() asks, on
/// freshly allocated and still untouched memory, so the first touch faults in huge pages.
/// Elsewhere (another OS, or THP disabled) it does nothing.

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tsnn {

/// Buffers smaller than this are left alone: they fit the TLB's reach anyway, and the advice
/// would cover none or only part of them.
inline constexpr std::size_t kHugePageAdviceBytes = std::size_t{8} << 20;

/// \brief Asks the OS to back the 2 MiB-aligned interior of [p, p + bytes) with transparent huge
/// pages, when bytes >= kHugePageAdviceBytes. Advice only: failure is ignored (the memory works
/// the same with small pages), and nothing is read or written.
inline void adviseHugePages(const void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p == nullptr || bytes < kHugePageAdviceBytes) return;
  constexpr std::uintptr_t kHuge = std::uintptr_t{2} << 20;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

/// \brief Eigen's resize() (contents undefined unless the size is unchanged), followed by
/// adviseHugePages() on the new allocation when it took one.
template <class Derived>
void resizeWithHugePages(Eigen::PlainObjectBase<Derived>& m, Eigen::Index rows, Eigen::Index cols) {
  const auto* before = m.data();
  const Eigen::Index size = m.size();
  m.resize(rows, cols);
  if (m.data() != before || m.size() != size)
    adviseHugePages(m.data(),
                    static_cast<std::size_t>(m.size()) * sizeof(typename Derived::Scalar));
}

/// \brief v.reserve(n), and when that needs a new allocation for an empty vector,
/// adviseHugePages() on it before anything touches it.
template <class T, class A>
void reserveWithHugePages(std::vector<T, A>& v, std::size_t n) {
  if (v.capacity() >= n) return;
  if (!v.empty()) {
    v.reserve(n);  // the elements are copied in, touching the pages: no advice
    return;
  }
  std::vector<T, A> fresh;
  fresh.reserve(n);
  adviseHugePages(fresh.data(), n * sizeof(T));
  v.swap(fresh);
}

/// \brief v.assign(n, value) into storage that, when it is newly allocated, was advised to use
/// huge pages before the assignment touched it (reserveWithHugePages()).
template <class T, class A>
void assignWithHugePages(std::vector<T, A>& v, std::size_t n, const T& value) {
  if (v.capacity() < n) {
    v.clear();
    reserveWithHugePages(v, n);
  }
  v.assign(n, value);
}

}  // namespace tsnn
