#pragma once
/// \file
/// \brief An optimiser's state as a value: which optimiser, how many steps it took, and its
/// per-connection and per-neuron arrays for every layer. TrainingState holds one (so a run can
/// continue exactly) and checkpoints store it; Optimizer::state() and Optimizer::setState()
/// convert from and to a live optimiser (optim/optimizer.hpp).

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "tsnn/core/errors.hpp"

namespace tsnn {

/// \brief The optimisers tsnn has.
enum class OptimizerKind {
  Sgd,  ///< SGD with momentum, optional Nesterov, decoupled weight decay (optim/sgd.hpp)
  Adam  ///< Adam, with L2 or decoupled (AdamW) weight decay (optim/adam.hpp)
};

/// \brief "sgd" or "adam".
inline const char* optimizerName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::Sgd:
      return "sgd";
    case OptimizerKind::Adam:
      return "adam";
  }
  return "unknown";
}

/// \brief State arrays an optimiser of \p kind keeps per parameter: SGD 1 (momentum), Adam 2
/// (first and second moment); 0 for an unknown kind.
inline std::size_t optimizerSlots(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::Sgd:
      return 1;
    case OptimizerKind::Adam:
      return 2;
  }
  return 0;
}

/// \brief Parses "sgd" or "adam".
/// \throws InvalidArgument naming the unknown name
inline OptimizerKind parseOptimizer(const std::string& name) {
  if (name == "sgd") return OptimizerKind::Sgd;
  if (name == "adam") return OptimizerKind::Adam;
  detail::raise<InvalidArgument>("parseOptimizer(): unknown optimizer '", name,
                                 "' (expected sgd or adam)");
}

/// \brief One layer's optimiser state: entries[s] is state array s aligned with the layer's
/// values() (one element per stored connection), rows[s] state array s of its biases (one per
/// output neuron). SGD has one array of each (the momentum), Adam two (first and second moment).
template <class Scalar>
struct LayerOptimizerState {
  /// The layer pattern (CsrMatrix::patternId()) the entries are aligned with; 0 when unknown
  /// (read from a file: Optimizer::setState() then checks only the sizes).
  std::uint64_t pattern = 0;
  std::vector<std::vector<Scalar>> entries;
  std::vector<std::vector<Scalar>> rows;
};

/// \brief A whole optimiser's state, for networks of float or double (the arrays are kept in the
/// network's Scalar, so a copy is exact). An empty state (no layers) means "none yet".
struct OptimizerState {
  OptimizerKind kind = OptimizerKind::Sgd;
  /// Steps taken (Adam's t, which its bias correction uses; SGD only counts them).
  std::uint64_t steps = 0;
  std::variant<std::vector<LayerOptimizerState<float>>, std::vector<LayerOptimizerState<double>>>
      layers;

  /// \brief Number of layers with state (0: none).
  std::size_t numLayers() const {
    return std::visit([](const auto& v) { return v.size(); }, layers);
  }
  bool empty() const { return numLayers() == 0; }
  /// \brief Whether the arrays hold \p Scalar (always true when empty).
  template <class Scalar>
  bool holds() const {
    return empty() || std::holds_alternative<std::vector<LayerOptimizerState<Scalar>>>(layers);
  }
  /// \brief The layers as \p Scalar arrays.
  /// \throws InvalidArgument if they hold the other scalar type
  template <class Scalar>
  const std::vector<LayerOptimizerState<Scalar>>& layersOf() const {
    if (!holds<Scalar>())
      detail::raise<InvalidArgument>("OptimizerState::layersOf(): the state holds ",
                                     sizeof(Scalar) == 4 ? "double" : "float", " arrays, not ",
                                     sizeof(Scalar) == 4 ? "float" : "double");
    if (empty()) {
      static const std::vector<LayerOptimizerState<Scalar>> none;
      return none;
    }
    return std::get<std::vector<LayerOptimizerState<Scalar>>>(layers);
  }
  /// \brief Mutable layers as \p Scalar arrays (an empty state switches to \p Scalar).
  /// \throws InvalidArgument if they hold the other scalar type
  template <class Scalar>
  std::vector<LayerOptimizerState<Scalar>>& layersOf() {
    if (empty() && !std::holds_alternative<std::vector<LayerOptimizerState<Scalar>>>(layers))
      layers = std::vector<LayerOptimizerState<Scalar>>{};
    static_cast<const OptimizerState&>(*this).layersOf<Scalar>();  // checks the type
    return std::get<std::vector<LayerOptimizerState<Scalar>>>(layers);
  }
};

}  // namespace tsnn
