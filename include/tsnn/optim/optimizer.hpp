#pragma once
/// \file
/// \brief The interface the trainers use for every optimiser, and the state handling all
/// optimisers share: the state arrays, their alignment with the network, and how they follow
/// pattern changes.
///
/// Invariant. An optimiser holds, for each layer l of the network it steps, `slots()` arrays
/// aligned with layer l's values() (per-connection state: SGD's momentum, Adam's two moments)
/// and as many with one entry per output neuron (the same state for the biases), and the
/// patternId() of layer l they are aligned with. Layers hold weights only. Whenever a pattern
/// changes (SET, gradient regrowth, neuron removal, model averaging), the operation reports a
/// PatternRemap (sparse/pattern_remap.hpp) and whoever made the change passes it to remap() or
/// average(): the state of every surviving connection and neuron moves with it unchanged, new
/// ones start at zero. step() refuses to run on a layer whose pattern is not the one its state
/// is aligned with, so a change whose remap was not applied is an error, never state silently
/// applied to the wrong connections.
///
/// State is created, at zero, at the first step (or by reset()); a step on a network whose
/// layers have no state yet binds to them.
///
/// Why a small virtual base rather than a template parameter of the trainers: the optimiser is
/// chosen at run time (TrainerOptions::optimizer), the trainers are large templates already
/// instantiated per Scalar and Index, and instantiating each once per optimiser would multiply
/// their compile time for no run-time gain: a virtual call costs nothing measurable next to the
/// loop over a layer's connections it starts, and there are two per layer and step. Every
/// optimiser keeps its arrays in this base, so remapping, averaging and checkpointing are written
/// once; a derived class supplies only the per-element update (and per-step coefficients).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/config.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/memory.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/optimizer_state.hpp"
#include "tsnn/sparse/pattern_remap.hpp"

namespace tsnn {

/// \brief Which parameters of a layer a slice update touches.
enum class Parameters {
  Weights,  ///< the stored connections, aligned with values()
  Biases    ///< one per output neuron
};

/// \brief Base class of the optimisers (see the file comment).
/// \tparam Scalar float or double
/// \tparam Index  the network's index type
template <class Scalar, class Index = std::int32_t>
class Optimizer {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "Optimizer: Scalar must be float or double");

 public:
  using Net = Network<Scalar, Index>;
  using LayerState = LayerOptimizerState<Scalar>;
  /// The most state arrays per parameter an optimiser may keep.
  static constexpr std::size_t kMaxSlots = 4;

  virtual ~Optimizer() = default;

  virtual OptimizerKind kind() const = 0;
  /// \brief A short name for logs: "sgd", "adam" or "adamw".
  virtual std::string name() const = 0;
  /// \brief A copy of this optimiser, its state included.
  virtual std::unique_ptr<Optimizer> clone() const = 0;

  /// \brief State arrays per parameter (SGD 1, Adam 2).
  std::size_t slots() const { return m_slots; }
  /// \brief The learning rate the next step uses.
  double learningRate() const { return m_lr; }
  /// \brief Changes the learning rate of later steps (NonFinitePolicy::SkipBatch lowers it).
  /// \throws InvalidArgument unless \p lr is positive and finite
  void setLearningRate(double lr) {
    if (!(lr > 0) || !std::isfinite(lr))
      detail::raise<InvalidArgument>(
          "Optimizer::setLearningRate(): the learning rate must be "
          "positive and finite, got ",
          lr);
    m_lr = lr;
  }
  /// \brief Per-layer learning rates by real fan-in: with reference K > 0, layer l steps at
  /// lr * min(1, K / k_l), k_l = nnz_l / n_out,l its mean real fan-in (fixed at each
  /// beginStep(), so it follows SET and pruning). Why: one SGD step moves neuron j's
  /// pre-activation by about lr * k_j * E[x^2] * delta_j, so a layer with a wide fan-in (a dense
  /// readout from a million neurons) takes steps 10^3 times larger than one with a thousand, and
  /// diverges at a rate that trains the narrow one. Capped at 1, so layers at or below K keep
  /// lr: with K = 1000 the default 784-1000-1000-1000-10 network (fan-ins about 40 and 1000)
  /// trains exactly as without. 0 (the default) turns it off.
  /// \throws InvalidArgument if K is negative or not finite
  void setFanInReference(double k) {
    if (!(k >= 0) || !std::isfinite(k))
      detail::raise<InvalidArgument>(
          "Optimizer::setFanInReference(): the reference fan-in must be >= 0 and finite, got ", k);
    m_fanInReference = k;
  }
  double fanInReference() const { return m_fanInReference; }
  /// \brief Layer \p l's learning-rate factor in the current step (1 without a reference).
  double layerRateScale(std::size_t l) const {
    return l < m_rateScale.size() ? m_rateScale[l] : 1.0;
  }

  /// \brief Steps taken so far (Adam's t).
  std::uint64_t steps() const { return m_steps; }
  /// \brief Layers with state (0 before the first step or reset()).
  std::size_t numLayers() const { return m_layers.size(); }
  /// \brief Layer \p l's state arrays (for inspection and tests).
  const LayerState& layerState(std::size_t l) const { return m_layers.at(l); }
  /// \brief Bytes held by the state arrays.
  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto& s : m_layers) {
      for (const auto& a : s.entries) n += a.size() * sizeof(Scalar);
      for (const auto& a : s.rows) n += a.size() * sizeof(Scalar);
    }
    return n;
  }

  /// \brief Zero state for every layer of \p net, aligned with its current patterns; steps()
  /// back to 0. The learning rate is kept.
  void reset(const Net& net) {
    m_layers.assign(net.numLayers(), LayerState{});
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      const auto& layer = net.layer(l);
      m_layers[l].pattern = layer.weights().patternId();
      m_layers[l].entries.resize(m_slots);
      m_layers[l].rows.resize(m_slots);
      for (std::size_t i = 0; i < m_slots; ++i) {
        assignWithHugePages(m_layers[l].entries[i], static_cast<std::size_t>(layer.nonZeros()),
                            Scalar(0));
        m_layers[l].rows[i].assign(static_cast<std::size_t>(layer.outputs()), Scalar(0));
      }
    }
    m_steps = 0;
  }

  /// \brief The state as a value (a copy), for TrainingState and checkpoints.
  OptimizerState state() const {
    OptimizerState s;
    s.kind = kind();
    s.steps = m_steps;
    s.layers = m_layers;
    return s;
  }

  /// \brief Adopts \p s (from state() of an optimiser of the same kind, or a checkpoint) for
  /// \p net. An empty \p s leaves no state (zero state is created at the next step). A layer
  /// state whose pattern id is set must be aligned with the layer's current pattern; one read
  /// from a file (id 0) must have the layer's sizes. The learning rate is not part of it.
  /// \throws InvalidArgument if the kind, the scalar type, the layer count, the number of arrays
  /// or an array's size does not fit, a layer's pattern changed since the state was taken, or a
  /// value is not finite or not one this optimiser can hold (Adam's second moment is >= 0);
  /// the state is then unchanged
  void setState(const OptimizerState& s, const Net& net) {
    constexpr const char* caller = "Optimizer::setState()";
    if (s.empty()) {
      m_layers.clear();
      m_steps = s.steps;
      return;
    }
    if (s.kind != kind())
      detail::raise<InvalidArgument>(caller, ": the state is ", optimizerName(s.kind),
                                     " state, this optimizer is ", optimizerName(kind()));
    if (!s.holds<Scalar>())
      detail::raise<InvalidArgument>(caller, ": the state holds ",
                                     sizeof(Scalar) == 4 ? "double" : "float", " arrays, not ",
                                     sizeof(Scalar) == 4 ? "float" : "double");
    const std::vector<LayerState>& layers = s.layersOf<Scalar>();
    if (layers.size() != net.numLayers())
      detail::raise<InvalidArgument>(caller, ": the state has ", layers.size(),
                                     " layers, the network ", net.numLayers());
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const auto& layer = net.layer(l);
      const LayerState& ls = layers[l];
      if (ls.pattern != 0 && ls.pattern != layer.weights().patternId())
        detail::raise<InvalidArgument>(caller, ": the state of layer ", l,
                                       " is aligned with pattern ", ls.pattern,
                                       ", the layer now has pattern ", layer.weights().patternId(),
                                       " (its topology changed after the state was taken)");
      if (ls.entries.size() != m_slots || ls.rows.size() != m_slots)
        detail::raise<InvalidArgument>(caller, ": layer ", l, " has ", ls.entries.size(), " and ",
                                       ls.rows.size(), " state arrays, ", name(), " keeps ",
                                       m_slots, " of each");
      for (std::size_t i = 0; i < m_slots; ++i)
        if (ls.entries[i].size() != static_cast<std::size_t>(layer.nonZeros()) ||
            ls.rows[i].size() != static_cast<std::size_t>(layer.outputs()))
          detail::raise<InvalidArgument>(
              caller, ": state array ", i, " of layer ", l, " has ", ls.entries[i].size(),
              " connection and ", ls.rows[i].size(), " neuron entries, the layer has ",
              layer.nonZeros(), " connections and ", layer.outputs(), " outputs");
      for (std::size_t i = 0; i < m_slots; ++i)
        for (const auto* a : {&ls.entries[i], &ls.rows[i]})
          for (std::size_t k = 0; k < a->size(); ++k)
            if (!std::isfinite(static_cast<double>((*a)[k])))
              detail::raise<InvalidArgument>(caller, ": state array ", i, " of layer ", l,
                                             " holds ", (*a)[k], " at ", k);
      checkState(ls, l);
    }
    m_layers = layers;
    for (std::size_t l = 0; l < m_layers.size(); ++l)
      m_layers[l].pattern = net.layer(l).weights().patternId();
    m_steps = s.steps;
  }

  /// \brief One step on every weight and bias of \p net with the gradients \p g (already
  /// averaged over the minibatch, clipped if asked): beginStep(), then updateSlice() on the
  /// whole of every layer's weights (in an OpenMP region of up to \p threads threads when large
  /// enough) and biases (serially).
  /// \throws InvalidArgument as beginStep()
  void step(Net& net, const Gradients<Scalar>& g, Threads threads = Threads::automatic()) {
    beginStep(net, g);
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      updateSlice(net, g, l, Parameters::Weights, 0,
                  static_cast<std::size_t>(net.layer(l).nonZeros()), threads);
      updateSlice(net, g, l, Parameters::Biases, 0,
                  static_cast<std::size_t>(net.layer(l).outputs()), Threads::serial());
    }
  }

  /// \brief The first half of a step that threads share: checks that the state is aligned with
  /// \p net and that \p g has its shape, creates zero state if there is none, and advances the
  /// step count (the per-step coefficients, such as Adam's bias correction, are fixed here).
  /// Call it once per step, then updateSlice() on every part of every layer exactly once.
  /// \throws InvalidArgument if a layer's pattern or size differs from the state's, or \p g does
  /// not have the network's shape
  void beginStep(const Net& net, const Gradients<Scalar>& g) {
    constexpr const char* caller = "Optimizer::step()";
    if (m_layers.empty()) reset(net);
    if (m_layers.size() != net.numLayers())
      detail::raise<InvalidArgument>(caller, ": the optimizer has state for ", m_layers.size(),
                                     " layers, the network has ", net.numLayers());
    if (g.weights.size() != net.numLayers() || g.bias.size() != net.numLayers())
      detail::raise<InvalidArgument>(caller, ": gradients have ", g.weights.size(),
                                     " layers, the network ", net.numLayers());
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      const auto& layer = net.layer(l);
      if (m_layers[l].pattern != layer.weights().patternId())
        detail::raise<InvalidArgument>(
            caller, ": layer ", l, " has pattern ", layer.weights().patternId(),
            " but the optimizer state is aligned with pattern ", m_layers[l].pattern,
            " (a topology change was not passed to Optimizer::remap())");
      if (m_layers[l].entries[0].size() != static_cast<std::size_t>(layer.nonZeros()) ||
          m_layers[l].rows[0].size() != static_cast<std::size_t>(layer.outputs()))
        detail::raise<InvalidArgument>(caller, ": layer ", l, " has ", layer.nonZeros(),
                                       " connections and ", layer.outputs(), " outputs, its state ",
                                       m_layers[l].entries[0].size(), " and ",
                                       m_layers[l].rows[0].size());
      if (g.weights[l].size() != static_cast<std::size_t>(layer.nonZeros()) ||
          g.bias[l].size() != layer.outputs())
        detail::raise<InvalidArgument>(
            caller, ": the gradient of layer ", l, " has ", g.weights[l].size(), " weights and ",
            g.bias[l].size(), " biases, the layer ", layer.nonZeros(), " and ", layer.outputs());
    }
    m_rateScale.assign(net.numLayers(), 1.0);
    if (m_fanInReference > 0)
      for (std::size_t l = 0; l < net.numLayers(); ++l) {
        const auto& layer = net.layer(l);
        const double fanIn = static_cast<double>(layer.nonZeros()) /
                             static_cast<double>(std::max<long long>(1, layer.outputs()));
        if (fanIn > m_fanInReference) m_rateScale[l] = m_fanInReference / fanIn;
      }
    ++m_steps;
    prepareStep(m_steps);
  }

  /// \brief Updates entries [a, b) of layer \p l's weights or biases (\p part) from the same
  /// entries of \p g, after beginStep() for this step. Threads may update disjoint ranges side
  /// by side: each touches only its own entries of the parameters and of the state. Runs
  /// serially unless \p threads allows more than one (and then only outside an OpenMP region,
  /// for large ranges).
  void updateSlice(Net& net, const Gradients<Scalar>& g, std::size_t l, Parameters part,
                   std::size_t a, std::size_t b, Threads threads = Threads::serial()) {
    auto& layer = net.layer(l);
    const bool weights = part == Parameters::Weights;
    Scalar* w = weights ? layer.values().data() : layer.bias().data();
    const Scalar* grad = weights ? g.weights[l].data() : g.bias[l].data();
    std::vector<std::vector<Scalar>>& arrays = weights ? m_layers[l].entries : m_layers[l].rows;
    TSNN_ASSERT(a <= b && b <= arrays[0].size());
    std::array<Scalar*, kMaxSlots> s{};
    for (std::size_t i = 0; i < m_slots; ++i) s[i] = arrays[i].data() + a;
    update(w + a, grad + a, s.data(), static_cast<std::ptrdiff_t>(b - a), layerRateScale(l),
           threads);
  }

  /// \brief Moves layer \p l's state along the pattern change \p r (see the file comment), after
  /// the change: \p net is the network as it is now. Without state yet, nothing to move.
  /// \throws InvalidArgument if \p r does not start at the state's pattern, does not end at the
  /// layer's current pattern, or does not fit the sizes on either side
  void remap(std::size_t l, const PatternRemap<Index>& r, const Net& net) {
    constexpr const char* caller = "Optimizer::remap()";
    if (m_layers.empty()) return;
    if (l >= m_layers.size() || l >= net.numLayers())
      detail::raise<InvalidArgument>(caller, ": layer ", l, " of ", m_layers.size());
    LayerState& ls = m_layers[l];
    const auto& layer = net.layer(l);
    if (r.from != ls.pattern || r.to != layer.weights().patternId())
      detail::raise<InvalidArgument>(caller, ": the remap of layer ", l, " goes from pattern ",
                                     r.from, " to ", r.to, ", the state is aligned with ",
                                     ls.pattern, " and the layer has ",
                                     layer.weights().patternId());
    const auto rowsAfter = r.rows ? r.rows->size() : ls.rows[0].size();
    if (r.entries.size() != static_cast<std::size_t>(layer.nonZeros()) ||
        rowsAfter != static_cast<std::size_t>(layer.outputs()))
      detail::raise<InvalidArgument>(
          caller, ": the remap of layer ", l, " makes ", r.entries.size(), " connections and ",
          rowsAfter, " neurons, the layer has ", layer.nonZeros(), " and ", layer.outputs());
    // Checked in full before anything moves, so a bad remap leaves the state as it was.
    LayerState next;
    next.pattern = r.to;
    for (std::size_t i = 0; i < m_slots; ++i) {
      next.entries.push_back(remapped(ls.entries[i], r.entries, caller));
      next.rows.push_back(r.rows ? remapped(ls.rows[i], *r.rows, caller) : ls.rows[i]);
    }
    ls = std::move(next);
  }

  /// \brief remap() for every layer that \p r changed.
  /// \throws InvalidArgument as remap(), or if \p r has another layer count than \p net
  void remap(const NetworkRemap<Index>& r, const Net& net) {
    if (r.layers.size() != net.numLayers())
      detail::raise<InvalidArgument>("Optimizer::remap(): the remap has ", r.layers.size(),
                                     " layers, the network ", net.numLayers());
    for (std::size_t l = 0; l < r.layers.size(); ++l)
      if (r.layers[l]) remap(l, *r.layers[l], net);
  }

  /// \brief Replaces this state by the average of the states of \p from (one per averaged
  /// model, T of them) over the averaged network \p net: remaps[w] takes model w's patterns to
  /// net's (for each entry of net, model w's entry or -1 where model w lacks the connection).
  /// Each state array is averaged exactly as the parameter it belongs to (training/wasap.hpp's
  /// averageModels()): per connection, the sum over the models that have it, in model order, of
  /// s_w / T (a missing connection counts as 0), the first such model starting the sum; per
  /// neuron, 0 + s_0 / T + s_1 / T + ... The step count becomes the largest of the models'.
  /// \throws InvalidArgument if a model's optimiser is of another kind or has no state, or a
  /// remap does not fit its model's state or \p net
  void average(const std::vector<const Optimizer*>& from,
               const std::vector<NetworkRemap<Index>>& remaps, const Net& net) {
    constexpr const char* caller = "Optimizer::average()";
    if (from.empty() || remaps.size() != from.size())
      detail::raise<InvalidArgument>(caller, ": ", from.size(), " optimizers and ", remaps.size(),
                                     " remaps (need as many, at least one)");
    const std::size_t L = net.numLayers();
    for (std::size_t w = 0; w < from.size(); ++w) {
      if (!from[w] || from[w]->kind() != kind() || from[w]->m_slots != m_slots ||
          from[w]->m_layers.size() != L || remaps[w].layers.size() != L)
        detail::raise<InvalidArgument>(caller, ": optimizer ", w,
                                       " is missing, of another kind, or has no state for the ", L,
                                       " layers (or its remap has another layer count)");
      for (std::size_t l = 0; l < L; ++l) {
        const LayerState& ls = from[w]->m_layers[l];
        const auto& r = remaps[w].layers[l];
        const std::uint64_t fromPattern = r ? r->from : net.layer(l).weights().patternId();
        const std::size_t nnz = static_cast<std::size_t>(net.layer(l).nonZeros());
        const std::size_t rows = static_cast<std::size_t>(net.layer(l).outputs());
        bool fits = ls.pattern == fromPattern &&
                    (r ? r->to == net.layer(l).weights().patternId() && r->entries.size() == nnz
                       : ls.entries[0].size() == nnz);
        const std::size_t rowsAfter = r && r->rows ? r->rows->size() : ls.rows[0].size();
        fits = fits && rowsAfter == rows;
        if (r)
          for (Index k : r->entries) fits = fits && k < static_cast<Index>(ls.entries[0].size());
        if (r && r->rows)
          for (Index k : *r->rows) fits = fits && k < static_cast<Index>(ls.rows[0].size());
        if (!fits)
          detail::raise<InvalidArgument>(
              caller, ": the remap of optimizer ", w, ", layer ", l,
              " does not take its state (pattern ", ls.pattern, ", ", ls.entries[0].size(),
              " connections) to the averaged layer (pattern ", net.layer(l).weights().patternId(),
              ", ", nnz, " connections)");
      }
    }
    const auto T = static_cast<Scalar>(from.size());
    std::vector<LayerState> out(L);
    for (std::size_t l = 0; l < L; ++l) {
      const std::size_t nnz = static_cast<std::size_t>(net.layer(l).nonZeros());
      const std::size_t rows = static_cast<std::size_t>(net.layer(l).outputs());
      out[l].pattern = net.layer(l).weights().patternId();
      for (std::size_t i = 0; i < m_slots; ++i) {
        std::vector<Scalar> e(nnz, Scalar(0)), b(rows, Scalar(0));
        std::vector<char> started(nnz, 0);
        for (std::size_t w = 0; w < from.size(); ++w) {
          const LayerState& ls = from[w]->m_layers[l];
          const auto& r = remaps[w].layers[l];
          for (std::size_t k = 0; k < nnz; ++k) {
            const Index src = r ? r->entries[k] : static_cast<Index>(k);
            if (src < 0) continue;
            const Scalar v = ls.entries[i][static_cast<std::size_t>(src)] / T;
            if (started[k])
              e[k] += v;
            else
              e[k] = v;
            started[k] = 1;
          }
          for (std::size_t j = 0; j < rows; ++j) {
            const Index src = r && r->rows ? (*r->rows)[j] : static_cast<Index>(j);
            if (src >= 0) b[j] += ls.rows[i][static_cast<std::size_t>(src)] / T;
          }
        }
        out[l].entries.push_back(std::move(e));
        out[l].rows.push_back(std::move(b));
      }
    }
    m_layers = std::move(out);
    m_steps = 0;
    for (const Optimizer* o : from) m_steps = std::max(m_steps, o->m_steps);
  }

 protected:
  /// \throws InvalidArgument if the rate is not positive and finite or \p slots is outside
  /// [1, kMaxSlots]
  Optimizer(double learningRate, std::size_t slots) : m_slots(slots) {
    if (slots < 1 || slots > kMaxSlots)
      detail::raise<InvalidArgument>("Optimizer::Optimizer(): ", slots,
                                     " state arrays per parameter, at most ", kMaxSlots);
    setLearningRate(learningRate);
  }
  Optimizer(const Optimizer&) = default;
  Optimizer& operator=(const Optimizer&) = default;

  /// Refuses (InvalidArgument) layer \p l's finite state arrays if this optimiser cannot hold
  /// them.
  virtual void checkState(const LayerState& s, std::size_t l) const { (void)s, (void)l; }
  /// Fixes the coefficients of step \p t (1-based) before its updates.
  virtual void prepareStep(std::uint64_t t) { (void)t; }
  /// Updates n parameters \p w from gradients \p g with state arrays s[0 .. slots()) aligned
  /// with them, at learning rate learningRate() * \p rateScale (the layer's factor). Must not
  /// change members: threads call it side by side on disjoint ranges.
  virtual void update(Scalar* w, const Scalar* g, Scalar* const* s, std::ptrdiff_t n,
                      double rateScale, Threads threads) const = 0;

 private:
  double m_lr = 0;
  double m_fanInReference = 0;
  std::vector<double> m_rateScale;  ///< per layer, fixed by beginStep()
  std::size_t m_slots = 1;
  std::uint64_t m_steps = 0;
  std::vector<LayerState> m_layers;
};

}  // namespace tsnn
