#pragma once
/// \file
/// \brief Binary fields written and read in a fixed byte order, whatever the host's, so that
/// files move between machines: the one byte reader and writer of the checkpoint and IDX formats.
/// Writers stream to a sink or count; readers read from memory or from a file a window at a time.
///
/// Integers are little-endian unless a function says big-endian (IDX headers are big-endian).
/// Signed integers are two's complement; floating-point numbers are IEEE 754 and travel as the
/// bit pattern of a u32 (binary32) or u64 (binary64). Every read is bounds-checked and a short
/// read throws FormatError naming the caller, the file, what was being read and where.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "tsnn/core/config.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/io/crc32.hpp"

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

/// \brief True where the host stores integers and floats least significant byte first, as the
/// files do: arrays then travel as they lie in memory instead of byte by byte.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
inline constexpr bool kLittleEndianHost = true;
#else
inline constexpr bool kLittleEndianHost = false;
#endif

/// \brief Appends binary fields to a byte string, in one of three modes:
///   - in memory (the default): everything stays in buffer();
///   - streaming (a Sink): bytes go to the sink in blocks of about blockBytes, so at most one
///     block is held, and crc() is the CRC-32 of everything written so far;
///   - counting (counter()): nothing is stored, size() counts what would have been written. A
///     format whose sizes precede their contents writes each part twice, counting first, which
///     is what lets a streaming writer never seek back.
class ByteWriter {
 public:
  /// Receives the bytes of a streaming writer, in order.
  using Sink = std::function<void(const unsigned char*, std::size_t)>;

  ByteWriter() = default;
  explicit ByteWriter(Sink sink, std::size_t blockBytes = std::size_t{1} << 20)
      : m_sink(std::move(sink)), m_block(std::max<std::size_t>(blockBytes, 1)) {
    m_buf.reserve(m_block + kLargestField);  // so that the buffer never grows
  }
  /// A writer that only counts.
  static ByteWriter counter() {
    ByteWriter w;
    w.m_counting = true;
    return w;
  }

  void reserve(std::size_t n) {
    if (!m_counting && !m_sink) m_buf.reserve(n);
  }
  bool counting() const { return m_counting; }

  /// The low \p bytes bytes of \p v, least significant first.
  void unsignedLe(std::uint64_t v, std::size_t bytes) {
    if (m_counting) {
      m_passed += bytes;
      return;
    }
    for (std::size_t i = 0; i < bytes; ++i) m_buf.push_back(byteOf(v, i));
    passOnFullBlock();
  }
  /// The low \p bytes bytes of \p v, most significant first.
  void unsignedBe(std::uint64_t v, std::size_t bytes) {
    if (m_counting) {
      m_passed += bytes;
      return;
    }
    for (std::size_t i = bytes; i-- > 0;) m_buf.push_back(byteOf(v, i));
    passOnFullBlock();
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
  /// \p n scalars, each as scalar() writes it.
  template <class Scalar>
  void scalars(const Scalar* p, std::size_t n) {
    static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value);
    if constexpr (kLittleEndianHost) {
      bytes(p, n * sizeof(Scalar));
    } else {
      for (std::size_t k = 0; k < n; ++k) scalar(p[k]);
    }
  }
  /// \p n signed integers, each as index() writes it.
  template <class Index>
  void indices(const Index* p, std::size_t n) {
    static_assert(std::is_integral<Index>::value && std::is_signed<Index>::value);
    if constexpr (kLittleEndianHost) {
      bytes(p, n * sizeof(Index));  // two's complement, least significant byte first
    } else {
      for (std::size_t k = 0; k < n; ++k) index(p[k]);
    }
  }
  void bytes(const void* p, std::size_t n) {
    if (m_counting) {
      m_passed += n;
      return;
    }
    if (n == 0) return;
    if (m_sink && m_buf.size() + n > m_block) {
      passOn();
      if (n >= m_block) {
        // A large array goes to the sink where it lies.
        pass(static_cast<const unsigned char*>(p), n);
        return;
      }
    }
    m_buf.append(static_cast<const char*>(p), n);
    passOnFullBlock();
  }

  /// Bytes written (or counted) so far.
  std::size_t size() const { return m_passed + m_buf.size(); }
  /// \brief CRC-32 of every byte written so far (not of a counting writer).
  std::uint32_t crc() const {
    return crc32(reinterpret_cast<const unsigned char*>(m_buf.data()), m_buf.size(), m_crc);
  }
  /// Sends what is buffered to the sink (a streaming writer; otherwise it does nothing).
  void flush() {
    if (m_sink) passOn();
  }

  /// In memory: everything written. Streaming: what is not yet passed on.
  const unsigned char* data() const { return reinterpret_cast<const unsigned char*>(m_buf.data()); }
  std::string& buffer() { return m_buf; }

 private:
  /// The most bytes that one call of unsignedLe() or unsignedBe() appends.
  static constexpr std::size_t kLargestField = 8;

  static char byteOf(std::uint64_t v, std::size_t i) {
    return static_cast<char>(static_cast<unsigned char>((v >> (8 * i)) & 0xFFu));
  }
  void passOnFullBlock() {
    if (m_sink && m_buf.size() >= m_block) passOn();
  }
  void passOn() {
    pass(reinterpret_cast<const unsigned char*>(m_buf.data()), m_buf.size());
    m_buf.clear();
  }
  void pass(const unsigned char* p, std::size_t n) {
    if (n == 0) return;
    m_crc = crc32(p, n, m_crc);
    m_sink(p, n);
    m_passed += n;
  }

  std::string m_buf;
  Sink m_sink;
  std::size_t m_block = 0;
  std::size_t m_passed = 0;  ///< bytes given to the sink, or counted
  std::uint32_t m_crc = 0;   ///< CRC-32 of the bytes given to the sink
  bool m_counting = false;
};

/// \brief Where a ByteReader's bytes come from, addressed by their offset in the file.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// \brief Copies the \p n bytes at file offset \p at to \p dst. Readers ask only for bytes
  /// inside the file, in increasing order save for short steps back.
  virtual void read(std::size_t at, void* dst, std::size_t n) = 0;
  /// \brief CRC-32 of the file's bytes [0, \p end), of the very bytes read() delivered where it
  /// delivered them (the rest is read now).
  virtual std::uint32_t crc32Through(std::size_t end) = 0;
};

/// \brief Bytes already in memory.
class MemoryByteSource final : public ByteSource {
 public:
  /// \param offset the file offset of data[0]
  MemoryByteSource(const unsigned char* data, std::size_t size, std::size_t offset = 0)
      : m_data(data), m_size(size), m_offset(offset) {}
  void read(std::size_t at, void* dst, std::size_t n) override {
    if (n > 0) std::memcpy(dst, m_data + (at - m_offset), n);
  }
  /// Only for bytes that start the file (offset 0): bytes before data[0] are not here.
  std::uint32_t crc32Through(std::size_t end) override {
    TSNN_ASSERT(m_offset == 0);
    return crc32(m_data, std::min(end, m_size));
  }

 private:
  const unsigned char* m_data;
  std::size_t m_size;
  std::size_t m_offset;
};

/// \brief Reads binary fields from a byte range of a file. Every read is bounds-checked; every
/// failure is a FormatError "<caller>: '<path>': <problem>", the problem naming what was being
/// read and its byte offset in the file.
///
/// A reader may cover a named region of the file (sub() makes one, e.g. a checkpoint section):
/// reads never pass the end of the region, and messages say which region ran short. The bytes
/// come from a ByteSource: memory, or a file read a window at a time (FileByteSource), so that a
/// reader never needs the whole file in memory.
class ByteReader {
 public:
  /// \brief A reader over \p size bytes in memory.
  /// \param data the bytes; they must outlive the reader
  /// \param offset position of data[0] in the file, for messages
  /// \param path names the file in messages
  /// \param caller the function named in messages, e.g. "loadCheckpoint()"
  ByteReader(const unsigned char* data, std::size_t size, std::size_t offset, std::string path,
             const char* caller)
      : ByteReader(std::make_shared<MemoryByteSource>(data, size, offset), offset, size,
                   std::move(path), caller) {}
  /// \brief A reader over the \p size bytes at file offset \p offset of \p source.
  ByteReader(std::shared_ptr<ByteSource> source, std::size_t offset, std::size_t size,
             std::string path, const char* caller)
      : m_source(std::move(source)),
        m_size(size),
        m_offset(offset),
        m_path(std::move(path)),
        m_caller(caller) {}

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
    std::string s(n, '\0');
    take(s.data(), n);
    return s;
  }

  /// An unsigned integer of \p bytes bytes (at most 8), least significant first.
  std::uint64_t unsignedLe(std::size_t bytes, const char* what) {
    unsigned char b[8];
    need(bytes, what);
    take(b, bytes);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(b[i]) << (8 * i);
    return v;
  }
  /// An unsigned integer of \p bytes bytes (at most 8), most significant first.
  std::uint64_t unsignedBe(std::size_t bytes, const char* what) {
    unsigned char b[8];
    need(bytes, what);
    take(b, bytes);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | b[i];
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
  /// \brief \p n scalars into \p out, each as scalar() reads it.
  template <class Scalar>
  void scalars(Scalar* out, std::size_t n, const char* what) {
    static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value);
    if constexpr (kLittleEndianHost) {
      needItems(n, sizeof(Scalar), what);
      take(out, n * sizeof(Scalar));
    } else {
      for (std::size_t k = 0; k < n; ++k) out[k] = scalar<Scalar>(what);
    }
  }
  /// \brief \p n signed integers into \p out, each as index() reads it.
  template <class Index>
  void indices(Index* out, std::size_t n, const char* what) {
    static_assert(std::is_integral<Index>::value && std::is_signed<Index>::value);
    if constexpr (kLittleEndianHost) {
      needItems(n, sizeof(Index), what);
      take(out, n * sizeof(Index));
    } else {
      for (std::size_t k = 0; k < n; ++k) out[k] = index<Index>(what);
    }
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
    ByteReader r(m_source, fileOffset(), n, m_path, m_caller);
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
  /// \p n items of \p itemBytes, without overflowing the product.
  void needItems(std::size_t n, std::size_t itemBytes, const char* what) const {
    if (n > remaining() / itemBytes)
      fail("truncated ", what, " at byte ", fileOffset(), ": needs ", n, " x ", itemBytes,
           " bytes, ", remaining(), (m_region.empty() ? " remain" : " remain in " + m_region));
  }
  /// The next \p n bytes (already checked) into \p dst.
  void take(void* dst, std::size_t n) {
    m_source->read(fileOffset(), dst, n);
    m_pos += n;
  }

  std::shared_ptr<ByteSource> m_source;
  std::size_t m_size;
  std::size_t m_pos = 0;
  std::size_t m_offset;
  std::string m_path;
  const char* m_caller;
  std::string m_regionKind;
  std::string m_region;
};

}  // namespace tsnn::detail
