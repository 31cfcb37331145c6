#pragma once
/// \file
/// \brief Classification losses on a B x C output block, with their gradients.
///
/// Both take integer labels and a gradient scale s: the returned value is the *sum* of the
/// per-sample losses of the block, and the gradient written is s * d(sum)/d(input). A trainer that
/// splits a minibatch of B samples into shards passes s = 1/B to every shard, so that the shards'
/// gradients add up to the gradient of the minibatch mean.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "tsnn/core/errors.hpp"
#include "tsnn/nn/softmax.hpp"

namespace tsnn {

/// \brief The losses a Network can train with.
enum class LossKind {
  SoftmaxCrossEntropy,  ///< softmax on the logits, then -log p_label; the output activation is
                        ///< ignored (softmax is part of the loss)
  MeanSquaredError      ///< sum_c (a_c - onehot_c)^2 / C per sample, on the output activation
};

/// \brief Parses "cross-entropy" or "mse".
inline LossKind parseLoss(const std::string& name) {
  if (name == "cross-entropy" || name == "softmax-cross-entropy" || name == "ce")
    return LossKind::SoftmaxCrossEntropy;
  if (name == "mse") return LossKind::MeanSquaredError;
  detail::raise<InvalidArgument>("parseLoss(): unknown loss '", name,
                                 "' (expected cross-entropy or mse)");
}

namespace detail {
template <class Scalar>
void checkLabels(const char* caller, Eigen::Index rows, Eigen::Index classes,
                 const std::int32_t* labels) {
  for (Eigen::Index b = 0; b < rows; ++b)
    if (labels[b] < 0 || labels[b] >= classes)
      raise<InvalidArgument>(caller, ": label ", labels[b], " of sample ", b, " is outside [0, ",
                             classes, ")");
}
}  // namespace detail

/// \brief Softmax cross-entropy. L_b = -log softmax(z_b)[y_b], computed as
/// logsumexp(z_b) - z_b[y_b] so that it stays finite for any finite logits; dL_b/dz_b = p_b - e_y.
/// \param z      B x C logits
/// \param labels B labels in [0, C)
/// \param scale  factor applied to the gradient (see file comment)
/// \param probs  B x C probabilities, written
/// \param grad   B x C, written with scale * (p - onehot)
/// \returns the sum over the block of the per-sample losses
template <class ZT, class PT, class GT>
double softmaxCrossEntropy(const Eigen::MatrixBase<ZT>& z, const std::int32_t* labels,
                           typename ZT::Scalar scale, Eigen::MatrixBase<PT>& probs,
                           Eigen::MatrixBase<GT>& grad) {
  using Scalar = typename ZT::Scalar;
  detail::checkLabels<Scalar>("softmaxCrossEntropy()", z.rows(), z.cols(), labels);
  softmaxRows(z, probs);
  double loss = 0;
  for (Eigen::Index b = 0; b < z.rows(); ++b) {
    const Scalar m = z.row(b).maxCoeff();
    const double lse =
        static_cast<double>(m) + std::log(static_cast<double>((z.row(b).array() - m).exp().sum()));
    loss += lse - static_cast<double>(z(b, labels[b]));
  }
  grad = probs * scale;
  for (Eigen::Index b = 0; b < z.rows(); ++b) grad(b, labels[b]) -= scale;
  return loss;
}

/// \brief Mean squared error against one-hot targets: L_b = sum_c (a_bc - t_bc)^2 / C,
/// dL_b/da_bc = 2 (a_bc - t_bc) / C.
/// \returns the sum over the block of the per-sample losses
template <class AT, class GT>
double meanSquaredError(const Eigen::MatrixBase<AT>& a, const std::int32_t* labels,
                        typename AT::Scalar scale, Eigen::MatrixBase<GT>& grad) {
  using Scalar = typename AT::Scalar;
  detail::checkLabels<Scalar>("meanSquaredError()", a.rows(), a.cols(), labels);
  const Scalar c = static_cast<Scalar>(a.cols());
  grad = a;
  for (Eigen::Index b = 0; b < a.rows(); ++b) grad(b, labels[b]) -= Scalar(1);
  const double loss = static_cast<double>(grad.squaredNorm()) / static_cast<double>(c);
  grad *= Scalar(2) * scale / c;
  return loss;
}

}  // namespace tsnn
