#pragma once
/// \file
/// \brief How the stored entries and rows of sparse layers moved when their patterns changed,
/// so that state kept aligned with them (an optimiser's momentum or moments) can follow.
///
/// Invariant. Per-entry state of a layer is an array aligned with the layer's values() (entry k
/// of the state belongs to stored connection k) and per-row state an array with one entry per
/// row (output neuron). Every operation that changes a pattern (SET, gradient regrowth, neuron
/// removal, model averaging) describes the change by a PatternRemap from the old pattern to the
/// new one: for each new entry, the old entry it continues or -1; for each new row, the old row
/// it continues or -1 (or nothing, when the rows did not move). Applying the remap to an aligned
/// array gives the array aligned with the new pattern, in which
///   new[k] = old[entries[k]]   if entries[k] >= 0 (a surviving connection keeps its exact state),
///   new[k] = 0                 if entries[k] == -1 (a new connection starts from zero state),
/// and the same for rows. A remap records the pattern ids (CsrMatrix::patternId()) it goes from
/// and to, so a holder of state can check that it is applied to the state it was made for and
/// that no change was missed. The operations that change patterns know nothing about what state
/// exists: they only report where entries went.

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"

namespace tsnn {

/// \brief The change of one layer's pattern, from pattern id \p from to \p to (see the file
/// comment).
/// \tparam Index the sparse storage's index type
template <class Index>
struct PatternRemap {
  std::uint64_t from = 0;  ///< patternId() of the layer before the change
  std::uint64_t to = 0;    ///< patternId() of the layer after the change
  /// One per stored entry of the new pattern: the position of the entry it continues in the old
  /// values(), or -1 for a new connection.
  std::vector<Index> entries;
  /// One per row of the new layer: the old row it continues, or -1 for a new row. Absent when
  /// the rows did not change (row j continues row j).
  std::optional<std::vector<Index>> rows;

  /// \brief The remap of this change followed by \p later (which must start where this one
  /// ends): entry k of the result continues old entry entries[later.entries[k]].
  /// \throws InvalidArgument if later.from != to or an index of \p later is out of range
  PatternRemap then(const PatternRemap& later) const {
    if (later.from != to)
      detail::raise<InvalidArgument>("PatternRemap::then(): the later remap starts at pattern ",
                                     later.from, ", this one ends at pattern ", to);
    PatternRemap out;
    out.from = from;
    out.to = later.to;
    out.entries = compose(entries, later.entries, "entry");
    // Absent rows are the identity, so the other side's rows are the composition.
    if (rows && later.rows)
      out.rows = compose(*rows, *later.rows, "row");
    else if (rows)
      out.rows = rows;
    else
      out.rows = later.rows;
    return out;
  }

 private:
  static std::vector<Index> compose(const std::vector<Index>& first,
                                    const std::vector<Index>& second, const char* what) {
    std::vector<Index> out(second.size());
    for (std::size_t k = 0; k < second.size(); ++k) {
      const Index s = second[k];
      if (s >= static_cast<Index>(first.size()))
        detail::raise<InvalidArgument>("PatternRemap::then(): ", what, " ", k,
                                       " of the later remap continues ", what, " ", s,
                                       ", but the earlier remap has ", first.size());
      out[k] = s < 0 ? Index(-1) : first[static_cast<std::size_t>(s)];
    }
    return out;
  }
};

/// \brief The changes of a network's layers made by one operation: layers[l] is layer l's
/// remap, or absent if its pattern did not change.
template <class Index>
struct NetworkRemap {
  std::vector<std::optional<PatternRemap<Index>>> layers;

  NetworkRemap() = default;
  /// \brief No change yet in any of \p numLayers layers.
  explicit NetworkRemap(std::size_t numLayers) : layers(numLayers) {}

  /// \brief Records that \p change followed whatever this remap already holds for layer \p l.
  /// \throws InvalidArgument if \p l is out of range or the change does not start where the
  /// layer's recorded changes end
  void add(std::size_t l, PatternRemap<Index> change) {
    if (l >= layers.size())
      detail::raise<InvalidArgument>("NetworkRemap::add(): layer ", l, " of a remap of ",
                                     layers.size(), " layers");
    if (layers[l])
      layers[l] = layers[l]->then(change);
    else
      layers[l] = std::move(change);
  }

  /// \brief Appends every change of \p later (an operation run after this one).
  /// \throws InvalidArgument as add(), or if the layer counts differ
  void then(const NetworkRemap& later) {
    if (later.layers.size() != layers.size())
      detail::raise<InvalidArgument>("NetworkRemap::then(): the later remap has ",
                                     later.layers.size(), " layers, this one ", layers.size());
    for (std::size_t l = 0; l < layers.size(); ++l)
      if (later.layers[l]) add(l, *later.layers[l]);
  }
};

/// \brief The array aligned with a new pattern, from \p old aligned with the old one and the
/// remap's \p map (PatternRemap::entries or rows): out[k] = old[map[k]], or 0 where map[k] < 0.
/// \throws InvalidArgument naming \p caller if an index is out of range
template <class T, class Index>
std::vector<T> remapped(const std::vector<T>& old, const std::vector<Index>& map,
                        const char* caller = "remapped()") {
  std::vector<T> out(map.size());
  for (std::size_t k = 0; k < map.size(); ++k) {
    const Index s = map[k];
    if (s >= static_cast<Index>(old.size()))
      detail::raise<InvalidArgument>(caller, ": new position ", k, " continues old position ", s,
                                     ", but the old array has ", old.size(), " entries");
    out[k] = s < 0 ? T(0) : old[static_cast<std::size_t>(s)];
  }
  return out;
}

}  // namespace tsnn
