#pragma once
/// \file
/// \brief The batch layout every layer and kernel shares: activations are column-major, one row
/// per sample and one column per neuron, so that a neuron's values for a tile of samples are
/// contiguous (what the sparse kernels vectorise over).

#include <Eigen/Core>

namespace tsnn {

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
