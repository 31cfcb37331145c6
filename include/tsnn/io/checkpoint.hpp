#pragma once
/// \file
/// \brief Checkpoints: a Network (options, topology, weights, momentum, biases, neuron ids and
/// its random stream) together with the TrainingState of a run, in one versioned, checksummed
/// binary file. A network loaded from a checkpoint is bit for bit the one that was saved: same
/// forward pass, same pattern, same momentum, same neuron ids, same rng() stream.
///
/// Format version 1. Every integer is little-endian and written byte by byte whatever the host's
/// byte order, so files move between machines. Floating-point numbers are IEEE 754 and written as
/// the bit pattern of a u32 (binary32) or u64 (binary64). Field types: u32/u64 unsigned; i32/i64
/// two's complement; f64 binary64; S the network's Scalar (binary32 or binary64, as the header
/// says); I its Index (two's complement, index_bytes wide).
///
///     offset    size  field
///     0         8     magic "TSNNCKPT"
///     8         4     u32 format version (1)
///     12        8     u64 size of the whole file in bytes, checksum included
///     20        4     u32 scalar_bytes: 4 (float) or 8 (double)
///     24        4     u32 index_bytes: 1, 2, 4 or 8
///     28              six sections, in the order below, each
///                       4  tag, four ASCII characters
///                       8  u64 payload size in bytes
///                       .  payload
///     size - 4  4     u32 CRC-32 of bytes [0, size - 4): zlib's crc32 (reflected polynomial
///                     0xEDB88320, initial and final XOR 0xFFFFFFFF)
///
/// Section payloads:
///
///     "OPTS"  NetworkOptions
///             u64 n, n x i64 sizes (input, hidden..., output; equal to the layer widths, which
///               is what Network::options().sizes holds after neuron removal)
///             f64 epsilon, u32 init, u32 hiddenActivation, f64 alpha, u32 loss,
///             u32 outputActivation, f64 dropout, u64 seed, u32 allocation
///             Enumerations are stored as the positions of their enumerators:
///               WeightInit      HeUniform 0, XavierUniform 1, Normal 2
///               ActivationKind  Identity 0, ReLU 1, LeakyReLU 2, AllReLU 3, Sigmoid 4, Tanh 5
///               LossKind        SoftmaxCrossEntropy 0, MeanSquaredError 1
///               DensityAllocation  ErdosRenyi 0, ErdosRenyiKernel 1
///     "NRNG"  4 x u64: state of Network::rng() (xoshiro256**; never all zero)
///     "TRST"  TrainingState
///             i32 epoch, 4 x u64 shuffleRng, u64 step, f64 learningRate, i32 skippedInARow,
///             u64 n, n x i64 order,
///             u64 h, h x EpochRecord of 92 bytes each: i32 epoch, f64 trainLoss,
///               f64 trainAccuracy, f64 testAccuracy, f64 epochSeconds, f64 evolveSeconds,
///               i64 nnz, i64 hiddenNeurons, i64 neuronsRemoved, i64 skippedBatches,
///               i64 clippedBatches, f64 meanStaleness
///             u64 c, c bytes config (any bytes, NUL included),
///             u32 topologyPending (0 or 1)
///     "LAYR"  u64 L (number of layers, >= 1), then for each layer (its weights are rows x cols =
///             n_out x n_in; row j holds the connections into output neuron j):
///               i64 rows, i64 cols, u64 nnz,
///               (rows + 1) x I rowPtr, nnz x I colIdx, nnz x S values, nnz x S velocity,
///               rows x S bias, rows x S biasVelocity
///             The momentum (velocity) is aligned with the values by position and shares their
///             count, so it cannot be misaligned in a well-formed file.
///     "NIDS"  for each hidden layer l = 0 .. L - 2: u64 n (= rows of layer l), n x i64 ids
///             (original neuron ids, strictly increasing, non-negative)
///     "PREP"  Preprocessing: u64 n (0, or the network's inputs), n x f64 mean,
///             n x f64 scale (finite; scales > 0)
///
/// The TrainingState comes before the layers so that readCheckpointInfo() finds the epoch after
/// a few hundred bytes.
///
/// Reading checks, in this order: magic, version, length (truncation, trailing bytes), checksum,
/// scalar and index sizes, then every section. Every count is checked against the bytes left in
/// its section before anything is allocated for it, so no allocation made while loading exceeds
/// the size of the file, with one exception: the input width of the first layer is a size, not a
/// count of stored items, and the layer's transpose index holds inputs + 1 indices for it. It is
/// accepted up to max(2^24, 64 x the file size), so a crafted file can make the loader allocate
/// at most 64 MiB, or 256 x its own size, for it. A checkpoint is loaded only into
/// the Scalar and Index types it was saved with: it is never converted, since a conversion could
/// not be exact.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(TSNN_HAS_ZLIB)
#include <zlib.h>
#endif

#include "tsnn/nn/activation.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/nn/loss.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"

namespace tsnn {

/// \brief The checkpoint format version this build writes and reads.
inline constexpr std::uint32_t kCheckpointVersion = 1;

/// \brief How raw features become network inputs: x' = (x - mean_j) / scale_j per feature, the
/// parameters of a fitted data::StandardScaler (meanParameters(), scaleParameters()). Stored with
/// the model so that a program using it later (examples/predict.cpp) prepares inputs exactly as
/// training did. Empty vectors: no preprocessing.
struct Preprocessing {
  std::vector<double> mean, scale;
};

/// \brief What readCheckpointInfo() reports about a checkpoint without loading it.
struct CheckpointInfo {
  std::uint32_t formatVersion = 0;
  std::uint32_t scalarBytes = 0;  ///< 4: float, 8: double
  std::uint32_t indexBytes = 0;   ///< width of the signed index type
  std::uint64_t fileBytes = 0;
  /// The saved NetworkOptions; options.sizes are the layer widths (input, hidden..., output).
  NetworkOptions options;
  int epoch = 0;           ///< TrainingState::epoch: epochs completed
  std::uint64_t step = 0;  ///< TrainingState::step: minibatches done
};

namespace detail {

inline constexpr char kCheckpointMagic[8] = {'T', 'S', 'N', 'N', 'C', 'K', 'P', 'T'};
/// magic + version + file size + scalar_bytes + index_bytes
inline constexpr std::size_t kCheckpointHeaderBytes = 28;
inline constexpr std::size_t kCheckpointTrailerBytes = 4;
/// tag + payload size
inline constexpr std::size_t kCheckpointSectionHeaderBytes = 12;
/// Bytes of one EpochRecord: 1 x i32, 6 x f64, 5 x i64.
inline constexpr std::size_t kCheckpointRecordBytes = 4 + 6 * 8 + 5 * 8;
/// Input widths up to max(kCheckpointMinInputLimit, kCheckpointInputsPerByte x file size) are
/// accepted: a real network has at least a few connections per input (SET: about eps), each
/// stored in 8 or more bytes, so this bound only refuses files that cannot be genuine.
inline constexpr long long kCheckpointMinInputLimit = 1LL << 24;
inline constexpr long long kCheckpointInputsPerByte = 64;
/// Bytes of the fixed fields that start the "TRST" section (epoch ... skippedInARow).
inline constexpr std::size_t kCheckpointStateHeadBytes = 4 + 4 * 8 + 8 + 8 + 4;

/// \brief CRC-32 as zlib's crc32() computes it (reflected polynomial 0xEDB88320, initial and
/// final XOR with 0xFFFFFFFF), continuing from \p crc; table-driven, so it needs no zlib.
inline std::uint32_t crc32Portable(const unsigned char* data, std::size_t n,
                                   std::uint32_t crc = 0) {
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

/// \brief The checkpoint checksum: zlib's crc32 when tsnn was built with zlib, else the
/// identical crc32Portable().
inline std::uint32_t crc32(const unsigned char* data, std::size_t n) {
#if defined(TSNN_HAS_ZLIB)
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const std::size_t chunk = std::min<std::size_t>(n, std::size_t{1} << 30);
    crc = ::crc32(crc, data, static_cast<uInt>(chunk));
    data += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
#else
  return crc32Portable(data, n);
#endif
}

/// "float", "double", or "<n>-byte float" for a scalar width.
inline std::string checkpointScalarName(std::uint64_t bytes) {
  if (bytes == 4) return "float";
  if (bytes == 8) return "double";
  return std::to_string(bytes) + "-byte float";
}

/// "int32" etc. for a signed index width.
inline std::string checkpointIndexName(std::uint64_t bytes) {
  if (bytes >= 1 && bytes <= 8) return "int" + std::to_string(8 * bytes);
  return std::to_string(bytes) + "-byte integer";
}

/// A message of another tsnn exception without its "tsnn: " prefix, to quote it in ours.
inline std::string checkpointQuote(const char* what) {
  const std::string s(what);
  return s.rfind("tsnn: ", 0) == 0 ? s.substr(6) : s;
}

/// \brief Two's complement reinterpretation of a u64 without implementation-defined conversion.
inline std::int64_t checkpointSigned(std::uint64_t u) {
  if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return static_cast<std::int64_t>(u);
  return -static_cast<std::int64_t>(~u) - 1;
}

/// Serialises into a byte string; little-endian, byte by byte.
class CheckpointWriter {
 public:
  void reserve(std::size_t n) { m_buf.reserve(n); }

  void unsignedLe(std::uint64_t v, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i)
      m_buf.push_back(static_cast<char>(static_cast<unsigned char>((v >> (8 * i)) & 0xFFu)));
  }
  void u32(std::uint32_t v) { unsignedLe(v, 4); }
  void u64(std::uint64_t v) { unsignedLe(v, 8); }
  void i32(std::int32_t v) { unsignedLe(static_cast<std::uint32_t>(v), 4); }
  void i64(std::int64_t v) { unsignedLe(static_cast<std::uint64_t>(v), 8); }
  void f64(double v) {
    std::uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u64(bits);
  }
  template <class Scalar>
  void scalar(Scalar v) {
    if constexpr (sizeof(Scalar) == 4) {
      std::uint32_t bits;
      std::memcpy(&bits, &v, 4);
      u32(bits);
    } else {
      f64(v);
    }
  }
  /// Signed values of any width: the low sizeof(Index) bytes of the two's complement value.
  template <class Index>
  void index(Index v) {
    unsignedLe(static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), sizeof(Index));
  }
  void bytes(const char* p, std::size_t n) { m_buf.append(p, n); }

  /// Writes the tag and a placeholder size; returns the position endSection() patches.
  std::size_t beginSection(const char* tag) {
    bytes(tag, 4);
    const std::size_t at = m_buf.size();
    u64(0);
    return at;
  }
  void endSection(std::size_t at) { patchU64(at, m_buf.size() - at - 8); }
  void patchU64(std::size_t at, std::uint64_t v) {
    for (std::size_t i = 0; i < 8; ++i)
      m_buf[at + i] = static_cast<char>(static_cast<unsigned char>((v >> (8 * i)) & 0xFFu));
  }

  std::size_t size() const { return m_buf.size(); }
  std::string& buffer() { return m_buf; }

 private:
  std::string m_buf;
};

/// Parses a byte range of a checkpoint. Every read is bounds-checked; every failure is a
/// FormatError that names the caller and the path.
class CheckpointReader {
 public:
  /// \param offset position of data[0] in the file, for messages
  CheckpointReader(const unsigned char* data, std::size_t size, std::size_t offset,
                   const std::string& path, const char* caller)
      : m_data(data), m_size(size), m_offset(offset), m_path(path), m_caller(caller) {}

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    raise<FormatError>(m_caller, ": '", m_path, "': ", std::forward<Args>(args)...);
  }

  std::size_t remaining() const { return m_size - m_pos; }
  /// Position of the next byte in the file.
  std::size_t fileOffset() const { return m_offset + m_pos; }
  const unsigned char* here() const { return m_data + m_pos; }

  void skip(std::size_t n, const char* what) {
    need(n, what);
    m_pos += n;
  }

  std::uint64_t unsignedLe(std::size_t bytes, const char* what) {
    need(bytes, what);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i)
      v |= static_cast<std::uint64_t>(m_data[m_pos + i]) << (8 * i);
    m_pos += bytes;
    return v;
  }
  std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(unsignedLe(4, what)); }
  std::uint64_t u64(const char* what) { return unsignedLe(8, what); }
  std::int32_t i32(const char* what) {
    return static_cast<std::int32_t>(checkpointSigned(signExtend(unsignedLe(4, what), 4)));
  }
  std::int64_t i64(const char* what) { return checkpointSigned(unsignedLe(8, what)); }
  double f64(const char* what) {
    const std::uint64_t bits = u64(what);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  template <class Scalar>
  Scalar scalar(const char* what) {
    if constexpr (sizeof(Scalar) == 4) {
      const std::uint32_t bits = u32(what);
      Scalar v;
      std::memcpy(&v, &bits, 4);
      return v;
    } else {
      return f64(what);
    }
  }
  template <class Index>
  Index index(const char* what) {
    return static_cast<Index>(
        checkpointSigned(signExtend(unsignedLe(sizeof(Index), what), sizeof(Index))));
  }

  /// \brief Reads a u64 element count and checks that \p count elements of \p itemBytes each
  /// fit in what is left, so that the caller may allocate them.
  std::size_t count(const char* what, std::size_t itemBytes) {
    const std::size_t at = fileOffset();
    const std::uint64_t n = u64(what);
    checkFits(n, itemBytes, what, at);
    return static_cast<std::size_t>(n);
  }
  void checkFits(std::uint64_t n, std::size_t itemBytes, const char* what, std::size_t at) const {
    if (n > remaining() / itemBytes)
      fail("the ", what, " count at byte ", at, " is ", n, ", but only ", remaining(),
           " bytes remain in its section (", itemBytes, " bytes each)");
  }

  /// \brief Reads a section header, checks its tag and size, and returns a reader over its
  /// payload (this reader moves past it).
  CheckpointReader section(const char* tag) {
    const std::size_t at = fileOffset();
    need(kCheckpointSectionHeaderBytes, "section header");
    if (std::memcmp(m_data + m_pos, tag, 4) != 0)
      fail("expected section '", std::string(tag, 4), "' at byte ", at, ", found ",
           printable(m_data + m_pos, 4));
    m_pos += 4;
    const std::uint64_t n = u64("section size");
    if (n > remaining())
      fail("section '", std::string(tag, 4), "' at byte ", at, " claims ", n, " bytes, but only ",
           remaining(), " remain before the checksum");
    CheckpointReader sub(m_data + m_pos, static_cast<std::size_t>(n), fileOffset(), m_path,
                         m_caller);
    sub.m_section = std::string(tag, 4);
    m_pos += static_cast<std::size_t>(n);
    return sub;
  }

  /// \brief Fails unless everything was consumed.
  void expectEnd() const {
    if (m_pos == m_size) return;
    if (m_section.empty())
      fail(m_size - m_pos, " unexpected bytes after the last section, at byte ", fileOffset());
    fail("section '", m_section, "' has ", m_size - m_pos,
         " unexpected bytes after its contents, at byte ", fileOffset());
  }

  const std::string& path() const { return m_path; }
  const char* caller() const { return m_caller; }

 private:
  static std::uint64_t signExtend(std::uint64_t v, std::size_t bytes) {
    if (bytes < 8 && ((v >> (8 * bytes - 1)) & 1u)) v |= ~std::uint64_t{0} << (8 * bytes);
    return v;
  }
  static std::string printable(const unsigned char* p, std::size_t n) {
    std::string s = "'";
    static const char* hex = "0123456789abcdef";
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
  void need(std::size_t n, const char* what) const {
    if (n > remaining())
      fail("truncated ", what, " at byte ", fileOffset(), ": needs ", n, " bytes, ", remaining(),
           (m_section.empty() ? " remain" : " remain in section '" + m_section + "'"));
  }

  const unsigned char* m_data;
  std::size_t m_size;
  std::size_t m_pos = 0;
  std::size_t m_offset;
  std::string m_path;
  const char* m_caller;
  std::string m_section;
};

/// The header fields.
struct CheckpointHeader {
  std::uint32_t version = 0;
  std::uint64_t fileBytes = 0;
  std::uint32_t scalarBytes = 0;
  std::uint32_t indexBytes = 0;
};

/// \brief Checks magic, version and length from the first \p available bytes of a file of
/// \p actualSize bytes (available = min(actualSize, kCheckpointHeaderBytes) at least).
inline CheckpointHeader checkCheckpointHeader(const unsigned char* data, std::size_t available,
                                              std::uint64_t actualSize, const std::string& path,
                                              const char* caller) {
  CheckpointReader r(data, available, 0, path, caller);
  const std::size_t magicBytes = std::min<std::size_t>(available, 8);
  if (std::memcmp(data, kCheckpointMagic, magicBytes) != 0)
    r.fail("not a tsnn checkpoint (it does not start with the magic bytes \"TSNNCKPT\")");
  const auto truncated = [&] {
    r.fail("truncated: the file has ", actualSize, " bytes, fewer than the ",
           kCheckpointHeaderBytes + kCheckpointTrailerBytes, " of a header and checksum");
  };
  // Magic and version are the only fields every format version must keep where they are, so
  // the version is judged before anything else is read.
  if (actualSize < 12) truncated();
  r.skip(8, "magic");
  CheckpointHeader h;
  h.version = r.u32("format version");
  if (h.version != kCheckpointVersion)
    r.fail("format version ", h.version, " is not supported (this build of tsnn reads version ",
           kCheckpointVersion, ")");
  if (actualSize < kCheckpointHeaderBytes + kCheckpointTrailerBytes) truncated();
  h.fileBytes = r.u64("file size");
  if (h.fileBytes > actualSize)
    r.fail("truncated: the header records ", h.fileBytes, " bytes, the file has ", actualSize);
  if (h.fileBytes < actualSize)
    r.fail(actualSize - h.fileBytes, " trailing bytes after the ", h.fileBytes,
           " bytes that the header records");
  h.scalarBytes = r.u32("scalar size");
  h.indexBytes = r.u32("index size");
  return h;
}

/// Enumerators known to this version; adding one to an enum makes -Wswitch point here.
inline bool checkpointKnown(WeightInit v) {
  switch (v) {
    case WeightInit::HeUniform:
    case WeightInit::XavierUniform:
    case WeightInit::Normal:
      return true;
  }
  return false;
}
inline bool checkpointKnown(ActivationKind v) {
  switch (v) {
    case ActivationKind::Identity:
    case ActivationKind::ReLU:
    case ActivationKind::LeakyReLU:
    case ActivationKind::AllReLU:
    case ActivationKind::Sigmoid:
    case ActivationKind::Tanh:
      return true;
  }
  return false;
}
inline bool checkpointKnown(DensityAllocation v) {
  switch (v) {
    case DensityAllocation::ErdosRenyi:
    case DensityAllocation::ErdosRenyiKernel:
      return true;
  }
  return false;
}
inline bool checkpointKnown(LossKind v) {
  switch (v) {
    case LossKind::SoftmaxCrossEntropy:
    case LossKind::MeanSquaredError:
      return true;
  }
  return false;
}

template <class Enum>
Enum readCheckpointEnum(CheckpointReader& r, const char* what) {
  const std::size_t at = r.fileOffset();
  const std::uint32_t v = r.u32(what);
  // Every enum here has fewer than 256 enumerators; larger values cannot name one.
  const auto e = static_cast<Enum>(std::min<std::uint32_t>(v, 255));
  if (v > 255 || !checkpointKnown(e)) r.fail("unknown ", what, " ", v, " at byte ", at);
  return e;
}

inline void writeCheckpointOptions(CheckpointWriter& w, const NetworkOptions& o) {
  w.u64(o.sizes.size());
  for (long long s : o.sizes) w.i64(s);
  w.f64(o.epsilon);
  w.u32(static_cast<std::uint32_t>(o.init));
  w.u32(static_cast<std::uint32_t>(o.hiddenActivation));
  w.f64(o.alpha);
  w.u32(static_cast<std::uint32_t>(o.loss));
  w.u32(static_cast<std::uint32_t>(o.outputActivation));
  w.f64(o.dropout);
  w.u64(o.seed);
  w.u32(static_cast<std::uint32_t>(o.allocation));
}

inline NetworkOptions readCheckpointOptions(CheckpointReader& r) {
  NetworkOptions o;
  o.sizes.resize(r.count("layer size", 8));
  for (auto& s : o.sizes) s = r.i64("layer size");
  o.epsilon = r.f64("epsilon");
  o.init = readCheckpointEnum<WeightInit>(r, "weight initialisation");
  o.hiddenActivation = readCheckpointEnum<ActivationKind>(r, "hidden activation");
  o.alpha = r.f64("alpha");
  o.loss = readCheckpointEnum<LossKind>(r, "loss");
  o.outputActivation = readCheckpointEnum<ActivationKind>(r, "output activation");
  o.dropout = r.f64("dropout");
  o.seed = r.u64("seed");
  o.allocation = readCheckpointEnum<DensityAllocation>(r, "density allocation");
  return o;
}

inline void writeCheckpointState(CheckpointWriter& w, const TrainingState& s) {
  w.i32(s.epoch);
  for (std::uint64_t x : s.shuffleRng) w.u64(x);
  w.u64(s.step);
  w.f64(s.learningRate);
  w.i32(s.skippedInARow);
  w.u64(s.order.size());
  for (std::int64_t i : s.order) w.i64(i);
  w.u64(s.history.size());
  for (const EpochRecord& e : s.history) {
    w.i32(e.epoch);
    w.f64(e.trainLoss);
    w.f64(e.trainAccuracy);
    w.f64(e.testAccuracy);
    w.f64(e.epochSeconds);
    w.f64(e.evolveSeconds);
    w.i64(e.nnz);
    w.i64(e.hiddenNeurons);
    w.i64(e.neuronsRemoved);
    w.i64(e.skippedBatches);
    w.i64(e.clippedBatches);
    w.f64(e.meanStaleness);
  }
  w.u64(s.config.size());
  w.bytes(s.config.data(), s.config.size());
  w.u32(s.topologyPending ? 1 : 0);
}

/// Reads the fixed fields at the start of "TRST" (epoch ... skippedInARow).
inline void readCheckpointStateHead(CheckpointReader& r, TrainingState& s) {
  s.epoch = r.i32("epoch");
  for (auto& x : s.shuffleRng) x = r.u64("shuffle generator state");
  s.step = r.u64("step");
  s.learningRate = r.f64("learning rate");
  s.skippedInARow = r.i32("skipped-in-a-row count");
}

inline TrainingState readCheckpointState(CheckpointReader& r) {
  TrainingState s;
  readCheckpointStateHead(r, s);
  s.order.resize(r.count("sample order", 8));
  for (auto& i : s.order) i = r.i64("sample order");
  s.history.resize(r.count("history record", kCheckpointRecordBytes));
  for (EpochRecord& e : s.history) {
    e.epoch = r.i32("history");
    e.trainLoss = r.f64("history");
    e.trainAccuracy = r.f64("history");
    e.testAccuracy = r.f64("history");
    e.epochSeconds = r.f64("history");
    e.evolveSeconds = r.f64("history");
    e.nnz = r.i64("history");
    e.hiddenNeurons = r.i64("history");
    e.neuronsRemoved = r.i64("history");
    e.skippedBatches = r.i64("history");
    e.clippedBatches = r.i64("history");
    e.meanStaleness = r.f64("history");
  }
  const std::size_t c = r.count("config byte", 1);
  s.config.assign(reinterpret_cast<const char*>(r.here()), c);
  r.skip(c, "config");
  const std::size_t at = r.fileOffset();
  const std::uint32_t pending = r.u32("topology-pending flag");
  if (pending > 1) r.fail("topology-pending flag at byte ", at, " is ", pending, " (0 or 1)");
  s.topologyPending = pending == 1;
  return s;
}

template <class Scalar, class Index>
void checkCheckpointTypes() {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "checkpoints store float or double networks");
  static_assert(std::numeric_limits<Scalar>::is_iec559,
                "checkpoints store IEEE 754 floating point numbers");
  static_assert(
      std::is_integral<Index>::value && std::is_signed<Index>::value && sizeof(Index) <= 8,
      "checkpoints store signed indices of at most 8 bytes");
}

/// \brief The checkpoint file contents for \p net and \p state.
/// \throws InvalidArgument if net.options().sizes differs from the layer widths or a layer's
/// momentum or biases are not aligned with its weights and outputs; NumericalError if a weight,
/// bias or momentum is not finite (it could not be loaded back)
template <class Scalar, class Index>
std::string encodeCheckpoint(const Network<Scalar, Index>& net, const TrainingState& state,
                             const Preprocessing& prep = Preprocessing{},
                             const char* caller = "saveCheckpoint()") {
  checkCheckpointTypes<Scalar, Index>();
  const NetworkOptions& o = net.options();
  if (o.sizes != net.sizes()) {
    std::ostringstream a, b;
    for (long long s : o.sizes) a << ' ' << s;
    for (long long s : net.sizes()) b << ' ' << s;
    raise<InvalidArgument>(caller, ": options().sizes [", a.str(),
                           " ] differ from the layer widths [", b.str(), " ]");
  }
  const auto checkFinite = [&](const Scalar* p, std::size_t n, std::size_t l, const char* what) {
    for (std::size_t k = 0; k < n; ++k)
      if (!std::isfinite(static_cast<double>(p[k])))
        raise<NumericalError>(caller, ": layer ", l, " ", what, " ", k, " is ", p[k],
                              "; a checkpoint holds finite parameters only");
  };
  std::size_t estimate = 1024 + state.order.size() * 8 +
                         state.history.size() * kCheckpointRecordBytes + state.config.size();
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    const auto& layer = net.layer(l);
    const auto rows = static_cast<std::size_t>(layer.outputs());
    const auto nnz = static_cast<std::size_t>(layer.nonZeros());
    if (layer.velocity().size() != nnz || layer.bias().size() != layer.outputs() ||
        layer.biasVelocity().size() != layer.outputs())
      raise<InvalidArgument>(caller, ": layer ", l, " has ", nnz, " weights and ", rows,
                             " outputs but ", layer.velocity().size(), " momentum entries, ",
                             layer.bias().size(), " biases and ", layer.biasVelocity().size(),
                             " bias momentum entries");
    checkFinite(layer.weights().values().data(), nnz, l, "weight");
    checkFinite(layer.velocity().data(), layer.velocity().size(), l, "momentum");
    checkFinite(layer.bias().data(), rows, l, "bias");
    checkFinite(layer.biasVelocity().data(), static_cast<std::size_t>(layer.biasVelocity().size()),
                l, "bias momentum");
    estimate += 24 + (rows + 1) * sizeof(Index) + nnz * (sizeof(Index) + 2 * sizeof(Scalar)) +
                rows * (2 * sizeof(Scalar) + 8);
  }

  if (!prep.mean.empty() || !prep.scale.empty()) {
    if (prep.mean.size() != prep.scale.size() ||
        prep.mean.size() != static_cast<std::size_t>(net.inputs()))
      raise<InvalidArgument>(caller, ": preprocessing has ", prep.mean.size(), " means and ",
                             prep.scale.size(), " scales for a network of ", net.inputs(),
                             " inputs");
    for (std::size_t j = 0; j < prep.mean.size(); ++j)
      if (!std::isfinite(prep.mean[j]) || !std::isfinite(prep.scale[j]) || !(prep.scale[j] > 0))
        raise<InvalidArgument>(caller, ": preprocessing of feature ", j, " has mean ",
                               prep.mean[j], " and scale ", prep.scale[j]);
  }
  estimate += 16 * prep.mean.size();

  CheckpointWriter w;
  w.reserve(estimate);
  w.bytes(kCheckpointMagic, 8);
  w.u32(kCheckpointVersion);
  const std::size_t sizeAt = w.size();
  w.u64(0);
  w.u32(sizeof(Scalar));
  w.u32(sizeof(Index));

  std::size_t at = w.beginSection("OPTS");
  writeCheckpointOptions(w, o);
  w.endSection(at);

  at = w.beginSection("NRNG");
  for (std::uint64_t x : net.rng().state()) w.u64(x);
  w.endSection(at);

  at = w.beginSection("TRST");
  writeCheckpointState(w, state);
  w.endSection(at);

  at = w.beginSection("LAYR");
  w.u64(net.numLayers());
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    const auto& layer = net.layer(l);
    const auto& m = layer.weights();
    w.i64(m.rows());
    w.i64(m.cols());
    w.u64(static_cast<std::uint64_t>(m.nonZeros()));
    for (Index v : m.rowPtr()) w.index(v);
    for (Index v : m.colIdx()) w.index(v);
    for (Scalar v : m.values()) w.scalar(v);
    // Aligned with the values by the SparseLinear invariant; written with their count.
    for (Scalar v : layer.velocity()) w.scalar(v);
    for (Eigen::Index j = 0; j < layer.bias().size(); ++j) w.scalar(layer.bias()[j]);
    for (Eigen::Index j = 0; j < layer.biasVelocity().size(); ++j)
      w.scalar(layer.biasVelocity()[j]);
  }
  w.endSection(at);

  at = w.beginSection("NIDS");
  for (std::size_t l = 0; l + 1 < net.numLayers(); ++l) {
    const auto& ids = net.neuronIds(l);
    w.u64(ids.size());
    for (long long id : ids) w.i64(id);
  }
  w.endSection(at);

  at = w.beginSection("PREP");
  w.u64(prep.mean.size());
  for (double v : prep.mean) w.f64(v);
  for (double v : prep.scale) w.f64(v);
  w.endSection(at);

  w.patchU64(sizeAt, w.size() + kCheckpointTrailerBytes);
  std::string& buf = w.buffer();
  w.u32(crc32(reinterpret_cast<const unsigned char*>(buf.data()), buf.size()));
  return std::move(buf);
}

/// \brief Reads layer \p l of "LAYR", whose shape must be \p outputs x \p inputs (from
/// "OPTS"), and checks everything SparseLinear would refuse.
template <class Scalar, class Index>
SparseLinear<Scalar, Index> readCheckpointLayer(CheckpointReader& r, std::size_t l,
                                                long long inputs, long long outputs) {
  using Layer = SparseLinear<Scalar, Index>;
  constexpr std::size_t ib = sizeof(Index), sb = sizeof(Scalar);
  const std::size_t at = r.fileOffset();
  const std::int64_t rows = r.i64("rows"), cols = r.i64("cols");
  const std::uint64_t nnz = r.u64("nonzero count");
  const auto indexMax = static_cast<std::int64_t>(std::numeric_limits<Index>::max());
  if (rows < 1 || cols < 1 || rows > indexMax || cols > indexMax ||
      nnz > static_cast<std::uint64_t>(indexMax))
    r.fail("layer ", l, " at byte ", at, " is ", rows, " x ", cols, " with ", nnz,
           " nonzeros, outside what a ", checkpointIndexName(ib), " index can hold");
  // Checked before anything is built: the column count sizes the transpose index.
  if (rows != outputs || cols != inputs)
    r.fail("layer ", l, " at byte ", at, " is ", rows, " x ", cols,
           ", but section 'OPTS' gives sizes ", inputs, " -> ", outputs);
  // Both counts are bounded by the bytes left before the total is formed, so it cannot overflow.
  r.checkFits(static_cast<std::uint64_t>(rows), ib + 2 * sb, "row", at);
  r.checkFits(nnz, ib + 2 * sb, "nonzero", at + 16);
  const std::uint64_t bytes = (static_cast<std::uint64_t>(rows) + 1) * ib +
                              static_cast<std::uint64_t>(rows) * 2 * sb + nnz * (ib + 2 * sb);
  if (bytes > r.remaining())
    r.fail("layer ", l, " at byte ", at, " (", rows, " x ", cols, ", ", nnz, " nonzeros) needs ",
           bytes, " bytes, but only ", r.remaining(), " remain in section 'LAYR'");

  const auto nr = static_cast<std::size_t>(rows), nz = static_cast<std::size_t>(nnz);
  std::vector<Index> rowPtr(nr + 1), colIdx(nz);
  std::vector<Scalar> values(nz), velocity(nz);
  typename Layer::Vector bias(rows), biasVelocity(rows);
  for (auto& v : rowPtr) v = r.index<Index>("rowPtr");
  for (auto& v : colIdx) v = r.index<Index>("colIdx");
  for (auto& v : values) v = r.scalar<Scalar>("values");
  for (auto& v : velocity) v = r.scalar<Scalar>("momentum");
  for (Eigen::Index j = 0; j < bias.size(); ++j) bias[j] = r.scalar<Scalar>("bias");
  for (Eigen::Index j = 0; j < biasVelocity.size(); ++j)
    biasVelocity[j] = r.scalar<Scalar>("bias momentum");

  const auto checkFinite = [&](const Scalar* p, std::size_t n, const char* what) {
    for (std::size_t k = 0; k < n; ++k)
      if (!std::isfinite(static_cast<double>(p[k])))
        r.fail("layer ", l, " ", what, " ", k, " is not finite (", p[k], ")");
  };
  checkFinite(values.data(), nz, "weight");
  checkFinite(velocity.data(), nz, "momentum");
  checkFinite(bias.data(), nr, "bias");
  checkFinite(biasVelocity.data(), nr, "bias momentum");

  CsrMatrix<Scalar, Index> w;
  w.assignUnchecked(static_cast<Index>(rows), static_cast<Index>(cols), std::move(rowPtr),
                    std::move(colIdx), std::move(values));
  const std::string problem = w.check();
  if (!problem.empty()) r.fail("layer ", l, " has an invalid sparsity pattern: ", problem);
  try {
    Layer layer(std::move(w), std::move(bias));
    layer.velocity() = std::move(velocity);
    layer.biasVelocity() = std::move(biasVelocity);
    return layer;
  } catch (const InvalidArgument& e) {
    r.fail("layer ", l, ": ", checkpointQuote(e.what()));
  }
}

/// \brief Rebuilds the network (and the training state, if \p state is not null) from the
/// contents of a checkpoint file; \p path only names it in messages. *state changes only on
/// success.
/// \throws FormatError naming \p path and what is wrong
template <class Scalar, class Index>
Network<Scalar, Index> decodeCheckpoint(const unsigned char* data, std::size_t size,
                                        const std::string& path, TrainingState* state,
                                        Preprocessing* prep = nullptr,
                                        const char* caller = "loadCheckpoint()") {
  checkCheckpointTypes<Scalar, Index>();
  const CheckpointHeader h =
      checkCheckpointHeader(data, std::min(size, kCheckpointHeaderBytes), size, path, caller);
  CheckpointReader file(data, size, 0, path, caller);
  const std::size_t body = size - kCheckpointTrailerBytes;
  CheckpointReader trailer(data + body, kCheckpointTrailerBytes, body, path, caller);
  const std::uint32_t stored = trailer.u32("checksum");
  const std::uint32_t computed = crc32(data, body);
  if (stored != computed) {
    std::ostringstream os;
    os << std::hex << "checksum mismatch: the file records CRC-32 0x" << stored
       << ", its contents have 0x" << computed << " (the file is corrupt)";
    file.fail(os.str());
  }
  if (h.scalarBytes != sizeof(Scalar) || h.indexBytes != sizeof(Index))
    file.fail("it holds a Network<", checkpointScalarName(h.scalarBytes), ", ",
              checkpointIndexName(h.indexBytes), "> (", h.scalarBytes, "-byte scalars, ",
              h.indexBytes, "-byte indices), but a Network<", checkpointScalarName(sizeof(Scalar)),
              ", ", checkpointIndexName(sizeof(Index)),
              "> was asked for; load it with the types it was saved with (checkpoints are not "
              "converted, so that a loaded network is exactly the saved one)");

  CheckpointReader r(data + kCheckpointHeaderBytes, body - kCheckpointHeaderBytes,
                     kCheckpointHeaderBytes, path, caller);
  CheckpointReader opts = r.section("OPTS");
  const NetworkOptions options = readCheckpointOptions(opts);
  opts.expectEnd();
  // The input width is the one size not backed by stored items (every other width has a rowPtr
  // in the file), and the first layer's transpose index allocates an entry per input. Bounding
  // it by the file's size keeps every allocation proportional to the file, whatever it claims.
  const long long maxInputs = std::max<long long>(
      kCheckpointMinInputLimit, static_cast<long long>(kCheckpointInputsPerByte * size));
  if (!options.sizes.empty() && options.sizes.front() > maxInputs)
    opts.fail("the network claims ", options.sizes.front(), " inputs, more than the ", maxInputs,
              " a file of ", size, " bytes may declare (max(2^24, ", kCheckpointInputsPerByte,
              " per byte))");

  CheckpointReader rngSection = r.section("NRNG");
  std::array<std::uint64_t, 4> rngState{};
  for (auto& x : rngState) x = rngSection.u64("network generator state");
  rngSection.expectEnd();
  if ((rngState[0] | rngState[1] | rngState[2] | rngState[3]) == 0)
    r.fail("the network's generator state is all zero, which xoshiro256** never reaches");

  CheckpointReader st = r.section("TRST");
  TrainingState loadedState = readCheckpointState(st);
  st.expectEnd();

  CheckpointReader lay = r.section("LAYR");
  // A layer takes at least its three header fields and a two-entry rowPtr.
  const std::size_t numLayers = lay.count("layer", 24 + 2 * sizeof(Index));
  if (numLayers == 0) lay.fail("section 'LAYR' has no layers");
  if (numLayers + 1 != options.sizes.size())
    lay.fail("section 'OPTS' lists ", options.sizes.size(), " layer sizes, but section 'LAYR' has ",
             numLayers, " layers");
  std::vector<SparseLinear<Scalar, Index>> layers;
  layers.reserve(numLayers);
  for (std::size_t l = 0; l < numLayers; ++l)
    layers.push_back(
        readCheckpointLayer<Scalar, Index>(lay, l, options.sizes[l], options.sizes[l + 1]));
  lay.expectEnd();

  CheckpointReader idSection = r.section("NIDS");
  std::vector<std::vector<long long>> ids(numLayers - 1);
  for (std::size_t l = 0; l + 1 < numLayers; ++l) {
    const std::size_t at = idSection.fileOffset();
    const std::size_t n = idSection.count("neuron id", 8);
    if (n != static_cast<std::size_t>(layers[l].outputs()))
      idSection.fail("hidden layer ", l, " has ", n, " neuron ids at byte ", at, " for ",
                     layers[l].outputs(), " neurons");
    ids[l].resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      ids[l][j] = idSection.i64("neuron id");
      if (ids[l][j] < 0 || (j > 0 && ids[l][j] <= ids[l][j - 1]))
        idSection.fail("neuron id ", ids[l][j], " at position ", j, " of hidden layer ", l,
                       " is negative or not increasing");
    }
  }
  idSection.expectEnd();

  CheckpointReader prepSection = r.section("PREP");
  Preprocessing loadedPrep;
  const std::size_t features = prepSection.count("preprocessed feature", 16);
  if (features != 0 && features != static_cast<std::size_t>(options.sizes.front()))
    prepSection.fail("preprocessing for ", features, " features, but the network has ",
                     options.sizes.front(), " inputs");
  loadedPrep.mean.resize(features);
  loadedPrep.scale.resize(features);
  for (double& v : loadedPrep.mean) v = prepSection.f64("feature mean");
  for (double& v : loadedPrep.scale) v = prepSection.f64("feature scale");
  for (std::size_t j = 0; j < features; ++j)
    if (!std::isfinite(loadedPrep.mean[j]) || !std::isfinite(loadedPrep.scale[j]) ||
        !(loadedPrep.scale[j] > 0))
      prepSection.fail("preprocessing of feature ", j, " has mean ", loadedPrep.mean[j],
                       " and scale ", loadedPrep.scale[j]);
  prepSection.expectEnd();
  r.expectEnd();

  try {
    Network<Scalar, Index> net(options, std::move(layers));
    net.rng().setState(rngState);
    for (std::size_t l = 0; l < ids.size(); ++l) net.setNeuronIds(l, std::move(ids[l]));
    if (state != nullptr) *state = std::move(loadedState);
    if (prep != nullptr) *prep = std::move(loadedPrep);
    return net;
  } catch (const InvalidArgument& e) {
    file.fail(checkpointQuote(e.what()));
  } catch (const std::invalid_argument& e) {
    file.fail(checkpointQuote(e.what()));
  }
}

/// \brief Reads a whole file. \throws IoError naming the path
inline std::string readCheckpointFile(const std::string& path, const char* caller) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    raise<IoError>(caller, ": cannot read '", path, "': it is a directory");
  std::ifstream in(path, std::ios::in | std::ios::binary);
  if (!in) raise<IoError>(caller, ": cannot open '", path, "': ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  in.seekg(0, std::ios::beg);
  if (!in || end < 0) raise<IoError>(caller, ": cannot determine the size of '", path, "'");
  std::string bytes(static_cast<std::size_t>(end), '\0');
  if (end > 0) in.read(&bytes[0], static_cast<std::streamsize>(end));
  if (!in || in.gcount() != static_cast<std::streamsize>(end))
    raise<IoError>(caller, ": reading '", path, "' failed after ", in.gcount(), " of ", end,
                   " bytes");
  return bytes;
}

}  // namespace detail

/// \brief Saves \p net, \p state and \p prep to \p path, replacing it atomically (see
/// writeFileAtomically): an interrupted or failed save leaves the previous file as it was.
/// \throws IoError naming the path if it cannot be written; InvalidArgument if
/// net.options().sizes differs from the layer widths, momentum is misaligned or \p prep does not
/// fit the inputs (or holds a non-finite value or a scale <= 0); NumericalError if a
/// weight, bias or momentum is not finite (nothing is written in these cases)
template <class Scalar, class Index>
void saveCheckpoint(const std::string& path, const Network<Scalar, Index>& net,
                    const TrainingState& state = TrainingState{},
                    const Preprocessing& prep = Preprocessing{}) {
  const std::string bytes = detail::encodeCheckpoint(net, state, prep, "saveCheckpoint()");
  writeFileAtomically(
      path,
      [&](std::ostream& os) { os.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); },
      std::ios::out | std::ios::binary);
}

/// \brief Loads a network saved by saveCheckpoint(), its training state if \p state is not
/// null and its preprocessing if \p prep is not null (both assigned only on success). Scalar and Index must be the types it was saved
/// with. The network's forward pass, topology, momentum, neuron ids and rng() stream are those
/// of the saved network, bit for bit.
/// \throws IoError naming the path if it cannot be read; FormatError naming the path and the
/// problem if it is not a checkpoint, has another version, holds other types, fails its
/// checksum, is truncated or has trailing bytes, or its contents are inconsistent
template <class Scalar, class Index = std::int32_t>
Network<Scalar, Index> loadCheckpoint(const std::string& path, TrainingState* state = nullptr,
                                     Preprocessing* prep = nullptr) {
  const std::string bytes = detail::readCheckpointFile(path, "loadCheckpoint()");
  return detail::decodeCheckpoint<Scalar, Index>(
      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), path, state, prep,
      "loadCheckpoint()");
}

/// \brief Reads the header, the options and the epoch of a checkpoint without loading it: only
/// its first few hundred bytes are read, so the checksum is not verified (loadCheckpoint()
/// verifies it). Works whatever the checkpoint's Scalar and Index types.
/// \throws IoError naming the path if it cannot be read; FormatError if it is not a checkpoint
/// of a supported version, its length differs from its header's, or the sections read are
/// malformed
inline CheckpointInfo readCheckpointInfo(const std::string& path) {
  constexpr const char* caller = "readCheckpointInfo()";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    detail::raise<IoError>(caller, ": cannot read '", path, "': it is a directory");
  std::ifstream in(path, std::ios::in | std::ios::binary);
  if (!in) detail::raise<IoError>(caller, ": cannot open '", path, "': ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (!in || end < 0) detail::raise<IoError>(caller, ": cannot determine the size of '", path, "'");
  const auto fileBytes = static_cast<std::uint64_t>(end);
  const std::uint64_t body = fileBytes >= detail::kCheckpointTrailerBytes
                                 ? fileBytes - detail::kCheckpointTrailerBytes
                                 : 0;
  // Reads [offset, offset + n) of the file, within the bytes before the checksum.
  const auto readAt = [&](std::uint64_t offset, std::uint64_t n, const char* what) {
    if (offset > body || n > body - offset)
      detail::raise<FormatError>(caller, ": '", path, "': truncated ", what, " at byte ", offset,
                                 ": needs ", n, " bytes, ", offset > body ? 0 : body - offset,
                                 " remain before the checksum");
    std::string s(static_cast<std::size_t>(n), '\0');
    in.seekg(static_cast<std::streamoff>(offset), std::ios::beg);
    if (n > 0) in.read(&s[0], static_cast<std::streamsize>(n));
    if (!in) detail::raise<IoError>(caller, ": reading '", path, "' failed at byte ", offset);
    return s;
  };
  const auto bytesOf = [](const std::string& s) {
    return reinterpret_cast<const unsigned char*>(s.data());
  };

  const std::uint64_t headBytes =
      std::min<std::uint64_t>(fileBytes, detail::kCheckpointHeaderBytes);
  std::string head(static_cast<std::size_t>(headBytes), '\0');
  in.seekg(0, std::ios::beg);
  if (headBytes > 0) in.read(&head[0], static_cast<std::streamsize>(headBytes));
  if (!in) detail::raise<IoError>(caller, ": reading '", path, "' failed");
  const detail::CheckpointHeader h =
      detail::checkCheckpointHeader(bytesOf(head), head.size(), fileBytes, path, caller);

  CheckpointInfo info;
  info.formatVersion = h.version;
  info.scalarBytes = h.scalarBytes;
  info.indexBytes = h.indexBytes;
  info.fileBytes = h.fileBytes;

  // Section headers are read one at a time; only the payloads needed are read.
  std::uint64_t pos = detail::kCheckpointHeaderBytes;
  const auto sectionAt = [&](const char* tag) {
    const std::string sh = readAt(pos, detail::kCheckpointSectionHeaderBytes, "section header");
    // The reader sees the section header and claims a payload of at most what the file holds.
    detail::CheckpointReader r(bytesOf(sh), sh.size(), static_cast<std::size_t>(pos), path, caller);
    if (std::memcmp(sh.data(), tag, 4) != 0) r.section(tag);  // fails, naming what was found
    r.skip(4, "tag");
    const std::uint64_t n = r.u64("section size");
    pos += detail::kCheckpointSectionHeaderBytes;
    if (n > body - pos)
      r.fail("section '", std::string(tag, 4), "' at byte ", pos - 12, " claims ", n,
             " bytes, but only ", body - pos, " remain before the checksum");
    const std::uint64_t start = pos;
    pos += n;
    return std::make_pair(start, n);
  };

  const auto opts = sectionAt("OPTS");
  const std::string optBytes = readAt(opts.first, opts.second, "section 'OPTS'");
  detail::CheckpointReader o(bytesOf(optBytes), optBytes.size(),
                             static_cast<std::size_t>(opts.first), path, caller);
  info.options = detail::readCheckpointOptions(o);
  o.expectEnd();

  sectionAt("NRNG");
  const auto st = sectionAt("TRST");
  const std::string stBytes =
      readAt(st.first, std::min<std::uint64_t>(st.second, detail::kCheckpointStateHeadBytes),
             "section 'TRST'");
  detail::CheckpointReader s(bytesOf(stBytes), stBytes.size(), static_cast<std::size_t>(st.first),
                             path, caller);
  TrainingState stateHead;
  detail::readCheckpointStateHead(s, stateHead);
  info.epoch = stateHead.epoch;
  info.step = stateHead.step;
  return info;
}

}  // namespace tsnn
