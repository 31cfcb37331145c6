#pragma once
/// \file
/// \brief Binary fields written and read byte by byte, whatever the host's byte order, so that
/// files move between machines: the one byte reader and writer of the checkpoint and IDX formats.
///
/// Integers are little-endian unless a function says big-endian (IDX headers are big-endian).
/// Signed integers are two's complement; floating-point numbers are IEEE 754 and travel as the
/// bit pattern of a u32 (binary32) or u64 (binary64). Every read is bounds-checked and a short
/// read throws FormatError naming the caller, the file, what was being read and where.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "tsnn/core/errors.hpp"

namespace tsnn::detail {

/// \brief Two's complement reinterpretation of a u64 without implementation-defined conversion.
inline std::int64_t signedFromBits(std::uint64_t u) {
  if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(u);
  return -static_cast<std::int64_t>(~u) - 1;
}

/// \brief The \p bytes-byte two's complement value in the low bytes of \p v, sign-extended to 64
/// bits.
inline std::uint64_t signExtend(std::uint64_t v, std::size_t bytes) {
  if (bytes < 8 && ((v >> (8 * bytes - 1)) & 1u)) v |= ~std::uint64_t{0} << (8 * bytes);
  return v;
}

/// \brief "'TSNN'" for printable bytes, "'\x00\x01'" for others: bytes quoted in messages.
inline std::string printableBytes(const unsigned char* p, std::size_t n) {
  static const char* const hex = "0123456789abcdef";
  std::string s = "'";
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f) {
      s += static_cast<char>(p[i]);
    } else {
      s += "\\x";
      s += hex[p[i] >> 4];
      s += hex[p[i] & 0xFu];
    }
  }
  return s + "'";
}

/// \brief Appends binary fields to a byte string.
class ByteWriter {
 public:
  void reserve(std::size_t n) { m_buf.reserve(n); }

  /// The low \p bytes bytes of \p v, least significant first.
  void unsignedLe(std::uint64_t v, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) m_buf.push_back(byteOf(v, i));
  }
  /// The low \p bytes bytes of \p v, most significant first.
  void unsignedBe(std::uint64_t v, std::size_t bytes) {
    for (std::size_t i = bytes; i-- > 0;) m_buf.push_back(byteOf(v, i));
  }
  void u8(std::uint8_t v) { unsignedLe(v, 1); }
  void u32(std::uint32_t v) { unsignedLe(v, 4); }
  void u64(std::uint64_t v) { unsignedLe(v, 8); }
  void u32be(std::uint32_t v) { unsignedBe(v, 4); }
  void i32(std::int32_t v) { unsignedLe(static_cast<std::uint32_t>(v), 4); }
  void i64(std::int64_t v) { unsignedLe(static_cast<std::uint64_t>(v), 8); }
  void f32(float v) {
    static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559);
    std::uint32_t bits;
    std::memcpy(&bits, &v, 4);
    u32(bits);
  }
  void f64(double v) {
    static_assert(sizeof(double) == 8 && std::numeric_limits<double>::is_iec559);
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u64(bits);
  }
  /// A float as binary32, a double as binary64.
  template <class Scalar>
  void scalar(Scalar v) {
    static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value);
    if constexpr (sizeof(Scalar) == 4) {
      f32(v);
    } else {
      f64(v);
    }
  }
  /// A signed integer of any width: the low sizeof(Index) bytes of its two's complement value.
  template <class Index>
  void index(Index v) {
    unsignedLe(static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), sizeof(Index));
  }
  void bytes(const void* p, std::size_t n) { m_buf.append(static_cast<const char*>(p), n); }

  /// Overwrites the 8 bytes at \p at with \p v, little-endian (a size known only later).
  void patchU64(std::size_t at, std::uint64_t v) {
    for (std::size_t i = 0; i < 8; ++i) m_buf[at + i] = byteOf(v, i);
  }

  std::size_t size() const { return m_buf.size(); }
  const unsigned char* data() const { return reinterpret_cast<const unsigned char*>(m_buf.data()); }
  std::string& buffer() { return m_buf; }

 private:
  static char byteOf(std::uint64_t v, std::size_t i) {
    return static_cast<char>(static_cast<unsigned char>((v >> (8 * i)) & 0xFFu));
  }

  std::string m_buf;
};

/// \brief Reads binary fields from a byte range of a file. Every read is bounds-checked; every
/// failure is a FormatError "<caller>: '<path>': <problem>", the problem naming what was being
/// read and its byte offset in the file.
///
/// A reader may cover a named region of the file (sub() makes one, e.g. a checkpoint section):
/// reads never pass the end of the region, and messages say which region ran short.
class ByteReader {
 public:
  /// \param data the bytes; they must outlive the reader
  /// \param offset position of data[0] in the file, for messages
  /// \param path names the file in messages
  /// \param caller the function named in messages, e.g. "loadCheckpoint()"
  ByteReader(const unsigned char* data, std::size_t size, std::size_t offset, std::string path,
             const char* caller)
      : m_data(data), m_size(size), m_offset(offset), m_path(std::move(path)), m_caller(caller) {}

  /// \brief Throws FormatError "<caller>: '<path>': <args...>".
  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    raise<FormatError>(m_caller, ": '", m_path, "': ", std::forward<Args>(args)...);
  }

  std::size_t size() const { return m_size; }
  std::size_t remaining() const { return m_size - m_pos; }
  bool atEnd() const { return m_pos == m_size; }
  /// Position of the next byte in the file.
  std::size_t fileOffset() const { return m_offset + m_pos; }
  /// The next byte; remaining() of them may be read through it.
  const unsigned char* here() const { return m_data + m_pos; }
  /// What the reader covers, e.g. "section 'OPTS'"; empty for the whole file.
  const std::string& region() const { return m_region; }
  const std::string& path() const { return m_path; }
  const char* caller() const { return m_caller; }

  /// \brief Fails, naming \p what, unless \p n more bytes remain.
  void need(std::size_t n, const char* what) const {
    if (n > remaining())
      fail("truncated ", what, " at byte ", fileOffset(), ": needs ", n, " bytes, ", remaining(),
           (m_region.empty() ? " remain" : " remain in " + m_region));
  }
  void skip(std::size_t n, const char* what) {
    need(n, what);
    m_pos += n;
  }
  /// \brief The next \p n bytes as a string.
  std::string bytes(std::size_t n, const char* what) {
    need(n, what);
    std::string s(reinterpret_cast<const char*>(m_data + m_pos), n);
    m_pos += n;
    return s;
  }

  /// An unsigned integer of \p bytes bytes (at most 8), least significant first.
  std::uint64_t unsignedLe(std::size_t bytes, const char* what) {
    need(bytes, what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i)
      v |= static_cast<std::uint64_t>(m_data[m_pos + i]) << (8 * i);
    m_pos += bytes;
    return v;
  }
  /// An unsigned integer of \p bytes bytes (at most 8), most significant first.
  std::uint64_t unsignedBe(std::size_t bytes, const char* what) {
    need(bytes, what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | m_data[m_pos + i];
    m_pos += bytes;
    return v;
  }
  std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(unsignedLe(1, what)); }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(unsignedLe(4, what)); }
  std::uint64_t u64(const char* what) { return unsignedLe(8, what); }
  std::uint32_t u32be(const char* what) { return static_cast<std::uint32_t>(unsignedBe(4, what)); }
  std::int32_t i32(const char* what) {
    return static_cast<std::int32_t>(signedFromBits(signExtend(unsignedLe(4, what), 4)));
  }
  std::int64_t i64(const char* what) { return signedFromBits(unsignedLe(8, what)); }
  float f32(const char* what) {
    const std::uint32_t bits = u32(what);
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
  double f64(const char* what) {
    const std::uint64_t bits = u64(what);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  /// A float from binary32, a double from binary64.
  template <class Scalar>
  Scalar scalar(const char* what) {
    static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value);
    if constexpr (sizeof(Scalar) == 4) {
      return f32(what);
    } else {
      return f64(what);
    }
  }
  /// A signed integer stored in sizeof(Index) bytes.
  template <class Index>
  Index index(const char* what) {
    return static_cast<Index>(
        signedFromBits(signExtend(unsignedLe(sizeof(Index), what), sizeof(Index))));
  }

  /// \brief Reads a u64 element count and checks that \p count elements of \p itemBytes each
  /// fit in what is left, so that the caller may allocate them: no count read this way makes an
  /// allocation larger than the data.
  std::size_t count(const char* what, std::size_t itemBytes) {
    const std::size_t at = fileOffset();
    const std::uint64_t n = u64(what);
    checkFits(n, itemBytes, what, at);
    return static_cast<std::size_t>(n);
  }
  /// \brief Fails unless \p n items of \p itemBytes bytes fit in what is left (the count was
  /// read at byte \p at).
  void checkFits(std::uint64_t n, std::size_t itemBytes, const char* what, std::size_t at) const {
    if (n > remaining() / itemBytes)
      fail("the ", what, " count at byte ", at, " is ", n, ", but only ", remaining(),
           " bytes remain", (m_region.empty() ? std::string() : " in its " + m_regionKind), " (",
           itemBytes, " bytes each)");
  }

  /// \brief A reader over the next \p n bytes, which this reader moves past; \p kind and
  /// \p name describe it in messages ("section", "'OPTS'").
  ByteReader sub(std::size_t n, const std::string& kind, const std::string& name) {
    need(n, (kind + " " + name).c_str());
    ByteReader r(m_data + m_pos, n, fileOffset(), m_path, m_caller);
    r.m_regionKind = kind;
    r.m_region = kind + " " + name;
    m_pos += n;
    return r;
  }

  /// \brief Fails unless everything was read; \p after says what the unexpected bytes follow
  /// when the reader has no region name ("the last section").
  void expectEnd(const char* after = "the data") const {
    if (m_pos == m_size) return;
    if (m_region.empty())
      fail(m_size - m_pos, " unexpected bytes after ", after, ", at byte ", fileOffset());
    fail(m_region, " has ", m_size - m_pos, " unexpected bytes after its contents, at byte ",
         fileOffset());
  }

 private:
  const unsigned char* m_data;
  std::size_t m_size;
  std::size_t m_pos = 0;
  std::size_t m_offset;
  std::string m_path;
  const char* m_caller;
  std::string m_regionKind;
  std::string m_region;
};

}  // namespace tsnn::detail
