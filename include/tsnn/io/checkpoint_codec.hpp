#pragma once
/// \file
/// \brief Whole checkpoint files to and from bytes: encodeCheckpoint() lays out the sections that
/// checkpoint_format.hpp defines (always in the current version); decodeCheckpointFront() and
/// decodeCheckpoint() check and read them back in the order the format states, in any version
/// this build reads. Loading and readCheckpointInfo() share the front.

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/io/byte_io.hpp"
#include "tsnn/io/checkpoint_format.hpp"
#include "tsnn/io/crc32.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/sparse_linear.hpp"

namespace tsnn::detail {

/// \brief The checkpoint file contents (format kCheckpointVersion) for \p net, \p state (the
/// optimiser's state included) and \p prep.
/// \throws InvalidArgument if net.options().sizes differs from the layer widths, a layer's
/// biases are not aligned with its outputs, the optimiser state does not fit the network
/// (checkCheckpointOptimizer()), or \p prep does not fit the inputs (or holds a non-finite value
/// or a scale <= 0); NumericalError if a weight, bias or optimiser state value is not finite (it
/// could not be loaded back)
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
    if (layer.bias().size() != layer.outputs())
      raise<InvalidArgument>(caller, ": layer ", l, " has ", rows, " outputs but ",
                             layer.bias().size(), " biases");
    checkFinite(layer.weights().values().data(), nnz, l, "weight");
    checkFinite(layer.bias().data(), rows, l, "bias");
    const std::size_t slots = state.optimizer.empty() ? 0 : optimizerSlots(state.optimizer.kind);
    estimate += 24 + (rows + 1) * sizeof(Index) + nnz * (sizeof(Index) + sizeof(Scalar)) +
                rows * (sizeof(Scalar) + 8) + slots * (nnz + rows) * sizeof(Scalar);
  }
  checkCheckpointOptimizer(state.optimizer, net, caller);

  if (!prep.mean.empty() || !prep.scale.empty()) {
    if (prep.mean.size() != prep.scale.size() ||
        prep.mean.size() != static_cast<std::size_t>(net.inputs()))
      raise<InvalidArgument>(caller, ": preprocessing has ", prep.mean.size(), " means and ",
                             prep.scale.size(), " scales for a network of ", net.inputs(),
                             " inputs");
    for (std::size_t j = 0; j < prep.mean.size(); ++j)
      if (!std::isfinite(prep.mean[j]) || !std::isfinite(prep.scale[j]) || !(prep.scale[j] > 0))
        raise<InvalidArgument>(caller, ": preprocessing of feature ", j, " has mean ", prep.mean[j],
                               " and scale ", prep.scale[j]);
  }
  estimate += 16 * prep.mean.size();

  ByteWriter w;
  w.reserve(estimate);
  w.bytes(kCheckpointMagic, 8);
  w.u32(kCheckpointVersion);
  const std::size_t sizeAt = w.size();
  w.u64(0);
  w.u32(sizeof(Scalar));
  w.u32(sizeof(Index));

  std::size_t at = beginCheckpointSection(w, "OPTS");
  writeCheckpointOptions(w, o);
  endCheckpointSection(w, at);

  at = beginCheckpointSection(w, "NRNG");
  for (std::uint64_t x : net.rng().state()) w.u64(x);
  endCheckpointSection(w, at);

  at = beginCheckpointSection(w, "TRST");
  writeCheckpointState(w, state);
  endCheckpointSection(w, at);

  at = beginCheckpointSection(w, "LAYR");
  w.u64(net.numLayers());
  for (std::size_t l = 0; l < net.numLayers(); ++l) writeCheckpointLayer(w, net.layer(l));
  endCheckpointSection(w, at);

  at = beginCheckpointSection(w, "OPTM");
  writeCheckpointOptimizer<Scalar>(w, state.optimizer);
  endCheckpointSection(w, at);

  at = beginCheckpointSection(w, "NIDS");
  writeCheckpointNeuronIds(w, net);
  endCheckpointSection(w, at);

  at = beginCheckpointSection(w, "PREP");
  writeCheckpointPreprocessing(w, prep);
  endCheckpointSection(w, at);

  w.patchU64(sizeAt, w.size() + kCheckpointTrailerBytes);
  w.u32(crc32(w.data(), w.size()));
  return std::move(w.buffer());
}

/// \brief The front of a checkpoint: its header and the sections before the layers.
struct CheckpointFront {
  CheckpointHeader header;
  NetworkOptions options;              ///< "OPTS"
  std::array<std::uint64_t, 4> rng{};  ///< "NRNG": the network generator's state
  TrainingState state;                 ///< "TRST"
};

/// \brief Checks the header and the checksum of the \p size bytes at \p data, then the scalar
/// and index sizes when \p scalarBytes and \p indexBytes are not 0, and decodes "OPTS", "NRNG"
/// and "TRST". This is the first half of decodeCheckpoint() and all of readCheckpointInfo().
/// \return the front and a reader over the sections that follow it, up to the checksum
/// \throws FormatError naming \p path and what is wrong
inline std::pair<CheckpointFront, ByteReader> decodeCheckpointFront(
    const unsigned char* data, std::size_t size, const std::string& path, const char* caller,
    std::uint32_t scalarBytes = 0, std::uint32_t indexBytes = 0) {
  CheckpointFront front;
  front.header = checkCheckpointHeader(data, size, path, caller);
  checkCheckpointChecksum(data, size, path, caller);
  const CheckpointHeader& h = front.header;
  if ((scalarBytes != 0 && h.scalarBytes != scalarBytes) ||
      (indexBytes != 0 && h.indexBytes != indexBytes))
    ByteReader(data, size, 0, path, caller)
        .fail("it holds a Network<", checkpointScalarName(h.scalarBytes), ", ",
              checkpointIndexName(h.indexBytes), "> (", h.scalarBytes, "-byte scalars, ",
              h.indexBytes, "-byte indices), but a Network<", checkpointScalarName(scalarBytes),
              ", ", checkpointIndexName(indexBytes),
              "> was asked for; load it with the types it was saved with (checkpoints are not "
              "converted, so that a loaded network is exactly the saved one)");

  ByteReader r(data + kCheckpointHeaderBytes,
               size - kCheckpointHeaderBytes - kCheckpointTrailerBytes, kCheckpointHeaderBytes,
               path, caller);
  ByteReader opts = readCheckpointSection(r, "OPTS");
  front.options = readCheckpointOptions(opts);
  opts.expectEnd();
  // The input width is the one size not backed by stored items (every other width has a rowPtr
  // in the file), and the first layer's transpose index allocates an entry per input. Bounding
  // it by the file's size keeps every allocation proportional to the file, whatever it claims.
  const long long maxInputs = std::max<long long>(
      kCheckpointMinInputLimit, static_cast<long long>(kCheckpointInputsPerByte * size));
  if (!front.options.sizes.empty() && front.options.sizes.front() > maxInputs)
    opts.fail("the network claims ", front.options.sizes.front(), " inputs, more than the ",
              maxInputs, " a file of ", size, " bytes may declare (max(2^24, ",
              kCheckpointInputsPerByte, " per byte))");

  ByteReader rngSection = readCheckpointSection(r, "NRNG");
  for (auto& x : front.rng) x = rngSection.u64("network generator state");
  rngSection.expectEnd();
  if ((front.rng[0] | front.rng[1] | front.rng[2] | front.rng[3]) == 0)
    r.fail("the network's generator state is all zero, which xoshiro256** never reaches");

  ByteReader st = readCheckpointSection(r, "TRST");
  front.state = readCheckpointState(st, front.header.version);
  st.expectEnd();
  return {std::move(front), std::move(r)};
}

/// \brief Rebuilds the network (and the training state and preprocessing, where \p state and
/// \p prep are not null) from the contents of a checkpoint file of any version this build reads;
/// \p path only names it in messages. The state's optimiser arrays are aligned with the returned
/// network (their pattern ids are its layers'); a version-1 file's momentum becomes SGD state.
/// *state and *prep change only on success.
/// \throws FormatError naming \p path and what is wrong
template <class Scalar, class Index>
Network<Scalar, Index> decodeCheckpoint(const unsigned char* data, std::size_t size,
                                        const std::string& path, TrainingState* state,
                                        Preprocessing* prep = nullptr,
                                        const char* caller = "loadCheckpoint()") {
  checkCheckpointTypes<Scalar, Index>();
  auto [front, r] = decodeCheckpointFront(data, size, path, caller, sizeof(Scalar), sizeof(Index));
  const NetworkOptions& options = front.options;

  ByteReader lay = readCheckpointSection(r, "LAYR");
  // A layer takes at least its three header fields and a two-entry rowPtr.
  const std::size_t numLayers = lay.count("layer", 24 + 2 * sizeof(Index));
  if (numLayers == 0) lay.fail("section 'LAYR' has no layers");
  if (numLayers + 1 != options.sizes.size())
    lay.fail("section 'OPTS' lists ", options.sizes.size(), " layer sizes, but section 'LAYR' has ",
             numLayers, " layers");
  const bool v1 = front.header.version == 1;
  std::vector<SparseLinear<Scalar, Index>> layers;
  std::vector<CheckpointV1Momentum<Scalar>> momentum(v1 ? numLayers : 0);
  layers.reserve(numLayers);
  for (std::size_t l = 0; l < numLayers; ++l)
    layers.push_back(readCheckpointLayer<Scalar, Index>(
        lay, l, options.sizes[l], options.sizes[l + 1], v1 ? &momentum[l] : nullptr));
  lay.expectEnd();

  OptimizerState optimizer;
  if (v1) {
    // Version 1 kept SGD's momentum in the layers, and did not count optimiser steps.
    optimizer.kind = OptimizerKind::Sgd;
    optimizer.steps = front.state.step;
    auto& ls = optimizer.layersOf<Scalar>();
    ls.resize(numLayers);
    for (std::size_t l = 0; l < numLayers; ++l) {
      ls[l].entries.push_back(std::move(momentum[l].velocity));
      ls[l].rows.push_back(std::move(momentum[l].biasVelocity));
    }
  } else {
    ByteReader opt = readCheckpointSection(r, "OPTM");
    optimizer = readCheckpointOptimizer(opt, layers);
    opt.expectEnd();
  }

  ByteReader idSection = readCheckpointSection(r, "NIDS");
  std::vector<CheckpointNeuronIds> ids =
      readCheckpointNeuronIds(idSection, layers, front.header.version);
  idSection.expectEnd();

  ByteReader prepSection = readCheckpointSection(r, "PREP");
  Preprocessing loadedPrep = readCheckpointPreprocessing(prepSection, options.sizes.front());
  prepSection.expectEnd();
  r.expectEnd("the last section");

  const ByteReader file(data, size, 0, path, caller);
  try {
    Network<Scalar, Index> net(options, std::move(layers));
    net.rng().setState(front.rng);
    for (std::size_t l = 0; l < ids.size(); ++l)
      net.setNeuronIds(l, std::move(ids[l].ids), ids[l].originalWidth);
    if (!optimizer.empty())
      for (std::size_t l = 0; l < net.numLayers(); ++l)
        optimizer.layersOf<Scalar>()[l].pattern = net.layer(l).weights().patternId();
    front.state.optimizer = std::move(optimizer);
    if (state != nullptr) *state = std::move(front.state);
    if (prep != nullptr) *prep = std::move(loadedPrep);
    return net;
  } catch (const InvalidArgument& e) {
    file.fail(checkpointQuote(e.what()));
  } catch (const std::invalid_argument& e) {
    file.fail(checkpointQuote(e.what()));
  }
}

}  // namespace tsnn::detail
