#pragma once
/// \file
/// \brief An in-memory 8-bit RGB image and a minimal PNG encoder for it (and for 8-bit gray).
///
/// Why a hand-written encoder: it adds no dependency for consumers (zlib is already optional in
/// tsnn's CMake target), and stb_image_write, the usual alternative, needs its implementation
/// macro defined in exactly one translation unit, which a header-only library cannot promise.
///
/// File layout written (PNG specification, ISO/IEC 15948):
///   signature  89 50 4E 47 0D 0A 1A 0A
///   chunks     length (4 bytes, big-endian, data only) | type (4 ASCII bytes) | data |
///              CRC-32 (4 bytes, big-endian) over type and data
///   IHDR       width, height (4 bytes each, big-endian), bit depth 8, colour type (2 = RGB,
///              0 = gray), compression 0, filter method 0, interlace 0
///   IDAT...    one zlib stream (RFC 1950) of the scanlines, split over chunks of at most
///              kPngIdatBytes; each scanline is a filter-type byte (always 0, "None") followed by
///              its pixels, left to right, rows top to bottom
///   IEND       empty
///
/// With TSNN_HAS_ZLIB the scanlines are deflated with zlib's compress2 and the CRCs come from
/// zlib's crc32. Without it the encoder still writes valid PNG files: the zlib stream uses
/// stored (uncompressed) deflate blocks, and CRC-32 and Adler-32 are computed here.

#include <array>
#include <cstddef>
#include <cstdint>
#include <ios>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/atomic_file.hpp"

#if defined(TSNN_HAS_ZLIB)
#include <zlib.h>
#endif

namespace tsnn {

/// \brief An 8-bit sRGB colour.
struct Rgb {
  std::uint8_t r = 0;
  std::uint8_t g = 0;
  std::uint8_t b = 0;

  friend bool operator==(const Rgb& a, const Rgb& b) {
    return a.r == b.r && a.g == b.g && a.b == b.b;
  }
  friend bool operator!=(const Rgb& a, const Rgb& b) { return !(a == b); }
};

/// \brief A width x height RGB image, row-major from the top-left corner.
///
/// Invariant (checked by every accessor and by writePng): rgb.size() == 3 * width * height, and
/// pixel (x, y) occupies rgb[3 * (y * width + x) + {0, 1, 2}] = {r, g, b}.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;

  Image() = default;

  /// \brief A width x height image filled with \p background.
  /// \throws InvalidArgument if a dimension is negative.
  Image(int w, int h, Rgb background = Rgb{255, 255, 255}) : width(w), height(h) {
    if (w < 0 || h < 0)
      detail::raise<InvalidArgument>("Image::Image(): negative size ", w, " x ", h);
    rgb.resize(3 * static_cast<std::size_t>(w) * static_cast<std::size_t>(h));
    fill(background);
  }

  /// \brief True if (x, y) is a pixel of the image.
  bool contains(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < height; }

  /// \brief Paints every pixel with \p c.
  void fill(Rgb c) {
    for (std::size_t i = 0; i + 2 < rgb.size(); i += 3) {
      rgb[i] = c.r;
      rgb[i + 1] = c.g;
      rgb[i + 2] = c.b;
    }
  }

  /// \brief Sets pixel (x, y).
  /// \throws InvalidArgument naming the pixel and the size if (x, y) is outside the image or the
  /// buffer does not hold 3 * width * height bytes.
  void set(int x, int y, Rgb c) {
    const std::size_t i = offset("Image::set()", x, y);
    rgb[i] = c.r;
    rgb[i + 1] = c.g;
    rgb[i + 2] = c.b;
  }

  /// \brief The colour of pixel (x, y).
  /// \throws InvalidArgument as set() does.
  Rgb at(int x, int y) const {
    const std::size_t i = offset("Image::at()", x, y);
    return Rgb{rgb[i], rgb[i + 1], rgb[i + 2]};
  }

 private:
  std::size_t offset(const char* caller, int x, int y) const {
    if (!contains(x, y))
      detail::raise<InvalidArgument>(caller, ": pixel (", x, ", ", y, ") is outside the ", width,
                                     " x ", height, " image");
    if (rgb.size() != 3 * static_cast<std::size_t>(width) * static_cast<std::size_t>(height))
      detail::raise<InvalidArgument>(
          caller, ": a ", width, " x ", height, " image needs ",
          3 * static_cast<std::size_t>(width) * static_cast<std::size_t>(height),
          " bytes, rgb has ", rgb.size());
    return 3 * (static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                static_cast<std::size_t>(x));
  }
};

/// Largest data field of one IDAT chunk; longer zlib streams are split over several chunks.
inline constexpr std::size_t kPngIdatBytes = std::size_t{1} << 16;

namespace detail {

/// CRC-32 of ISO 3309 / ITU-T V.42 (reflected polynomial 0xEDB88320, initial value and final
/// XOR 0xFFFFFFFF), the checksum PNG chunks carry. \p crc is the value returned for the bytes
/// before, 0 to start, as with zlib's crc32().
inline std::uint32_t pngCrc32(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFFU] ^ (crc >> 8);
  return ~crc;
}

/// Adler-32 of RFC 1950: A = 1 + sum of bytes, B = sum of the successive A values, both
/// mod 65521; the checksum is B * 65536 + A. Sums are reduced every 5552 bytes, the largest run
/// for which B cannot overflow 32 bits.
inline std::uint32_t pngAdler32(const std::uint8_t* data, std::size_t n) {
  constexpr std::uint32_t kMod = 65521;
  std::uint32_t a = 1;
  std::uint32_t b = 0;
  while (n > 0) {
    const std::size_t run = n < 5552 ? n : 5552;
    for (std::size_t i = 0; i < run; ++i) {
      a += data[i];
      b += a;
    }
    a %= kMod;
    b %= kMod;
    data += run;
    n -= run;
  }
  return (b << 16) | a;
}

/// A zlib stream (RFC 1950) holding \p raw in stored deflate blocks (RFC 1951, BTYPE 00):
/// header 78 01 (32 KiB window, no dictionary; 0x7801 is a multiple of 31 as FCHECK requires),
/// then blocks of at most 65535 bytes, each a header byte (bit 0 = BFINAL), LEN and ~LEN as
/// 16-bit little-endian, then the bytes, and finally the Adler-32 of \p raw, big-endian.
inline std::vector<std::uint8_t> zlibStored(const std::vector<std::uint8_t>& raw) {
  std::vector<std::uint8_t> out = {0x78, 0x01};
  out.reserve(raw.size() + raw.size() / 65535 * 5 + 11);
  std::size_t pos = 0;
  do {
    const std::size_t len = raw.size() - pos < 65535 ? raw.size() - pos : 65535;
    const bool last = pos + len == raw.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<std::uint8_t>(len & 0xFFU));
    out.push_back(static_cast<std::uint8_t>(len >> 8));
    out.push_back(static_cast<std::uint8_t>(~len & 0xFFU));
    out.push_back(static_cast<std::uint8_t>((~len >> 8) & 0xFFU));
    out.insert(out.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos),
               raw.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
  } while (pos < raw.size());
  const std::uint32_t adler = pngAdler32(raw.data(), raw.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>((adler >> shift) & 0xFFU));
  return out;
}

inline void pngPut32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>((v >> shift) & 0xFFU));
}

/// Appends one chunk: length, type, data, CRC-32 of type and data.
inline void pngChunk(std::vector<std::uint8_t>& out, const char (&type)[5],
                     const std::uint8_t* data, std::size_t n) {
  pngPut32(out, static_cast<std::uint32_t>(n));
  const std::size_t typeAt = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data, data + n);
#if defined(TSNN_HAS_ZLIB)
  // Chunks are at most kPngIdatBytes + 4 bytes here, so the length fits zlib's uInt.
  const std::uint32_t crc = static_cast<std::uint32_t>(
      ::crc32(0UL, out.data() + typeAt, static_cast<uInt>(out.size() - typeAt)));
#else
  const std::uint32_t crc = pngCrc32(0, out.data() + typeAt, out.size() - typeAt);
#endif
  pngPut32(out, crc);
}

/// The PNG file of a width x height image with \p channels bytes per pixel (3: RGB, 1: gray),
/// rows of pixels packed without padding in \p pixels.
inline std::vector<std::uint8_t> encodePngRaw(const char* caller, int width, int height,
                                              int channels, const std::uint8_t* pixels,
                                              std::size_t pixelBytes) {
  if (width <= 0 || height <= 0)
    raise<InvalidArgument>(caller, ": image is ", width, " x ", height,
                           "; PNG needs at least 1 x 1 pixels");
  const std::size_t w = static_cast<std::size_t>(width);
  const std::size_t h = static_cast<std::size_t>(height);
  const std::size_t expected = static_cast<std::size_t>(channels) * w * h;
  if (pixelBytes != expected)
    raise<InvalidArgument>(caller, ": a ", width, " x ", height, " image with ", channels,
                           channels == 1 ? " channel needs " : " channels needs ", expected,
                           " bytes, got ", pixelBytes);

  // Scanlines: filter byte 0 ("None") then the row's bytes unchanged.
  const std::size_t stride = static_cast<std::size_t>(channels) * w;
  std::vector<std::uint8_t> raw;
  raw.reserve((stride + 1) * h);
  for (std::size_t y = 0; y < h; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), pixels + y * stride, pixels + (y + 1) * stride);
  }

#if defined(TSNN_HAS_ZLIB)
  if (raw.size() > std::numeric_limits<uLong>::max() / 2)
    raise<InvalidArgument>(caller, ": a ", width, " x ", height,
                           " image is too large for zlib on this platform");
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<std::uint8_t> z(static_cast<std::size_t>(zlen));
  const int rc =
      compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) raise<Error>(caller, ": zlib compress2 failed with code ", rc);
  z.resize(static_cast<std::size_t>(zlen));
#else
  const std::vector<std::uint8_t> z = zlibStored(raw);
#endif

  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  png.reserve(z.size() + z.size() / kPngIdatBytes * 12 + 64);
  std::vector<std::uint8_t> ihdr;
  pngPut32(ihdr, static_cast<std::uint32_t>(width));
  pngPut32(ihdr, static_cast<std::uint32_t>(height));
  ihdr.push_back(8);                      // bit depth
  ihdr.push_back(channels == 3 ? 2 : 0);  // colour type: truecolour or greyscale
  ihdr.push_back(0);                      // compression method: deflate
  ihdr.push_back(0);                      // filter method: adaptive (per-row filter byte)
  ihdr.push_back(0);                      // no interlace
  pngChunk(png, "IHDR", ihdr.data(), ihdr.size());
  for (std::size_t pos = 0; pos < z.size(); pos += kPngIdatBytes) {
    const std::size_t n = z.size() - pos < kPngIdatBytes ? z.size() - pos : kPngIdatBytes;
    pngChunk(png, "IDAT", z.data() + pos, n);
  }
  pngChunk(png, "IEND", nullptr, 0);
  return png;
}

inline void writeBytesAtomically(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  tsnn::writeBytesAtomically(path, bytes.data(), bytes.size(), "writePng()");
}

}  // namespace detail

/// \brief The bytes of a PNG file (8-bit RGB) holding \p image.
/// \throws InvalidArgument naming the size if the image is empty or rgb does not hold
/// 3 * width * height bytes.
inline std::vector<std::uint8_t> encodePng(const Image& image) {
  return detail::encodePngRaw("encodePng()", image.width, image.height, 3, image.rgb.data(),
                              image.rgb.size());
}

/// \brief The bytes of an 8-bit grayscale PNG file of a width x height image, \p gray holding
/// one byte per pixel, rows top to bottom.
/// \throws InvalidArgument naming the size if the image is empty or gray has the wrong size.
inline std::vector<std::uint8_t> encodePngGray(int width, int height,
                                               const std::vector<std::uint8_t>& gray) {
  return detail::encodePngRaw("encodePngGray()", width, height, 1, gray.data(), gray.size());
}

/// \brief Writes \p image to \p path as an 8-bit RGB PNG file, atomically (see
/// writeFileAtomically): on any error the previous file at \p path, if any, is left intact.
/// \throws InvalidArgument (checked before the file is touched) if the image is empty or
/// inconsistent; IoError if the file cannot be written or renamed.
inline void writePng(const std::string& path, const Image& image) {
  detail::writeBytesAtomically(path, detail::encodePngRaw("writePng()", image.width, image.height,
                                                          3, image.rgb.data(), image.rgb.size()));
}

/// \brief Writes an 8-bit grayscale PNG file atomically (see writePng and encodePngGray).
/// \throws InvalidArgument if the image is empty or \p gray has the wrong size; IoError if the
/// file cannot be written or renamed.
inline void writePngGray(const std::string& path, int width, int height,
                         const std::vector<std::uint8_t>& gray) {
  detail::writeBytesAtomically(
      path, detail::encodePngRaw("writePngGray()", width, height, 1, gray.data(), gray.size()));
}

}  // namespace tsnn
