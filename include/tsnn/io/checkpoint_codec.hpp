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
#include <memory>
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

/// \brief Checks that \p net, \p state (the optimiser's state included) and \p prep can be
/// written to a checkpoint, before a byte is: everything encodeCheckpoint() throws, it throws here.
/// \throws InvalidArgument if net.options().sizes differs from the layer widths, a layer's
/// biases are not aligned with its outputs, the optimiser state does not fit the network
/// (checkCheckpointOptimizer()), or \p prep does not fit the inputs (or holds a non-finite value
/// or a scale <= 0); NumericalError if a weight, bias or optimiser state value is not finite (it
/// could not be loaded back)
template <class Scalar, class Index>
void checkCheckpointContents(const Network<Scalar, Index>& net, const TrainingState& state,
                             const Preprocessing& prep, const char* caller) {
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
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    const auto& layer = net.layer(l);
    const auto rows = static_cast<std::size_t>(layer.outputs());
    const auto nnz = static_cast<std::size_t>(layer.nonZeros());
    if (layer.bias().size() != layer.outputs())
      raise<InvalidArgument>(caller, ": layer ", l, " has ", rows, " outputs but ",
                             layer.bias().size(), " biases");
    checkFinite(layer.weights().values().data(), nnz, l, "weight");
    checkFinite(layer.bias().data(), rows, l, "bias");
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
}

/// \brief Writes the seven sections of a checkpoint (format kCheckpointVersion), between the
/// header and the checksum, to \p w. The contents must have passed checkCheckpointContents().
template <class Scalar, class Index>
void writeCheckpointSections(ByteWriter& w, const Network<Scalar, Index>& net,
                             const TrainingState& state, const Preprocessing& prep) {
  writeCheckpointSection(w, "OPTS",
                         [&](ByteWriter& o) { writeCheckpointOptions(o, net.options()); });
  writeCheckpointSection(w, "NRNG", [&](ByteWriter& o) {
    for (std::uint64_t x : net.rng().state()) o.u64(x);
  });
  writeCheckpointSection(w, "TRST", [&](ByteWriter& o) { writeCheckpointState(o, state); });
  writeCheckpointSection(w, "LAYR", [&](ByteWriter& o) {
    o.u64(net.numLayers());
    for (std::size_t l = 0; l < net.numLayers(); ++l) writeCheckpointLayer(o, net.layer(l));
  });
  writeCheckpointSection(
      w, "OPTM", [&](ByteWriter& o) { writeCheckpointOptimizer<Scalar>(o, state.optimizer); });
  writeCheckpointSection(w, "NIDS", [&](ByteWriter& o) { writeCheckpointNeuronIds(o, net); });
  writeCheckpointSection(w, "PREP", [&](ByteWriter& o) { writeCheckpointPreprocessing(o, prep); });
}

/// \brief Writes a whole checkpoint file (format kCheckpointVersion) for \p net, \p state and
/// \p prep, which have passed checkCheckpointContents(), to the empty writer \p w: header,
/// sections, checksum. The sizes in the header and the section headers come from counting
/// passes, so a streaming \p w writes the file front to back with at most its block in memory.
template <class Scalar, class Index>
void writeCheckpoint(ByteWriter& w, const Network<Scalar, Index>& net, const TrainingState& state,
                     const Preprocessing& prep) {
  ByteWriter counter = ByteWriter::counter();
  writeCheckpointSections(counter, net, state, prep);
  w.reserve(kCheckpointHeaderBytes + counter.size() + kCheckpointTrailerBytes);
  const std::size_t start = w.size();
  w.bytes(kCheckpointMagic, 8);
  w.u32(kCheckpointVersion);
  w.u64(kCheckpointHeaderBytes + counter.size() + kCheckpointTrailerBytes);
  w.u32(sizeof(Scalar));
  w.u32(sizeof(Index));
  writeCheckpointSections(w, net, state, prep);
  if (start != 0 || w.size() != kCheckpointHeaderBytes + counter.size())
    throw std::logic_error(
        "tsnn: writeCheckpoint(): the writer must start empty, and the sections "
        "must write what they count");
  w.u32(w.crc());
}

/// \brief The checkpoint file contents (format kCheckpointVersion) for \p net, \p state (the
/// optimiser's state included) and \p prep, in memory: writeCheckpoint() to a string.
/// \throws what checkCheckpointContents() throws
template <class Scalar, class Index>
std::string encodeCheckpoint(const Network<Scalar, Index>& net, const TrainingState& state,
                             const Preprocessing& prep = Preprocessing{},
                             const char* caller = "saveCheckpoint()") {
  checkCheckpointContents(net, state, prep, caller);
  ByteWriter w;
  writeCheckpoint(w, net, state, prep);
  return std::move(w.buffer());
}

/// \brief The front of a checkpoint: its header and the sections before the layers.
struct CheckpointFront {
  CheckpointHeader header;
  NetworkOptions options;              ///< "OPTS"
  std::array<std::uint64_t, 4> rng{};  ///< "NRNG": the network generator's state
  TrainingState state;                 ///< "TRST"
};

/// \brief Given the \p header that checkedCheckpointDecode() read and checked, checks the scalar
/// and index sizes when \p scalarBytes and \p indexBytes are not 0, and decodes "OPTS", "NRNG"
/// and "TRST" of the \p size-byte file that \p source reads. This is the first half of
/// decodeCheckpoint() and all of readCheckpointInfo(). The checksum is not checked here:
/// checkedCheckpointDecode() checks it after decoding.
/// \return the front and a reader over the sections that follow it, up to the checksum
/// \throws FormatError naming \p path and what is wrong
inline std::pair<CheckpointFront, ByteReader> decodeCheckpointFront(
    const CheckpointHeader& header, const std::shared_ptr<ByteSource>& source, std::size_t size,
    const std::string& path, const char* caller, std::uint32_t scalarBytes = 0,
    std::uint32_t indexBytes = 0) {
  CheckpointFront front;
  front.header = header;
  const CheckpointHeader& h = front.header;
  ByteReader r(source, kCheckpointHeaderBytes,
               size - kCheckpointHeaderBytes - kCheckpointTrailerBytes, path, caller);
  if ((scalarBytes != 0 && h.scalarBytes != scalarBytes) ||
      (indexBytes != 0 && h.indexBytes != indexBytes))
    r.fail("it holds a Network<", checkpointScalarName(h.scalarBytes), ", ",
           checkpointIndexName(h.indexBytes), "> (", h.scalarBytes, "-byte scalars, ", h.indexBytes,
           "-byte indices), but a Network<", checkpointScalarName(scalarBytes), ", ",
           checkpointIndexName(indexBytes),
           "> was asked for; load it with the types it was saved with (checkpoints are not "
           "converted, so that a loaded network is exactly the saved one)");

  ByteReader opts = readCheckpointSection(r, "OPTS");
  front.options = readCheckpointOptions(opts, h.version);
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

/// \brief Checks the header of the \p size-byte checkpoint that \p source reads, runs
/// \p decode(header) over the rest and checks the file's checksum, in one pass over the file:
/// the source computes the CRC-32 of the bytes as it delivers them. Errors come as if the
/// checksum were checked first: a file whose magic, version and length are right but whose
/// checksum is wrong is refused for its checksum, whatever else \p decode found wrong with it.
/// The magic, version and length are checked before \p decode runs (a file too short for a
/// checksum has none to check).
/// \return what \p decode returns
/// \throws FormatError naming \p path and what is wrong
template <class Decode>
auto checkedCheckpointDecode(const std::shared_ptr<ByteSource>& source, std::size_t size,
                             const std::string& path, const char* caller, const Decode& decode) {
  unsigned char head[kCheckpointHeaderBytes] = {};
  source->read(0, head, std::min(size, kCheckpointHeaderBytes));
  const CheckpointHeader header = checkCheckpointHeader(head, size, path, caller);
  try {
    auto result = decode(header);
    checkCheckpointChecksum(source, size, path, caller);
    return result;
  } catch (const FormatError&) {
    checkCheckpointChecksum(source, size, path, caller);  // a corrupt file is refused as such
    throw;
  }
}

/// \brief What a checkpoint holds, decoded.
template <class Scalar, class Index>
struct DecodedCheckpoint {
  Network<Scalar, Index> net;
  TrainingState state;
  Preprocessing prep;
};

/// \brief decodeCheckpoint() without the checksum: the sections after the header, in order, and
/// the network built from them.
template <class Scalar, class Index>
DecodedCheckpoint<Scalar, Index> decodeCheckpointSections(const CheckpointHeader& header,
                                                          const std::shared_ptr<ByteSource>& source,
                                                          std::size_t size, const std::string& path,
                                                          const char* caller) {
  auto [front, r] =
      decodeCheckpointFront(header, source, size, path, caller, sizeof(Scalar), sizeof(Index));
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

  try {
    Network<Scalar, Index> net(options, std::move(layers));
    net.rng().setState(front.rng);
    for (std::size_t l = 0; l < ids.size(); ++l)
      net.setNeuronIds(l, std::move(ids[l].ids), ids[l].originalWidth);
    if (!optimizer.empty())
      for (std::size_t l = 0; l < net.numLayers(); ++l)
        optimizer.layersOf<Scalar>()[l].pattern = net.layer(l).weights().patternId();
    front.state.optimizer = std::move(optimizer);
    return {std::move(net), std::move(front.state), std::move(loadedPrep)};
  } catch (const InvalidArgument& e) {
    r.fail(checkpointQuote(e.what()));
  } catch (const std::invalid_argument& e) {
    r.fail(checkpointQuote(e.what()));
  }
}

/// \brief Rebuilds the network (and the training state and preprocessing, where \p state and
/// \p prep are not null) from the \p size-byte checkpoint file of any version this build reads
/// that \p source reads, in one pass (checkedCheckpointDecode()); \p path only names it in
/// messages. The state's optimiser arrays are aligned with the returned network (their pattern
/// ids are its layers'); a version-1 file's momentum becomes SGD state. *state and *prep change
/// only on success.
/// \throws FormatError naming \p path and what is wrong
template <class Scalar, class Index>
Network<Scalar, Index> decodeCheckpoint(const std::shared_ptr<ByteSource>& source, std::size_t size,
                                        const std::string& path, TrainingState* state,
                                        Preprocessing* prep = nullptr,
                                        const char* caller = "loadCheckpoint()") {
  checkCheckpointTypes<Scalar, Index>();
  DecodedCheckpoint<Scalar, Index> d =
      checkedCheckpointDecode(source, size, path, caller, [&](const CheckpointHeader& header) {
        return decodeCheckpointSections<Scalar, Index>(header, source, size, path, caller);
      });
  if (state != nullptr) *state = std::move(d.state);
  if (prep != nullptr) *prep = std::move(d.prep);
  return std::move(d.net);
}

/// \brief decodeCheckpoint() of the \p size bytes at \p data.
template <class Scalar, class Index>
Network<Scalar, Index> decodeCheckpoint(const unsigned char* data, std::size_t size,
                                        const std::string& path, TrainingState* state,
                                        Preprocessing* prep = nullptr,
                                        const char* caller = "loadCheckpoint()") {
  return decodeCheckpoint<Scalar, Index>(std::make_shared<MemoryByteSource>(data, size), size, path,
                                         state, prep, caller);
}

}  // namespace tsnn::detail
