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
/// Besides the weights and biases, the layer keeps only the column index the input-gradient
/// kernel needs: any topology change goes through setTopology() or reshape(), which rebuild it,
/// so it can never fall out of step. Optimiser state lives in the optimiser
/// (optim/optimizer.hpp), aligned with values() and moved along by the PatternRemap that every
/// topology change reports.
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
      : m_w(fromCsr(
            erdosRenyi<Scalar, Index>(outputs, inputs, density, rng, init, inputs, outputs))),
        m_b(Vector::Zero(outputs)) {
    m_t.build(m_w);
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
    m_t.build(m_w);
  }

  Index inputs() const { return m_w.cols(); }
  Index outputs() const { return m_w.rows(); }
  Index nonZeros() const { return m_w.nonZeros(); }
  double density() const { return m_w.density(); }
  /// \brief Bytes of weights, biases and column index (optimiser state: Optimizer::bytes()).
  std::size_t bytes() const {
    return m_w.bytes() + static_cast<std::size_t>(m_b.size()) * sizeof(Scalar) +
           (m_t.colPtr.size() + m_t.rowIdx.size() + m_t.valuePos.size()) * sizeof(Index);
  }

  const Matrix& weights() const { return m_w; }
  /// \brief Mutable weight values (the pattern cannot change through this).
  std::vector<Scalar>& values() { return m_w.values(); }
  const Vector& bias() const { return m_b; }
  Vector& bias() { return m_b; }
  const TransposeIndex<Index>& transposeIndex() const { return m_t; }

  /// \brief Y = X W^T + b. X is B x inputs(), Y is B x outputs().
  /// \param threads team for the kernel's region (see sparseForward())
  void forward(const ConstActivationsRef<Scalar>& x, ActivationsRef<Scalar> y,
               Threads threads = Threads::automatic()) const {
    sparseForward(m_w, m_b, x, y, threads);
  }

  /// \brief forward() on bfloat16 inputs (float layers only; see sparseForward()).
  void forward(const ConstActivationsRef<BFloat16>& x, ActivationsRef<Scalar> y,
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

  /// \brief gradients() with bfloat16 output gradients (float layers only): each widened to
  /// float exactly, so both gradients are the float ones of the widened values, bit for bit.
  void gradients(const ConstActivationsRef<Scalar>& x, const ConstActivationsRef<BFloat16>& dy,
                 std::vector<Scalar>& gradW, Vector& gradB, Scalar scale = Scalar(1),
                 Threads threads = Threads::automatic()) const {
    sparseWeightGradient(m_w, x, dy, scale, gradW, threads);
    gradB = dy.template cast<Scalar>().colwise().sum().transpose() * scale;
  }

  /// \brief backwardInput() and gradients() in one pass (sparseBackwardFused()): dX = dY W,
  /// gradW and gradB as gradients() writes them, bit for bit. Also with bfloat16 inputs and
  /// input gradient and float or bfloat16 output gradients (float layers only): the float
  /// results of the widened values, dX rounded once.
  void backwardFused(const ConstActivationsRef<Scalar>& x, const ConstActivationsRef<Scalar>& dy,
                     ActivationsRef<Scalar> dx, std::vector<Scalar>& gradW, Vector& gradB,
                     Scalar scale = Scalar(1), Threads threads = Threads::automatic()) const {
    sparseBackwardFused(m_w, m_t, x, dy, dx, scale, gradW, threads);
    gradB = dy.colwise().sum().transpose() * scale;
  }
  void backwardFused(const ConstActivationsRef<BFloat16>& x, const ConstActivationsRef<Scalar>& dy,
                     ActivationsRef<BFloat16> dx, std::vector<Scalar>& gradW, Vector& gradB,
                     Scalar scale = Scalar(1), Threads threads = Threads::automatic()) const {
    sparseBackwardFused(m_w, m_t, x, dy, dx, scale, gradW, threads);
    gradB = dy.colwise().sum().transpose() * scale;
  }
  void backwardFused(const ConstActivationsRef<BFloat16>& x,
                     const ConstActivationsRef<BFloat16>& dy, ActivationsRef<BFloat16> dx,
                     std::vector<Scalar>& gradW, Vector& gradB, Scalar scale = Scalar(1),
                     Threads threads = Threads::automatic()) const {
    sparseBackwardFused(m_w, m_t, x, dy, dx, scale, gradW, threads);
    gradB = dy.template cast<Scalar>().colwise().sum().transpose() * scale;
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

  /// \brief Replaces the topology and rebuilds the column index. Output size must stay; the
  /// input size may change (neuron removal upstream). The caller reports the change to whoever
  /// keeps state aligned with the old values (a PatternRemap, sparse/pattern_remap.hpp).
  /// \throws InvalidArgument if the matrix is invalid or has another row count.
  void setTopology(Matrix weights) {
    weights.validate("SparseLinear::setTopology()");
    if (weights.rows() != m_b.size())
      detail::raise<InvalidArgument>("SparseLinear::setTopology(): weights have ", weights.rows(),
                                     " rows, layer has ", m_b.size(), " outputs");
    m_w = std::move(weights);
    m_t.build(m_w);
  }

  /// \brief Replaces weights and biases, output size included (used when neurons are removed or
  /// models are averaged). Everything is checked before anything changes.
  /// \throws InvalidArgument if the bias length differs from the row count or the matrix is
  /// invalid
  void reshape(Matrix weights, Vector bias) {
    weights.validate("SparseLinear::reshape()");
    if (bias.size() != weights.rows())
      detail::raise<InvalidArgument>("SparseLinear::reshape(): weights ", weights.rows(), " x ",
                                     weights.cols(), " with ", weights.nonZeros(),
                                     " nonzeros, but bias has ", bias.size(), " entries");
    m_w = std::move(weights);
    m_b = std::move(bias);
    m_t.build(m_w);
  }

 private:
  static Matrix fromCsr(CsrMatrix<Scalar, Index> m) {
    if constexpr (std::is_same<Matrix, CsrMatrix<Scalar, Index>>::value)
      return m;
    else
      return toCoo(m);
  }

  Matrix m_w;
  Vector m_b;
  TransposeIndex<Index> m_t;
};

using SparseLinearf = SparseLinear<float, std::int32_t>;
using CooSparseLinearf = SparseLinear<float, std::int32_t, CooMatrix>;

}  // namespace tsnn
