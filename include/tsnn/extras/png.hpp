#pragma once
/// \file
/// \brief An in-memory 8-bit RGB image and PNG files of it (and of 8-bit gray images), encoded by
/// stb_image_write (Debian libstb-dev, <stb/stb_image_write.h>) and written through the atomic
/// writer of tsnn/io/atomic_file.hpp. Part of the optional tsnn::extras CMake target, which
/// finds stb.
///
/// stb_image_write is itself a header whose implementation is compiled where
/// STB_IMAGE_WRITE_IMPLEMENTATION is defined, which a header-only library cannot arrange to
/// happen in exactly one translation unit. This header therefore compiles it with
/// STB_IMAGE_WRITE_STATIC: every stb function is static, so each translation unit that includes
/// png.hpp holds its own private copy, and any number of them link together without duplicate
/// symbols. (The inline functions below call those static copies; every translation unit
/// compiles them from the same text, so whichever definition the linker keeps behaves alike.)
/// STBI_WRITE_NO_STDIO leaves out stb's own file functions (files are written by tsnn).
/// A translation unit that includes png.hpp cannot also include stb_image_write.h itself; other
/// translation units of the same program may, with or without their own implementation.

#include <climits>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/atomic_file.hpp"

#if defined(INCLUDE_STB_IMAGE_WRITE_H)
// This header compiles a private copy of stb_image_write (see above).
#error "include stb_image_write.h and tsnn/extras/png.hpp in different translation units"
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  // stb's BMP, TGA, HDR and JPEG writers
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
#endif
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef STBI_WRITE_NO_STDIO
#undef STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic pop
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

namespace detail {

/// Collects what stbi_write_png_to_func() writes. stb calls the function from C code that
/// cannot unwind, so a failed allocation is recorded instead of thrown.
struct PngSink {
  std::vector<std::uint8_t> bytes;
  bool failed = false;

  static void append(void* context, void* data, int size) {
    auto* sink = static_cast<PngSink*>(context);
    if (sink->failed || size <= 0) return;
    const auto* p = static_cast<const std::uint8_t*>(data);
    try {
      sink->bytes.insert(sink->bytes.end(), p, p + size);
    } catch (const std::bad_alloc&) {
      sink->failed = true;
    }
  }
};

/// The PNG file of a width x height image with \p channels bytes per pixel (3: RGB, 1: gray),
/// rows of pixels packed without padding in \p pixels, top row first.
/// \throws InvalidArgument naming \p caller and the sizes if the image is empty, \p pixelBytes
/// is not channels x width x height, or the image is too large for stb_image_write (whose
/// sizes are ints); Error if stb cannot allocate its buffers
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
  // stb forms (stride + 1) x height, the filtered scanlines, and its deflate output in ints.
  const std::size_t stride = static_cast<std::size_t>(channels) * w;
  if ((stride + 1) * h > static_cast<std::size_t>(INT_MAX) / 2)
    raise<InvalidArgument>(caller, ": a ", width, " x ", height, " image with ", channels,
                           channels == 1 ? " channel" : " channels",
                           " is too large for stb_image_write (", (stride + 1) * h,
                           " bytes of scanlines, at most ", INT_MAX / 2, ")");
  PngSink sink;
  const int ok = stbi_write_png_to_func(&PngSink::append, &sink, width, height, channels, pixels,
                                        static_cast<int>(stride));
  if (ok == 0 || sink.failed)
    raise<Error>(caller, ": stb_image_write could not encode a ", width, " x ", height,
                 " image (out of memory)");
  return std::move(sink.bytes);
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

/// \brief Writes \p image to \p path as an 8-bit RGB PNG file, atomically and durably (see
/// AtomicFile): on any error the previous file at \p path, if any, is left intact.
/// \throws InvalidArgument (checked before the file is touched) if the image is empty or
/// inconsistent; IoError if the file cannot be written or renamed.
inline void writePng(const std::string& path, const Image& image) {
  const std::vector<std::uint8_t> png = detail::encodePngRaw(
      "writePng()", image.width, image.height, 3, image.rgb.data(), image.rgb.size());
  writeBytesAtomically(path, png.data(), png.size(), "writePng()");
}

/// \brief Writes an 8-bit grayscale PNG file atomically (see writePng and encodePngGray).
/// \throws InvalidArgument if the image is empty or \p gray has the wrong size; IoError if the
/// file cannot be written or renamed.
inline void writePngGray(const std::string& path, int width, int height,
                         const std::vector<std::uint8_t>& gray) {
  const std::vector<std::uint8_t> png =
      detail::encodePngRaw("writePngGray()", width, height, 1, gray.data(), gray.size());
  writeBytesAtomically(path, png.data(), png.size(), "writePngGray()");
}

}  // namespace tsnn
