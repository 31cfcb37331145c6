#pragma once
/// \file
/// \brief Stochastic gradient descent with momentum, optional Nesterov, and decoupled weight decay.
///
/// For every parameter w with gradient g and momentum v (kept by the optimiser, aligned with the
/// sparse values, see optim/optimizer.hpp):
///   v <- mu v - lr g
///   w <- w + v - wd w                      (classical momentum)
///   w <- w + mu v - lr g - wd w            (Nesterov)
/// The decay term is decoupled from the gradient (it is not scaled by lr and does not enter the
/// momentum), exactly as in the SET reference code, and applies to biases too.

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/optim/optimizer.hpp"

namespace tsnn {

/// \brief SGD hyperparameters (defaults are the paper's Fashion-MNIST settings).
struct SgdOptions {
  double learningRate = 0.01;
  double momentum = 0.9;
  double weightDecay = 0.0002;
  bool nesterov = false;

  /// \throws InvalidArgument naming the first bad value.
  void validate() const {
    if (!(learningRate > 0) || !std::isfinite(learningRate))
      detail::raise<InvalidArgument>("SgdOptions: learning rate must be positive and finite, got ",
                                     learningRate);
    if (!(momentum >= 0 && momentum < 1))
      detail::raise<InvalidArgument>("SgdOptions: momentum must be in [0, 1), got ", momentum);
    if (!(weightDecay >= 0 && weightDecay < 1))
      detail::raise<InvalidArgument>("SgdOptions: weight decay must be in [0, 1), got ",
                                     weightDecay);
    if (nesterov && momentum == 0)
      detail::raise<InvalidArgument>("SgdOptions: Nesterov needs a momentum > 0");
  }
};

/// \brief Applies one SGD step to n parameters in place. Each parameter's update reads only its
/// own w, v and g, so any split among threads gives the same bits.
/// \param threads team for an OpenMP region over the parameters, opened only for more than
/// 32768 of them and outside any region
template <class Scalar>
void sgdUpdate(Scalar* w, Scalar* v, const Scalar* g, std::ptrdiff_t n, const SgdOptions& o,
               Threads threads = Threads::automatic()) {
  const Scalar lr = static_cast<Scalar>(o.learningRate);
  const Scalar mu = static_cast<Scalar>(o.momentum);
  const Scalar wd = static_cast<Scalar>(o.weightDecay);
  const bool nesterov = o.nesterov;
  auto step = [&](std::ptrdiff_t k) {
    const Scalar vk = mu * v[k] - lr * g[k];
    v[k] = vk;
    w[k] += (nesterov ? mu * vk - lr * g[k] : vk) - wd * w[k];
  };
  // No region at all, rather than `if (false)`, when serial: a trainer calls this from inside
  // its own region for every layer and step.
  if (n <= 32768 || !detail::openRegion(threads)) {
    for (std::ptrdiff_t k = 0; k < n; ++k) step(k);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for simd schedule(static) num_threads(threads.resolve())
#endif
  for (std::ptrdiff_t k = 0; k < n; ++k) step(k);
}

/// \brief SGD as an Optimizer: one momentum array per parameter (slots() == 1), updated by
/// sgdUpdate() with the current learning rate. The momentum of a connection follows it through
/// every pattern change and starts at zero for new connections (optim/optimizer.hpp).
template <class Scalar, class Index = std::int32_t>
class Sgd final : public Optimizer<Scalar, Index> {
  using Base = Optimizer<Scalar, Index>;

 public:
  /// \throws InvalidArgument naming the first bad option (SgdOptions::validate())
  explicit Sgd(const SgdOptions& options = {})
      : Base((options.validate(), options.learningRate), optimizerSlots(OptimizerKind::Sgd)),
        m_options(options) {}

  OptimizerKind kind() const override { return OptimizerKind::Sgd; }
  std::string name() const override { return "sgd"; }
  std::unique_ptr<Base> clone() const override { return std::make_unique<Sgd>(*this); }
  /// \brief The options it was made with (learningRate() is the rate in use).
  const SgdOptions& options() const { return m_options; }

 protected:
  void update(Scalar* w, const Scalar* g, Scalar* const* s, std::ptrdiff_t n, double rateScale,
              Threads threads) const override {
    SgdOptions o = m_options;
    o.learningRate = this->learningRate() * rateScale;
    sgdUpdate(w, s[0], g, n, o, threads);
  }

 private:
  SgdOptions m_options;
};

}  // namespace tsnn
