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

/// \brief Indices of the neurons whose importance is at or below the p-th percentile, capped so
/// that at least one neuron (the most important) survives.
inline std::vector<long long> unimportantNeurons(const std::vector<double>& importance,
                                                 double percentile) {
  const double t = percentileOf(importance, percentile);
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
/// importance, layer by layer from the first (the importance of layer h is taken after layer
/// h - 1's removal compacted its columns).
/// \param remap if not null, receives the change of every layer (Network::removeHiddenNeurons()
///        for each hidden layer, composed); pass it to the optimiser (Optimizer::remap())
/// \returns the number of neurons removed.
template <class Scalar, class Index>
long long pruneUnimportantNeurons(Network<Scalar, Index>& net, double percentile,
                                  NetworkRemap<Index>* remap = nullptr) {
  long long total = 0;
  NetworkRemap<Index> all(net.numLayers());
  for (std::size_t h = 0; h + 1 < net.numLayers(); ++h) {
    const auto ids = unimportantNeurons(neuronImportance(net.layer(h)), percentile);
    std::vector<Index> neurons(ids.begin(), ids.end());
    all.then(net.removeHiddenNeurons(h, std::move(neurons)));
    total += static_cast<long long>(ids.size());
  }
  if (remap) *remap = std::move(all);
  return total;
}

}  // namespace tsnn
