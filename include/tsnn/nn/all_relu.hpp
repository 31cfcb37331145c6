#pragma once
/// \file
/// \brief All-ReLU (Curci, Mocanu, Pechenizkiy 2021) and the piecewise-linear family it belongs to.
///
///   f(z) = z          for z >= 0
///   f(z) = s * z      for z <  0
///
/// ReLU is s = 0 and LeakyReLU a small s > 0. All-ReLU fixes |s| = a and alternates its sign from
/// one hidden layer to the next, starting negative: hidden layer 0 uses -a, layer 1 +a, layer 2
/// -a, and so on (a = 0.6 for Fashion-MNIST, 0.75 for CIFAR-10 in the paper). With a negative slope
/// f is not monotone, which is what lets a layer pass information from negative pre-activations
/// that ReLU would discard. The derivative is 1 for z >= 0 and s for z < 0 (at z = 0 we take 1,
/// as the reference code does).

#include <Eigen/Core>
#include <cmath>

#include "tsnn/core/errors.hpp"

namespace tsnn {

/// \brief The All-ReLU slope for hidden layer \p hiddenIndex (0-based): -a, +a, -a, ...
/// \throws InvalidArgument if a is negative or not finite, or the index is negative.
inline double allReluSlope(int hiddenIndex, double alpha) {
  if (!(alpha >= 0) || !std::isfinite(alpha))
    detail::raise<InvalidArgument>("allReluSlope(): alpha must be a finite number >= 0, got ",
                                   alpha);
  if (hiddenIndex < 0)
    detail::raise<InvalidArgument>("allReluSlope(): hidden layer index must be >= 0, got ",
                                   hiddenIndex);
  return hiddenIndex % 2 == 0 ? -alpha : alpha;
}

/// \brief f(z) = z for z >= 0 and slope * z for z < 0, with its derivative.
template <class Scalar>
class AllReLU {
 public:
  explicit AllReLU(Scalar slope) : m_slope(slope) {}
  Scalar slope() const { return m_slope; }

  /// \brief A = f(Z). A may alias Z.
  template <class In, class Out>
  void forward(const Eigen::MatrixBase<In>& z, Eigen::MatrixBase<Out>& a) const {
    const Scalar s = m_slope;
    a = z.unaryExpr([s](Scalar v) { return v < Scalar(0) ? s * v : v; });
  }

  /// \brief grad <- grad * f'(Z).
  template <class ZT, class G>
  void backward(const Eigen::MatrixBase<ZT>& z, Eigen::MatrixBase<G>& grad) const {
    const Scalar s = m_slope;
    grad = grad.binaryExpr(z, [s](Scalar g, Scalar v) { return v < Scalar(0) ? s * g : g; });
  }

 private:
  Scalar m_slope;
};

}  // namespace tsnn
