#pragma once
/// \file
/// \brief A fully connected layer whose weights are truly sparse.

#include <Eigen/Core>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/sparse/kernels.hpp"

namespace tsnn {

/// \brief y = W x + b with W truly sparse (n_out x n_in, row j = the connections into output
/// neuron j), for a batch of inputs at once (see sparse/kernels.hpp for the layout).
///
/// Besides the weights and biases, the layer keeps the column index the input-gradient kernel
/// needs and the optimiser's momentum, stored aligned with the weight values: any topology
/// change goes through setTopology(), which replaces all of them together, so they can never
/// fall out of step.
///
/// \tparam Scalar  float or double
/// \tparam Index   signed index type of the sparse storage
/// \tparam Storage CsrMatrix (the default, and what Network uses) or CooMatrix (kept canonical:
///                 sorted by row, then column). Both run the same tiled kernels; COO finds row
///                 runs by scanning its row indices instead of reading a row pointer array, so it
///                 trades nnz extra row indices for rows + 1 offsets (smaller when most rows
///                 are empty).
template <class Scalar, class Index = std::int32_t,
          template <class, class> class Storage = CsrMatrix>
class SparseLinear {
 public:
  using Matrix = Storage<Scalar, Index>;
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

  SparseLinear() = default;

  /// \brief An Erdos-Renyi layer of the given density with weights drawn from \p init and zero
  /// biases (the SET reference initialisation).
  /// \throws InvalidArgument if a size is not positive or density is outside (0, 1].
  SparseLinear(Index inputs, Index outputs, double density, Rng& rng,
               WeightInit init = WeightInit::HeUniform)
      : m_w(fromCsr(erdosRenyi<Scalar, Index>(outputs, inputs, density, rng, init, inputs,
                                               outputs))),
        m_b(Vector::Zero(outputs)) {
    resetState();
  }

  /// \brief Adopts given weights (n_out x n_in) and biases (n_out).
  /// \throws InvalidArgument if the bias length does not match or a value is not finite.
  SparseLinear(Matrix weights, Vector bias) : m_w(std::move(weights)), m_b(std::move(bias)) {
    if (m_b.size() != m_w.rows())
      detail::raise<InvalidArgument>("SparseLinear::SparseLinear(): bias has ", m_b.size(),
                                     " entries, layer has ", m_w.rows(), " outputs");
    m_w.validate("SparseLinear::SparseLinear()");
    for (Index k = 0; k < m_w.nonZeros(); ++k)
      if (!std::isfinite(static_cast<double>(m_w.values()[static_cast<std::size_t>(k)])))
        detail::raise<InvalidArgument>("SparseLinear::SparseLinear(): weight ", k, " is ",
                                       m_w.values()[static_cast<std::size_t>(k)]);
    if (!m_b.allFinite())
      detail::raise<InvalidArgument>("SparseLinear::SparseLinear(): bias is not finite");
    resetState();
  }

  Index inputs() const { return m_w.cols(); }
  Index outputs() const { return m_w.rows(); }
  Index nonZeros() const { return m_w.nonZeros(); }
  double density() const { return m_w.density(); }
  /// \brief Bytes of weights, biases, column index and momentum.
  std::size_t bytes() const {
    return m_w.bytes() + static_cast<std::size_t>(m_b.size()) * sizeof(Scalar) * 2 +
           (m_t.colPtr.size() + m_t.rowIdx.size() + m_t.valuePos.size()) * sizeof(Index) +
           m_velocity.size() * sizeof(Scalar);
  }

  const Matrix& weights() const { return m_w; }
  /// \brief Mutable weight values (the pattern cannot change through this).
  std::vector<Scalar>& values() { return m_w.values(); }
  const Vector& bias() const { return m_b; }
  Vector& bias() { return m_b; }
  const TransposeIndex<Index>& transposeIndex() const { return m_t; }
  std::vector<Scalar>& velocity() { return m_velocity; }
  const std::vector<Scalar>& velocity() const { return m_velocity; }
  Vector& biasVelocity() { return m_biasVelocity; }
  const Vector& biasVelocity() const { return m_biasVelocity; }

  /// \brief Y = X W^T + b. X is B x inputs(), Y is B x outputs().
  /// \param threads team for the kernel's region (see sparseForward())
  void forward(const ConstActivationsRef<Scalar>& x, ActivationsRef<Scalar> y,
               Threads threads = Threads::automatic()) const {
    sparseForward(m_w, m_b, x, y, threads);
  }

  /// \brief dX = dY W.
  void backwardInput(const ConstActivationsRef<Scalar>& dy, ActivationsRef<Scalar> dx,
                     Threads threads = Threads::automatic()) const {
    sparseBackwardInput(m_w, m_t, dy, dx, threads);
  }

  /// \brief Gradients of the loss with respect to the stored weights and the biases:
  /// gradW[k] = scale * sum_b X(b, c_k) dY(b, j_k), gradB[j] = scale * sum_b dY(b, j).
  void gradients(const ConstActivationsRef<Scalar>& x, const ConstActivationsRef<Scalar>& dy,
                 std::vector<Scalar>& gradW, Vector& gradB, Scalar scale = Scalar(1),
                 Threads threads = Threads::automatic()) const {
    sparseWeightGradient(m_w, x, dy, scale, gradW, threads);
    gradB = dy.colwise().sum().transpose() * scale;
  }

  /// \brief gradients() for the output neurons [first, last) only, serially, summed over
  /// \p blocks blocks of samples (see sparseWeightGradientRows()): writes their entries of
  /// \p gradW and \p gradB, which must already have the layer's shape, and nothing else.
  /// Threads that split one gradient by neurons call it side by side; with one block each entry
  /// is bit for bit what gradients() writes.
  /// \throws InvalidArgument on mismatched shapes or a range outside [0, outputs()]
  void gradientsRows(const ConstActivationsRef<Scalar>* x, const ConstActivationsRef<Scalar>* dy,
                     std::size_t blocks, std::vector<Scalar>& gradW, Vector& gradB, Scalar scale,
                     Index first, Index last) const {
    sparseWeightGradientRows(m_w, x, dy, blocks, scale, gradW, first, last);
    if (gradB.size() != m_b.size())
      detail::raise<InvalidArgument>("SparseLinear::gradientsRows(): bias gradient has ",
                                     gradB.size(), " entries, layer has ", m_b.size(), " outputs");
    auto gb = gradB.segment(first, last - first);
    if (blocks == 0) gb.setZero();
    for (std::size_t s = 0; s < blocks; ++s) {
      if (s == 0)
        gb = dy[s].middleCols(first, last - first).colwise().sum().transpose();
      else
        gb += dy[s].middleCols(first, last - first).colwise().sum().transpose();
    }
    gb *= scale;
  }

  /// \brief Replaces the topology together with the momentum aligned with it, and rebuilds the
  /// column index. Output size must stay; the input size may change (neuron removal upstream).
  /// \throws InvalidArgument if the matrix is invalid or the momentum is misaligned.
  void setTopology(Matrix weights, std::vector<Scalar> velocity) {
    weights.validate("SparseLinear::setTopology()");
    if (velocity.size() != static_cast<std::size_t>(weights.nonZeros()))
      detail::raise<InvalidArgument>("SparseLinear::setTopology(): momentum has ",
                                     velocity.size(), " entries, weights have ",
                                     weights.nonZeros());
    if (weights.rows() != m_b.size())
      detail::raise<InvalidArgument>("SparseLinear::setTopology(): weights have ", weights.rows(),
                                     " rows, layer has ", m_b.size(), " outputs");
    m_w = std::move(weights);
    m_velocity = std::move(velocity);
    m_t.build(m_w);
  }

  /// \brief Replaces everything, output size included (used when neurons are removed or models
  /// are averaged). Everything is checked before anything changes.
  /// \throws InvalidArgument if the pieces do not fit together
  void reshape(Matrix weights, Vector bias, std::vector<Scalar> velocity, Vector biasVelocity) {
    weights.validate("SparseLinear::reshape()");
    if (bias.size() != weights.rows() || biasVelocity.size() != weights.rows() ||
        velocity.size() != static_cast<std::size_t>(weights.nonZeros()))
      detail::raise<InvalidArgument>("SparseLinear::reshape(): weights ", weights.rows(), " x ",
                                     weights.cols(), " with ", weights.nonZeros(),
                                     " nonzeros, but bias has ", bias.size(),
                                     " entries, bias momentum ", biasVelocity.size(),
                                     ", momentum ", velocity.size());
    m_w = std::move(weights);
    m_b = std::move(bias);
    m_biasVelocity = std::move(biasVelocity);
    m_velocity = std::move(velocity);
    m_t.build(m_w);
  }

 private:
  static Matrix fromCsr(CsrMatrix<Scalar, Index> m) {
    if constexpr (std::is_same<Matrix, CsrMatrix<Scalar, Index>>::value)
      return m;
    else
      return toCoo(m);
  }

  void resetState() {
    m_velocity.assign(static_cast<std::size_t>(m_w.nonZeros()), Scalar(0));
    m_biasVelocity = Vector::Zero(m_w.rows());
    m_t.build(m_w);
  }

  Matrix m_w;
  Vector m_b;
  TransposeIndex<Index> m_t;
  std::vector<Scalar> m_velocity;
  Vector m_biasVelocity;
};

using SparseLinearf = SparseLinear<float, std::int32_t>;
using CooSparseLinearf = SparseLinear<float, std::int32_t, CooMatrix>;

}  // namespace tsnn
