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
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

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

namespace detail {

/// f'(v): \p s where v < 0, else 1 (also for -0 and NaN, as `v < 0` is false there), so that
/// f(v) = v * f'(v) and the backward step g * f'(v) give exactly the bits of `v < 0 ? s * v : v`
/// and `v < 0 ? s * g : g`. For float and double the choice is made on v's bits with integer
/// operations: GCC 12 does not if-convert a floating-point comparison that may trap, so with only
/// SSE2 (a portable x86-64 build) the plain select became a branch per element, mispredicted for
/// half of them: 38% of an epoch of the default network in perf, against 9% with -march=native,
/// where masked AVX-512 instructions let the compiler vectorise it.
template <class Scalar>
inline Scalar allReluFactor(Scalar v, Scalar s) {
  using Bits = std::conditional_t<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>;
  if constexpr ((std::is_same_v<Scalar, float> ||
                 std::is_same_v<Scalar, double>)&&std::numeric_limits<Scalar>::is_iec559) {
    // v < 0 exactly when its bits lie in (bits(-0), bits(-inf)]: sign set, not -0, not NaN.
    constexpr Bits kMinusZero = Bits(1) << (8 * sizeof(Scalar) - 1);
    constexpr Bits kMinusInf =
        sizeof(Scalar) == 4 ? Bits(0xFF800000u) : Bits(0xFFF0000000000000ull);
    const Scalar one = Scalar(1);
    Bits u, sb, ob;
    std::memcpy(&u, &v, sizeof u);
    std::memcpy(&sb, &s, sizeof sb);
    std::memcpy(&ob, &one, sizeof ob);
    const Bits negative = (u - (kMinusZero + 1)) <= (kMinusInf - kMinusZero - 1) ? ~Bits(0) : 0;
    const Bits factor = (sb & negative) | (ob & ~negative);
    Scalar f;
    std::memcpy(&f, &factor, sizeof f);
    return f;
  } else {
    return v < Scalar(0) ? s : Scalar(1);
  }
}

}  // namespace detail

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
    a = z.unaryExpr([s](Scalar v) { return v * detail::allReluFactor(v, s); });
  }

  /// \brief grad <- grad * f'(Z).
  template <class ZT, class G>
  void backward(const Eigen::MatrixBase<ZT>& z, Eigen::MatrixBase<G>& grad) const {
    const Scalar s = m_slope;
    grad = grad.binaryExpr(z, [s](Scalar g, Scalar v) { return g * detail::allReluFactor(v, s); });
  }

 private:
  Scalar m_slope;
};

}  // namespace tsnn
