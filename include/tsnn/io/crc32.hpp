#pragma once
/// \file
/// \brief CRC-32 as zlib, gzip and PNG define it: the reflected polynomial 0xEDB88320
/// (x^32 + x^26 + x^23 + x^22 + x^16 + x^12 + x^11 + x^10 + x^8 + x^7 + x^5 + x^4 + x^2 + x + 1),
/// initial value and final XOR 0xFFFFFFFF. The one CRC-32 of tsnn: checkpoints use it for their
/// checksum. CRC-32("123456789") = 0xCBF43926.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#if defined(TSNN_HAS_ZLIB)
#include <zlib.h>
#endif

namespace tsnn::detail {

/// \brief CRC-32 of \p n bytes at \p data, continuing from the CRC \p crc of the bytes before
/// them (0 to start), computed with a 256-entry table, so it needs no zlib:
/// crc32Portable(b, n, crc32Portable(a, m)) is the CRC of a followed by b.
inline std::uint32_t crc32Portable(const unsigned char* data, std::size_t n,
                                   std::uint32_t crc = 0) {
  // table[i] is the remainder of i * x^32 (i as 8 reflected bits) modulo the polynomial.
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

/// \brief The same CRC-32 as crc32Portable(), through zlib's faster crc32() when tsnn is built
/// with zlib (TSNN_HAS_ZLIB), else crc32Portable() itself.
inline std::uint32_t crc32(const unsigned char* data, std::size_t n, std::uint32_t crc = 0) {
#if defined(TSNN_HAS_ZLIB)
  uLong c = crc;
  while (n > 0) {  // zlib takes an unsigned length: feed it at most 2^30 bytes at a time
    const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
    c = ::crc32(c, data, static_cast<uInt>(chunk));
    data += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(c);
#else
  return crc32Portable(data, n, crc);
#endif
}

}  // namespace tsnn::detail
