#pragma once
/// \file
/// \brief The trainers' numerical guards on one minibatch's gradient: its squared norm summed in
/// a fixed order, the non-finite check that names what went wrong, and gradient clipping to
/// TrainerOptions::clipNorm.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include "tsnn/nn/network.hpp"
#include "tsnn/training/options.hpp"

namespace tsnn {
namespace detail {

/// Sum of p[k]^2 over [0, n) in double. Element k goes to partial sum k % 8 and the partial
/// sums are added in a fixed order at the end: the eight independent chains vectorise (one
/// running sum is a chain of dependent adds, which took about 6% of a training step), and the
/// result depends only on the data, so every trainer that calls this on the same buffer
/// takes the same clipping decision bit for bit.
template <class Scalar>
double sumOfSquares(const Scalar* p, std::size_t n) {
  constexpr std::size_t kChains = 8;
  double acc[kChains] = {};
  std::size_t k = 0;
  for (; k + kChains <= n; k += kChains)
    for (std::size_t c = 0; c < kChains; ++c)
      acc[c] += static_cast<double>(p[k + c]) * static_cast<double>(p[k + c]);
  for (std::size_t c = 0; k < n; ++k, ++c)
    acc[c] += static_cast<double>(p[k]) * static_cast<double>(p[k]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// Sum of squares of layer \p l's gradient (weights and bias), in double, in a fixed order.
template <class Scalar>
double squaredNorm(const Gradients<Scalar>& g, std::size_t l) {
  return sumOfSquares(g.weights[l].data(), g.weights[l].size()) +
         sumOfSquares(g.bias[l].data(), static_cast<std::size_t>(g.bias[l].size()));
}

/// Names what went non-finite after a minibatch whose loss was not finite: the first layer with
/// non-finite weights or biases, else the first layer with non-finite pre-activations in any of
/// the \p count workspaces (one per shard).
template <class Scalar, class Index>
std::string diagnoseNonFiniteLoss(const Network<Scalar, Index>& net, const Workspace<Scalar>* ws,
                                  std::size_t count, double loss) {
  std::ostringstream os;
  os << "loss is " << loss;
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    const auto& v = net.layer(l).weights().values();
    const bool weightsBad =
        !std::all_of(v.begin(), v.end(), [](Scalar x) { return std::isfinite(x); });
    if (weightsBad || !net.layer(l).bias().allFinite()) {
      os << ": " << (weightsBad ? "weights" : "biases") << " of layer " << l << " are not finite";
      return os.str();
    }
  }
  auto finite = [](const Activations<BFloat16>& m) {
    const BFloat16* p = m.data();
    return std::all_of(p, p + m.size(), [](BFloat16 v) { return std::isfinite(float(v)); });
  };
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    for (std::size_t w = 0; w < count; ++w)
      if ((l < ws[w].z.size() && !ws[w].z[l].allFinite()) ||
          (l < ws[w].zHalf.size() && !finite(ws[w].zHalf[l]))) {
        os << ": pre-activations of layer " << l << " are not finite";
        return os.str();
      }
  return os.str();
}

/// Checks a minibatch's summed gradient in \p g: returns a description if the loss or any
/// layer's gradient is not finite, else clips it to options.clipNorm (setting \p clipped).
/// \p layerSq holds each layer's squared gradient norm (weights plus bias).
template <class Scalar, class Index>
std::string guardGradient(const Network<Scalar, Index>& net, const Workspace<Scalar>* ws,
                          std::size_t count, double loss, const std::vector<double>& layerSq,
                          const TrainerOptions& options, double& clipFactor) {
  clipFactor = 1.0;
  if (!std::isfinite(loss)) return diagnoseNonFiniteLoss(net, ws, count, loss);
  double total = 0;
  for (std::size_t l = 0; l < layerSq.size(); ++l) {
    if (!std::isfinite(layerSq[l])) {
      std::ostringstream os;
      os << "gradient of layer " << l << " is not finite";
      return os.str();
    }
    total += layerSq[l];
  }
  if (!std::isfinite(total)) return "gradient norm overflows";
  const double norm = std::sqrt(total);
  if (options.clipNorm > 0 && norm > options.clipNorm) clipFactor = options.clipNorm / norm;
  return {};
}

/// guardGradient() for a gradient held in one buffer: computes the layer norms, and on success
/// applies the clipping factor to \p g. Returns the problem, empty if none.
template <class Scalar, class Index>
std::string guardAndClip(const Network<Scalar, Index>& net, const Workspace<Scalar>& ws,
                         const BlockStats& stats, Gradients<Scalar>& g,
                         const TrainerOptions& options, bool* clipped = nullptr) {
  std::vector<double> layerSq(net.numLayers());
  for (std::size_t l = 0; l < net.numLayers(); ++l) layerSq[l] = squaredNorm(g, l);
  double factor = 1;
  std::string problem = guardGradient(net, &ws, 1, stats.lossSum, layerSq, options, factor);
  if (problem.empty() && factor < 1) {
    const auto f = static_cast<Scalar>(factor);
    for (auto& w : g.weights)
      for (auto& v : w) v *= f;
    for (auto& b : g.bias) b *= f;
    if (clipped) *clipped = true;
  }
  return problem;
}

}  // namespace detail
}  // namespace tsnn
