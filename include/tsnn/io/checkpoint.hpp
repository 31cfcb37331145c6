#pragma once
/// \file
/// \brief Checkpoints: saveCheckpoint(), loadCheckpoint() and readCheckpointInfo(). A checkpoint
/// holds a Network (options, topology, weights, biases, neuron ids and its random stream), the
/// TrainingState of a run (with the optimiser's state: momentum or Adam's moments and step count)
/// and the input preprocessing, in one versioned, checksummed binary file; a network and state
/// loaded from one are bit for bit the ones that were saved.
/// The byte layout, and what reading checks, is documented in checkpoint_format.hpp.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/checkpoint_codec.hpp"
#include "tsnn/io/checkpoint_format.hpp"
#include "tsnn/io/file.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"

namespace tsnn {

/// \brief The block in which saveCheckpoint() writes, and the window through which
/// loadCheckpoint() and readCheckpointInfo() read: the only memory either needs beyond the
/// network, whatever the file's size.
inline constexpr std::size_t kCheckpointStreamBytes = std::size_t{1} << 20;

namespace detail {
/// \brief The checkpoint at \p path, read a window at a time, keeping the CRC-32 of everything
/// before the checksum as it is read.
inline std::shared_ptr<FileByteSource> openCheckpointSource(const std::string& path,
                                                            const char* caller) {
  auto source = std::make_shared<FileByteSource>(path, caller, kCheckpointStreamBytes);
  if (source->size() >= kCheckpointTrailerBytes)
    source->trackCrc32Through(source->size() - kCheckpointTrailerBytes);
  return source;
}
}  // namespace detail

/// \brief What readCheckpointInfo() reports about a checkpoint without loading its network.
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

/// \brief Saves \p net, \p state and \p prep to \p path, replacing it atomically and durably
/// (see AtomicFile): an interrupted or failed save leaves the previous file as it was. The file is
/// written front to back in blocks of kCheckpointStreamBytes, never assembled in memory, so
/// saving needs no memory in proportion to the network.
/// \throws IoError naming the path if it cannot be written; InvalidArgument if
/// net.options().sizes differs from the layer widths, the optimiser state in \p state does not
/// fit \p net, or \p prep does not fit the inputs (or holds a non-finite value or a scale
/// <= 0); NumericalError if a weight, bias or optimiser state value is not finite (nothing is
/// written in these cases)
template <class Scalar, class Index>
void saveCheckpoint(const std::string& path, const Network<Scalar, Index>& net,
                    const TrainingState& state = TrainingState{},
                    const Preprocessing& prep = Preprocessing{}) {
  constexpr const char* caller = "saveCheckpoint()";
  detail::checkCheckpointContents(net, state, prep, caller);  // before the old file is touched
  AtomicFile file(path, caller);
  detail::ByteWriter w([&](const unsigned char* p, std::size_t n) { file.write(p, n); },
                       kCheckpointStreamBytes);
  detail::writeCheckpoint(w, net, state, prep);
  w.flush();
  file.commit();
}

/// \brief Loads a network saved by saveCheckpoint(), its training state if \p state is not
/// null and its preprocessing if \p prep is not null (both assigned only on success). Scalar
/// and Index must be the types it was saved with. The network's forward pass, topology, neuron
/// ids and rng() stream are those of the saved network, bit for bit, and state->optimizer holds
/// the saved optimiser state aligned with it (a version-1 file's momentum as SGD state). The
/// file is read once, a window of kCheckpointStreamBytes at a time, and its checksum is computed
/// over the bytes as they are decoded: loading needs the memory of the network it builds and that
/// window, never a copy of the file.
/// \throws IoError naming the path if it cannot be read; FormatError naming the path and the
/// problem if it is not a checkpoint, has another version, holds other types, fails its
/// checksum, is truncated or has trailing bytes, or its contents are inconsistent
template <class Scalar, class Index = std::int32_t>
Network<Scalar, Index> loadCheckpoint(const std::string& path, TrainingState* state = nullptr,
                                      Preprocessing* prep = nullptr) {
  constexpr const char* caller = "loadCheckpoint()";
  const auto source = detail::openCheckpointSource(path, caller);
  return detail::decodeCheckpoint<Scalar, Index>(source, source->size(), path, state, prep, caller);
}

/// \brief Reads the header, the options and the training progress of a checkpoint, whatever its
/// Scalar and Index types, without building its network. The file is checked exactly as
/// loadCheckpoint() checks it, by the same code, up to the end of its "TRST" section (its
/// header, length and checksum included); the layers are not decoded.
/// \throws IoError naming the path if it cannot be read; FormatError if it is not a checkpoint
/// of a supported version, is truncated, fails its checksum or its first sections are malformed
inline CheckpointInfo readCheckpointInfo(const std::string& path) {
  constexpr const char* caller = "readCheckpointInfo()";
  const auto source = detail::openCheckpointSource(path, caller);
  const std::size_t size = source->size();
  const detail::CheckpointFront front = detail::checkedCheckpointDecode(
      source, size, path, caller, [&](const detail::CheckpointHeader& header) {
        return detail::decodeCheckpointFront(header, source, size, path, caller).first;
      });
  CheckpointInfo info;
  info.formatVersion = front.header.version;
  info.scalarBytes = front.header.scalarBytes;
  info.indexBytes = front.header.indexBytes;
  info.fileBytes = front.header.fileBytes;
  info.options = front.options;
  info.epoch = front.state.epoch;
  info.step = front.state.step;
  return info;
}

}  // namespace tsnn
