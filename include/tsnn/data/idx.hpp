#pragma once
/// \file
/// \brief Reader and writer for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.
///
/// IDX layout (all multi-byte integers big-endian):
///
///     offset 0   0x00 0x00           two zero bytes
///     offset 2   type                element type; 0x08 = unsigned byte (the only one supported)
///     offset 3   ndims               number of dimensions, >= 1
///     offset 4   ndims x uint32      size of each dimension, outermost first
///     then       prod(dims) x elem   the elements in row-major order (last index fastest)
///
/// and nothing after the data. MNIST images are 3-D (N x 28 x 28), labels 1-D (N).
///
/// A file whose first two bytes are 1f 8b is a gzip stream (RFC 1952) and is decompressed with
/// zlib while it is read; the file name does not matter. gzip support needs TSNN_HAS_ZLIB, which
/// the tsnn::tsnn CMake target defines when it finds zlib.
///
/// Limits: the element count prod(dims) must be at least 1 and at most 2^31, so that a corrupt
/// header cannot request an absurd allocation and every count fits Eigen::Index and int.

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#if defined(TSNN_HAS_ZLIB)
#include <zlib.h>
#endif

#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/byte_io.hpp"

namespace tsnn::data {

/// \brief Contents of an IDX file of unsigned bytes: the dimensions and the elements in row-major
/// order. Invariant (checked by readIdx and writeIdx): dims is non-empty, has at most 255 entries,
/// every entry is >= 1, and data.size() equals the product of dims, which is <= 2^31.
struct IdxArray {
  /// Dimension sizes, outermost first (e.g. {60000, 28, 28}).
  std::vector<std::uint32_t> dims;
  /// The elements, last index fastest.
  std::vector<std::uint8_t> data;
};

/// \brief IDX type byte of unsigned 8-bit elements, the only element type supported.
inline constexpr std::uint8_t kIdxUnsignedByte = 0x08;

/// \brief Largest element count accepted in an IDX file: 2^31.
inline constexpr std::uint64_t kIdxMaxElements = std::uint64_t{1} << 31;

}  // namespace tsnn::data

namespace tsnn::detail {

/// Human-readable name of an IDX type byte, for error messages.
inline const char* idxTypeName(std::uint8_t type) {
  switch (type) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "int16";
    case 0x0C:
      return "int32";
    case 0x0D:
      return "float32";
    case 0x0E:
      return "float64";
    default:
      return "unknown";
  }
}

/// "0x0d" for 13: type bytes and magic numbers are shown in hexadecimal.
inline std::string idxHex(std::uint8_t byte) {
  static const char* const kDigits = "0123456789abcdef";
  std::string s = "0x";
  s += kDigits[byte >> 4];
  s += kDigits[byte & 0x0F];
  return s;
}

/// "60000 x 28 x 28".
inline std::string idxDimsString(const std::vector<std::uint32_t>& dims) {
  std::ostringstream os;
  for (std::size_t i = 0; i < dims.size(); ++i) os << (i ? " x " : "") << dims[i];
  return os.str();
}

/// Product of dims, or kIdxMaxElements + 1 as soon as the running product exceeds the limit
/// (each factor is < 2^32 and the running product <= 2^31, so no step overflows 64 bits).
inline std::uint64_t idxElementCount(const std::vector<std::uint32_t>& dims) {
  std::uint64_t n = 1;
  for (std::uint32_t d : dims) {
    n *= d;
    if (n > data::kIdxMaxElements) return data::kIdxMaxElements + 1;
  }
  return n;
}

inline std::string idxErrno(int err) { return std::strerror(err); }

/// A byte source over a raw file or a gzip stream, chosen by the first two bytes (1f 8b = gzip).
/// read() returns fewer bytes than asked only at the end of the data; a read error throws
/// IoError, a corrupt gzip stream throws FormatError. A gzip stream that simply stops early
/// (zlib: "unexpected end of file") is not thrown at once: it reads as end of data and
/// truncationNote() describes it, so the caller can report what it expected and what it found.
class IdxInput {
 public:
  IdxInput(const std::string& path, const char* caller) : m_path(path), m_caller(caller) {
    errno = 0;
    m_file = std::fopen(path.c_str(), "rb");
    if (m_file == nullptr) {
      raise<IoError>(m_caller, ": cannot open '", m_path, "': ", idxErrno(errno));
    }
    // Peek at the first two bytes to recognise a gzip member header (RFC 1952: ID1 = 0x1f,
    // ID2 = 0x8b). The peeked bytes are replayed by read() for a raw file.
    m_peekLen = readRaw(m_peek, 2);
    if (m_peekLen == 2 && m_peek[0] == 0x1F && m_peek[1] == 0x8B) {
#if defined(TSNN_HAS_ZLIB)
      // Decompressed by hand with inflate rather than gzread, which silently skips bytes after
      // the last gzip member: here anything after the last member is a FormatError.
      std::fclose(m_file);
      m_file = nullptr;
      errno = 0;
      m_file = std::fopen(path.c_str(), "rb");
      if (m_file == nullptr) {
        raise<IoError>(m_caller, ": cannot open gzip file '", m_path, "': ", idxErrno(errno));
      }
      m_zin.resize(std::size_t{1} << 17);
      if (inflateInit2(&m_zs, 16 + MAX_WBITS) != Z_OK) {  // 16: expect a gzip wrapper
        raise<IoError>(m_caller, ": cannot initialise zlib for '", m_path, "'");
      }
      m_gzip = true;
#else
      std::fclose(m_file);
      m_file = nullptr;
      raise<IoError>(
          m_caller, ": '", m_path,
          "' is gzip-compressed, but tsnn was compiled without zlib support "
          "(TSNN_HAS_ZLIB is not defined); decompress it with gunzip or build with zlib");
#endif
    }
  }

  IdxInput(const IdxInput&) = delete;
  IdxInput& operator=(const IdxInput&) = delete;

  ~IdxInput() {
    if (m_file != nullptr) std::fclose(m_file);
#if defined(TSNN_HAS_ZLIB)
    if (m_gzip) inflateEnd(&m_zs);
#endif
  }

  /// True when the file is a gzip stream.
  bool gzip() const { return m_gzip; }

  /// Reads up to n bytes into buf; returns how many were read (< n only at the end of the data).
  std::size_t read(std::uint8_t* buf, std::size_t n) {
#if defined(TSNN_HAS_ZLIB)
    if (m_gzip) return readGzip(buf, n);
#endif
    std::size_t got = 0;
    while (m_peekPos < m_peekLen && got < n) buf[got++] = m_peek[m_peekPos++];
    return got + readRaw(buf + got, n - got);
  }

  /// Non-empty when a gzip stream ended before its end-of-stream marker.
  const std::string& truncationNote() const { return m_truncation; }

 private:
  std::size_t readRaw(std::uint8_t* buf, std::size_t n) {
    if (n == 0) return 0;
    errno = 0;
    const std::size_t got = std::fread(buf, 1, n, m_file);
    if (got < n && std::ferror(m_file)) {
      raise<IoError>(m_caller, ": cannot read '", m_path, "': ", idxErrno(errno));
    }
    return got;
  }

#if defined(TSNN_HAS_ZLIB)
  /// Inflates into buf until n bytes, the end of the last gzip member, or the end of the file.
  /// Concatenated members (RFC 1952 allows them) are read as one stream, as gzip -d does;
  /// any other bytes after a member are corruption.
  std::size_t readGzip(std::uint8_t* buf, std::size_t n) {
    std::size_t got = 0;
    while (got < n && !m_zdone) {
      if (m_zs.avail_in == 0) {
        m_zs.next_in = m_zin.data();
        m_zs.avail_in = static_cast<uInt>(readRaw(m_zin.data(), m_zin.size()));
        if (m_zs.avail_in == 0) {
          // The file ended inside a member (or before its trailer): report it as truncation.
          m_truncation = "the gzip stream is truncated (zlib: unexpected end of file)";
          m_zdone = true;
          break;
        }
      }
      const std::size_t want = std::min<std::size_t>(n - got, std::size_t{1} << 30);
      m_zs.next_out = buf + got;
      m_zs.avail_out = static_cast<uInt>(want);
      const int rc = inflate(&m_zs, Z_NO_FLUSH);
      got += want - m_zs.avail_out;
      if (rc == Z_STREAM_END) {
        // Another member may follow; anything else after the member is not gzip data.
        if (m_zs.avail_in < 2) {  // make sure a following member's two magic bytes are in view
          const std::size_t keep = m_zs.avail_in;
          if (keep == 1) m_zin[0] = m_zs.next_in[0];
          m_zs.next_in = m_zin.data();
          m_zs.avail_in =
              static_cast<uInt>(keep + readRaw(m_zin.data() + keep, m_zin.size() - keep));
        }
        if (m_zs.avail_in == 0) {
          m_zdone = true;
        } else if (m_zs.avail_in >= 2 && m_zs.next_in[0] == 0x1F && m_zs.next_in[1] == 0x8B) {
          inflateReset(&m_zs);
        } else {
          raise<FormatError>(m_caller, ": '", m_path,
                             "' is not a valid gzip stream (bytes that are not gzip data follow "
                             "the compressed data)");
        }
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        const std::string msg = m_zs.msg != nullptr ? m_zs.msg : zError(rc);
        raise<FormatError>(m_caller, ": '", m_path, "' is not a valid gzip stream (zlib: ", msg,
                           ")");
      }
    }
    return got;
  }
#endif

  std::string m_path;
  const char* m_caller;
  std::FILE* m_file = nullptr;
  std::uint8_t m_peek[2] = {0, 0};
  std::size_t m_peekLen = 0;
  std::size_t m_peekPos = 0;
  std::string m_truncation;
  bool m_gzip = false;
#if defined(TSNN_HAS_ZLIB)
  z_stream m_zs{};
  std::vector<std::uint8_t> m_zin;
  bool m_zdone = false;
#endif
};

/// " (the gzip stream is truncated ...)" when the input reported one, else "".
inline std::string idxTruncationSuffix(const IdxInput& in) {
  return in.truncationNote().empty() ? std::string() : " (" + in.truncationNote() + ")";
}

#if defined(TSNN_HAS_ZLIB)
/// \brief Writes the gzip stream (RFC 1952, as gzip -n writes it: no name, time 0) of \p head
/// followed by \p data to \p file, deflating at zlib's default level.
/// \throws IoError naming the temporary file if zlib or a write fails
inline void idxDeflateTo(AtomicFile& file, const unsigned char* head, std::size_t headBytes,
                         const std::uint8_t* data, std::size_t dataBytes) {
  z_stream zs{};
  // 16 + MAX_WBITS: a gzip wrapper around a deflate stream with the largest window.
  const int level = Z_DEFAULT_COMPRESSION, memLevel = 8;
  if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, memLevel, Z_DEFAULT_STRATEGY) != Z_OK)
    raise<IoError>(file.caller(), ": cannot initialise zlib to write '", file.tempPath(), "'");
  struct End {
    z_stream* zs;
    ~End() { deflateEnd(zs); }
  } end{&zs};
  std::vector<unsigned char> out(std::size_t{1} << 17);
  // Deflates n bytes at p (flush: Z_NO_FLUSH, or Z_FINISH for the last call) and writes what
  // comes out; zlib takes unsigned lengths, so the input goes in pieces of at most 2^30 bytes.
  const auto pump = [&](const unsigned char* p, std::size_t n, int flush) {
    do {
      const std::size_t piece = std::min<std::size_t>(n, std::size_t{1} << 30);
      zs.next_in = const_cast<unsigned char*>(p);  // zlib's API is not const-correct
      zs.avail_in = static_cast<uInt>(piece);
      p += piece;
      n -= piece;
      const int f = n == 0 ? flush : Z_NO_FLUSH;
      do {
        zs.next_out = out.data();
        zs.avail_out = static_cast<uInt>(out.size());
        if (deflate(&zs, f) == Z_STREAM_ERROR)
          raise<IoError>(file.caller(), ": zlib failed while compressing '", file.tempPath(), "'");
        file.write(out.data(), out.size() - zs.avail_out);
        // Output space left unused means deflate took all the input and, with Z_FINISH, ended
        // the stream (zlib.h: Z_FINISH must be repeated only while it fills avail_out).
      } while (zs.avail_out == 0);
    } while (n > 0);
  };
  pump(head, headBytes, Z_NO_FLUSH);
  pump(data, dataBytes, Z_FINISH);
}
#endif

/// Returns dir/base if it exists, else dir/base.gz if that exists, else throws IoError naming
/// both candidates. The uncompressed file wins when both exist because it reads faster.
inline std::string idxFindFile(const std::string& dir, const std::string& base,
                               const char* caller) {
  const std::filesystem::path raw = std::filesystem::path(dir) / base;
  const std::filesystem::path gz = std::filesystem::path(dir) / (base + ".gz");
  std::error_code ec;
  if (std::filesystem::exists(raw, ec)) return raw.string();
  if (std::filesystem::exists(gz, ec)) return gz.string();
  raise<IoError>(caller, ": cannot find '", base, "' in '", dir, "': tried '", raw.string(),
                 "' and '", gz.string(), "'");
}

}  // namespace tsnn::detail

namespace tsnn::data {

/// \brief Reads an IDX file of unsigned bytes, raw or gzip-compressed (detected by content).
/// \param path file to read.
/// \return the dimensions and the elements in row-major order.
/// \throws IoError if the file cannot be opened or read, or is gzip-compressed and tsnn was built
///   without zlib; the message names the path.
/// \throws FormatError if the header or the data is truncated, the magic number is wrong, the
///   element type is not 0x08, a dimension is 0, the element count exceeds 2^31, bytes follow
///   the data, or the gzip stream is corrupt; the message names the path and what was expected
///   and found.
inline IdxArray readIdx(const std::string& path) {
  using tsnn::detail::raise;
  constexpr const char* kCaller = "readIdx()";
  tsnn::detail::IdxInput in(path, kCaller);
  const auto note = [&in] { return tsnn::detail::idxTruncationSuffix(in); };

  std::uint8_t magic[4] = {0, 0, 0, 0};
  const std::size_t magicLen = in.read(magic, 4);
  if (magicLen < 4) {
    raise<FormatError>(kCaller, ": '", path, "' is truncated: expected a 4-byte IDX magic number, ",
                       "file has ", magicLen, " bytes", note());
  }
  if (magic[0] != 0 || magic[1] != 0) {
    raise<FormatError>(kCaller, ": '", path,
                       "' is not an IDX file: expected magic bytes 0x00 0x00, ", "found ",
                       tsnn::detail::idxHex(magic[0]), " ", tsnn::detail::idxHex(magic[1]));
  }
  const std::uint8_t type = magic[2];
  if (type != kIdxUnsignedByte) {
    raise<FormatError>(kCaller, ": '", path, "' has IDX element type ", tsnn::detail::idxHex(type),
                       " (", tsnn::detail::idxTypeName(type), "); only ",
                       tsnn::detail::idxHex(kIdxUnsignedByte), " (unsigned byte) is supported");
  }
  const std::size_t ndims = magic[3];
  if (ndims == 0) {
    raise<FormatError>(kCaller, ": '", path, "' declares 0 dimensions, expected at least 1");
  }

  std::vector<std::uint8_t> header(4 * ndims);
  const std::size_t headerLen = in.read(header.data(), header.size());
  if (headerLen < header.size()) {
    raise<FormatError>(kCaller, ": '", path, "' is truncated: expected ", header.size(),
                       " bytes of dimension sizes for ", ndims, " dimensions, file has ", headerLen,
                       note());
  }
  IdxArray out;
  out.dims.resize(ndims);
  tsnn::detail::ByteReader dims(header.data(), header.size(), 4, path, kCaller);
  for (std::size_t i = 0; i < ndims; ++i) {
    out.dims[i] = dims.u32be("dimension size");
    if (out.dims[i] == 0) {
      raise<FormatError>(kCaller, ": '", path, "' has dimension ", i, " of size 0 (dimensions ",
                         tsnn::detail::idxDimsString(out.dims), "), expected sizes >= 1");
    }
  }
  const std::uint64_t count = tsnn::detail::idxElementCount(out.dims);
  if (count > kIdxMaxElements) {
    raise<FormatError>(kCaller, ": '", path, "' declares dimensions ",
                       tsnn::detail::idxDimsString(out.dims),
                       ", more than the 2^31 elements supported");
  }

  // Grow the buffer as data actually arrives (doubling), so that a corrupt header in a small
  // file cannot make us allocate the full declared size up front.
  const std::size_t expected = static_cast<std::size_t>(count);
  std::size_t got = 0;
  while (got < expected) {
    const std::size_t chunk = std::min(expected - got, std::max<std::size_t>(got, 1U << 20));
    out.data.resize(got + chunk);
    const std::size_t n = in.read(out.data.data() + got, chunk);
    got += n;
    if (n < chunk) break;
  }
  if (got < expected) {
    raise<FormatError>(kCaller, ": '", path, "' is truncated: its header declares dimensions ",
                       tsnn::detail::idxDimsString(out.dims), ", so expected ", expected,
                       " data bytes, file has ", got, note());
  }

  // Nothing may follow the data; count what does, for the message.
  std::uint8_t extra[4096];
  std::size_t trailing = 0;
  for (std::size_t n; (n = in.read(extra, sizeof extra)) > 0;) trailing += n;
  if (trailing > 0) {
    raise<FormatError>(kCaller, ": '", path, "' has ", trailing,
                       " trailing bytes: expected exactly ", expected,
                       " data bytes for dimensions ", tsnn::detail::idxDimsString(out.dims));
  }
  if (!in.truncationNote().empty()) {
    // All data arrived but the gzip trailer (CRC-32 and length) is missing, so it is unverified.
    raise<FormatError>(kCaller, ": '", path, "' ends before the end of its gzip stream", note());
  }
  return out;
}

/// \brief Writes an IDX file of unsigned bytes atomically and durably (see AtomicFile): readers
/// never see a half-written file, and a failed write leaves the old one as it was.
/// \param path destination file.
/// \param array dimensions and elements to write.
/// \param gzip true to compress the file with gzip (requires TSNN_HAS_ZLIB).
/// \throws InvalidArgument if array breaks the IdxArray invariant (no dims, more than 255 dims, a
///   zero dimension, more than 2^31 elements, or data.size() differing from the product of dims).
/// \throws IoError if gzip is requested without zlib support, or creating, writing, flushing or
///   renaming the file fails; the temporary file is removed and the old file kept.
inline void writeIdx(const std::string& path, const IdxArray& array, bool gzip) {
  using tsnn::detail::raise;
  constexpr const char* kCaller = "writeIdx()";
  if (array.dims.empty() || array.dims.size() > 255) {
    raise<InvalidArgument>(kCaller, ": '", path, "': an IDX array needs 1 to 255 dimensions, got ",
                           array.dims.size());
  }
  for (std::size_t i = 0; i < array.dims.size(); ++i) {
    if (array.dims[i] == 0) {
      raise<InvalidArgument>(kCaller, ": '", path, "': dimension ", i, " is 0 (dimensions ",
                             tsnn::detail::idxDimsString(array.dims), ")");
    }
  }
  const std::uint64_t count = tsnn::detail::idxElementCount(array.dims);
  if (count > kIdxMaxElements) {
    raise<InvalidArgument>(kCaller, ": '", path, "': dimensions ",
                           tsnn::detail::idxDimsString(array.dims),
                           " hold more than the 2^31 elements supported");
  }
  if (count != array.data.size()) {
    raise<InvalidArgument>(kCaller, ": '", path, "': dimensions ",
                           tsnn::detail::idxDimsString(array.dims), " hold ", count,
                           " elements but data has ", array.data.size(), " bytes");
  }
#if !defined(TSNN_HAS_ZLIB)
  if (gzip) {
    raise<IoError>(kCaller, ": cannot write gzip file '", path,
                   "': tsnn was compiled without zlib support (TSNN_HAS_ZLIB is not defined)");
  }
#endif

  tsnn::detail::ByteWriter header;
  header.reserve(4 + 4 * array.dims.size());
  header.u8(0x00);
  header.u8(0x00);
  header.u8(kIdxUnsignedByte);
  header.u8(static_cast<std::uint8_t>(array.dims.size()));
  for (std::uint32_t d : array.dims) header.u32be(d);

  AtomicFile file(path, kCaller);
  if (gzip) {
#if defined(TSNN_HAS_ZLIB)
    tsnn::detail::idxDeflateTo(file, header.data(), header.size(), array.data.data(),
                               array.data.size());
#endif
  } else {
    file.write(header.data(), header.size());
    file.write(array.data.data(), array.data.size());
  }
  file.commit();
}

/// \brief Reads an IDX image file alone (e.g. unlabelled data to classify) as an N x d feature
/// matrix of pixel values converted to Scalar in [0, 255], not scaled; d = rows * cols for a 3-D
/// file, the second dimension for a 2-D one.
/// \param caller named in error messages (loadIdxPair() passes its own name).
/// \throws IoError, FormatError as readIdx; FormatError also if the file is not 2-D or 3-D.
template <class Scalar = float>
MatrixRowMajor<Scalar> loadIdxImages(const std::string& imagesPath,
                                     const char* caller = "loadIdxImages()") {
  const IdxArray images = readIdx(imagesPath);
  if (images.dims.size() != 2 && images.dims.size() != 3) {
    tsnn::detail::raise<FormatError>(caller, ": '", imagesPath, "' has ", images.dims.size(),
                                     " dimensions (", tsnn::detail::idxDimsString(images.dims),
                                     "), expected 3 (N x rows x cols) or 2 (N x features)");
  }
  const std::size_t n = images.dims[0];  // readIdx refuses zero dimensions
  const std::size_t d = images.data.size() / n;
  // IDX stores the last index fastest, which is exactly the row-major order of features.
  MatrixRowMajor<Scalar> features(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  Scalar* dst = features.data();
  for (std::size_t i = 0; i < images.data.size(); ++i) dst[i] = static_cast<Scalar>(images.data[i]);
  return features;
}

/// \brief Loads a labelled dataset from an IDX image file and an IDX label file.
/// \tparam Scalar floating-point type of the features.
/// \param imagesPath IDX file of N samples: 3-D (N x rows x cols, flattened row by row into
///   rows*cols features) or 2-D (N x d).
/// \param labelsPath 1-D IDX file of N labels.
/// \param numClasses number of classes; every label must be below it.
/// \return a dataset with N rows of pixel values converted to Scalar in [0, 255] (not scaled).
/// \throws InvalidArgument if numClasses < 1.
/// \throws IoError, FormatError as readIdx; FormatError also if the images are not 2-D or 3-D,
///   the labels are not 1-D, the two files disagree on N (the message names both files and
///   counts), or a label is >= numClasses (the message names the file, index and value).
template <class Scalar = float>
Dataset<Scalar> loadIdxPair(const std::string& imagesPath, const std::string& labelsPath,
                            int numClasses = 10) {
  using tsnn::detail::raise;
  constexpr const char* kCaller = "loadIdxPair()";
  if (numClasses < 1) {
    raise<InvalidArgument>(kCaller, ": numClasses is ", numClasses, ", expected at least 1");
  }
  MatrixRowMajor<Scalar> features = loadIdxImages<Scalar>(imagesPath, kCaller);
  const IdxArray labels = readIdx(labelsPath);
  if (labels.dims.size() != 1) {
    raise<FormatError>(kCaller, ": '", labelsPath, "' has ", labels.dims.size(), " dimensions (",
                       tsnn::detail::idxDimsString(labels.dims), "), expected 1 (N labels)");
  }
  const auto n = static_cast<std::size_t>(features.rows());
  if (labels.dims[0] != n) {
    raise<FormatError>(kCaller, ": '", imagesPath, "' holds ", n, " samples but '", labelsPath,
                       "' holds ", labels.dims[0], " labels");
  }
  Dataset<Scalar> ds;
  ds.numClasses = numClasses;
  ds.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int label = labels.data[i];
    if (label >= numClasses) {
      raise<FormatError>(kCaller, ": '", labelsPath, "' has label ", label, " at index ", i,
                         ", expected a value in [0, ", numClasses, ")");
    }
    ds.labels[i] = label;
  }
  ds.features = std::move(features);
  return ds;
}

/// \brief Loads MNIST or Fashion-MNIST (same file names and format) from a directory.
///
/// Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
/// t10k-labels-idx1-ubyte, each with or without a ".gz" suffix (the uncompressed file is used
/// when both exist). Debian's dataset-fashion-mnist package installs the .gz files in
/// /usr/share/datasets/fashion-mnist.
/// \tparam Scalar floating-point type of the features.
/// \param dir directory holding the four files.
/// \return {training set, test set}, 10 classes each, pixel values in [0, 255].
/// \throws IoError if a file is missing (listing the names tried) or unreadable.
/// \throws FormatError as loadIdxPair, or if test and training images differ in size.
template <class Scalar = float>
std::pair<Dataset<Scalar>, Dataset<Scalar>> loadMnist(const std::string& dir) {
  constexpr const char* kCaller = "loadMnist()";
  using tsnn::detail::idxFindFile;
  const std::string trainImages = idxFindFile(dir, "train-images-idx3-ubyte", kCaller);
  const std::string trainLabels = idxFindFile(dir, "train-labels-idx1-ubyte", kCaller);
  const std::string testImages = idxFindFile(dir, "t10k-images-idx3-ubyte", kCaller);
  const std::string testLabels = idxFindFile(dir, "t10k-labels-idx1-ubyte", kCaller);
  std::pair<Dataset<Scalar>, Dataset<Scalar>> sets{
      loadIdxPair<Scalar>(trainImages, trainLabels, 10),
      loadIdxPair<Scalar>(testImages, testLabels, 10)};
  if (sets.first.dim() != sets.second.dim())
    tsnn::detail::raise<FormatError>(kCaller, ": '", testImages, "' has ", sets.second.dim(),
                                     " features per image but '", trainImages, "' has ",
                                     sets.first.dim());
  return sets;
}

}  // namespace tsnn::data
