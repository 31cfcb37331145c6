#pragma once
/// \file
/// \brief Gradient-based regrowth (RigL: Evci, Gale, Menick, Castro, Elsen 2020) on truly sparse
/// storage.
///
/// The step removes connections exactly as SET does (topology/set.hpp) and then grows as many at
/// the empty positions where the loss gradient is largest in magnitude. For a layer with inputs
/// X (B x n_in, one sample per row) and output deltas D = dL/dZ (B x n_out), the gradient of a
/// missing connection j <- i is
///   G_ji = sum_b D(b, j) X(b, i),
/// i.e. G = D^T X, an n_out x n_in dense matrix that is never held whole: it is formed for a
/// block of kRowBlock output neurons at a time (one small dense product, so the arithmetic runs
/// at GEMM speed) and the best candidates are kept in a bounded heap. Memory is
/// O(kRowBlock n_in + grown); time is O(B n_in n_out) once per evolution step, the same order as
/// one dense gradient evaluation, which is RigL's cost too and is paid once per epoch, not per
/// minibatch.
///
/// Grown connections start at weight 0 (RigL's choice: the network's function is unchanged at the
/// moment of growth and the first update moves them along -G) and, through the PatternRemap the
/// step reports, at zero optimiser state. Ranking ties are broken by position (row-major), so the
/// step is deterministic.

#include <Eigen/Core>
#include <cmath>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/sparse/kernels.hpp"
#include "tsnn/topology/set.hpp"

namespace tsnn {

/// \brief Where an evolution step grows its new connections.
enum class Regrowth {
  Random,   ///< uniformly at random among empty positions (SET)
  Gradient  ///< at the empty positions of largest |dL/dw| on a minibatch (RigL)
};

/// \brief Parses "random" or "gradient".
inline Regrowth parseRegrowth(const std::string& name) {
  if (name == "random") return Regrowth::Random;
  if (name == "gradient") return Regrowth::Gradient;
  detail::raise<InvalidArgument>("parseRegrowth(): unknown regrowth '", name,
                                 "' (expected random or gradient)");
}

namespace detail {

/// The \p count empty positions (not in the kept pattern) of largest |G_ji|, G = D^T X (see the
/// file comment), sorted row-major. \p x is B x cols, \p delta is B x rows.
/// \throws NumericalError if a candidate's gradient is not finite
template <class Scalar, class Index>
std::vector<std::pair<Index, Index>> largestGradientPositions(
    const ConstActivationsRef<Scalar>& x, const ConstActivationsRef<Scalar>& delta,
    const std::vector<Index>& keptPtr, const std::vector<Index>& keptCol, long long count) {
  const Index rows = static_cast<Index>(delta.cols()), cols = static_cast<Index>(x.cols());
  struct Candidate {
    Scalar score;
    Index row, col;
  };
  // "a ranks before b": larger score, then earlier position.
  auto before = [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.row != b.row ? a.row < b.row : a.col < b.col;
  };
  // A heap whose top is the worst kept candidate.
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(before)> best(before);
  const auto want = static_cast<std::size_t>(count);
  constexpr Index kRowBlock = 64;
  Activations<Scalar> g;  // cols x block: column jj is row j0 + jj of G
  for (Index j0 = 0; j0 < rows && want > 0; j0 += kRowBlock) {
    const Index nb = std::min(kRowBlock, rows - j0);
    g.noalias() = x.transpose() * delta.middleCols(j0, nb);
    for (Index jj = 0; jj < nb; ++jj) {
      const Index j = j0 + jj;
      Index k = keptPtr[static_cast<std::size_t>(j)];
      const Index e = keptPtr[static_cast<std::size_t>(j) + 1];
      for (Index i = 0; i < cols; ++i) {
        if (k < e && keptCol[static_cast<std::size_t>(k)] == i) {
          ++k;
          continue;
        }
        const Scalar s = std::abs(g(i, jj));
        if (!std::isfinite(s))
          raise<NumericalError>("largestGradientPositions(): gradient of missing connection (", j,
                                ", ", i, ") is ", g(i, jj));
        const Candidate c{s, j, i};
        if (best.size() < want) {
          best.push(c);
        } else if (before(c, best.top())) {
          best.pop();
          best.push(c);
        }
      }
    }
  }
  if (best.size() < want)
    raise<InvalidArgument>("largestGradientPositions(): ", count, " positions asked, only ",
                           best.size(), " empty");
  std::vector<std::pair<Index, Index>> out;
  out.reserve(want);
  while (!best.empty()) {
    out.emplace_back(best.top().row, best.top().col);
    best.pop();
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace detail

/// \brief One evolution step on \p layer with SET's removal and gradient-based regrowth (see the
/// file comment). \p x holds the layer's inputs for a minibatch (B x inputs()) and \p delta the
/// loss gradient with respect to its pre-activations (B x outputs()).
/// \param remap if not null, receives the change, as evolveSet()'s
/// \throws InvalidArgument if zeta is outside [0, 1) or the shapes do not fit the layer;
/// NumericalError if a gradient is not finite (the layer is then unchanged)
template <class Scalar, class Index, template <class, class> class Storage>
SetStats evolveSetGradient(
    SparseLinear<Scalar, Index, Storage>& layer, double zeta,
    const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& x,
    const typename detail::NoDeduce<ConstActivationsRef<Scalar>>::type& delta,
    PatternRemap<Index>* remap = nullptr) {
  detail::checkZeta("evolveSetGradient()", zeta);
  if (x.cols() != layer.inputs() || delta.cols() != layer.outputs() || x.rows() != delta.rows() ||
      x.rows() == 0)
    detail::raise<InvalidArgument>("evolveSetGradient(): inputs are ", x.rows(), " x ", x.cols(),
                                   " and deltas ", delta.rows(), " x ", delta.cols(), ", layer is ",
                                   layer.outputs(), " x ", layer.inputs(),
                                   " (need B x inputs and B x outputs, B > 0)");
  return detail::replaceTopology(layer, remap, [&](const auto& w, auto& next, auto& source) {
    return detail::evolveCsr(
        w, zeta,
        [&](const std::vector<Index>& keptPtr, const std::vector<Index>& keptCol, long long count) {
          return detail::largestGradientPositions<Scalar, Index>(x, delta, keptPtr, keptCol, count);
        },
        [] { return Scalar(0); }, next, source);
  });
}

}  // namespace tsnn
