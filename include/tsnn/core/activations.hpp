#pragma once
/// \file
/// \brief The batch layout every layer and kernel shares: activations are column-major, one row
/// per sample and one column per neuron, so that a neuron's values for a tile of samples are
/// contiguous (what the sparse kernels vectorise over).

#include <Eigen/Core>

namespace tsnn {

/// \brief The 16-bit brain floating-point format (Eigen's): a float's sign, its 8 exponent bits
/// and the top 7 of its 23 fraction bits. Widening to float is exact; narrowing rounds to
/// nearest even (NaN stays NaN). An optional storage format for hidden activations and deltas
/// (NetworkOptions::activationStorage): half the bytes of float, about 3 significant digits.
using BFloat16 = Eigen::bfloat16;

/// \brief How a Network stores the hidden layers' pre-activations, activations and deltas
/// between the kernels of a training pass (NetworkOptions::activationStorage).
enum class ActivationStorage {
  /// In the network's Scalar type.
  Scalar,
  /// In bfloat16, with float weights, arithmetic and accumulation: the kernels widen each value
  /// on load and round each stored result once. Halves the bytes a connection-sample gathers and
  /// the bytes a hidden neuron-sample keeps.
  BFloat16
};

/// \brief Column-major activation matrix: B rows (batch) by n columns (neurons).
template <class Scalar>
using Activations = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
/// \brief A read-only view of activations, possibly a block of batch rows (outer stride > rows).
template <class Scalar>
using ConstActivationsRef = Eigen::Ref<const Activations<Scalar>, 0, Eigen::OuterStride<>>;
/// \brief A writable view of activations, possibly a block of batch rows.
template <class Scalar>
using ActivationsRef = Eigen::Ref<Activations<Scalar>, 0, Eigen::OuterStride<>>;

}  // namespace tsnn
