#pragma once
/// \file
/// \brief Erdos-Renyi sparse topologies and the initial weight distributions.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/memory.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/sparse/csr_matrix.hpp"

namespace tsnn {

/// \brief Distribution of initial (and regrown) weights.
///
/// The dense rules scale by the layer's dense fans n_in and n_out, as the SET reference does. In
/// a sparse layer neuron j really sums only its k_j = nnz(row j) inputs, about eps (n_in + n_out)
/// / n_out of them under Erdos-Renyi, so Var(z_j) = k_j Var(w) E[x^2] = (2 k_j / n_in) E[x^2]
/// under dense He: the pre-activations shrink by k_j / n_in at every layer, 25x per layer at the
/// default width 1000 and 60,000x at 2.5 million. The sparse rules put each neuron's real fan-in
/// (and the layer's mean real fan-out) in place of the dense fans, so Var(z_j) = 2 E[x^2]
/// whatever the width: a 2.5M-wide layer starts at the scale of a 1000-wide one.
enum class WeightInit {
  HeUniform,            ///< U(-l, l), l = sqrt(6 / n_in) over the dense fan-in (the SET reference)
  XavierUniform,        ///< U(-l, l), l = sqrt(6 / (n_in + n_out))
  Normal,               ///< N(0, 0.1^2), SET's first version
  HeUniformSparse,      ///< U(-l, l), l = sqrt(6 / k_j): row j's real fan-in k_j
  XavierUniformSparse,  ///< U(-l, l), l = sqrt(6 / (k_j + nnz / n_in)): real fan-in, mean fan-out
};

/// \brief Whether \p init scales by the real (sparse) fans rather than the dense ones.
inline bool usesSparseFans(WeightInit init) {
  return init == WeightInit::HeUniformSparse || init == WeightInit::XavierUniformSparse;
}

/// \brief Parses "he-uniform", "xavier-uniform", "normal", "he-uniform-sparse" or
/// "xavier-uniform-sparse".
/// \throws InvalidArgument for any other name.
inline WeightInit parseWeightInit(const std::string& name) {
  if (name == "he-uniform" || name == "he_uniform") return WeightInit::HeUniform;
  if (name == "xavier-uniform" || name == "xavier_uniform") return WeightInit::XavierUniform;
  if (name == "normal") return WeightInit::Normal;
  if (name == "he-uniform-sparse" || name == "he_uniform_sparse")
    return WeightInit::HeUniformSparse;
  if (name == "xavier-uniform-sparse" || name == "xavier_uniform_sparse")
    return WeightInit::XavierUniformSparse;
  detail::raise<InvalidArgument>("parseWeightInit(): unknown initialisation '", name,
                                 "' (expected he-uniform, xavier-uniform, normal, "
                                 "he-uniform-sparse or xavier-uniform-sparse)");
}

/// \brief The name parseWeightInit() reads back.
inline const char* weightInitName(WeightInit init) {
  switch (init) {
    case WeightInit::HeUniform:
      return "he-uniform";
    case WeightInit::XavierUniform:
      return "xavier-uniform";
    case WeightInit::Normal:
      return "normal";
    case WeightInit::HeUniformSparse:
      return "he-uniform-sparse";
    case WeightInit::XavierUniformSparse:
      return "xavier-uniform-sparse";
  }
  return "?";
}

/// \brief Draws one weight from \p init given the fans it scales by: the dense n_in and n_out for
/// the dense rules, the real fan-in and mean fan-out for the sparse ones (the caller knows which;
/// see WeightInit). Fans below 1 count as 1, so an empty row cannot divide by zero.
inline double sampleWeight(WeightInit init, double fanIn, double fanOut, Rng& rng) {
  fanIn = std::max(1.0, fanIn);
  fanOut = std::max(1.0, fanOut);
  switch (init) {
    case WeightInit::HeUniform:
    case WeightInit::HeUniformSparse: {
      const double l = std::sqrt(6.0 / fanIn);
      return rng.uniform(-l, l);
    }
    case WeightInit::XavierUniform:
    case WeightInit::XavierUniformSparse: {
      const double l = std::sqrt(6.0 / (fanIn + fanOut));
      return rng.uniform(-l, l);
    }
    case WeightInit::Normal:
      return 0.1 * rng.normal();
  }
  return 0.0;
}

/// \brief The fans a draw for a whole rows x cols layer with \p nnz connections scales by, for
/// weights not tied to one row (SET's regrowth): the dense fans, or for the sparse rules the
/// mean real fan-in nnz / rows and fan-out nnz / cols.
inline std::pair<double, double> layerFans(WeightInit init, long long rows, long long cols,
                                           long long nnz) {
  if (!usesSparseFans(init)) return {static_cast<double>(cols), static_cast<double>(rows)};
  return {static_cast<double>(nnz) / static_cast<double>(std::max(1ll, rows)),
          static_cast<double>(nnz) / static_cast<double>(std::max(1ll, cols))};
}

/// \brief SET's Erdos-Renyi density eps * (n_in + n_out) / (n_in * n_out), capped at 1.
/// \throws InvalidArgument if a size is not positive or eps is not a positive finite number.
inline double erdosRenyiDensity(long long nIn, long long nOut, double epsilon) {
  if (nIn <= 0 || nOut <= 0)
    detail::raise<InvalidArgument>("erdosRenyiDensity(): layer sizes must be positive, got ", nIn,
                                   " x ", nOut);
  if (!(epsilon > 0) || !std::isfinite(epsilon))
    detail::raise<InvalidArgument>("erdosRenyiDensity(): epsilon must be positive and finite, got ",
                                   epsilon);
  const double d = epsilon * static_cast<double>(nIn + nOut) /
                   (static_cast<double>(nIn) * static_cast<double>(nOut));
  return std::min(1.0, d);
}

/// \brief How the connection budget is spread over the layers of a network.
enum class DensityAllocation {
  /// Each layer independently at erdosRenyiDensity(n_in, n_out, eps), capped at 1 (SET).
  ErdosRenyi,
  /// Erdos-Renyi-Kernel (Evci et al., RigL, 2020): one global budget of
  /// eps * sum_l (n_in + n_out) connections, layer l at density min(1, c (n_in + n_out) /
  /// (n_in n_out)) with the single c that spends the whole budget. For fully connected layers
  /// the kernel term adds nothing to ER's shape; what differs is that a layer which would
  /// exceed density 1 is made dense and its excess goes to the other layers, where per-layer ER
  /// drops it.
  ErdosRenyiKernel
};

/// \brief Parses "er" or "erk".
inline DensityAllocation parseDensityAllocation(const std::string& name) {
  if (name == "er") return DensityAllocation::ErdosRenyi;
  if (name == "erk") return DensityAllocation::ErdosRenyiKernel;
  detail::raise<InvalidArgument>("parseDensityAllocation(): unknown allocation '", name,
                                 "' (expected er or erk)");
}

/// \brief Initial density of each layer of a network with widths \p sizes (input, hidden...,
/// output) under \p allocation (see DensityAllocation).
/// \throws InvalidArgument for fewer than 2 sizes, a non-positive size or a bad epsilon
inline std::vector<double> layerDensities(const std::vector<long long>& sizes, double epsilon,
                                          DensityAllocation allocation) {
  if (sizes.size() < 2)
    detail::raise<InvalidArgument>("layerDensities(): need at least 2 sizes, got ", sizes.size());
  std::vector<double> d;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l)
    d.push_back(erdosRenyiDensity(sizes[l], sizes[l + 1], epsilon));  // validates
  if (allocation == DensityAllocation::ErdosRenyi) return d;
  // ERK: find c with sum_l min(n_l, c r_l) = budget, where n_l = n_in n_out and
  // r_l = n_in + n_out (so c r_l / n_l is the uncapped density). Layers saturate in decreasing
  // order of r_l / n_l; fix the saturated ones as dense and solve the rest linearly, repeating
  // until no new layer saturates (at most one pass per layer).
  const std::size_t L = d.size();
  std::vector<double> n(L), r(L);
  double budget = 0;
  for (std::size_t l = 0; l < L; ++l) {
    n[l] = static_cast<double>(sizes[l]) * static_cast<double>(sizes[l + 1]);
    r[l] = static_cast<double>(sizes[l] + sizes[l + 1]);
    budget += epsilon * r[l];
  }
  std::vector<char> dense(L, 0);
  for (;;) {
    double left = budget, share = 0;
    for (std::size_t l = 0; l < L; ++l) {
      if (dense[l])
        left -= n[l];
      else
        share += r[l];
    }
    if (share == 0) break;  // every layer dense: the budget exceeds the dense network
    const double c = left / share;
    bool changed = false;
    for (std::size_t l = 0; l < L; ++l)
      if (!dense[l] && c * r[l] >= n[l]) dense[l] = changed = true;
    if (!changed) {
      for (std::size_t l = 0; l < L; ++l) d[l] = dense[l] ? 1.0 : c * r[l] / n[l];
      return d;
    }
  }
  std::fill(d.begin(), d.end(), 1.0);
  return d;
}

namespace detail {

/// Appends to \p out, in increasing order, the positions in [0, n) of a Bernoulli(p) process,
/// i.e. each position independently with probability p. The gaps between successes are
/// geometric, so it draws one number per success (plus one): O(kept) time, never O(n) for a
/// sparse row, and it needs no dense mask and no duplicate check.
template <class Index>
void bernoulliPositions(Index n, double p, Rng& rng, std::vector<Index>& out) {
  if (p >= 1.0) {
    for (Index c = 0; c < n; ++c) out.push_back(c);
    return;
  }
  const double logq = std::log1p(-p);  // log(1 - p) < 0
  double pos = -1.0;
  for (;;) {
    double u = rng.uniform();
    while (u <= 0.0) u = rng.uniform();
    // P(gap > g) = (1 - p)^g, so gap = 1 + floor(log(u) / log(1 - p)).
    pos += 1.0 + std::floor(std::log(u) / logq);
    if (pos >= static_cast<double>(n)) return;
    out.push_back(static_cast<Index>(pos));
  }
}

}  // namespace detail

/// \brief A rows x cols CSR matrix whose every position is present independently with
/// probability \p density (an Erdos-Renyi random bipartite graph), with values drawn from
/// \p init for a layer of dense fan-in \p fanIn and fan-out \p fanOut, or, for the sparse rules,
/// each row's real fan-in and the matrix's mean real fan-out (see WeightInit).
///
/// Each row is a Bernoulli process sampled by its geometric gaps, so time and memory are
/// O(rows + nnz): the dense rows x cols mask is never formed. Only tsnn's own generator is used,
/// so a seed gives the same topology with every standard library.
///
/// \throws InvalidArgument if the shape or a fan is not positive or density is outside (0, 1].
template <class Scalar, class Index = std::int32_t>
CsrMatrix<Scalar, Index> erdosRenyi(Index rows, Index cols, double density, Rng& rng,
                                    WeightInit init, long long fanIn, long long fanOut) {
  if (rows <= 0 || cols <= 0)
    detail::raise<InvalidArgument>("erdosRenyi(): shape must be positive, got ", rows, " x ", cols);
  if (!(density > 0.0 && density <= 1.0))
    detail::raise<InvalidArgument>("erdosRenyi(): density must be in (0, 1], got ", density);
  if (fanIn <= 0 || fanOut <= 0)
    detail::raise<InvalidArgument>("erdosRenyi(): fan-in and fan-out must be positive, got ", fanIn,
                                   " and ", fanOut);
  const double expected = density * static_cast<double>(rows) * static_cast<double>(cols);
  if (expected > 0.98 * static_cast<double>(std::numeric_limits<Index>::max()))
    detail::raise<InvalidArgument>("erdosRenyi(): about ", expected,
                                   " nonzeros do not fit the index type; use a 64-bit Index");
  std::vector<Index> rowPtr(static_cast<std::size_t>(rows) + 1, 0);
  std::vector<Index> colIdx;
  reserveWithHugePages(colIdx, static_cast<std::size_t>(expected * 1.01 + 16));
  for (Index r = 0; r < rows; ++r) {
    detail::bernoulliPositions<Index>(cols, density, rng, colIdx);
    rowPtr[static_cast<std::size_t>(r) + 1] = static_cast<Index>(colIdx.size());
  }
  std::vector<Scalar> values;
  assignWithHugePages(values, colIdx.size(), Scalar(0));
  if (usesSparseFans(init)) {
    const double meanOut = static_cast<double>(values.size()) / static_cast<double>(cols);
    for (Index r = 0; r < rows; ++r) {
      const auto b = static_cast<std::size_t>(rowPtr[static_cast<std::size_t>(r)]);
      const auto e = static_cast<std::size_t>(rowPtr[static_cast<std::size_t>(r) + 1]);
      for (std::size_t k = b; k < e; ++k)
        values[k] =
            static_cast<Scalar>(sampleWeight(init, static_cast<double>(e - b), meanOut, rng));
    }
  } else {
    for (auto& v : values)
      v = static_cast<Scalar>(
          sampleWeight(init, static_cast<double>(fanIn), static_cast<double>(fanOut), rng));
  }
  CsrMatrix<Scalar, Index> m;
  m.assignUnchecked(rows, cols, std::move(rowPtr), std::move(colIdx), std::move(values));
  return m;
}

}  // namespace tsnn
