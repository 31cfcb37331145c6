#pragma once
/// \file
/// \brief Adam (Kingma & Ba, 2015) with bias-corrected moments, and its AdamW variant with
/// decoupled weight decay (Loshchilov & Hutter, 2019).
///
/// For every parameter w with gradient g, first moment m and second moment v (kept by the
/// optimiser, aligned with the sparse values, see optim/optimizer.hpp), at step t = 1, 2, ...:
///   g <- g + lambda w                     (L2 decay only: it enters the moments)
///   m <- beta1 m + (1 - beta1) g
///   v <- beta2 v + (1 - beta2) g^2
///   m^ = m / (1 - beta1^t),  v^ = v / (1 - beta2^t)
///   w <- w - lr lambda w - lr m^ / (sqrt(v^) + eps)     (AdamW: the decay term, old w)
///   w <- w - lr m^ / (sqrt(v^) + eps)                   (Adam, L2 or no decay)
/// computed as w (1 - lr lambda) - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
/// the same arithmetic as torch.optim.Adam/AdamW, with the step coefficients in double. The
/// decoupled decay is scaled by the current learning rate as in torch.optim.AdamW; in the
/// paper's notation (w <- w - eta_t (alpha m^ / (sqrt(v^) + eps) + lambda' w)) that is
/// lambda' = lr lambda / alpha with eta_t = lr / alpha, so lowering the rate lowers both terms.
/// A connection grown by SET starts at m = v = 0 while t keeps counting: its first updates are
/// then smaller than a fresh parameter's would be (the bias correction assumes t steps of
/// history), which is the usual behaviour of sparse training with Adam (e.g. RigL).

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/optim/optimizer.hpp"

namespace tsnn {

/// \brief Adam hyperparameters (defaults are Kingma & Ba's).
struct AdamOptions {
  double learningRate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  /// lambda: 0 for plain Adam.
  double weightDecay = 0;
  /// true: AdamW's decoupled decay, w <- w - lr lambda w outside the moments; false: L2 decay,
  /// lambda w added to the gradient (and so scaled by the moments).
  bool decoupled = true;

  /// \throws InvalidArgument naming the first bad value.
  void validate() const {
    if (!(learningRate > 0) || !std::isfinite(learningRate))
      detail::raise<InvalidArgument>("AdamOptions: learning rate must be positive and finite, got ",
                                     learningRate);
    if (!(beta1 >= 0 && beta1 < 1))
      detail::raise<InvalidArgument>("AdamOptions: beta1 must be in [0, 1), got ", beta1);
    if (!(beta2 >= 0 && beta2 < 1))
      detail::raise<InvalidArgument>("AdamOptions: beta2 must be in [0, 1), got ", beta2);
    if (!(epsilon > 0) || !std::isfinite(epsilon))
      detail::raise<InvalidArgument>("AdamOptions: epsilon must be positive and finite, got ",
                                     epsilon);
    if (!(weightDecay >= 0) || !std::isfinite(weightDecay))
      detail::raise<InvalidArgument>("AdamOptions: weight decay must be finite and >= 0, got ",
                                     weightDecay);
    if (decoupled && !(learningRate * weightDecay < 1))
      detail::raise<InvalidArgument>("AdamOptions: decoupled weight decay ", weightDecay,
                                     " times learning rate ", learningRate,
                                     " must be below 1 (each step multiplies w by 1 - lr lambda)");
  }
};

/// \brief One Adam step (see the file comment) on n parameters in place, \p t the 1-based step
/// number and o.learningRate the rate in use.
template <class Scalar>
void adamUpdate(Scalar* w, Scalar* m, Scalar* v, const Scalar* g, std::ptrdiff_t n,
                const AdamOptions& o, std::uint64_t t, Threads threads = Threads::automatic()) {
  TSNN_ASSERT(t >= 1);
  const double td = static_cast<double>(t);
  const Scalar b1 = static_cast<Scalar>(o.beta1), b2 = static_cast<Scalar>(o.beta2);
  const Scalar c1 = static_cast<Scalar>(1 - o.beta1), c2 = static_cast<Scalar>(1 - o.beta2);
  const Scalar stepSize = static_cast<Scalar>(o.learningRate / (1 - std::pow(o.beta1, td)));
  const Scalar invRootBc2 = static_cast<Scalar>(1 / std::sqrt(1 - std::pow(o.beta2, td)));
  const Scalar eps = static_cast<Scalar>(o.epsilon);
  const Scalar l2 = static_cast<Scalar>(o.decoupled ? 0.0 : o.weightDecay);
  const Scalar keep = static_cast<Scalar>(o.decoupled ? 1 - o.learningRate * o.weightDecay : 1.0);
  auto step = [&](std::ptrdiff_t k) {
    const Scalar gk = g[k] + l2 * w[k];
    const Scalar mk = b1 * m[k] + c1 * gk;
    const Scalar vk = b2 * v[k] + c2 * gk * gk;
    m[k] = mk;
    v[k] = vk;
    w[k] = w[k] * keep - stepSize * mk / (std::sqrt(vk) * invRootBc2 + eps);
  };
  // As sgdUpdate(): no region at all when serial (trainers call this inside their own).
  if (n <= 32768 || !detail::openRegion(threads)) {
    for (std::ptrdiff_t k = 0; k < n; ++k) step(k);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for simd schedule(static) num_threads(threads.resolve())
#endif
  for (std::ptrdiff_t k = 0; k < n; ++k) step(k);
}

/// \brief Adam (AdamW when options.decoupled and options.weightDecay > 0) as an Optimizer: two
/// state arrays per parameter (slots() == 2; array 0 is m, array 1 is v), updated by adamUpdate()
/// with the current learning rate and t = steps().
template <class Scalar, class Index = std::int32_t>
class Adam final : public Optimizer<Scalar, Index> {
  using Base = Optimizer<Scalar, Index>;

 public:
  /// \throws InvalidArgument naming the first bad option (AdamOptions::validate())
  explicit Adam(const AdamOptions& options = {})
      : Base((options.validate(), options.learningRate), optimizerSlots(OptimizerKind::Adam)),
        m_options(options) {}

  OptimizerKind kind() const override { return OptimizerKind::Adam; }
  std::string name() const override {
    return m_options.decoupled && m_options.weightDecay > 0 ? "adamw" : "adam";
  }
  std::unique_ptr<Base> clone() const override { return std::make_unique<Adam>(*this); }
  /// \brief The options it was made with (learningRate() is the rate in use).
  const AdamOptions& options() const { return m_options; }

 protected:
  void checkState(const typename Base::LayerState& s, std::size_t l) const override {
    for (const auto* a : {&s.entries[1], &s.rows[1]})
      for (std::size_t k = 0; k < a->size(); ++k)
        if ((*a)[k] < 0)
          detail::raise<InvalidArgument>("Optimizer::setState(): Adam's second moment of layer ", l,
                                         " is ", (*a)[k], " at ", k, " (a mean of squares)");
  }
  void prepareStep(std::uint64_t t) override { m_t = t; }
  void update(Scalar* w, const Scalar* g, Scalar* const* s, std::ptrdiff_t n, double rateScale,
              Threads threads) const override {
    AdamOptions o = m_options;
    o.learningRate = this->learningRate() * rateScale;
    adamUpdate(w, s[0], s[1], g, n, o, m_t, threads);
  }

 private:
  AdamOptions m_options;
  std::uint64_t m_t = 1;
};

}  // namespace tsnn
