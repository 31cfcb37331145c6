#pragma once
/// \file
/// \brief Stochastic gradient descent with momentum, optional Nesterov, and decoupled weight decay.
///
/// For every parameter w with gradient g and momentum v (stored aligned with the sparse values):
///   v <- mu v - lr g
///   w <- w + v - wd w                      (classical momentum)
///   w <- w + mu v - lr g - wd w            (Nesterov)
/// The decay term is decoupled from the gradient (it is not scaled by lr and does not enter the
/// momentum), exactly as in the SET reference code, and applies to biases too.

#include <cmath>
#include <vector>

#include "tsnn/core/parallel.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/nn/network.hpp"

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

/// \brief One SGD step on every weight and bias of \p net with the given (already averaged)
/// gradients, each layer's momentum aligned with its values.
/// \param threads team for the weights' update (see sgdUpdate())
template <class Scalar, class Index>
void applyGradients(Network<Scalar, Index>& net, const Gradients<Scalar>& g, const SgdOptions& sgd,
                    Threads threads = Threads::automatic()) {
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    auto& layer = net.layer(l);
    sgdUpdate(layer.values().data(), layer.velocity().data(), g.weights[l].data(),
              static_cast<std::ptrdiff_t>(layer.nonZeros()), sgd, threads);
    sgdUpdate(layer.bias().data(), layer.biasVelocity().data(), g.bias[l].data(),
              static_cast<std::ptrdiff_t>(layer.outputs()), sgd, Threads::serial());
  }
}

}  // namespace tsnn
