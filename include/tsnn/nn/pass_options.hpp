#pragma once
/// \file
/// \brief PassOptions: how one forward pass of a Network runs.

#include <Eigen/Core>
#include <cstdint>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"

namespace tsnn {

/// \brief How one Network::forward() runs: inference or training (dropout on, its masks keyed
/// by the optimiser step), which rows of a larger minibatch the block holds, and how many
/// threads the pass's kernels may use.
///
/// C++17 has no designated initialisers, so a PassOptions is built from a named constructor and
/// refined by chained setters; each setter returns a modified copy, so a chain can start from a
/// temporary and nothing is changed behind a caller's back:
/// \code
///   net.forward(x, ws);                                      // inference, the default team
///   net.forward(x, ws, PassOptions::training(step));         // the minibatch of step `step`
///   // Rows [lo, lo + B) of that minibatch, on the calling thread (inside a trainer's region):
///   net.forward(x, ws, PassOptions::training(step).rowOffset(lo).serial());
/// \endcode
/// The default is inference(): no dropout, rows from 0, Threads::automatic(), the network's own
/// activation storage.
class PassOptions {
 public:
  /// \brief Inference: no dropout, rows from 0, the runtime's default team.
  constexpr PassOptions() noexcept = default;

  /// \brief The same as the default: what predict() and evaluation use.
  static constexpr PassOptions inference() noexcept { return PassOptions(); }
  /// \brief A training pass of optimiser step \p step: dropout is applied (when the network has
  /// a rate), with masks keyed by (seed, step, layer, row in the minibatch).
  static constexpr PassOptions training(std::uint64_t step) noexcept {
    PassOptions p;
    p.m_training = true;
    p.m_step = step;
    return p;
  }

  /// \brief The block is rows [offset, offset + B) of a larger minibatch: its dropout masks are
  /// those rows of the whole minibatch's masks, so shards of a minibatch reproduce it exactly.
  /// \throws InvalidArgument if \p offset is negative
  PassOptions rowOffset(Eigen::Index offset) const {
    if (offset < 0)
      detail::raise<InvalidArgument>("PassOptions::rowOffset(): offset must be >= 0, got ", offset);
    PassOptions p = *this;
    p.m_rowOffset = offset;
    return p;
  }
  /// \brief The team the pass's kernels may open their regions with (ignored inside a region,
  /// where they are serial anyway).
  constexpr PassOptions threads(Threads t) const noexcept {
    PassOptions p = *this;
    p.m_threads = t;
    return p;
  }
  /// \brief threads(Threads::serial()): the pass opens no OpenMP region.
  constexpr PassOptions serial() const noexcept { return threads(Threads::serial()); }
  /// \brief Stores this pass's hidden values as \p s instead of the network's
  /// NetworkOptions::activationStorage (e.g. ActivationStorage::Scalar for a pass whose deltas
  /// Network::backwardDeltas() must keep, which has no bfloat16 form).
  constexpr PassOptions storage(ActivationStorage s) const noexcept {
    PassOptions p = *this;
    p.m_storage = s;
    p.m_storageSet = true;
    return p;
  }

  /// \brief Whether dropout is applied (training()).
  constexpr bool isTraining() const noexcept { return m_training; }
  /// \brief The optimiser step that keys the dropout masks (0 for inference).
  constexpr std::uint64_t step() const noexcept { return m_step; }
  /// \brief The block's first row within its minibatch.
  constexpr Eigen::Index rowOffset() const noexcept { return m_rowOffset; }
  /// \brief The kernels' team.
  constexpr Threads threads() const noexcept { return m_threads; }
  /// \brief The storage of this pass: storage()'s if it was set, else \p networkDefault.
  constexpr ActivationStorage storageOr(ActivationStorage networkDefault) const noexcept {
    return m_storageSet ? m_storage : networkDefault;
  }

 private:
  bool m_training = false;
  std::uint64_t m_step = 0;
  Eigen::Index m_rowOffset = 0;
  Threads m_threads = Threads::automatic();
  ActivationStorage m_storage = ActivationStorage::Scalar;
  bool m_storageSet = false;
};

}  // namespace tsnn
