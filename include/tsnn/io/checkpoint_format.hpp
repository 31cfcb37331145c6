#pragma once
/// \file
/// \brief The checkpoint format: its layout, version, sections and the encoding, decoding and
/// validation of each section. Whole files are encoded and decoded by checkpoint_codec.hpp; the
/// API (saveCheckpoint, loadCheckpoint, readCheckpointInfo) is in checkpoint.hpp.
///
/// A checkpoint holds a Network (options, topology, weights, biases, neuron ids and its random
/// stream) together with the TrainingState of a run, the optimiser's state included, in one
/// versioned, checksummed binary file. A network loaded from a checkpoint is bit for bit the one
/// that was saved: same forward pass, same pattern, same neuron ids, same rng() stream; so is the
/// optimiser state (momentum, Adam's moments and step count).
///
/// Format version 5 (versions 1 to 4 are read too, see below). Every integer is little-endian and
/// written byte by byte whatever the host's byte order, so files move between machines.
/// Floating-point numbers are IEEE 754 and written as the bit pattern of a u32 (binary32) or u64
/// (binary64). Field types: u32/u64 unsigned; i32/i64 two's complement; f64 binary64; S the
/// network's Scalar (binary32 or binary64, as the header says); I its Index (two's complement,
/// index_bytes wide).
///
///     offset    size  field
///     0         8     magic "TSNNCKPT"
///     8         4     u32 format version (5)
///     12        8     u64 size of the whole file in bytes, checksum included
///     20        4     u32 scalar_bytes: 4 (float) or 8 (double)
///     24        4     u32 index_bytes: 1, 2, 4 or 8
///     28              seven sections, in the order below, each
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
///             u32 outputActivation, f64 dropout, u64 seed, u32 allocation,
///             u32 activationStorage
///             Enumerations are stored as the positions of their enumerators:
///               WeightInit      HeUniform 0, XavierUniform 1, Normal 2, HeUniformSparse 3,
///                               XavierUniformSparse 4
///               ActivationKind  Identity 0, ReLU 1, LeakyReLU 2, AllReLU 3, Sigmoid 4, Tanh 5
///               LossKind        SoftmaxCrossEntropy 0, MeanSquaredError 1
///               DensityAllocation  ErdosRenyi 0, ErdosRenyiKernel 1
///               ActivationStorage  Scalar 0, BFloat16 1
///     "NRNG"  4 x u64: state of Network::rng() (xoshiro256**; never all zero)
///     "TRST"  TrainingState
///             i32 epoch, 4 x u64 shuffleRng, u64 step, f64 learningRate, i32 skippedInARow,
///             u64 n, n x i64 order,
///             u64 h, h x EpochRecord of 92 bytes each: i32 epoch, f64 trainLoss,
///               f64 trainAccuracy, f64 testAccuracy, f64 epochSeconds, f64 evolveSeconds,
///               i64 nnz, i64 hiddenNeurons, i64 neuronsRemoved, i64 skippedBatches,
///               i64 clippedBatches, f64 meanStaleness
///             u64 c, c bytes config (any bytes, NUL included),
///             u32 topologyPending (0 or 1),
///             TrainingState::inEpoch: i64 batches, i64 trained, f64 lossSum, i64 correct,
///             i64 skipped, i64 clipped, f64 seconds (all zero at an epoch boundary; checked
///             against the run when it is resumed)
///     "LAYR"  u64 L (number of layers, >= 1), then for each layer (its weights are rows x cols =
///             n_out x n_in; row j holds the connections into output neuron j):
///               i64 rows, i64 cols, u64 nnz,
///               (rows + 1) x I rowPtr, nnz x I colIdx, nnz x S values, rows x S bias
///     "OPTM"  The optimiser's state (TrainingState::optimizer):
///             u32 kind (Sgd 0, Adam 1), u64 steps (Adam's t), u32 a, u64 n,
///             where a is the number of state arrays per parameter (SGD 1: momentum; Adam 2:
///             first and second moment) and n the number of layers with state, both 0 when no
///             state is stored (n is then 0 or the layer count of "LAYR"); then for each layer l
///             with nnz_l connections and rows_l outputs:
///               a x (nnz_l x S) per-connection arrays, aligned with the layer's values by
///               position, then a x (rows_l x S) per-neuron arrays (its biases' state)
///             Every value is finite; Adam's second moment is >= 0. The learning rate in use is
///             TrainingState::learningRate in "TRST".
///     "NIDS"  for each hidden layer l = 0 .. L - 2: u64 n (= rows of layer l), n x i64 ids
///             (original neuron ids, strictly increasing, non-negative), i64 original width
///             (Network::originalWidth(): above the last id; importance pruning's population)
///     "PREP"  Preprocessing: u64 n (0, or the network's inputs), n x f64 mean,
///             n x f64 scale (finite; scales > 0)
///
/// Version 1 differs only in "LAYR" and "OPTM": it has no "OPTM", and each layer of "LAYR" is
///   i64 rows, i64 cols, u64 nnz, (rows + 1) x I rowPtr, nnz x I colIdx, nnz x S values,
///   nnz x S velocity, rows x S bias, rows x S biasVelocity
/// (the SGD momentum, which version 1 kept in the layers). Loading a version-1 file gives SGD
/// state with those arrays and steps = TrainingState::step (version 1 did not count optimiser
/// steps; SGD does not use the count). Version 4 is version 5 without activationStorage in "OPTS"
/// (loading gives ActivationStorage::Scalar, the only storage before it). Version 3 is version 4
/// without TrainingState::inEpoch (loading gives zeros: every version-3 state is at an epoch
/// boundary). Version 2 is version 3 without the original widths in "NIDS": loading a version-1
/// or -2 file takes each hidden layer's last id + 1, which is the width the layer was built with
/// unless its last neurons were removed (then later importance pruning counts fewer removed
/// neurons at importance 0). Files are always written in version 5.
///
/// The TrainingState comes before the layers: the front of the file (header, "OPTS", "NRNG",
/// "TRST") is everything readCheckpointInfo() reports, and it is decoded by the same code
/// whether the layers follow or not.
///
/// Reading checks, in this order: magic, version, length (truncation, trailing bytes), checksum,
/// scalar and index sizes, then every section. The file is read once, front to back, through a
/// window (FileByteSource): the checksum is computed over the bytes as the sections are decoded,
/// and when it does not match, that is the error reported, whatever the decoding found, so the
/// errors are those of the order above. Writing is streamed too: section sizes are counted before
/// each section is written, so the file is never assembled in memory. Every count is checked
/// against the bytes left in its section before anything is allocated for it, so no allocation made
/// while loading exceeds the size of the file, with one exception: the input width of the first
/// layer is a size, not a count of stored items, and the layer's transpose index holds inputs + 1
/// indices for it. It is accepted up to max(2^24, 64 x the file size), so a crafted file can make
/// the loader allocate at most 64 MiB, or 256 x its own size, for it. A checkpoint is loaded only
/// into the Scalar and Index types it was saved with: it is never converted, since a conversion
/// could not be exact.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/byte_io.hpp"
#include "tsnn/io/crc32.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/activation.hpp"
#include "tsnn/nn/loss.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/optim/optimizer_state.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/init.hpp"

namespace tsnn {

/// \brief The checkpoint format version this build writes (it reads this one and every older
/// one from kCheckpointOldestVersion on).
inline constexpr std::uint32_t kCheckpointVersion = 5;
/// \brief The oldest format version this build reads.
inline constexpr std::uint32_t kCheckpointOldestVersion = 1;

/// \brief How raw features become network inputs: x' = (x - mean_j) / scale_j per feature, the
/// parameters of a fitted data::StandardScaler (meanParameters(), scaleParameters()). Stored with
/// the model so that a program using it later (examples/predict.cpp) prepares inputs exactly as
/// training did. Empty vectors: no preprocessing.
struct Preprocessing {
  std::vector<double> mean, scale;
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

/// The header fields.
struct CheckpointHeader {
  std::uint32_t version = 0;
  std::uint64_t fileBytes = 0;
  std::uint32_t scalarBytes = 0;
  std::uint32_t indexBytes = 0;
};

/// \brief Checks magic, version and length of the \p actualSize bytes of a file at \p data and
/// returns its header.
/// \throws FormatError naming \p path
inline CheckpointHeader checkCheckpointHeader(const unsigned char* data, std::size_t actualSize,
                                              const std::string& path, const char* caller) {
  const std::size_t available = std::min(actualSize, kCheckpointHeaderBytes);
  ByteReader r(data, available, 0, path, caller);
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
  if (h.version < kCheckpointOldestVersion || h.version > kCheckpointVersion)
    r.fail("format version ", h.version, " is not supported (this build of tsnn reads versions ",
           kCheckpointOldestVersion, " to ", kCheckpointVersion, ")");
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

/// \brief Checks the trailing CRC-32 of the \p size-byte file that \p source reads, whose
/// header checkCheckpointHeader() accepted (so it holds at least a header and a checksum). A
/// FileByteSource computes it over the bytes it has already delivered to a decoder, and reads
/// only the rest.
/// \throws FormatError naming \p path and both checksums
inline void checkCheckpointChecksum(const std::shared_ptr<ByteSource>& source, std::size_t size,
                                    const std::string& path, const char* caller) {
  const std::size_t body = size - kCheckpointTrailerBytes;
  const std::uint32_t computed = source->crc32Through(body);
  ByteReader trailer(source, body, kCheckpointTrailerBytes, path, caller);
  const std::uint32_t stored = trailer.u32("checksum");
  if (stored != computed) {
    std::ostringstream os;
    os << std::hex << "checksum mismatch: the file records CRC-32 0x" << stored
       << ", its contents have 0x" << computed << " (the file is corrupt)";
    trailer.fail(os.str());
  }
}

/// \brief Writes a section: its tag, its payload's size and the payload that \p payload writes
/// to the ByteWriter it is given. The payload is written twice, first to a counter, so that its
/// size precedes it without seeking back in a streamed file.
template <class Payload>
void writeCheckpointSection(ByteWriter& w, const char* tag, const Payload& payload) {
  w.bytes(tag, 4);
  if (w.counting()) {
    w.u64(0);
    payload(w);
    return;
  }
  ByteWriter counter = ByteWriter::counter();
  payload(counter);
  w.u64(counter.size());
  const std::size_t start = w.size();
  payload(w);
  if (w.size() - start != counter.size())
    throw std::logic_error("tsnn: writeCheckpointSection(): section '" + std::string(tag, 4) +
                           "' wrote " + std::to_string(w.size() - start) + " bytes, counted " +
                           std::to_string(counter.size()));
}

/// \brief Reads a section header from \p r, checks its tag and size, and returns a reader over
/// its payload (\p r moves past it). \p r covers the bytes between the file header and the
/// checksum.
inline ByteReader readCheckpointSection(ByteReader& r, const char* tag) {
  const std::size_t at = r.fileOffset();
  r.need(kCheckpointSectionHeaderBytes, "section header");
  const std::string found = r.bytes(4, "section tag");
  if (std::memcmp(found.data(), tag, 4) != 0)
    r.fail("expected section '", std::string(tag, 4), "' at byte ", at, ", found ",
           printableBytes(reinterpret_cast<const unsigned char*>(found.data()), 4));
  const std::uint64_t n = r.u64("section size");
  if (n > r.remaining())
    r.fail("section '", std::string(tag, 4), "' at byte ", at, " claims ", n, " bytes, but only ",
           r.remaining(), " remain before the checksum");
  return r.sub(static_cast<std::size_t>(n), "section", "'" + std::string(tag, 4) + "'");
}

/// Enumerators known to this version; adding one to an enum makes -Wswitch point here.
inline bool checkpointKnown(WeightInit v) {
  switch (v) {
    case WeightInit::HeUniform:
    case WeightInit::XavierUniform:
    case WeightInit::Normal:
    case WeightInit::HeUniformSparse:
    case WeightInit::XavierUniformSparse:
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
inline bool checkpointKnown(ActivationStorage v) {
  switch (v) {
    case ActivationStorage::Scalar:
    case ActivationStorage::BFloat16:
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

inline bool checkpointKnown(OptimizerKind v) {
  switch (v) {
    case OptimizerKind::Sgd:
    case OptimizerKind::Adam:
      return true;
  }
  return false;
}

template <class Enum>
Enum readCheckpointEnum(ByteReader& r, const char* what) {
  const std::size_t at = r.fileOffset();
  const std::uint32_t v = r.u32(what);
  // Every enum here has fewer than 256 enumerators; larger values cannot name one.
  const auto e = static_cast<Enum>(std::min<std::uint32_t>(v, 255));
  if (v > 255 || !checkpointKnown(e)) r.fail("unknown ", what, " ", v, " at byte ", at);
  return e;
}

inline void writeCheckpointOptions(ByteWriter& w, const NetworkOptions& o) {
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
  w.u32(static_cast<std::uint32_t>(o.activationStorage));
}

/// "OPTS" of format \p version (before version 5, the storage is Scalar).
inline NetworkOptions readCheckpointOptions(ByteReader& r, std::uint32_t version) {
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
  if (version >= 5)
    o.activationStorage = readCheckpointEnum<ActivationStorage>(r, "activation storage");
  return o;
}

inline void writeCheckpointState(ByteWriter& w, const TrainingState& s) {
  w.i32(s.epoch);
  for (std::uint64_t x : s.shuffleRng) w.u64(x);
  w.u64(s.step);
  w.f64(s.learningRate);
  w.i32(s.skippedInARow);
  w.u64(s.order.size());
  w.indices(s.order.data(), s.order.size());
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
  const TrainingState::InEpoch& p = s.inEpoch;
  w.i64(p.batches);
  w.i64(p.trained);
  w.f64(p.lossSum);
  w.i64(p.correct);
  w.i64(p.skipped);
  w.i64(p.clipped);
  w.f64(p.seconds);
}

inline TrainingState readCheckpointState(ByteReader& r, std::uint32_t version) {
  TrainingState s;
  s.epoch = r.i32("epoch");
  for (auto& x : s.shuffleRng) x = r.u64("shuffle generator state");
  s.step = r.u64("step");
  s.learningRate = r.f64("learning rate");
  s.skippedInARow = r.i32("skipped-in-a-row count");
  s.order.resize(r.count("sample order", 8));
  r.indices(s.order.data(), s.order.size(), "sample order");
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
  s.config = r.bytes(r.count("config byte", 1), "config");
  const std::size_t at = r.fileOffset();
  const std::uint32_t pending = r.u32("topology-pending flag");
  if (pending > 1) r.fail("topology-pending flag at byte ", at, " is ", pending, " (0 or 1)");
  s.topologyPending = pending == 1;
  if (version >= 4) {
    TrainingState::InEpoch& p = s.inEpoch;
    p.batches = r.i64("minibatches of the epoch in progress");
    p.trained = r.i64("samples of the epoch in progress");
    p.lossSum = r.f64("loss sum of the epoch in progress");
    p.correct = r.i64("correct count of the epoch in progress");
    p.skipped = r.i64("skipped minibatches of the epoch in progress");
    p.clipped = r.i64("clipped minibatches of the epoch in progress");
    p.seconds = r.f64("seconds of the epoch in progress");
    if (p.batches < 0 || p.trained < 0 || p.correct < 0 || p.skipped < 0 || p.clipped < 0 ||
        !(p.lossSum >= 0) || !std::isfinite(p.lossSum) || !(p.seconds >= 0) ||
        !std::isfinite(p.seconds))
      r.fail("the epoch in progress has a negative or non-finite figure (", p.batches,
             " minibatches, ", p.trained, " samples, ", p.correct, " correct, ", p.skipped,
             " skipped, ", p.clipped, " clipped, loss sum ", p.lossSum, ", ", p.seconds, " s)");
  }
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

/// \brief Writes one layer of "LAYR": shape, pattern, values, bias.
template <class Scalar, class Index>
void writeCheckpointLayer(ByteWriter& w, const SparseLinear<Scalar, Index>& layer) {
  const auto& m = layer.weights();
  w.i64(m.rows());
  w.i64(m.cols());
  w.u64(static_cast<std::uint64_t>(m.nonZeros()));
  w.indices(m.rowPtr().data(), m.rowPtr().size());
  w.indices(m.colIdx().data(), m.colIdx().size());
  w.scalars(m.values().data(), m.values().size());
  w.scalars(layer.bias().data(), static_cast<std::size_t>(layer.bias().size()));
}

/// \brief The SGD momentum that a version-1 layer stores with its weights and biases.
template <class Scalar>
struct CheckpointV1Momentum {
  std::vector<Scalar> velocity, biasVelocity;
};

/// \brief Reads layer \p l of "LAYR", whose shape must be \p outputs x \p inputs (from
/// "OPTS"), and checks everything SparseLinear would refuse. With \p momentum (version 1), also
/// reads the momentum stored between the values and the bias and after the bias.
template <class Scalar, class Index>
SparseLinear<Scalar, Index> readCheckpointLayer(ByteReader& r, std::size_t l, long long inputs,
                                                long long outputs,
                                                CheckpointV1Momentum<Scalar>* momentum = nullptr) {
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
  // Scalars per row and per nonzero: bias and values, and in version 1 their momentum too.
  const std::size_t perItem = momentum ? 2 : 1;
  // Both counts are bounded by the bytes left before the total is formed, so it cannot overflow.
  r.checkFits(static_cast<std::uint64_t>(rows), ib + perItem * sb, "row", at);
  r.checkFits(nnz, ib + perItem * sb, "nonzero", at + 16);
  const std::uint64_t bytes = (static_cast<std::uint64_t>(rows) + 1) * ib +
                              static_cast<std::uint64_t>(rows) * perItem * sb +
                              nnz * (ib + perItem * sb);
  if (bytes > r.remaining())
    r.fail("layer ", l, " at byte ", at, " (", rows, " x ", cols, ", ", nnz, " nonzeros) needs ",
           bytes, " bytes, but only ", r.remaining(), " remain in section 'LAYR'");

  const auto nr = static_cast<std::size_t>(rows), nz = static_cast<std::size_t>(nnz);
  std::vector<Index> rowPtr(nr + 1), colIdx(nz);
  std::vector<Scalar> values(nz);
  typename Layer::Vector bias(rows);
  r.indices(rowPtr.data(), rowPtr.size(), "rowPtr");
  r.indices(colIdx.data(), colIdx.size(), "colIdx");
  r.scalars(values.data(), values.size(), "values");
  if (momentum) {
    momentum->velocity.resize(nz);
    r.scalars(momentum->velocity.data(), nz, "momentum");
  }
  r.scalars(bias.data(), nr, "bias");
  if (momentum) {
    momentum->biasVelocity.resize(nr);
    r.scalars(momentum->biasVelocity.data(), nr, "bias momentum");
  }

  const auto checkFinite = [&](const Scalar* p, std::size_t n, const char* what) {
    for (std::size_t k = 0; k < n; ++k)
      if (!std::isfinite(static_cast<double>(p[k])))
        r.fail("layer ", l, " ", what, " ", k, " is not finite (", p[k], ")");
  };
  checkFinite(values.data(), nz, "weight");
  checkFinite(bias.data(), nr, "bias");
  if (momentum) {
    checkFinite(momentum->velocity.data(), nz, "momentum");
    checkFinite(momentum->biasVelocity.data(), nr, "bias momentum");
  }

  CsrMatrix<Scalar, Index> w;
  w.assignUnchecked(static_cast<Index>(rows), static_cast<Index>(cols), std::move(rowPtr),
                    std::move(colIdx), std::move(values));
  const std::string problem = w.check();
  if (!problem.empty()) r.fail("layer ", l, " has an invalid sparsity pattern: ", problem);
  try {
    return Layer(std::move(w), std::move(bias));
  } catch (const InvalidArgument& e) {
    r.fail("layer ", l, ": ", checkpointQuote(e.what()));
  }
}

/// \brief Checks that \p s can be written for \p net: no state, or a layer state per layer
/// with the kind's number of arrays, each aligned with its layer (pattern id, when set, and
/// sizes) and finite. Nothing is written otherwise.
/// \throws InvalidArgument if it does not fit \p net; NumericalError if a value is not finite
template <class Scalar, class Index>
void checkCheckpointOptimizer(const OptimizerState& s, const Network<Scalar, Index>& net,
                              const char* caller) {
  if (!checkpointKnown(s.kind))
    raise<InvalidArgument>(caller, ": unknown optimizer kind ", static_cast<int>(s.kind));
  if (s.empty()) return;
  if (!s.holds<Scalar>())
    raise<InvalidArgument>(caller, ": the optimizer state holds ",
                           sizeof(Scalar) == 4 ? "double" : "float", " arrays for a ",
                           sizeof(Scalar) == 4 ? "float" : "double", " network");
  const auto& layers = s.layersOf<Scalar>();
  if (layers.size() != net.numLayers())
    raise<InvalidArgument>(caller, ": the optimizer state has ", layers.size(),
                           " layers, the network ", net.numLayers());
  const std::size_t slots = optimizerSlots(s.kind);
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& ls = layers[l];
    const auto& layer = net.layer(l);
    if (ls.pattern != 0 && ls.pattern != layer.weights().patternId())
      raise<InvalidArgument>(caller, ": the optimizer state of layer ", l,
                             " is aligned with another pattern than the layer's (its topology "
                             "changed after the state was taken)");
    if (ls.entries.size() != slots || ls.rows.size() != slots)
      raise<InvalidArgument>(caller, ": layer ", l, " has ", ls.entries.size(), " and ",
                             ls.rows.size(), " optimizer state arrays, ", optimizerName(s.kind),
                             " keeps ", slots, " of each");
    for (std::size_t i = 0; i < slots; ++i) {
      if (ls.entries[i].size() != static_cast<std::size_t>(layer.nonZeros()) ||
          ls.rows[i].size() != static_cast<std::size_t>(layer.outputs()))
        raise<InvalidArgument>(caller, ": optimizer state array ", i, " of layer ", l, " has ",
                               ls.entries[i].size(), " connection and ", ls.rows[i].size(),
                               " neuron entries, the layer ", layer.nonZeros(), " and ",
                               layer.outputs());
      for (const auto* a : {&ls.entries[i], &ls.rows[i]})
        for (std::size_t k = 0; k < a->size(); ++k)
          if (!std::isfinite(static_cast<double>((*a)[k])))
            raise<NumericalError>(caller, ": optimizer state array ", i, " of layer ", l, " is ",
                                  (*a)[k], " at ", k, "; a checkpoint holds finite values only");
    }
  }
}

/// \brief Writes "OPTM" (checked by checkCheckpointOptimizer() first).
template <class Scalar>
void writeCheckpointOptimizer(ByteWriter& w, const OptimizerState& s) {
  w.u32(static_cast<std::uint32_t>(s.kind));
  w.u64(s.steps);
  w.u32(s.empty() ? 0 : static_cast<std::uint32_t>(optimizerSlots(s.kind)));
  w.u64(s.numLayers());
  if (s.empty()) return;
  for (const auto& ls : s.layersOf<Scalar>()) {
    for (const auto& a : ls.entries) w.scalars(a.data(), a.size());
    for (const auto& a : ls.rows) w.scalars(a.data(), a.size());
  }
}

/// \brief Reads "OPTM" for \p layers: the kind's number of arrays, sized by each layer,
/// finite, Adam's second moment >= 0. Pattern ids are left 0 (the caller binds them).
template <class Scalar, class Index>
OptimizerState readCheckpointOptimizer(ByteReader& r,
                                       const std::vector<SparseLinear<Scalar, Index>>& layers) {
  OptimizerState s;
  s.kind = readCheckpointEnum<OptimizerKind>(r, "optimizer kind");
  s.steps = r.u64("optimizer steps");
  const std::size_t at = r.fileOffset();
  const std::uint32_t slots = r.u32("optimizer state arrays");
  const std::size_t atLayers = r.fileOffset();
  const std::uint64_t n = r.u64("optimizer layers");
  if (slots == 0 && n == 0) return s;
  if (slots != optimizerSlots(s.kind))
    r.fail(optimizerName(s.kind), " keeps ", optimizerSlots(s.kind),
           " state arrays per parameter, the file has ", slots, " at byte ", at);
  if (n != layers.size())
    r.fail("optimizer state for ", n, " layers at byte ", atLayers, ", the network has ",
           layers.size());
  auto& out = s.layersOf<Scalar>();
  out.resize(layers.size());
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto nnz = static_cast<std::uint64_t>(layers[l].nonZeros());
    const auto rows = static_cast<std::uint64_t>(layers[l].outputs());
    r.checkFits(slots * (nnz + rows), sizeof(Scalar), "optimizer state value", r.fileOffset());
    for (auto* arrays : {&out[l].entries, &out[l].rows}) {
      const std::uint64_t count = arrays == &out[l].entries ? nnz : rows;
      // Sized one by one: assign(slots, vector(count)) would build a temporary array of the
      // layer's size beside the ones it copies it into.
      arrays->resize(slots);
      for (auto& a : *arrays) a.resize(static_cast<std::size_t>(count));
      for (std::size_t i = 0; i < slots; ++i) {
        std::vector<Scalar>& a = (*arrays)[i];
        r.scalars(a.data(), a.size(), "optimizer state");
        for (std::size_t k = 0; k < a.size(); ++k)
          if (!std::isfinite(static_cast<double>(a[k])) ||
              (s.kind == OptimizerKind::Adam && i == 1 && a[k] < 0))
            r.fail("optimizer state array ", i, " of layer ", l, " holds ", a[k], " at ", k,
                   s.kind == OptimizerKind::Adam && i == 1 ? " (Adam's second moment is >= 0)"
                                                           : " (not finite)");
      }
    }
  }
  return s;
}

/// \brief Writes "NIDS": the original ids of each hidden layer's neurons and its original width.
template <class Scalar, class Index>
void writeCheckpointNeuronIds(ByteWriter& w, const Network<Scalar, Index>& net) {
  for (std::size_t l = 0; l + 1 < net.numLayers(); ++l) {
    const auto& ids = net.neuronIds(l);
    w.u64(ids.size());
    w.indices(ids.data(), ids.size());
    w.i64(net.originalWidth(l));
  }
}

/// \brief One hidden layer's entry of "NIDS".
struct CheckpointNeuronIds {
  std::vector<long long> ids;
  long long originalWidth = 0;  ///< 0 in a version-1 or -2 file (Network::setNeuronIds())
};

/// \brief Reads "NIDS" of format \p version for \p layers (every layer but the output one has a
/// list) and checks that each list has one id per neuron, non-negative and strictly increasing,
/// and (version 3) that the original width is above the last id.
template <class Scalar, class Index>
std::vector<CheckpointNeuronIds> readCheckpointNeuronIds(
    ByteReader& r, const std::vector<SparseLinear<Scalar, Index>>& layers, std::uint32_t version) {
  std::vector<CheckpointNeuronIds> out(layers.size() - 1);
  for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
    const std::size_t at = r.fileOffset();
    const std::size_t n = r.count("neuron id", 8);
    if (n != static_cast<std::size_t>(layers[l].outputs()))
      r.fail("hidden layer ", l, " has ", n, " neuron ids at byte ", at, " for ",
             layers[l].outputs(), " neurons");
    auto& ids = out[l].ids;
    ids.resize(n);
    r.indices(ids.data(), n, "neuron id");
    for (std::size_t j = 0; j < n; ++j) {
      if (ids[j] < 0 || (j > 0 && ids[j] <= ids[j - 1]))
        r.fail("neuron id ", ids[j], " at position ", j, " of hidden layer ", l,
               " is negative or not increasing");
    }
    if (version >= 3) {
      const long long width = r.i64("original width");
      if (width <= (n == 0 ? -1 : ids.back()))
        r.fail("the original width ", width, " of hidden layer ", l,
               " is not above its last neuron id ", n == 0 ? -1 : ids.back());
      out[l].originalWidth = width;
    }
  }
  return out;
}

/// \brief Writes "PREP".
inline void writeCheckpointPreprocessing(ByteWriter& w, const Preprocessing& prep) {
  w.u64(prep.mean.size());
  for (double v : prep.mean) w.f64(v);
  for (double v : prep.scale) w.f64(v);
}

/// \brief Reads "PREP" for a network of \p inputs inputs: no features, or one mean and one
/// positive scale, both finite, per input.
inline Preprocessing readCheckpointPreprocessing(ByteReader& r, long long inputs) {
  Preprocessing prep;
  const std::size_t features = r.count("preprocessed feature", 16);
  if (features != 0 && features != static_cast<std::size_t>(inputs))
    r.fail("preprocessing for ", features, " features, but the network has ", inputs, " inputs");
  prep.mean.resize(features);
  prep.scale.resize(features);
  for (double& v : prep.mean) v = r.f64("feature mean");
  for (double& v : prep.scale) v = r.f64("feature scale");
  for (std::size_t j = 0; j < features; ++j)
    if (!std::isfinite(prep.mean[j]) || !std::isfinite(prep.scale[j]) || !(prep.scale[j] > 0))
      r.fail("preprocessing of feature ", j, " has mean ", prep.mean[j], " and scale ",
             prep.scale[j]);
  return prep;
}

}  // namespace detail
}  // namespace tsnn
