#pragma once
// Helpers for the tests that check optimiser state: filling it with recognisable values and
// reading it back by connection (row, column) and by neuron, so that a test can follow each
// connection's state through a pattern change. Test support only.

#include <cstdint>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "tsnn/nn/network.hpp"
#include "tsnn/optim/adam.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/optim/sgd.hpp"

namespace tsnn {
namespace test {

/// Gives \p opt state for every layer of \p net with distinct random values: array 0 in
/// [-1, 1], the others (Adam's second moment must be >= 0) in (0, 1].
template <class Scalar, class Index>
void fillRandomState(Optimizer<Scalar, Index>& opt, const Network<Scalar, Index>& net,
                     std::uint64_t seed) {
  opt.reset(net);
  OptimizerState s = opt.state();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& layer : s.layersOf<Scalar>()) {
    for (std::size_t i = 0; i < layer.entries.size(); ++i)
      for (auto* arrays : {&layer.entries[i], &layer.rows[i]})
        for (auto& v : *arrays) v = static_cast<Scalar>(i == 0 ? 2 * u(rng) - 1 : 1 - u(rng));
  }
  s.steps = 7;
  opt.setState(s, net);
}

/// Layer \p l's state of each stored connection, keyed by (row, column): one value per array.
template <class Scalar, class Index>
std::map<std::pair<Index, Index>, std::vector<Scalar>> stateByConnection(
    const Optimizer<Scalar, Index>& opt, const Network<Scalar, Index>& net, std::size_t l) {
  std::map<std::pair<Index, Index>, std::vector<Scalar>> out;
  const auto& w = net.layer(l).weights();
  const auto& s = opt.layerState(l);
  for (Index r = 0; r < w.rows(); ++r)
    for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k) {
      std::vector<Scalar> v;
      for (const auto& a : s.entries) v.push_back(a.at(static_cast<std::size_t>(k)));
      out[{r, w.colIdx()[static_cast<std::size_t>(k)]}] = v;
    }
  return out;
}

/// Layer \p l's state of each output neuron: one value per array.
template <class Scalar, class Index>
std::vector<std::vector<Scalar>> stateByNeuron(const Optimizer<Scalar, Index>& opt, std::size_t l) {
  const auto& s = opt.layerState(l);
  std::vector<std::vector<Scalar>> out(s.rows.at(0).size());
  for (std::size_t j = 0; j < out.size(); ++j)
    for (const auto& a : s.rows) out[j].push_back(a[j]);
  return out;
}

/// The two optimisers, for TEMPLATE_TEST_CASE over both.
template <class Scalar, class Index = std::int32_t>
struct SgdOf {
  using Type = Sgd<Scalar, Index>;
  using ScalarType = Scalar;
  using IndexType = Index;
  static Type make() {
    SgdOptions o;
    o.learningRate = 0.05;
    return Type(o);
  }
};
template <class Scalar, class Index = std::int32_t>
struct AdamOf {
  using Type = Adam<Scalar, Index>;
  using ScalarType = Scalar;
  using IndexType = Index;
  static Type make() {
    AdamOptions o;
    o.weightDecay = 0.01;
    return Type(o);
  }
};

}  // namespace test
}  // namespace tsnn
