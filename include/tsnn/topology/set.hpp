#pragma once
/// \file
/// \brief Sparse Evolutionary Training (Mocanu et al., 2018): prune the weakest connections of a
/// layer and regrow as many at random empty positions.
///
/// One SET step on a layer with n_- negative and n_+ positive weights removes
///   * floor(zeta n_-) negative weights, the largest ones (closest to zero),
///   * floor(zeta n_+) positive weights, the smallest ones,
///   * every weight that is exactly zero,
/// and then adds exactly as many connections at positions drawn uniformly from those that are
/// empty after the removal (a just-removed position may be drawn again, as in the reference
/// code), with fresh weights from the initial distribution. Surviving weights keep their values.
/// The number of connections is unchanged, and the storage stays sorted and duplicate-free. Ties
/// at the threshold are broken by storage position, so the count removed is exact and the step is
/// deterministic for a given random stream. The step reports where every connection went as a
/// PatternRemap (sparse/pattern_remap.hpp): survivors continue their old entry, grown ones are
/// new, so an optimiser keeps the state of survivors and starts grown connections at zero.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/sparse/pattern_remap.hpp"

namespace tsnn {

/// \brief How zeta, the fraction of connections replaced, changes over a run.
enum class ZetaSchedule {
  Constant,  ///< zeta after every epoch (SET)
  Linear,    ///< zeta (1 - e/E) after epoch e of E
  Cosine     ///< zeta (1 + cos(pi e/E)) / 2 after epoch e of E (RigL's decay)
};

/// \brief Parses "constant", "linear" or "cosine".
inline ZetaSchedule parseZetaSchedule(const std::string& name) {
  if (name == "constant") return ZetaSchedule::Constant;
  if (name == "linear") return ZetaSchedule::Linear;
  if (name == "cosine") return ZetaSchedule::Cosine;
  detail::raise<InvalidArgument>("parseZetaSchedule(): unknown schedule '", name,
                                 "' (expected constant, linear or cosine)");
}

/// \brief The fraction to replace after epoch \p epoch (1-based) of \p epochs. Both decays
/// start near zeta after the first epoch and reach 0 at the last, where SET does not run anyway;
/// decaying lets the topology settle while the learning rate's work is finishing.
/// \throws InvalidArgument if epoch is outside [1, epochs] or zeta outside [0, 1)
inline double scheduledZeta(double zeta, ZetaSchedule schedule, int epoch, int epochs) {
  if (!(zeta >= 0 && zeta < 1))
    detail::raise<InvalidArgument>("scheduledZeta(): zeta must be in [0, 1), got ", zeta);
  if (epoch < 1 || epoch > epochs)
    detail::raise<InvalidArgument>("scheduledZeta(): epoch ", epoch, " is outside [1, ", epochs,
                                   "]");
  const double t = static_cast<double>(epoch) / static_cast<double>(epochs);
  switch (schedule) {
    case ZetaSchedule::Linear:
      return zeta * (1 - t);
    case ZetaSchedule::Cosine:
      return zeta * 0.5 * (1 + std::cos(3.14159265358979323846 * t));
    case ZetaSchedule::Constant:
      break;
  }
  return zeta;
}

/// \brief What one SET step did.
struct SetStats {
  long long removed = 0;
  long long added = 0;
};

namespace detail {

/// Marks for removal the \p count entries of \p cand (value, position) that come first in the
/// order given by \p before.
template <class Scalar, class Index, class Less>
void markWeakest(std::vector<std::pair<Scalar, Index>>& cand, std::size_t count, Less before,
                 std::vector<char>& remove) {
  if (count == 0) return;
  count = std::min(count, cand.size());
  std::nth_element(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(count - 1), cand.end(),
                   before);
  for (std::size_t i = 0; i < count; ++i) remove[static_cast<std::size_t>(cand[i].second)] = 1;
}

/// Draws \p count distinct positions that are neither in the kept pattern nor drawn before, as
/// (row, col) pairs sorted row-major. Rejection sampling while the matrix is at most half full
/// (expected < 2 draws per position); above that, the empty positions are listed (O(rows*cols),
/// which is then O(nnz)) and a partial Fisher-Yates shuffle picks from them.
template <class Index>
std::vector<std::pair<Index, Index>> drawEmptyPositions(Index rows, Index cols,
                                                        const std::vector<Index>& keptPtr,
                                                        const std::vector<Index>& keptCol,
                                                        long long count, Rng& rng) {
  std::vector<std::pair<Index, Index>> out;
  out.reserve(static_cast<std::size_t>(count));
  const double total = static_cast<double>(rows) * static_cast<double>(cols);
  const double kept = static_cast<double>(keptCol.size());
  auto isKept = [&](Index r, Index c) {
    const auto b = keptCol.begin() + keptPtr[static_cast<std::size_t>(r)];
    const auto e = keptCol.begin() + keptPtr[static_cast<std::size_t>(r) + 1];
    return std::binary_search(b, e, c);
  };
  if (kept + static_cast<double>(count) <= 0.5 * total) {
    std::unordered_set<std::uint64_t> taken;
    taken.reserve(static_cast<std::size_t>(count) * 2);
    while (static_cast<long long>(out.size()) < count) {
      const auto r = static_cast<Index>(rng.below(static_cast<std::uint64_t>(rows)));
      const auto c = static_cast<Index>(rng.below(static_cast<std::uint64_t>(cols)));
      if (isKept(r, c)) continue;
      const std::uint64_t key = static_cast<std::uint64_t>(r) * static_cast<std::uint64_t>(cols) +
                                static_cast<std::uint64_t>(c);
      if (!taken.insert(key).second) continue;
      out.emplace_back(r, c);
    }
  } else {
    std::vector<std::pair<Index, Index>> empty;
    for (Index r = 0; r < rows; ++r) {
      Index k = keptPtr[static_cast<std::size_t>(r)];
      const Index e = keptPtr[static_cast<std::size_t>(r) + 1];
      for (Index c = 0; c < cols; ++c) {
        if (k < e && keptCol[static_cast<std::size_t>(k)] == c) {
          ++k;
          continue;
        }
        empty.emplace_back(r, c);
      }
    }
    if (static_cast<long long>(empty.size()) < count)
      raise<InvalidArgument>("drawEmptyPositions(): ", count, " positions asked, only ",
                             empty.size(), " empty");
    for (long long i = 0; i < count; ++i) {
      const auto j =
          static_cast<std::size_t>(i) +
          static_cast<std::size_t>(rng.below(empty.size() - static_cast<std::size_t>(i)));
      std::swap(empty[static_cast<std::size_t>(i)], empty[j]);
      out.push_back(empty[static_cast<std::size_t>(i)]);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace detail

namespace detail {

/// One evolution step on a CSR pattern: SET's removal (see the file comment), then growth of as
/// many connections at the positions that \p grow(keptPtr, keptCol, count) returns (distinct,
/// empty after the removal, sorted row-major), each with weight \p newValue(). Returns the new
/// pattern in \p next and, in \p source, for each of its entries the old entry it continues or
/// -1 for a grown one.
template <class Scalar, class Index, class Grow, class NewValue>
SetStats evolveCsr(const CsrMatrix<Scalar, Index>& w, double zeta, Grow&& grow, NewValue&& newValue,
                   CsrMatrix<Scalar, Index>& next, std::vector<Index>& source) {
  const auto nnz = static_cast<std::size_t>(w.nonZeros());
  const auto& val = w.values();
  std::vector<std::pair<Scalar, Index>> neg, pos;
  std::vector<char> remove(nnz, 0);
  for (std::size_t k = 0; k < nnz; ++k) {
    if (val[k] < 0)
      neg.emplace_back(val[k], static_cast<Index>(k));
    else if (val[k] > 0)
      pos.emplace_back(val[k], static_cast<Index>(k));
    else
      remove[k] = 1;
  }
  const auto nNeg = static_cast<std::size_t>(std::floor(zeta * static_cast<double>(neg.size())));
  const auto nPos = static_cast<std::size_t>(std::floor(zeta * static_cast<double>(pos.size())));
  // Largest negatives first (closest to zero); ties by position.
  detail::markWeakest(
      neg, nNeg,
      [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      },
      remove);
  detail::markWeakest(
      pos, nPos,
      [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first < b.first : a.second < b.second;
      },
      remove);

  // Surviving pattern, row by row (still sorted).
  const Index rows = w.rows(), cols = w.cols();
  std::vector<Index> keptPtr(static_cast<std::size_t>(rows) + 1, 0);
  std::vector<Index> keptCol;
  keptCol.reserve(nnz);
  for (Index r = 0; r < rows; ++r) {
    for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k)
      if (!remove[static_cast<std::size_t>(k)])
        keptCol.push_back(w.colIdx()[static_cast<std::size_t>(k)]);
    keptPtr[static_cast<std::size_t>(r) + 1] = static_cast<Index>(keptCol.size());
  }
  SetStats stats;
  stats.removed = static_cast<long long>(nnz - keptCol.size());
  const std::vector<std::pair<Index, Index>> grown = grow(keptPtr, keptCol, stats.removed);
  stats.added = static_cast<long long>(grown.size());

  // Merge survivors and new connections per row, recording where each entry came from.
  std::vector<Index> rowPtr(static_cast<std::size_t>(rows) + 1, 0);
  std::vector<Index> colIdx;
  std::vector<Scalar> values;
  source.clear();
  colIdx.reserve(nnz);
  values.reserve(nnz);
  source.reserve(nnz);
  std::size_t g = 0;
  for (Index r = 0; r < rows; ++r) {
    Index k = w.rowBegin(r);
    const Index e = w.rowEnd(r);
    for (;;) {
      while (k < e && remove[static_cast<std::size_t>(k)]) ++k;
      const bool haveOld = k < e;
      const bool haveNew = g < grown.size() && grown[g].first == r;
      if (!haveOld && !haveNew) break;
      if (haveOld && (!haveNew || w.colIdx()[static_cast<std::size_t>(k)] < grown[g].second)) {
        colIdx.push_back(w.colIdx()[static_cast<std::size_t>(k)]);
        values.push_back(val[static_cast<std::size_t>(k)]);
        source.push_back(k);
        ++k;
      } else {
        colIdx.push_back(grown[g].second);
        values.push_back(static_cast<Scalar>(newValue()));
        source.push_back(Index(-1));
        ++g;
      }
    }
    rowPtr[static_cast<std::size_t>(r) + 1] = static_cast<Index>(colIdx.size());
  }
  next.assignUnchecked(rows, cols, std::move(rowPtr), std::move(colIdx), std::move(values));
  TSNN_ASSERT(next.check().empty());
  return stats;
}

/// The SET step: growth at uniformly drawn empty positions with weights from \p init.
template <class Scalar, class Index>
SetStats evolveSetCsr(const CsrMatrix<Scalar, Index>& w, double zeta, Rng& rng, WeightInit init,
                      CsrMatrix<Scalar, Index>& next, std::vector<Index>& source) {
  const Index rows = w.rows(), cols = w.cols();
  const auto fans = layerFans(init, rows, cols, w.nonZeros());
  return evolveCsr(
      w, zeta,
      [&](const std::vector<Index>& keptPtr, const std::vector<Index>& keptCol, long long count) {
        return drawEmptyPositions(rows, cols, keptPtr, keptCol, count, rng);
      },
      [&] { return sampleWeight(init, fans.first, fans.second, rng); }, next, source);
}

/// Runs \p step(csr, next, source) on \p layer's weights, installs the result, for CSR or
/// (canonical, hence CSR-ordered) COO storage, and describes the change in \p remap if given.
template <class Scalar, class Index, template <class, class> class Storage, class Step>
SetStats replaceTopology(SparseLinear<Scalar, Index, Storage>& layer, PatternRemap<Index>* remap,
                         Step&& step) {
  CsrMatrix<Scalar, Index> next;
  std::vector<Index> source;
  SetStats stats;
  const std::uint64_t from = layer.weights().patternId();
  if constexpr (std::is_same<Storage<Scalar, Index>, CsrMatrix<Scalar, Index>>::value) {
    stats = step(layer.weights(), next, source);
    layer.setTopology(std::move(next));
  } else {
    // Canonical COO lists entries in CSR order, so positions mean the same in both.
    stats = step(toCsr(layer.weights()), next, source);
    layer.setTopology(toCoo(next));
  }
  if (remap) {
    remap->from = from;
    remap->to = layer.weights().patternId();
    remap->entries = std::move(source);
    remap->rows.reset();
  }
  return stats;
}

inline void checkZeta(const char* caller, double zeta) {
  if (!(zeta >= 0 && zeta < 1))
    raise<InvalidArgument>(caller, ": zeta must be in [0, 1), got ", zeta);
}

}  // namespace detail

/// \brief One SET step on \p layer (see the file comment), for CSR or COO storage.
/// \param zeta fraction in [0, 1) of the negative and of the positive weights to replace
/// \param init distribution of the regrown weights (fan-in = layer inputs; for the sparse rules
///        the layer's mean real fan-in, see layerFans())
/// \param remap if not null, receives the change (survivors continue their entry, grown
///        connections are new); pass it to the optimiser (Optimizer::remap())
/// \throws InvalidArgument if zeta is outside [0, 1)
template <class Scalar, class Index, template <class, class> class Storage>
SetStats evolveSet(SparseLinear<Scalar, Index, Storage>& layer, double zeta, Rng& rng,
                   WeightInit init = WeightInit::HeUniform, PatternRemap<Index>* remap = nullptr) {
  detail::checkZeta("evolveSet()", zeta);
  return detail::replaceTopology(layer, remap, [&](const auto& w, auto& next, auto& source) {
    return detail::evolveSetCsr(w, zeta, rng, init, next, source);
  });
}

}  // namespace tsnn
