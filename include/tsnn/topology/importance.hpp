#pragma once
/// \file
/// \brief Neuron importance (Curci, Mocanu, Pechenizkiy 2021) and pruning of unimportant neurons.
///
/// The importance of hidden neuron j is the sum of the magnitudes of its incoming weights,
///   I_j = sum_i |W_ji|      (row j of its layer's n_out x n_in matrix),
/// a neuron with weak or few inputs contributes little to the next layer. Periodically, the
/// neurons whose importance is at or below the p-th percentile of their layer are removed, and
/// the network really becomes narrower (Network::removeHiddenNeurons()): unlike the reference
/// code, which only cleared their incoming connections, the removed neurons stop costing time
/// and memory.
///
/// The semantics are the reference's. There a pruned neuron stays in its layer with no incoming
/// weights, so it keeps emitting f(b_j) and counts at importance 0 in every later percentile.
/// Here its constant output is folded into the next layer's biases when it is removed, and the
/// percentile is taken over the layer's original population (Network::originalWidth()), the
/// removed neurons counting at importance 0. So pruning does not compound: after a pruning at the
/// p-th percentile, p% of the population sits at 0 and the next one at the same percentile
/// removes only survivors that really are that unimportant (taking the percentile over the
/// survivors alone would remove another p% of them every time).

#include <algorithm>
#include <cmath>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/sparse/pattern_remap.hpp"

namespace tsnn {

/// \brief When importance pruning runs, and how much it removes. Defaults are the paper's.
struct ImportancePruning {
  int startEpoch = 200;    ///< first epoch (1-based) at which it may run
  int period = 10;         ///< then every this many epochs
  double percentile = 20;  ///< remove neurons at or below this percentile of importance

  /// \brief True when pruning runs after epoch \p epoch.
  bool due(int epoch) const { return epoch >= startEpoch && (epoch - startEpoch) % period == 0; }

  /// \throws InvalidArgument naming the first bad value.
  void validate() const {
    if (startEpoch < 1)
      detail::raise<InvalidArgument>("ImportancePruning: start epoch must be >= 1, got ",
                                     startEpoch);
    if (period < 1)
      detail::raise<InvalidArgument>("ImportancePruning: period must be >= 1, got ", period);
    if (!(percentile >= 0 && percentile < 100))
      detail::raise<InvalidArgument>("ImportancePruning: percentile must be in [0, 100), got ",
                                     percentile);
  }
};

/// \brief I_j = sum over row j of |W_ji| for every output neuron of \p layer, in double.
template <class Scalar, class Index>
std::vector<double> neuronImportance(const SparseLinear<Scalar, Index>& layer) {
  const auto& w = layer.weights();
  std::vector<double> imp(static_cast<std::size_t>(w.rows()), 0.0);
  for (Index r = 0; r < w.rows(); ++r)
    for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k)
      imp[static_cast<std::size_t>(r)] +=
          std::abs(static_cast<double>(w.values()[static_cast<std::size_t>(k)]));
  return imp;
}

/// \brief The p-th percentile of \p values with linear interpolation between order statistics
/// (numpy's default): sorted v, position p/100 (n-1), t = v[lo] + frac (v[lo+1] - v[lo]).
/// \throws InvalidArgument if \p values is empty or p is outside [0, 100]
inline double percentileOf(std::vector<double> values, double p) {
  if (values.empty()) detail::raise<InvalidArgument>("percentileOf(): no values");
  if (!(p >= 0 && p <= 100))
    detail::raise<InvalidArgument>("percentileOf(): percentile must be in [0, 100], got ", p);
  std::sort(values.begin(), values.end());
  const double pos = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

/// \brief Indices of the neurons whose importance is at or below the p-th percentile of a
/// population made of \p importance and \p removed more neurons at importance 0 (the ones an
/// earlier pruning took away), capped so that at least one neuron (the most important) survives.
/// \throws InvalidArgument if \p importance is empty, \p removed is negative or p is outside
/// [0, 100]
inline std::vector<long long> unimportantNeurons(const std::vector<double>& importance,
                                                 double percentile, long long removed = 0) {
  if (importance.empty()) detail::raise<InvalidArgument>("unimportantNeurons(): no neurons");
  if (removed < 0)
    detail::raise<InvalidArgument>("unimportantNeurons(): removed count must be >= 0, got ",
                                   removed);
  std::vector<double> population(importance);
  population.resize(importance.size() + static_cast<std::size_t>(removed), 0.0);
  const double t = percentileOf(std::move(population), percentile);
  std::vector<long long> out;
  for (std::size_t j = 0; j < importance.size(); ++j)
    if (importance[j] <= t) out.push_back(static_cast<long long>(j));
  if (out.size() == importance.size()) {  // all tied: keep the first most important one
    const auto best = std::max_element(importance.begin(), importance.end()) - importance.begin();
    out.erase(std::find(out.begin(), out.end(), static_cast<long long>(best)));
  }
  return out;
}

/// \brief Removes from every hidden layer the neurons at or below the p-th percentile of its
/// importance over its original population (removed neurons at 0; see the file comment), layer
/// by layer from the first. The importance of layer h is taken after layer h - 1's removal, so
/// the connections from neurons removed there no longer count (in the reference they still do:
/// there those neurons keep their outgoing weights, which go on training as a bias term; here
/// their constant output is already folded into layer h's biases).
/// \param remap if not null, receives the change of every layer (Network::removeHiddenNeurons()
///        for each hidden layer, composed); pass it to the optimiser (Optimizer::remap())
/// \returns the number of neurons removed.
template <class Scalar, class Index>
long long pruneUnimportantNeurons(Network<Scalar, Index>& net, double percentile,
                                  NetworkRemap<Index>* remap = nullptr) {
  long long total = 0;
  NetworkRemap<Index> all(net.numLayers());
  for (std::size_t h = 0; h + 1 < net.numLayers(); ++h) {
    const long long gone = net.originalWidth(h) - net.layer(h).outputs();
    const auto ids = unimportantNeurons(neuronImportance(net.layer(h)), percentile, gone);
    std::vector<Index> neurons(ids.begin(), ids.end());
    all.then(net.removeHiddenNeurons(h, std::move(neurons)));
    total += static_cast<long long>(ids.size());
  }
  if (remap) *remap = std::move(all);
  return total;
}

}  // namespace tsnn
