#pragma once
/// \file
/// \brief Elementwise activation functions and a small runtime-selectable wrapper.
///
/// Every activation works on whole activation matrices (B x n, column-major). forward() maps
/// pre-activations Z to A = f(Z); backward() turns dL/dA into dL/dZ in place, given Z and A.
/// Softmax is not here: it couples a sample's outputs and lives with the loss
/// (losses/softmax_cross_entropy.hpp) and in activations/softmax.hpp.

#include <Eigen/Core>
#include <cmath>
#include <string>

#include "tsnn/core/errors.hpp"
#include "tsnn/nn/all_relu.hpp"

namespace tsnn {

/// \brief The activations a hidden or output layer can use.
enum class ActivationKind { Identity, ReLU, LeakyReLU, AllReLU, Sigmoid, Tanh };

/// \brief Parses "identity", "relu", "leaky-relu", "all-relu", "sigmoid" or "tanh".
/// \throws InvalidArgument for any other name.
inline ActivationKind parseActivation(const std::string& name) {
  if (name == "identity" || name == "linear") return ActivationKind::Identity;
  if (name == "relu") return ActivationKind::ReLU;
  if (name == "leaky-relu" || name == "leaky_relu") return ActivationKind::LeakyReLU;
  if (name == "all-relu" || name == "all_relu" || name == "allrelu") return ActivationKind::AllReLU;
  if (name == "sigmoid") return ActivationKind::Sigmoid;
  if (name == "tanh") return ActivationKind::Tanh;
  detail::raise<InvalidArgument>(
      "parseActivation(): unknown activation '", name,
      "' (expected identity, relu, leaky-relu, all-relu, sigmoid, tanh)");
}

inline const char* activationName(ActivationKind k) {
  switch (k) {
    case ActivationKind::Identity:
      return "identity";
    case ActivationKind::ReLU:
      return "relu";
    case ActivationKind::LeakyReLU:
      return "leaky-relu";
    case ActivationKind::AllReLU:
      return "all-relu";
    case ActivationKind::Sigmoid:
      return "sigmoid";
    case ActivationKind::Tanh:
      return "tanh";
  }
  return "?";
}

/// \brief One layer's activation: a kind and, for the piecewise-linear ones, the slope used
/// for z < 0 (ReLU: 0; LeakyReLU: a small positive slope; AllReLU: +a or -a by layer parity).
template <class Scalar>
class Activation {
 public:
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

  Activation() = default;
  /// \throws InvalidArgument if the slope is not finite.
  Activation(ActivationKind kind, Scalar negativeSlope = Scalar(0))
      : m_kind(kind), m_slope(kind == ActivationKind::ReLU ? Scalar(0) : negativeSlope) {
    if (!std::isfinite(static_cast<double>(negativeSlope)))
      detail::raise<InvalidArgument>("Activation::Activation(): slope must be finite, got ",
                                     negativeSlope);
  }

  ActivationKind kind() const { return m_kind; }
  Scalar negativeSlope() const { return m_slope; }

  /// \brief A = f(Z), elementwise. A may alias Z.
  template <class In, class Out>
  void forward(const Eigen::MatrixBase<In>& z, Eigen::MatrixBase<Out>& a) const {
    switch (m_kind) {
      case ActivationKind::Identity:
        a = z;
        break;
      case ActivationKind::ReLU:
      case ActivationKind::LeakyReLU:
      case ActivationKind::AllReLU:
        AllReLU<Scalar>(m_slope).forward(z, a);
        break;
      case ActivationKind::Sigmoid:
        a = (Scalar(1) / (Scalar(1) + (-z.array()).exp())).matrix();
        break;
      case ActivationKind::Tanh:
        a = z.array().tanh().matrix();
        break;
    }
  }

  /// \brief grad <- grad * f'(Z), elementwise. f' is computed from Z alone, so the caller may
  /// have modified A = f(Z) afterwards (dropout does).
  template <class ZT, class G>
  void backward(const Eigen::MatrixBase<ZT>& z, Eigen::MatrixBase<G>& grad) const {
    switch (m_kind) {
      case ActivationKind::Identity:
        break;
      case ActivationKind::ReLU:
      case ActivationKind::LeakyReLU:
      case ActivationKind::AllReLU:
        AllReLU<Scalar>(m_slope).backward(z, grad);
        break;
      case ActivationKind::Sigmoid:
        grad = grad.binaryExpr(z, [](Scalar g, Scalar v) {
          const Scalar s = Scalar(1) / (Scalar(1) + std::exp(-v));
          return g * s * (Scalar(1) - s);
        });
        break;
      case ActivationKind::Tanh:
        grad = grad.binaryExpr(z, [](Scalar g, Scalar v) {
          const Scalar t = std::tanh(v);
          return g * (Scalar(1) - t * t);
        });
        break;
    }
  }

 private:
  ActivationKind m_kind = ActivationKind::Identity;
  Scalar m_slope = Scalar(0);
};

}  // namespace tsnn
