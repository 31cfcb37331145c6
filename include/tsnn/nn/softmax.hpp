#pragma once
/// \file
/// \brief Row-wise softmax over a B x C matrix of logits (one sample per row).
///
/// p_c = exp(z_c - max_c' z_c') / sum_c'' exp(z_c'' - max z): subtracting the row maximum keeps
/// every exponent <= 0, so no overflow, and leaves the result unchanged.

#include <Eigen/Core>

namespace tsnn {

/// \brief P = softmax(Z) row by row. P may alias Z.
template <class In, class Out>
void softmaxRows(const Eigen::MatrixBase<In>& z, Eigen::MatrixBase<Out>& p) {
  using Scalar = typename In::Scalar;
  const auto rowMax = z.rowwise().maxCoeff().eval();
  p = (z.colwise() - rowMax).array().exp().matrix();
  const auto sums = p.rowwise().sum().eval();
  for (Eigen::Index c = 0; c < p.cols(); ++c) p.col(c).array() /= sums.array();
  (void)sizeof(Scalar);
}

/// \brief Jacobian-vector product of softmax: given P = softmax(Z) and G = dL/dP, replaces G by
/// dL/dZ, where dL/dz_c = p_c (g_c - sum_c' p_c' g_c').
template <class PT, class G>
void softmaxBackward(const Eigen::MatrixBase<PT>& p, Eigen::MatrixBase<G>& grad) {
  const auto dot = (p.array() * grad.array()).rowwise().sum().eval();
  for (Eigen::Index c = 0; c < grad.cols(); ++c)
    grad.col(c).array() = p.col(c).array() * (grad.col(c).array() - dot);
}

}  // namespace tsnn
