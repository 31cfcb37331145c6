#pragma once
/// \file
/// \brief A multilayer perceptron built from truly sparse layers.

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/memory.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/nn/activation.hpp"
#include "tsnn/nn/all_relu.hpp"
#include "tsnn/nn/dropout.hpp"
#include "tsnn/nn/loss.hpp"
#include "tsnn/nn/pass_options.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/sparse/pattern_remap.hpp"

namespace tsnn {

/// \brief Everything that defines a Network's architecture and initialisation.
struct NetworkOptions {
  /// Layer widths: input, hidden..., output (e.g. {784, 1000, 1000, 1000, 10}).
  std::vector<long long> sizes;
  /// SET's epsilon: each layer starts at density eps (n_in + n_out) / (n_in n_out), capped at 1.
  double epsilon = 20;
  /// How the connections are spread over layers (per-layer ER, or ERK's global budget).
  DensityAllocation allocation = DensityAllocation::ErdosRenyi;
  WeightInit init = WeightInit::HeUniform;
  ActivationKind hiddenActivation = ActivationKind::AllReLU;
  /// All-ReLU: the slope magnitude a (signs alternate -a, +a, ...). LeakyReLU: the slope.
  double alpha = 0.6;
  LossKind loss = LossKind::SoftmaxCrossEntropy;
  /// Output activation for MSE (ignored for cross-entropy, whose softmax is part of the loss).
  ActivationKind outputActivation = ActivationKind::Identity;
  /// Inverted dropout rate on hidden activations during training, in [0, 1).
  double dropout = 0.3;
  std::uint64_t seed = 1;
  /// How a training pass stores the hidden layers' pre-activations, activations and deltas:
  /// in Scalar, or in bfloat16 (float networks only; see Workspace). Weights, gradients,
  /// optimiser state, the output layer and infer() stay in Scalar.
  ActivationStorage activationStorage = ActivationStorage::Scalar;

  /// \throws InvalidArgument naming the first bad value.
  void validate() const {
    if (sizes.size() < 2)
      detail::raise<InvalidArgument>(
          "NetworkOptions: need at least an input and an output size, got ", sizes.size(),
          " sizes");
    for (std::size_t i = 0; i < sizes.size(); ++i)
      if (sizes[i] <= 0 || sizes[i] > (1ll << 31) - 1)
        detail::raise<InvalidArgument>("NetworkOptions: layer ", i, " has size ", sizes[i],
                                       " (must be in [1, 2^31))");
    if (sizes.back() < 2 && loss == LossKind::SoftmaxCrossEntropy)
      detail::raise<InvalidArgument>("NetworkOptions: cross-entropy needs at least 2 outputs, got ",
                                     sizes.back());
    if (!(epsilon > 0) || !std::isfinite(epsilon))
      detail::raise<InvalidArgument>("NetworkOptions: epsilon must be positive and finite, got ",
                                     epsilon);
    if (!(alpha >= 0) || !std::isfinite(alpha))
      detail::raise<InvalidArgument>("NetworkOptions: alpha must be finite and >= 0, got ", alpha);
    if (!(dropout >= 0 && dropout < 1))
      detail::raise<InvalidArgument>("NetworkOptions: dropout must be in [0, 1), got ", dropout);
    if (activationStorage != ActivationStorage::Scalar &&
        activationStorage != ActivationStorage::BFloat16)
      detail::raise<InvalidArgument>("NetworkOptions: unknown activation storage ",
                                     static_cast<int>(activationStorage));
  }
};

/// \brief Per-layer gradients, aligned with each layer's sparse values.
template <class Scalar>
struct Gradients {
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  std::vector<std::vector<Scalar>> weights;
  std::vector<Vector> bias;

  void setZero() {
    for (auto& w : weights) std::fill(w.begin(), w.end(), Scalar(0));
    for (auto& b : bias) b.setZero();
  }
  /// \brief this += other, elementwise (shapes must match).
  void add(const Gradients& other) {
    for (std::size_t l = 0; l < weights.size(); ++l) {
      TSNN_ASSERT(weights[l].size() == other.weights[l].size());
      Scalar* d = weights[l].data();
      const Scalar* s = other.weights[l].data();
      const std::size_t n = weights[l].size();
      for (std::size_t k = 0; k < n; ++k) d[k] += s[k];
      bias[l] += other.bias[l];
    }
  }
};

/// \brief Buffers for one forward/backward pass over a block of samples. A trainer keeps one per
/// thread; they are resized on use and reused between batches.
///
/// Per sample a training pass keeps z and a for every hidden layer and z and the output for the
/// last: 2 sum(hidden widths) + 2 outputs values. The dropout mask is not stored: backward
/// recomputes it from its counter-based key (a hash per value, against a batch x width buffer per
/// layer). backward() needs no delta buffers but the output layer's: each hidden layer's delta
/// overwrites its activations a, which the fused backward pass reads column by column just
/// before it writes the delta there (so after backward() ws.a holds the deltas, not the
/// activations); backwardDeltas() keeps every layer's delta in ws.delta, because the trainers
/// that call it compute the gradients once all shards have theirs.
///
/// With bfloat16 storage (NetworkOptions::activationStorage, or PassOptions::storage()) the
/// hidden layers' z and a live in zHalf and aHalf instead (z and a hold no hidden layer), at 2
/// bytes a value: 4 sum(hidden widths) bytes per sample against 8 in float. Each hidden layer's
/// kernel writes its float pre-activations into one scratch buffer of B x (widest hidden layer)
/// floats, which the elementwise pass rounds into zHalf and, after f and dropout, into aHalf;
/// backward() reuses the scratch for the elementwise pass over the deltas, and writes each
/// hidden delta over aHalf as in float. Only backward() takes such a pass (backwardDeltas() and
/// gradientsRows() have no bfloat16 form and refuse it). A value stored in bfloat16 is rounded
/// once, to nearest even; a delta twice: when the fused kernel stores dL/da and after the mask
/// and f'(z), which is computed from the stored z.
template <class Scalar>
struct Workspace {
  using Buffer = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  std::vector<Activations<Scalar>> z;        ///< pre-activations per layer (B x n_out)
  std::vector<Activations<Scalar>> a;        ///< activations per hidden layer, after dropout
  std::vector<Activations<Scalar>> delta;    ///< dL/dz per layer (backwardDeltas() only)
  Activations<Scalar> output;                ///< probabilities (cross-entropy) or f(z) (MSE)
  Buffer outputDelta;                        ///< backward()'s delta of the output layer
  std::vector<Activations<BFloat16>> zHalf;  ///< bfloat16 storage: hidden pre-activations
  std::vector<Activations<BFloat16>> aHalf;  ///< bfloat16 storage: hidden activations, deltas
  Buffer scratch;  ///< bfloat16 storage: one hidden layer's float values, B x (widest hidden)
  /// What the forward pass stored the hidden layers in (Scalar when there are none).
  ActivationStorage storage = ActivationStorage::Scalar;
  bool dropout = false;        ///< whether the forward pass applied dropout masks
  std::uint64_t step = 0;      ///< the training step whose masks it applied
  Eigen::Index rowOffset = 0;  ///< the block's first row in its minibatch
  /// Set by backward(), cleared by forward(): a holds the deltas, so the workspace no longer
  /// holds a forward pass (every pass that needs one refuses it).
  bool activationsOverwritten = false;

  /// \brief Bytes held by the buffers (their current sizes).
  std::size_t bytes() const {
    std::size_t n = static_cast<std::size_t>(output.size() + outputDelta.size() + scratch.size());
    for (const auto* v : {&z, &a, &delta})
      for (const auto& m : *v) n += static_cast<std::size_t>(m.size());
    std::size_t half = 0;
    for (const auto* v : {&zHalf, &aHalf})
      for (const auto& m : *v) half += static_cast<std::size_t>(m.size());
    return n * sizeof(Scalar) + half * sizeof(BFloat16);
  }
};

/// \brief The two ping-pong buffers of an inference pass: each layer's output overwrites the
/// one before the last, so memory is 2 x chunk x (widest layer), whatever the depth.
template <class Scalar>
struct InferenceWorkspace {
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> buffer[2];
  Activations<Scalar> logits;  ///< the last layer's pre-activations
  Activations<Scalar> output;  ///< scores of the last block
  std::size_t bytes() const {
    return static_cast<std::size_t>(buffer[0].size() + buffer[1].size() + logits.size() +
                                    output.size()) *
           sizeof(Scalar);
  }
};

/// \brief What a network and one training configuration hold in memory, in bytes, by kind: the
/// figures count the elements of every buffer (allocator overhead and vector slack excluded).
struct MemoryReport {
  std::size_t weights = 0;             ///< connection values
  std::size_t indices = 0;             ///< CSR column indices and row pointers
  std::size_t transposeIndex = 0;      ///< the input-gradient kernel's column index
  std::size_t biases = 0;              ///< biases and neuron ids (8 bytes per hidden neuron)
  std::size_t optimizerState = 0;      ///< as given (Optimizer::bytes(), or an estimate)
  std::size_t gradients = 0;           ///< one gradient per copy, weights and biases
  std::size_t workspacePerSample = 0;  ///< a training pass's buffers per sample
  std::size_t workspace = 0;           ///< the same for the batch (per-thread shards together)
  std::size_t inputBatch = 0;          ///< the gathered minibatch and its labels
  std::size_t inference = 0;           ///< the evaluation's two buffers for its chunk
  long long connections = 0;
  long long hiddenNeurons = 0;
  long long batch = 0;
  long long inferenceChunk = 0;

  std::size_t model() const { return weights + indices + transposeIndex + biases; }
  /// Everything at once: evaluation runs between epochs while the trainer still holds its
  /// buffers, so its two buffers come on top of the rest (the data set itself is not counted).
  std::size_t total() const {
    return model() + optimizerState + gradients + inputBatch + workspace + inference;
  }
  /// \brief A table of the figures, bytes per connection and per neuron-sample included.
  std::string toString() const {
    std::ostringstream os;
    auto mb = [](std::size_t b) {
      std::ostringstream t;
      t << std::fixed << std::setprecision(1) << static_cast<double>(b) / 1048576.0 << " MiB";
      return t.str();
    };
    auto row = [&](const char* name, std::size_t b, const std::string& note) {
      os << "  " << std::left << std::setw(22) << name << std::right << std::setw(14) << mb(b)
         << "  " << note << "\n";
    };
    const double c = static_cast<double>(std::max(1ll, connections));
    auto perConnection = [&](std::size_t b) {
      std::ostringstream t;
      t << std::fixed << std::setprecision(2) << static_cast<double>(b) / c << " B/connection";
      return t.str();
    };
    os << "memory: " << connections << " connections, " << hiddenNeurons
       << " hidden neurons, batch " << batch << "\n";
    row("weights", weights, perConnection(weights));
    row("indices", indices, perConnection(indices));
    row("transpose index", transposeIndex, perConnection(transposeIndex));
    row("biases and ids", biases, "");
    row("optimiser state", optimizerState, perConnection(optimizerState));
    row("gradients", gradients, perConnection(gradients));
    {
      std::ostringstream t;
      t << std::fixed << std::setprecision(2)
        << static_cast<double>(workspacePerSample) /
               static_cast<double>(std::max(1ll, hiddenNeurons))
        << " B/hidden neuron-sample, " << workspacePerSample << " B/sample";
      row("activations (batch)", workspace, t.str());
    }
    row("input batch", inputBatch, "");
    {
      std::ostringstream t;
      t << "chunk of " << inferenceChunk << " samples, during evaluation";
      row("evaluation buffers", inference, t.str());
    }
    row("total", total(), perConnection(total()) + ", the data set not included");
    return os.str();
  }
};

/// \brief The training configuration a MemoryReport is computed for.
struct MemoryPlan {
  long long batch = 128;
  std::size_t optimizerStateBytes = 0;  ///< Optimizer::bytes(), once it has state
  /// Gradient buffers the trainer keeps (1 for the sequential and data-parallel trainers).
  int gradientCopies = 1;
  /// Whether the trainer keeps every layer's delta (backwardDeltas(): the data-parallel
  /// trainer) or only the output layer's (backward(): the sequential one).
  bool perLayerDeltas = false;
};

/// \brief Loss and accuracy counts of one block.
struct BlockStats {
  double lossSum = 0;
  long long correct = 0;
  long long samples = 0;
};

/// \brief A feed-forward network of SparseLinear layers with per-layer activations.
///
/// Hidden layer l uses options.hiddenActivation; with All-ReLU its slope is allReluSlope(l, alpha)
/// = -a, +a, -a, ... The last layer feeds the loss.
template <class Scalar, class Index = std::int32_t>
class Network {
 public:
  using Layer = SparseLinear<Scalar, Index>;
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  using Features = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

  /// \brief Builds an Erdos-Renyi initialised network.
  /// \throws InvalidArgument if the options are invalid.
  explicit Network(const NetworkOptions& options) : m_options(options) {
    options.validate();
    // Before the layers are built: at millions of neurons that takes minutes.
    checkStorage(options.activationStorage, "Network::Network()");
    Rng rng(options.seed);
    const auto& s = options.sizes;
    const std::vector<double> density = layerDensities(s, options.epsilon, options.allocation);
    for (std::size_t l = 0; l + 1 < s.size(); ++l)
      m_layers.emplace_back(static_cast<Index>(s[l]), static_cast<Index>(s[l + 1]), density[l], rng,
                            options.init);
    m_rng = rng.split();
    buildActivations();
    resetNeuronIds();
  }

  /// \brief Assembles a network from existing layers (e.g. loaded, or built by hand in tests).
  /// \throws InvalidArgument if consecutive layers do not fit together.
  Network(const NetworkOptions& options, std::vector<Layer> layers)
      : m_options(options), m_layers(std::move(layers)) {
    if (m_layers.empty()) detail::raise<InvalidArgument>("Network::Network(): no layers");
    m_options.sizes.assign(1, m_layers.front().inputs());
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      if (l > 0 && m_layers[l].inputs() != m_layers[l - 1].outputs())
        detail::raise<InvalidArgument>("Network::Network(): layer ", l, " takes ",
                                       m_layers[l].inputs(), " inputs but layer ", l - 1, " has ",
                                       m_layers[l - 1].outputs(), " outputs");
      m_options.sizes.push_back(m_layers[l].outputs());
    }
    m_options.validate();
    checkStorage(m_options.activationStorage, "Network::Network()");
    m_rng = Rng(m_options.seed).split();
    buildActivations();
    resetNeuronIds();
  }

  const NetworkOptions& options() const { return m_options; }

  /// \brief For hidden layer \p hidden, the original index of each current neuron (neurons
  /// removed by removeHiddenNeurons() leave gaps; the survivors keep their order).
  const std::vector<long long>& neuronIds(std::size_t hidden) const { return m_ids.at(hidden); }

  /// \brief The number of neurons hidden layer \p hidden was built with: removed neurons still
  /// count, at importance 0, in the percentile that importance pruning takes over the layer
  /// (topology/importance.hpp). At least the current width, and above every neuron id.
  long long originalWidth(std::size_t hidden) const { return m_widths.at(hidden); }

  /// \brief Removes neurons of hidden layer \p hidden: their row of incoming connections and
  /// bias in layer \p hidden, and their column of outgoing connections in the next layer, whose
  /// column indices are compacted. Removal is the reference's pruning (its incoming weights set
  /// to 0) made physical: with no inputs, neuron j outputs the constant f(b_j), in expectation
  /// under inverted dropout too, so its contribution W_kj f(b_j) is added to the next layer's
  /// biases b_k. The network then computes exactly what it computes with row j of layer
  /// \p hidden emptied; for a neuron without incoming connections that is what it computed
  /// before.
  /// \param neurons current indices in the layer, any order, no duplicates
  /// \returns the change of layers \p hidden (entries and rows) and \p hidden + 1 (entries):
  /// every surviving connection and neuron continues its old one; nothing is new. Empty (no
  /// layer changed) when \p neurons is empty. Pass it to the optimiser (Optimizer::remap()).
  /// \throws InvalidArgument if \p hidden is not a hidden layer, an index is out of range or
  /// repeated, or no neuron would be left
  NetworkRemap<Index> removeHiddenNeurons(std::size_t hidden, std::vector<Index> neurons);
  std::size_t numLayers() const { return m_layers.size(); }
  Layer& layer(std::size_t l) { return m_layers[l]; }
  const Layer& layer(std::size_t l) const { return m_layers[l]; }
  const Activation<Scalar>& activation(std::size_t hidden) const { return m_act[hidden]; }
  Index inputs() const { return m_layers.front().inputs(); }
  Index outputs() const { return m_layers.back().outputs(); }
  /// \brief The network's own random stream (topology evolution draws from it).
  Rng& rng() { return m_rng; }
  const Rng& rng() const { return m_rng; }

  /// \brief Restores hidden layer \p hidden's map to original neuron ids and the width it was
  /// built with (checkpoints).
  /// \param originalWidth 0 takes the smallest width the ids allow (the last id + 1)
  /// \throws InvalidArgument unless \p ids has one entry per current neuron, strictly
  /// increasing and non-negative, and \p originalWidth is 0 or above the last id
  void setNeuronIds(std::size_t hidden, std::vector<long long> ids, long long originalWidth = 0) {
    if (hidden + 1 >= m_layers.size())
      detail::raise<InvalidArgument>("Network::setNeuronIds(): layer ", hidden,
                                     " is not a hidden layer");
    if (ids.size() != static_cast<std::size_t>(m_layers[hidden].outputs()))
      detail::raise<InvalidArgument>("Network::setNeuronIds(): ", ids.size(), " ids for ",
                                     m_layers[hidden].outputs(), " neurons");
    for (std::size_t j = 0; j < ids.size(); ++j)
      if (ids[j] < 0 || (j > 0 && ids[j] <= ids[j - 1]))
        detail::raise<InvalidArgument>("Network::setNeuronIds(): id ", ids[j], " at position ", j,
                                       " is negative or not increasing");
    const long long smallest = ids.empty() ? 0 : ids.back() + 1;
    if (originalWidth != 0 && originalWidth < smallest)
      detail::raise<InvalidArgument>("Network::setNeuronIds(): original width ", originalWidth,
                                     " of hidden layer ", hidden, " is not above its last id ",
                                     smallest - 1);
    m_ids[hidden] = std::move(ids);
    m_widths[hidden] = originalWidth != 0 ? originalWidth : smallest;
  }

  /// \brief Current layer widths (input, hidden..., output).
  std::vector<long long> sizes() const {
    std::vector<long long> s{static_cast<long long>(inputs())};
    for (const auto& l : m_layers) s.push_back(l.outputs());
    return s;
  }
  long long nonZeros() const {
    long long n = 0;
    for (const auto& l : m_layers) n += l.nonZeros();
    return n;
  }
  long long hiddenNeurons() const {
    long long n = 0;
    for (std::size_t l = 0; l + 1 < m_layers.size(); ++l) n += m_layers[l].outputs();
    return n;
  }
  std::size_t bytes() const {
    std::size_t b = 0;
    for (const auto& l : m_layers) b += l.bytes();
    return b;
  }

  /// \brief Gradient buffers shaped like this network's parameters.
  Gradients<Scalar> makeGradients() const {
    Gradients<Scalar> g;
    for (const auto& l : m_layers) {
      g.weights.emplace_back();
      assignWithHugePages(g.weights.back(), static_cast<std::size_t>(l.nonZeros()), Scalar(0));
      g.bias.push_back(Vector::Zero(l.outputs()));
    }
    return g;
  }

  /// \brief Forward pass over a block of samples (B x inputs()), leaving every intermediate in
  /// \p ws for backward(). With PassOptions::training(step), dropout is applied with masks keyed
  /// by (step, pass.rowOffset() + row), so that shards of one minibatch reproduce the whole
  /// minibatch's masks.
  /// The hidden values are stored as NetworkOptions::activationStorage says, unless
  /// PassOptions::storage() overrides it (see Workspace).
  /// \param pass inference (the default) or training, the block's row offset, the team for
  /// the kernels and the elementwise work, and the storage (see PassOptions)
  /// \returns the output (probabilities for cross-entropy), a reference into \p ws
  /// \throws InvalidArgument if x does not have inputs() columns, or the pass asks for
  /// bfloat16 storage in a network whose Scalar is not float
  const Activations<Scalar>& forward(const ConstActivationsRef<Scalar>& x, Workspace<Scalar>& ws,
                                     const PassOptions& pass = PassOptions()) const {
    const Threads threads = pass.threads();
    const Eigen::Index rowOffset = pass.rowOffset();
    if (x.cols() != inputs())
      detail::raise<InvalidArgument>("Network::forward(): input has ", x.cols(),
                                     " features, network expects ", inputs());
    const ActivationStorage storage = pass.storageOr(m_options.activationStorage);
    checkStorage(storage, "Network::forward()");
    const Eigen::Index batch = x.rows();
    const std::size_t L = m_layers.size();
    const bool half = storage == ActivationStorage::BFloat16 && L > 1;
    ws.storage = half ? ActivationStorage::BFloat16 : ActivationStorage::Scalar;
    ws.z.resize(L);
    ws.a.resize(L - 1);
    ws.delta.resize(L);
    ws.zHalf.resize(half ? L - 1 : 0);
    ws.aHalf.resize(half ? L - 1 : 0);
    const bool drop = pass.isTraining() && m_options.dropout > 0;
    ws.dropout = drop;
    ws.activationsOverwritten = false;
    ws.step = pass.step();
    ws.rowOffset = rowOffset;
    if (half) {
      // The float buffers of the other storage are released, so that a workspace holds one
      // pass's buffers, not both.
      for (std::size_t l = 0; l + 1 < L; ++l) {
        ws.z[l].resize(0, 0);
        ws.a[l].resize(0, 0);
      }
      if constexpr (std::is_same_v<Scalar, float>) forwardHalf(x, ws, threads);
    } else {
      ws.zHalf.clear();
      ws.aHalf.clear();
      ws.scratch.resize(0);
      for (std::size_t l = 0; l < L; ++l) {
        resizeWithHugePages(ws.z[l], batch, m_layers[l].outputs());
        m_layers[l].forward(layerInput(l, x, ws), ws.z[l], threads);
        if (l + 1 < L) {
          resizeWithHugePages(ws.a[l], batch, m_layers[l].outputs());
          const std::uint64_t key = dropoutKey(m_options.seed, pass.step(), l);
          // Activation and dropout in one pass over column blocks, in parallel like the kernels.
          forColumnBlocks(m_layers[l].outputs(), threads, [&](Eigen::Index c0, Eigen::Index n) {
            auto zb = ws.z[l].middleCols(c0, n);
            auto ab = ws.a[l].middleCols(c0, n);
            m_act[l].forward(zb, ab);
            if (drop) dropoutMultiply(ab, m_options.dropout, key, rowOffset, c0);
          });
        }
      }
    }
    ws.output.resize(batch, outputs());
    if (m_options.loss == LossKind::SoftmaxCrossEntropy)
      softmaxRows(ws.z[L - 1], ws.output);
    else
      m_outAct.forward(ws.z[L - 1], ws.output);
    return ws.output;
  }

  /// \brief Backward pass after forward() on the same block: writes the gradient of
  /// (gradScale * sum of per-sample losses) into \p grads, and returns the block's loss sum and
  /// correct count. Pass gradScale = 1 / minibatch size for the minibatch mean. Dropout masks are
  /// used exactly when the forward pass applied them (recorded in \p ws), so the pass needs no
  /// PassOptions of its own: only the team for its kernels.
  /// \param threads team for the kernels and the elementwise work (ignored inside a region)
  /// \throws InvalidArgument if a label is out of range or \p ws does not hold a forward pass of
  /// this network on a block of x.rows() samples
  BlockStats backward(const ConstActivationsRef<Scalar>& x, const std::int32_t* labels,
                      Workspace<Scalar>& ws, Gradients<Scalar>& grads, Scalar gradScale,
                      Threads threads = Threads::automatic()) const {
    const std::size_t L = m_layers.size();
    checkWorkspace(ws, x.rows(), "Network::backward()");
    if (grads.weights.size() != L || grads.bias.size() != L)
      detail::raise<InvalidArgument>("Network::backward(): gradients have ", grads.weights.size(),
                                     " layers, network has ", L);
    const Eigen::Index batch = ws.output.rows();
    // The output layer's delta in ws.outputDelta; hidden layer l's in ws.a[l] (see Workspace).
    if (ws.outputDelta.size() < batch * outputs())
      resizeWithHugePages(ws.outputDelta, batch * outputs(), 1);
    if constexpr (std::is_same_v<Scalar, float>)
      if (ws.storage == ActivationStorage::BFloat16)
        return backwardHalf(x, labels, ws, grads, gradScale, threads);
    auto deltaOf = [&](std::size_t l) {
      Scalar* p = l + 1 == L ? ws.outputDelta.data() : ws.a[l].data();
      return ActivationsMap(p, batch, m_layers[l].outputs(), Eigen::OuterStride<>(batch));
    };
    const BlockStats stats = outputDelta(labels, ws, gradScale, deltaOf(L - 1));
    ws.activationsOverwritten = L > 1;
    // Each layer's gradients with its input gradient in one pass over its columns (each delta
    // row is read once for both), the input gradient written over the input activations in
    // place, then turned into the delta below by the activation's derivative. The first layer
    // has no input gradient: its weight gradient alone, by rows.
    for (std::size_t l = L; l-- > 0;) {
      const auto delta = deltaOf(l);
      if (l == 0) {
        m_layers[0].gradients(x, delta, grads.weights[0], grads.bias[0], Scalar(1), threads);
      } else {
        auto below = deltaOf(l - 1);  // = ws.a[l - 1], the fused pass's input and output
        m_layers[l].backwardFused(ws.a[l - 1], delta, below, grads.weights[l], grads.bias[l],
                                  Scalar(1), threads);
        deltaThroughActivation(l, ws, below, threads);
      }
    }
    return stats;
  }

  /// \brief backward() without the weight and bias gradients: only the loss and every layer's
  /// delta (dL/dz, in ws.delta). For trainers that split the gradients among threads with
  /// gradientsRows() once all shards of a minibatch have their deltas.
  /// \param threads team for the kernels, as in backward()
  /// \param onDelta if set, called with l as soon as layer l's delta is final (l = L-1, ..., 0)
  /// \throws InvalidArgument as backward(), or if \p ws holds a bfloat16 pass (forward() with
  /// PassOptions::storage(ActivationStorage::Scalar) gives one it takes)
  BlockStats backwardDeltas(const std::int32_t* labels, Workspace<Scalar>& ws, Scalar gradScale,
                            Threads threads = Threads::automatic(),
                            const std::function<void(std::size_t)>& onDelta = {}) const {
    checkWorkspace(ws, ws.output.rows(), "Network::backwardDeltas()");
    checkScalarStorage(ws, "Network::backwardDeltas()");
    const Eigen::Index batch = ws.output.rows();
    for (std::size_t l = 0; l < m_layers.size(); ++l)
      resizeWithHugePages(ws.delta[l], batch, m_layers[l].outputs());
    const BlockStats stats = outputDelta(labels, ws, gradScale, ws.delta.back());
    for (std::size_t l = m_layers.size(); l-- > 0;) {
      if (l + 1 < m_layers.size()) propagateDelta(l + 1, ws, ws.delta[l + 1], ws.delta[l], threads);
      if (onDelta) onDelta(l);
    }
    return stats;
  }

  /// \brief Layer \p l's weight and bias gradients for its output neurons [first, last), summed
  /// over \p blocks shards of one minibatch, serially: shard s has input x[s] and workspace
  /// ws[s], after backwardDeltas() on it. Writes only those neurons' entries of \p grads, which
  /// must already have the network's shape; threads may compute disjoint ranges side by side
  /// (see SparseLinear::gradientsRows()). With one shard, the entries are bit for bit those of
  /// backward().
  /// \throws InvalidArgument if a shard or \p grads does not fit the network, or the range is
  /// outside [0, outputs of layer l]
  void gradientsRows(std::size_t l, const Activations<Scalar>* x, const Workspace<Scalar>* ws,
                     std::size_t blocks, Gradients<Scalar>& grads, Index first, Index last) const {
    if (l >= m_layers.size() || grads.weights.size() != m_layers.size() ||
        grads.bias.size() != m_layers.size())
      detail::raise<InvalidArgument>("Network::gradientsRows(): layer ", l, " or gradients with ",
                                     grads.weights.size(), " layers do not fit a network of ",
                                     m_layers.size(), " layers");
    std::vector<ConstActivationsRef<Scalar>> in, delta;
    in.reserve(blocks);
    delta.reserve(blocks);
    for (std::size_t s = 0; s < blocks; ++s) {
      checkWorkspace(ws[s], x[s].rows(), "Network::gradientsRows()");
      checkScalarStorage(ws[s], "Network::gradientsRows()");
      in.push_back(layerInput(l, x[s], ws[s]));
      delta.emplace_back(ws[s].delta[l]);
    }
    m_layers[l].gradientsRows(in.data(), delta.data(), blocks, grads.weights[l], grads.bias[l],
                              Scalar(1), first, last);
  }

  /// \brief An inference pass over a block (B x inputs()) that keeps no intermediates: two
  /// buffers of B x (widest layer) in \p iw, each layer's output overwriting the one before the
  /// last. The scores equal forward()'s in inference mode, bit for bit.
  /// \returns the output (probabilities for cross-entropy), a reference into \p iw
  /// \throws InvalidArgument if x does not have inputs() columns
  const Activations<Scalar>& infer(const ConstActivationsRef<Scalar>& x,
                                   InferenceWorkspace<Scalar>& iw,
                                   Threads threads = Threads::automatic()) const {
    if (x.cols() != inputs())
      detail::raise<InvalidArgument>("Network::infer(): input has ", x.cols(),
                                     " features, network expects ", inputs());
    const Eigen::Index batch = x.rows();
    growBuffers(iw.buffer, batch * widestLayer());
    const std::size_t L = m_layers.size();
    for (std::size_t l = 0; l < L; ++l) {
      ActivationsMap z(iw.buffer[l % 2].data(), batch, m_layers[l].outputs(),
                       Eigen::OuterStride<>(batch));
      if (l == 0)
        m_layers[l].forward(x, z, threads);
      else
        m_layers[l].forward(ActivationsMap(iw.buffer[(l - 1) % 2].data(), batch,
                                           m_layers[l - 1].outputs(), Eigen::OuterStride<>(batch)),
                            z, threads);
      if (l + 1 < L) {
        forColumnBlocks(m_layers[l].outputs(), threads, [&](Eigen::Index c0, Eigen::Index n) {
          auto zb = z.middleCols(c0, n);
          m_act[l].forward(zb, zb);  // elementwise, so in place is safe
        });
      } else {
        // The logits are copied into a matrix of their own (outputs() wide, small), so that
        // Eigen traverses them as forward() does: a transcendental output activation then
        // rounds every element as there, bit for bit.
        iw.logits = z;
        iw.output.resize(batch, outputs());
        if (m_options.loss == LossKind::SoftmaxCrossEntropy)
          softmaxRows(iw.logits, iw.output);
        else
          m_outAct.forward(iw.logits, iw.output);
      }
    }
    return iw.output;
  }

  /// \brief The number of samples predictScores() infers at once when not told: up to 1024, and
  /// no more than keep its two buffers within 512 MiB (at least 16), so evaluating a network of
  /// millions of neurons per layer costs a bounded slice of memory, not 1024 x its width.
  Eigen::Index inferenceChunk() const { return inferenceChunkFor(widestLayer()); }
  /// \brief inferenceChunk() for a network whose widest layer has \p widest neurons.
  static Eigen::Index inferenceChunkFor(Eigen::Index widest) {
    const double perSample = 2.0 * static_cast<double>(std::max<Eigen::Index>(1, widest)) *
                             static_cast<double>(sizeof(Scalar));
    const double fit = std::floor(536870912.0 / perSample);
    return static_cast<Eigen::Index>(std::max(16.0, std::min(1024.0, fit)));
  }

  /// \brief Called by the evaluation with (samples done, samples in all) after each chunk.
  using EvaluationProgress = std::function<void(long long, long long)>;

  /// \brief Class scores (probabilities for cross-entropy) for N samples given one per row,
  /// computed \p chunk samples at a time (0: inferenceChunk()) by infer() on \p threads threads;
  /// \p progress, if set, is called after each chunk.
  /// \throws InvalidArgument if the feature count does not match or chunk < 0.
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> predictScores(
      const Features& samples, Threads threads = Threads::automatic(), Eigen::Index chunk = 0,
      const EvaluationProgress& progress = {}) const {
    if (chunk < 0)
      detail::raise<InvalidArgument>("Network::predictScores(): chunk must be >= 0, got ", chunk);
    if (chunk == 0) chunk = inferenceChunk();
    if (samples.cols() != inputs())
      detail::raise<InvalidArgument>("Network::predictScores(): samples have ", samples.cols(),
                                     " features, network expects ", inputs());
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> out(samples.rows(),
                                                                               outputs());
    InferenceWorkspace<Scalar> iw;
    Activations<Scalar> x;
    for (Eigen::Index b0 = 0; b0 < samples.rows(); b0 += chunk) {
      const Eigen::Index n = std::min(chunk, samples.rows() - b0);
      x = samples.middleRows(b0, n);  // row-major samples -> batch-contiguous neurons
      out.middleRows(b0, n) = infer(x, iw, threads);
      if (progress) progress(b0 + n, samples.rows());
    }
    return out;
  }

  /// \brief The bytes this network and a training configuration hold (see MemoryReport and
  /// Workspace for what each figure counts).
  /// \throws InvalidArgument if the batch is below 1 or the gradient copies below 0
  MemoryReport memoryReport(const MemoryPlan& plan) const {
    if (plan.batch < 1 || plan.gradientCopies < 0)
      detail::raise<InvalidArgument>("Network::memoryReport(): batch ", plan.batch,
                                     " and gradient copies ", plan.gradientCopies,
                                     " must be >= 1 and >= 0");
    MemoryReport r;
    const std::size_t S = sizeof(Scalar);
    const auto widest = static_cast<long long>(widestLayer());
    long long hiddenSum = 0, allSum = 0;
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& ly = m_layers[l];
      const auto nnz = static_cast<std::size_t>(ly.nonZeros());
      const auto rows = static_cast<std::size_t>(ly.outputs());
      const auto& t = ly.transposeIndex();
      r.weights += nnz * S;
      r.indices += ly.weights().bytes() - nnz * S;
      r.transposeIndex += (t.colPtr.size() + t.rowIdx.size() + t.valuePos.size()) * sizeof(Index);
      r.biases += rows * S + (l + 1 < m_layers.size() ? rows * sizeof(long long) : 0);
      r.gradients += (nnz + rows) * S * static_cast<std::size_t>(plan.gradientCopies);
      allSum += ly.outputs();
      if (l + 1 < m_layers.size()) hiddenSum += ly.outputs();
    }
    r.optimizerState = plan.optimizerStateBytes;
    // z for every layer, a for the hidden ones, the output; deltas per layer, or only the output
    // layer's (backward() writes the hidden deltas over a). In bfloat16 the hidden z and a take
    // 2 bytes each, and one float scratch as wide as the widest hidden layer is added.
    const long long perSample =
        allSum + hiddenSum + outputs() + (plan.perLayerDeltas ? allSum : outputs());
    if (m_options.activationStorage == ActivationStorage::BFloat16 && m_layers.size() > 1)
      r.workspacePerSample =
          static_cast<std::size_t>(perSample - 2 * hiddenSum + widestHidden()) * S +
          static_cast<std::size_t>(2 * hiddenSum) * sizeof(BFloat16);
    else
      r.workspacePerSample = static_cast<std::size_t>(perSample) * S;
    r.workspace = r.workspacePerSample * static_cast<std::size_t>(plan.batch);
    r.inputBatch = static_cast<std::size_t>(plan.batch) *
                   (static_cast<std::size_t>(inputs()) * S + sizeof(std::int32_t));
    r.inferenceChunk = inferenceChunk();
    r.inference = static_cast<std::size_t>(r.inferenceChunk) *
                  (2 * static_cast<std::size_t>(widest) + 2 * static_cast<std::size_t>(outputs()) +
                   static_cast<std::size_t>(inputs())) *
                  S;
    r.connections = nonZeros();
    r.hiddenNeurons = hiddenNeurons();
    r.batch = plan.batch;
    return r;
  }

  /// \brief The predicted class (argmax of the scores) of each sample (\p progress as in
  /// predictScores()).
  /// \throws InvalidArgument as predictScores()
  std::vector<std::int32_t> predict(const Features& samples, Threads threads = Threads::automatic(),
                                    const EvaluationProgress& progress = {}) const {
    const auto scores = predictScores(samples, threads, 0, progress);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(scores.rows()));
    for (Eigen::Index b = 0; b < scores.rows(); ++b) {
      Eigen::Index arg;
      scores.row(b).maxCoeff(&arg);
      labels[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(arg);
    }
    return labels;
  }

  /// \brief Fraction of samples whose predicted class equals the label (\p progress as in
  /// predictScores()).
  /// \throws InvalidArgument if the label count differs from the sample count.
  double accuracy(const Features& samples, const std::vector<std::int32_t>& labels,
                  Threads threads = Threads::automatic(),
                  const EvaluationProgress& progress = {}) const {
    if (static_cast<Eigen::Index>(labels.size()) != samples.rows())
      detail::raise<InvalidArgument>("Network::accuracy(): ", samples.rows(), " samples but ",
                                     labels.size(), " labels");
    if (labels.empty()) return 0.0;
    const auto pred = predict(samples, threads, progress);
    long long correct = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) correct += (pred[i] == labels[i]);
    return static_cast<double>(correct) / static_cast<double>(labels.size());
  }

  /// \brief A table of layers, neurons, nonzeros, density and bytes.
  std::string summary() const {
    std::ostringstream os;
    os << "Network (" << (sizeof(Scalar) == 4 ? "float" : "double")
       << (m_options.activationStorage == ActivationStorage::BFloat16 ? ", bfloat16 activations"
                                                                      : "")
       << ", "
       << (m_options.loss == LossKind::SoftmaxCrossEntropy ? "softmax cross-entropy" : "mse")
       << ")\n";
    os << std::left << std::setw(7) << "layer" << std::setw(14) << "shape" << std::setw(12)
       << "activation" << std::right << std::setw(11) << "nnz" << std::setw(10) << "density"
       << std::setw(12) << "bytes"
       << "\n";
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& ly = m_layers[l];
      std::ostringstream shape, act;
      shape << ly.inputs() << "->" << ly.outputs();
      if (l + 1 < m_layers.size()) {
        act << activationName(m_act[l].kind());
        if (m_act[l].kind() != ActivationKind::Identity &&
            m_act[l].kind() != ActivationKind::ReLU && m_act[l].kind() != ActivationKind::Sigmoid &&
            m_act[l].kind() != ActivationKind::Tanh)
          act << "(" << m_act[l].negativeSlope() << ")";
      } else {
        act << (m_options.loss == LossKind::SoftmaxCrossEntropy ? "softmax"
                                                                : activationName(m_outAct.kind()));
      }
      os << std::left << std::setw(7) << l << std::setw(14) << shape.str() << std::setw(12)
         << act.str() << std::right << std::setw(11) << ly.nonZeros() << std::setw(10) << std::fixed
         << std::setprecision(4) << ly.density() << std::setw(12) << ly.bytes() << "\n";
    }
    os << "total: " << hiddenNeurons() << " hidden neurons, " << nonZeros() << " connections, "
       << bytes() << " bytes\n";
    return os.str();
  }

 private:
  /// The input of layer \p l: the block itself for the first layer, else the activations below.
  static ConstActivationsRef<Scalar> layerInput(std::size_t l, const ConstActivationsRef<Scalar>& x,
                                                const Workspace<Scalar>& ws) {
    return l == 0 ? x : ConstActivationsRef<Scalar>(ws.a[l - 1]);
  }

  void checkWorkspace(const Workspace<Scalar>& ws, Eigen::Index batch, const char* caller) const {
    const std::size_t L = m_layers.size();
    const bool half = ws.storage == ActivationStorage::BFloat16;
    const Eigen::Index firstCols = half           ? (ws.zHalf.empty() ? -1 : ws.zHalf[0].cols())
                                   : ws.z.empty() ? -1
                                                  : ws.z[0].cols();
    if (ws.z.size() != L || ws.delta.size() != L || ws.a.size() + 1 != L ||
        (half && (ws.zHalf.size() + 1 != L || ws.aHalf.size() + 1 != L)) ||
        ws.z[L - 1].rows() != batch || ws.output.rows() != batch ||
        firstCols != m_layers[0].outputs())
      detail::raise<InvalidArgument>(caller,
                                     ": the workspace does not hold a forward pass of this "
                                     "network on ",
                                     batch, " samples");
    if (ws.activationsOverwritten)
      detail::raise<InvalidArgument>(caller,
                                     ": backward() has written its deltas over the workspace's "
                                     "activations; run forward() again first");
  }

  /// \throws InvalidArgument if this network cannot store its hidden values as \p storage.
  static void checkStorage(ActivationStorage storage, const char* caller) {
    if (storage == ActivationStorage::BFloat16 && !std::is_same_v<Scalar, float>)
      detail::raise<InvalidArgument>(caller,
                                     ": bfloat16 activation storage needs a float network; "
                                     "this one's Scalar has ",
                                     sizeof(Scalar), " bytes");
  }

  static void checkScalarStorage(const Workspace<Scalar>& ws, const char* caller) {
    if (ws.storage != ActivationStorage::Scalar)
      detail::raise<InvalidArgument>(caller,
                                     ": the workspace holds a bfloat16 forward pass, which only "
                                     "backward() takes; run forward() with "
                                     "PassOptions::storage(ActivationStorage::Scalar)");
  }

  using ActivationsMap = Eigen::Map<Activations<Scalar>, 0, Eigen::OuterStride<>>;
  using HalfRef = ActivationsRef<BFloat16>;
  using ConstHalfRef = ConstActivationsRef<BFloat16>;

  /// The layers of a bfloat16 forward pass (float networks only): hidden layer l's kernel writes
  /// its float pre-activations into ws.scratch; one elementwise pass over column blocks rounds
  /// them into zHalf[l], applies f and dropout in place, and rounds the result into aHalf[l].
  /// The output layer's float z goes to ws.z, from the last hidden layer's bfloat16 activations.
  void forwardHalf(const ConstActivationsRef<Scalar>& x, Workspace<Scalar>& ws,
                   Threads threads) const {
    const Eigen::Index batch = x.rows();
    const std::size_t L = m_layers.size();
    const Eigen::Index scratch = batch * widestHidden();
    if (ws.scratch.size() < scratch) resizeWithHugePages(ws.scratch, scratch, 1);
    for (std::size_t l = 0; l + 1 < L; ++l) {
      const Eigen::Index n = m_layers[l].outputs();
      ActivationsMap z(ws.scratch.data(), batch, n, Eigen::OuterStride<>(batch));
      if (l == 0)
        m_layers[0].forward(x, z, threads);
      else
        m_layers[l].forward(ConstHalfRef(ws.aHalf[l - 1]), z, threads);
      resizeWithHugePages(ws.zHalf[l], batch, n);
      resizeWithHugePages(ws.aHalf[l], batch, n);
      const std::uint64_t key = dropoutKey(m_options.seed, ws.step, l);
      forColumnBlocks(n, threads, [&](Eigen::Index c0, Eigen::Index cols) {
        auto zb = z.middleCols(c0, cols);
        ws.zHalf[l].middleCols(c0, cols) = zb.template cast<BFloat16>();
        m_act[l].forward(zb, zb);  // elementwise, so in place is safe
        if (ws.dropout) dropoutMultiply(zb, m_options.dropout, key, ws.rowOffset, c0);
        ws.aHalf[l].middleCols(c0, cols) = zb.template cast<BFloat16>();
      });
    }
    resizeWithHugePages(ws.z[L - 1], batch, outputs());
    m_layers[L - 1].forward(ConstHalfRef(ws.aHalf[L - 2]), ws.z[L - 1], threads);
  }

  /// backward() on a bfloat16 pass (float networks only): the order and kernels of the float
  /// pass, with the hidden deltas written over aHalf.
  BlockStats backwardHalf(const ConstActivationsRef<Scalar>& x, const std::int32_t* labels,
                          Workspace<Scalar>& ws, Gradients<Scalar>& grads, Scalar gradScale,
                          Threads threads) const {
    const std::size_t L = m_layers.size();
    const Eigen::Index batch = ws.output.rows();
    ActivationsMap top(ws.outputDelta.data(), batch, outputs(), Eigen::OuterStride<>(batch));
    const BlockStats stats = outputDelta(labels, ws, gradScale, top);
    ws.activationsOverwritten = true;
    for (std::size_t l = L; l-- > 1;) {
      HalfRef below(ws.aHalf[l - 1]);  // the fused pass's input and output
      if (l + 1 == L)
        m_layers[l].backwardFused(ConstHalfRef(ws.aHalf[l - 1]), ConstActivationsRef<Scalar>(top),
                                  below, grads.weights[l], grads.bias[l], Scalar(1), threads);
      else
        m_layers[l].backwardFused(ConstHalfRef(ws.aHalf[l - 1]), ConstHalfRef(ws.aHalf[l]), below,
                                  grads.weights[l], grads.bias[l], Scalar(1), threads);
      deltaThroughActivationHalf(l, ws, threads);
    }
    m_layers[0].gradients(x, ConstHalfRef(ws.aHalf[0]), grads.weights[0], grads.bias[0], Scalar(1),
                          threads);
    return stats;
  }

  /// deltaThroughActivation() on bfloat16 storage: aHalf[l - 1] holds dL/da; each column
  /// block is widened into its columns of ws.scratch, multiplied by the mask and f'(z) of the
  /// stored z, and rounded back.
  void deltaThroughActivationHalf(std::size_t l, Workspace<Scalar>& ws, Threads threads) const {
    const std::uint64_t key = dropoutKey(m_options.seed, ws.step, l - 1);
    auto& d = ws.aHalf[l - 1];
    const auto& z = ws.zHalf[l - 1];
    const Eigen::Index batch = d.rows();
    forColumnBlocks(d.cols(), threads, [&](Eigen::Index c0, Eigen::Index cols) {
      ActivationsMap g(ws.scratch.data() + c0 * batch, batch, cols, Eigen::OuterStride<>(batch));
      g = d.middleCols(c0, cols).template cast<Scalar>();
      if (ws.dropout) dropoutMultiply(g, m_options.dropout, key, ws.rowOffset, c0);
      m_act[l - 1].backward(z.middleCols(c0, cols).template cast<Scalar>(), g);
      d.middleCols(c0, cols) = g.template cast<BFloat16>();
    });
  }

  /// The most outputs of any hidden layer (0 without one): the bfloat16 scratch's width.
  Eigen::Index widestHidden() const {
    Eigen::Index widest = 0;
    for (std::size_t l = 0; l + 1 < m_layers.size(); ++l)
      widest = std::max<Eigen::Index>(widest, m_layers[l].outputs());
    return widest;
  }

  /// The most outputs of any layer: the size of the reused buffers, per sample.
  Eigen::Index widestLayer() const {
    Eigen::Index widest = 0;
    for (const auto& ly : m_layers) widest = std::max<Eigen::Index>(widest, ly.outputs());
    return widest;
  }

  /// Grows each of a workspace's two reused buffers to at least \p n values; they never shrink,
  /// so the same batch size allocates once.
  template <class Buffer>
  static void growBuffers(Buffer (&buffers)[2], Eigen::Index n) {
    for (auto& b : buffers)
      if (b.size() < n) resizeWithHugePages(b, n, 1);
  }

  /// Loss, correct count and the output layer's delta (into \p top, B x outputs) after a
  /// forward pass.
  BlockStats outputDelta(const std::int32_t* labels, Workspace<Scalar>& ws, Scalar gradScale,
                         ActivationsRef<Scalar> top) const {
    const std::size_t L = m_layers.size();
    const Eigen::Index batch = ws.output.rows();
    BlockStats stats;
    stats.samples = batch;
    if (m_options.loss == LossKind::SoftmaxCrossEntropy) {
      stats.lossSum = softmaxCrossEntropy(ws.z[L - 1], labels, gradScale, ws.output, top);
    } else {
      stats.lossSum = meanSquaredError(ws.output, labels, gradScale, top);
      m_outAct.backward(ws.z[L - 1], top);
    }
    for (Eigen::Index b = 0; b < batch; ++b) {
      Eigen::Index arg;
      ws.output.row(b).maxCoeff(&arg);
      stats.correct += (arg == labels[b]);
    }
    return stats;
  }

  /// Layer l-1's delta from layer l's: dL/dz_{l-1} = (delta_l W_l) * mask * f'(z_{l-1}), the
  /// mask recomputed from the forward pass's key (the same values dropoutForward() drew).
  void propagateDelta(std::size_t l, const Workspace<Scalar>& ws,
                      const ConstActivationsRef<Scalar>& delta, ActivationsRef<Scalar> below,
                      Threads threads) const {
    m_layers[l].backwardInput(delta, below, threads);
    deltaThroughActivation(l, ws, below, threads);
  }

  /// below = dL/da of layer l-1 -> dL/dz of layer l-1: times its dropout mask and f'(z).
  void deltaThroughActivation(std::size_t l, const Workspace<Scalar>& ws,
                              ActivationsRef<Scalar> below, Threads threads) const {
    const std::uint64_t key = dropoutKey(m_options.seed, ws.step, l - 1);
    forColumnBlocks(below.cols(), threads, [&](Eigen::Index c0, Eigen::Index n) {
      auto gb = below.middleCols(c0, n);
      if (ws.dropout) dropoutMultiply(gb, m_options.dropout, key, ws.rowOffset, c0);
      m_act[l - 1].backward(ws.z[l - 1].middleCols(c0, n), gb);
    });
  }

  /// Calls f(firstColumn, count) over blocks of columns, in an OpenMP region of \p threads when
  /// that is more than one and no region is open. Blocks are disjoint, so f may write its columns
  /// freely.
  template <class F>
  static void forColumnBlocks(Eigen::Index cols, Threads threads, F&& f) {
    constexpr Eigen::Index kBlock = 32;
    const Eigen::Index blocks = (cols + kBlock - 1) / kBlock;
    detail::forRange(blocks, threads, [&](Eigen::Index blk) {
      const Eigen::Index c0 = blk * kBlock;
      f(c0, std::min(kBlock, cols - c0));
    });
  }

  void resetNeuronIds() {
    m_ids.assign(m_layers.size() - 1, {});
    m_widths.assign(m_layers.size() - 1, 0);
    for (std::size_t l = 0; l + 1 < m_layers.size(); ++l) {
      m_ids[l].resize(static_cast<std::size_t>(m_layers[l].outputs()));
      for (std::size_t j = 0; j < m_ids[l].size(); ++j) m_ids[l][j] = static_cast<long long>(j);
      m_widths[l] = m_layers[l].outputs();
    }
  }

  void buildActivations() {
    m_act.clear();
    for (std::size_t l = 0; l + 1 < m_layers.size(); ++l) {
      double slope = 0;
      if (m_options.hiddenActivation == ActivationKind::AllReLU)
        slope = allReluSlope(static_cast<int>(l), m_options.alpha);
      else if (m_options.hiddenActivation == ActivationKind::LeakyReLU)
        slope = m_options.alpha;
      m_act.emplace_back(m_options.hiddenActivation, static_cast<Scalar>(slope));
    }
    m_outAct = Activation<Scalar>(
        m_options.outputActivation,
        static_cast<Scalar>(
            m_options.outputActivation == ActivationKind::LeakyReLU ? m_options.alpha : 0.0));
  }

  NetworkOptions m_options;
  std::vector<Layer> m_layers;
  std::vector<Activation<Scalar>> m_act;
  Activation<Scalar> m_outAct;
  Rng m_rng;
  std::vector<std::vector<long long>> m_ids;  ///< original neuron ids per hidden layer
  std::vector<long long> m_widths;            ///< original width per hidden layer
};

template <class Scalar, class Index>
NetworkRemap<Index> Network<Scalar, Index>::removeHiddenNeurons(std::size_t hidden,
                                                                std::vector<Index> neurons) {
  if (hidden + 1 >= m_layers.size())
    detail::raise<InvalidArgument>("Network::removeHiddenNeurons(): layer ", hidden,
                                   " is not a hidden layer (the network has ", m_layers.size() - 1,
                                   " hidden layers)");
  Layer& in = m_layers[hidden];
  Layer& out = m_layers[hidden + 1];
  const Index n = in.outputs();
  std::vector<char> drop(static_cast<std::size_t>(n), 0);
  for (Index j : neurons) {
    if (j < 0 || j >= n)
      detail::raise<InvalidArgument>("Network::removeHiddenNeurons(): neuron ", j,
                                     " is outside hidden layer ", hidden, " of ", n, " neurons");
    if (drop[static_cast<std::size_t>(j)])
      detail::raise<InvalidArgument>("Network::removeHiddenNeurons(): neuron ", j,
                                     " is listed twice");
    drop[static_cast<std::size_t>(j)] = 1;
  }
  const auto removed = static_cast<Index>(neurons.size());
  NetworkRemap<Index> remap(m_layers.size());
  if (removed == 0) return remap;
  if (removed >= n)
    detail::raise<InvalidArgument>("Network::removeHiddenNeurons(): removing ", removed, " of ", n,
                                   " neurons would leave hidden layer ", hidden, " empty");

  // Layer `hidden`: keep the surviving rows; newIndex maps old neuron index -> new (or -1).
  const auto& w = in.weights();
  std::vector<Index> newIndex(static_cast<std::size_t>(n), -1), rowPtr{0}, colIdx;
  std::vector<Scalar> values;
  PatternRemap<Index> inRemap, outRemap;
  inRemap.from = in.weights().patternId();
  outRemap.from = out.weights().patternId();
  inRemap.rows.emplace();
  Vector bias(n - removed), constant = Vector::Zero(n);
  Index next = 0;
  for (Index j = 0; j < n; ++j) {
    if (drop[static_cast<std::size_t>(j)]) {  // with no inputs its output is f(b_j)
      Eigen::Matrix<Scalar, 1, 1> z, a = Eigen::Matrix<Scalar, 1, 1>::Zero();
      z(0) = in.bias()[j];
      m_act[hidden].forward(z, a);
      constant[j] = a(0);
      continue;
    }
    newIndex[static_cast<std::size_t>(j)] = next;
    for (Index k = w.rowBegin(j); k < w.rowEnd(j); ++k) {
      colIdx.push_back(w.colIdx()[static_cast<std::size_t>(k)]);
      values.push_back(w.values()[static_cast<std::size_t>(k)]);
      inRemap.entries.push_back(k);
    }
    rowPtr.push_back(static_cast<Index>(colIdx.size()));
    bias[next] = in.bias()[j];
    inRemap.rows->push_back(j);
    ++next;
  }
  CsrMatrix<Scalar, Index> inW;
  inW.assignUnchecked(n - removed, w.cols(), std::move(rowPtr), std::move(colIdx),
                      std::move(values));

  // Layer `hidden + 1`: drop the removed columns (the map is increasing, so rows stay sorted)
  // and fold constant outputs into its biases.
  const auto& v = out.weights();
  std::vector<Index> oRowPtr{0}, oCol;
  std::vector<Scalar> oVal;
  Vector oBias = out.bias();
  for (Index r = 0; r < v.rows(); ++r) {
    for (Index k = v.rowBegin(r); k < v.rowEnd(r); ++k) {
      const auto c = static_cast<std::size_t>(v.colIdx()[static_cast<std::size_t>(k)]);
      const Scalar wk = v.values()[static_cast<std::size_t>(k)];
      if (newIndex[c] < 0) {
        oBias[r] += wk * constant[static_cast<Index>(c)];
        continue;
      }
      oCol.push_back(newIndex[c]);
      oVal.push_back(wk);
      outRemap.entries.push_back(k);
    }
    oRowPtr.push_back(static_cast<Index>(oCol.size()));
  }
  CsrMatrix<Scalar, Index> outW;
  outW.assignUnchecked(v.rows(), n - removed, std::move(oRowPtr), std::move(oCol), std::move(oVal));
  in.reshape(std::move(inW), std::move(bias));
  out.reshape(std::move(outW), std::move(oBias));
  inRemap.to = in.weights().patternId();
  outRemap.to = out.weights().patternId();
  remap.layers[hidden] = std::move(inRemap);
  remap.layers[hidden + 1] = std::move(outRemap);

  std::vector<long long> ids;
  for (Index j = 0; j < n; ++j)
    if (!drop[static_cast<std::size_t>(j)])
      ids.push_back(m_ids[hidden][static_cast<std::size_t>(j)]);
  m_ids[hidden] = std::move(ids);
  m_options.sizes[hidden + 1] = n - removed;
  return remap;
}

using Networkf = Network<float, std::int32_t>;

}  // namespace tsnn
