#pragma once
/// \file
/// \brief Checkpoints: saveCheckpoint(), loadCheckpoint() and readCheckpointInfo(). A checkpoint
/// holds a Network (options, topology, weights, biases, neuron ids and its random stream), the
/// TrainingState of a run (with the optimiser's state: momentum or Adam's moments and step count)
/// and the input preprocessing, in one versioned, checksummed binary file; a network and state
/// loaded from one are bit for bit the ones that were saved.
/// The byte layout, and what reading checks, is documented in checkpoint_format.hpp.

#include <cstdint>
#include <string>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/checkpoint_codec.hpp"
#include "tsnn/io/checkpoint_format.hpp"
#include "tsnn/io/file.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"

namespace tsnn {

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
/// (see AtomicFile): an interrupted or failed save leaves the previous file as it was.
/// \throws IoError naming the path if it cannot be written; InvalidArgument if
/// net.options().sizes differs from the layer widths, the optimiser state in \p state does not
/// fit \p net, or \p prep does not fit the inputs (or holds a non-finite value or a scale
/// <= 0); NumericalError if a weight, bias or optimiser state value is not finite (nothing is
/// written in these cases)
template <class Scalar, class Index>
void saveCheckpoint(const std::string& path, const Network<Scalar, Index>& net,
                    const TrainingState& state = TrainingState{},
                    const Preprocessing& prep = Preprocessing{}) {
  const std::string bytes = detail::encodeCheckpoint(net, state, prep, "saveCheckpoint()");
  writeBytesAtomically(path, bytes.data(), bytes.size(), "saveCheckpoint()");
}

/// \brief Loads a network saved by saveCheckpoint(), its training state if \p state is not
/// null and its preprocessing if \p prep is not null (both assigned only on success). Scalar
/// and Index must be the types it was saved with. The network's forward pass, topology, neuron
/// ids and rng() stream are those of the saved network, bit for bit, and state->optimizer holds
/// the saved optimiser state aligned with it (a version-1 file's momentum as SGD state).
/// \throws IoError naming the path if it cannot be read; FormatError naming the path and the
/// problem if it is not a checkpoint, has another version, holds other types, fails its
/// checksum, is truncated or has trailing bytes, or its contents are inconsistent
template <class Scalar, class Index = std::int32_t>
Network<Scalar, Index> loadCheckpoint(const std::string& path, TrainingState* state = nullptr,
                                      Preprocessing* prep = nullptr) {
  const std::string bytes = readFile(path, "loadCheckpoint()");
  return detail::decodeCheckpoint<Scalar, Index>(
      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), path, state, prep,
      "loadCheckpoint()");
}

/// \brief Reads the header, the options and the training progress of a checkpoint, whatever its
/// Scalar and Index types, without building its network. The file is checked exactly as
/// loadCheckpoint() checks it, by the same code, up to the end of its "TRST" section (its
/// header, length and checksum included); the layers are not decoded.
/// \throws IoError naming the path if it cannot be read; FormatError if it is not a checkpoint
/// of a supported version, is truncated, fails its checksum or its first sections are malformed
inline CheckpointInfo readCheckpointInfo(const std::string& path) {
  constexpr const char* caller = "readCheckpointInfo()";
  const std::string bytes = readFile(path, caller);
  const auto [front, rest] = detail::decodeCheckpointFront(
      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), path, caller);
  (void)rest;  // the layers are not decoded
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
