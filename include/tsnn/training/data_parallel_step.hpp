#pragma once
/// \file
/// \brief The data-parallel trainer's minibatch step: W logical workers on a team of threads,
/// the protocol by which they share one minibatch's work, and what makes its result depend on W
/// only.
///
/// One step trains the minibatch order[first, first + B) in one OpenMP region.
///
/// Workers and threads. The minibatch's rows are cut into W contiguous shards, shard w being
/// [shardBoundary(B, w, W), shardBoundary(B, w + 1, W)) (shards with rows are a prefix; there
/// are S = min(W, B) of them). The region asks for up to P threads and the runtime grants some
/// P' >= 1 (fewer under OMP_THREAD_LIMIT, inside another region, or without OpenMP); thread t
/// plays workers t, t + P', t + 2P', ... Worker w owns its shard's buffers (gathered input, its
/// Workspace, labels, BlockStats) and slice w of every parameter array, [n w / W, n (w+1) / W).
///
/// Phases, in the order every thread runs them:
///  1. Deltas. For each of its workers in turn, the thread gathers the shard (and augments it),
///     runs the forward pass and back-propagates the deltas with serial kernels
///     (Network::backwardDeltas()). As soon as layer l's delta of a shard is final it adds 1 to
///     ready[l] with release order. It writes only its workers' buffers; the network is read
///     only. A thread never waits in this phase.
///  2. Gradient pieces. The weight and bias gradients, sums over all S shards, are cut by output
///     neurons into fixed pieces (GradientTasks, top layer first), built before the region. A
///     thread that has finished all its workers' deltas takes the next piece index from an
///     atomic counter (relaxed: the counter only hands out indices), spins until ready[l] == S
///     for the piece's layer l (acquire: it may then read every shard's delta of layer l and the
///     activations below it, which were written before those deltas), and computes the piece,
///     each entry summed over the shards in shard order (Network::gradientsRows()) into the one
///     gradient buffer. Pieces are disjoint, so no two threads write the same entry. Because a
///     thread enters this phase only after its own phase 1, every delta is published without
///     anyone waiting on itself: there is no deadlock for any team size, a team of one included.
///     Barrier 1.
///  3. Norm partials. The thread computes, for each of its workers w and each layer l, the
///     squared norm of slice w of layer l's gradient: partialSq[w L + l]. Barrier 2.
///  4. Decision (the master thread only). Adds partialSq in worker order, adds the workers'
///     BlockStats in worker order, and takes the step's one decision: the non-finite check and
///     the clipping factor (guardGradient()). Barrier 3.
///  5. Update. For each of its workers w, the thread clips slice w of every gradient array and
///     applies the optimiser to slice w of the parameters. Slices are disjoint.
///
/// Exceptions. No exception leaves the region. The first one thrown in phases 1, 2 or 4 is kept
/// (under a mutex) and `abandon` is set with release order: a thread spinning in phase 2 sees it
/// and stops waiting for deltas that may never come, the others stop taking pieces. Every thread
/// still reaches all three barriers, and reads the kept error only after a barrier, so all of
/// them skip phases 3 and 5 alike: nothing is applied. run() rethrows the exception once the
/// region has ended.
///
/// Why a fixed W gives the same bits whatever the team and the schedule: every value is a
/// function of W and the data alone. The shards' boundaries depend on (B, W); each shard's
/// deltas come from serial kernels on that shard; each gradient entry is summed over the shards
/// in shard order by whichever thread takes its piece, always the same operations; the norm
/// partials are per worker slice and summed in worker order; the update is elementwise. Which
/// thread computes a value never changes it, so teams of P' = W threads and of one thread give
/// identical networks. The loss is scaled by 1 / B of the whole minibatch and dropout masks and
/// augmentations are keyed by the row's position in the minibatch, so the gradient is the
/// sequential trainer's up to the order of additions; with W = 1 it is the sequential trainer's
/// bit for bit.
///
/// Why split by neurons rather than give each worker a private gradient of its shard and sum
/// the buffers: measured on a 2-core machine, the summing pass and the cache-line traffic of
/// buffers written by one core and read by the other cost more than reading the other shards'
/// activations here, and a private gradient leaves a faster thread nothing to do but wait
/// (BENCHMARKS.md, "Data-parallel trainer").

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/sparse/kernels.hpp"
#include "tsnn/training/epoch_loop.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/numerical_guards.hpp"
#include "tsnn/training/options.hpp"

namespace tsnn {
namespace detail {

/// One piece of a data-parallel weight gradient: layer \p layer's output neurons [first, last).
struct GradientTask {
  std::size_t layer;
  Eigen::Index first, last;
};

/// Splits every layer's neurons into runs of about kEntries stored weights each (at least one
/// neuron), top layer first, for the threads to take one at a time. Rebuilt only when a layer's
/// pattern changes.
class GradientTasks {
 public:
  static constexpr long long kEntries = 4096;

  template <class Scalar, class Index>
  const std::vector<GradientTask>& of(const Network<Scalar, Index>& net) {
    // Called every step: compare the pattern ids in place, build only when one changed.
    const std::size_t L = net.numLayers();
    bool same = m_ids.size() == L;
    for (std::size_t l = 0; same && l < L; ++l)
      same = m_ids[l] == net.layer(l).weights().patternId();
    if (same) return m_tasks;
    m_ids.resize(L);
    for (std::size_t l = 0; l < L; ++l) m_ids[l] = net.layer(l).weights().patternId();
    m_tasks.clear();
    // Top layer first: back-propagation finishes the deltas in that order.
    for (std::size_t l = L; l-- > 0;) {
      const auto& w = net.layer(l).weights();
      Eigen::Index first = 0;
      long long entries = 0;
      forEachRowRunIn(w, Index(0), w.rows(), [&](Index j, Index begin, Index end) {
        entries += end - begin;
        if (entries >= kEntries || j + 1 == w.rows()) {
          m_tasks.push_back({l, first, static_cast<Eigen::Index>(j) + 1});
          first = static_cast<Eigen::Index>(j) + 1;
          entries = 0;
        }
      });
    }
    return m_tasks;
  }

 private:
  std::vector<std::uint64_t> m_ids;
  std::vector<GradientTask> m_tasks;
};

/// Row w * count / workers of a minibatch split among \p workers workers, rounded down to a
/// multiple of 16 rows when every worker gets at least 16 (16 floats are a 64-byte cache line,
/// and the AVX-512 tiles stay whole). With fewer rows than workers, the first \p count workers
/// get one row each, so the non-empty shards are always a prefix.
inline Eigen::Index shardBoundary(Eigen::Index count, int w, int workers) {
  if (w >= workers) return count;
  if (count < workers) return std::min<Eigen::Index>(w, count);
  const Eigen::Index b = count * w / workers;
  constexpr Eigen::Index kAlign = 16;
  return count >= kAlign * workers ? b / kAlign * kAlign : b;
}

/// \brief One data-parallel minibatch step of W logical workers, run by whatever team of
/// threads the OpenMP runtime grants (the protocol and its invariants are in the file comment).
/// Holds the per-worker buffers and the step's synchronisation state between steps, so that a
/// step allocates nothing once the shapes have settled.
template <class Scalar, class Index>
class DataParallelStep {
 public:
  /// \param workers W, the number of logical workers (shards) the result depends on
  /// \throws InvalidArgument if workers < 1
  explicit DataParallelStep(int workers) : m_workers(workers) {
    if (workers < 1)
      raise<InvalidArgument>("DataParallelStep: workers must be >= 1, got ", workers);
    const auto W = static_cast<std::size_t>(workers);
    m_ws.resize(W);
    m_x.resize(W);
    m_labels.resize(W);
    m_stats.resize(W);
  }

  int workers() const { return m_workers; }
  /// \brief The team size the runtime granted the last run() (0 before the first).
  int lastTeam() const { return m_lastTeam; }

  /// \brief Trains \p net on the minibatch order[first, first + count) of \p data as optimiser
  /// step \p step with \p optimizer: gradient of the mean loss, numerical guards and clipping per
  /// \p options, then the update, unless the report names a problem (then nothing is applied).
  /// Opens one OpenMP region of up to \p threads threads.
  /// \throws InvalidArgument if threads < 1 or the minibatch is empty or outside \p order
  /// \throws whatever a worker threw (e.g. InvalidArgument for an out-of-range label), once the
  /// region has ended; the network is then unchanged
  StepReport run(Network<Scalar, Index>& net, const data::Dataset<Scalar>& data,
                 const std::vector<std::int64_t>& order, std::int64_t first, std::int64_t count,
                 std::uint64_t step, Optimizer<Scalar, Index>& optimizer,
                 const TrainerOptions& options, int threads) {
    if (threads < 1)
      raise<InvalidArgument>("DataParallelStep::run(): threads must be >= 1, got ", threads);
    if (count < 1 || first < 0 || first + count > static_cast<std::int64_t>(order.size()))
      raise<InvalidArgument>("DataParallelStep::run(): minibatch [", first, ", ", first + count,
                             ") is empty or outside the order of ", order.size(), " samples");
    const std::size_t L = net.numLayers();
    const auto rows = static_cast<Eigen::Index>(count);
    const Scalar scale = Scalar(1) / static_cast<Scalar>(count);
    m_batch = Batch{&net, &data, &order, first, rows, step, scale, &optimizer, &options};
    m_shards = static_cast<std::size_t>(std::min<std::int64_t>(m_workers, count));
    fitGradients(net, m_grads);
    m_tasks = &m_pieces.of(net);
    if (m_readyLayers != L) {
      m_ready.reset(new std::atomic<std::size_t>[L]);
      m_readyLayers = L;
    }
    m_partialSq.assign(static_cast<std::size_t>(m_workers) * L, 0.0);
    m_layerSq.assign(L, 0.0);
    // The region's start orders these resets before every use inside it.
    for (std::size_t l = 0; l < L; ++l) m_ready[l].store(0, std::memory_order_relaxed);
    m_next.store(0, std::memory_order_relaxed);
    m_abandon.store(false, std::memory_order_relaxed);
    m_error = nullptr;
    m_report = StepReport{};
    m_factor = 1;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
    {
      const int t = threadId();
      const int team = teamSize();
#if defined(_OPENMP)
#pragma omp master
#endif
      m_lastTeam = team;
      deltas(t, team);
      pieces();
#if defined(_OPENMP)
#pragma omp barrier
#endif
      // Read after the barrier, the error is the same in every thread.
      const bool failed = static_cast<bool>(m_error);
      if (!failed) partialNorms(t, team);
#if defined(_OPENMP)
#pragma omp barrier
#pragma omp master
#endif
      if (!m_error) decide();
#if defined(_OPENMP)
#pragma omp barrier
#endif
      if (!m_error && m_report.problem.empty()) update(t, team);
    }
    if (m_error) std::rethrow_exception(std::exchange(m_error, nullptr));
    m_report.clipped = m_report.problem.empty() && m_factor < 1;
    return m_report;
  }

 private:
  /// The minibatch of the step in progress.
  struct Batch {
    Network<Scalar, Index>* net;
    const data::Dataset<Scalar>* data;
    const std::vector<std::int64_t>* order;
    std::int64_t first;
    Eigen::Index rows;
    std::uint64_t step;
    Scalar scale;
    Optimizer<Scalar, Index>* optimizer;
    const TrainerOptions* options;
  };

  /// Keeps the first exception and releases the threads waiting for deltas (see the file
  /// comment). Called from a catch block.
  void fail() noexcept {
    {
      std::lock_guard<std::mutex> lock(m_errorMutex);
      if (!m_error) m_error = std::current_exception();
    }
    m_abandon.store(true, std::memory_order_release);
  }

  /// Phase 1 for the workers thread \p t plays in a team of \p team.
  void deltas(int t, int team) {
    const Batch& b = m_batch;
    for (int w = t; w < m_workers; w += team) {
      const auto uw = static_cast<std::size_t>(w);
      m_stats[uw] = BlockStats{};
      const Eigen::Index lo = shardBoundary(b.rows, w, m_workers);
      const Eigen::Index hi = shardBoundary(b.rows, w + 1, m_workers);
      if (hi == lo) continue;
      try {
        forwardBatch(*b.net, *b.data, *b.order, b.first + lo, hi - lo, lo, b.step, m_ws[uw],
                     m_x[uw], m_labels[uw], *b.options, Threads::serial());
        // Release: the delta's values are visible to whoever acquires the count.
        m_stats[uw] = b.net->backwardDeltas(
            m_labels[uw].data(), m_ws[uw], b.scale, Threads::serial(),
            [this](std::size_t l) { m_ready[l].fetch_add(1, std::memory_order_release); });
      } catch (...) {
        fail();
        return;
      }
    }
  }

  /// Phase 2: takes pieces until none is left or the step is abandoned.
  void pieces() {
    const std::vector<GradientTask>& tasks = *m_tasks;
    const auto numTasks = static_cast<std::ptrdiff_t>(tasks.size());
    for (std::ptrdiff_t i; (i = m_next.fetch_add(1, std::memory_order_relaxed)) < numTasks;) {
      const GradientTask& p = tasks[static_cast<std::size_t>(i)];
      for (unsigned polls = 0; m_ready[p.layer].load(std::memory_order_acquire) < m_shards &&
                               !m_abandon.load(std::memory_order_acquire);)
        spinWait(polls);
      if (m_abandon.load(std::memory_order_acquire)) return;
      try {
        m_batch.net->gradientsRows(p.layer, m_x.data(), m_ws.data(), m_shards, m_grads,
                                   static_cast<Index>(p.first), static_cast<Index>(p.last));
      } catch (...) {
        fail();
        return;
      }
    }
  }

  /// Worker \p w's slice [a, b) of an array of \p size parameters.
  std::pair<std::size_t, std::size_t> slice(std::size_t size, int w) const {
    const auto W = static_cast<std::size_t>(m_workers), uw = static_cast<std::size_t>(w);
    return {size * uw / W, size * (uw + 1) / W};
  }

  /// Phase 3 for the workers thread \p t plays.
  void partialNorms(int t, int team) {
    const std::size_t L = m_layerSq.size();
    for (int w = t; w < m_workers; w += team)
      for (std::size_t l = 0; l < L; ++l) {
        const auto [wa, wb] = slice(m_grads.weights[l].size(), w);
        const auto [ba, bb] = slice(static_cast<std::size_t>(m_grads.bias[l].size()), w);
        m_partialSq[static_cast<std::size_t>(w) * L + l] =
            sumOfSquares(m_grads.weights[l].data() + wa, wb - wa) +
            sumOfSquares(m_grads.bias[l].data() + ba, bb - ba);
      }
  }

  /// Phase 4, on the master thread: the step's one decision, from sums in worker order.
  void decide() {
    const std::size_t L = m_layerSq.size();
    for (std::size_t l = 0; l < L; ++l) {
      m_layerSq[l] = 0;
      for (int w = 0; w < m_workers; ++w)
        m_layerSq[l] += m_partialSq[static_cast<std::size_t>(w) * L + l];
    }
    for (int w = 0; w < m_workers; ++w) {
      m_report.stats.lossSum += m_stats[static_cast<std::size_t>(w)].lossSum;
      m_report.stats.correct += m_stats[static_cast<std::size_t>(w)].correct;
      m_report.stats.samples += m_stats[static_cast<std::size_t>(w)].samples;
    }
    try {
      m_report.problem = guardGradient(*m_batch.net, m_ws.data(), m_shards, m_report.stats.lossSum,
                                       m_layerSq, *m_batch.options, m_factor);
      // The optimiser's per-step work (step count, state sized to the pattern) before any
      // thread updates a slice.
      if (m_report.problem.empty()) m_batch.optimizer->beginStep(*m_batch.net, m_grads);
    } catch (...) {
      fail();
    }
  }

  /// Phase 5 for the workers thread \p t plays: clip and apply slice w of every array.
  void update(int t, int team) {
    Optimizer<Scalar, Index>& optimizer = *m_batch.optimizer;
    const double factor = m_factor;
    const auto f = static_cast<Scalar>(factor);
    Network<Scalar, Index>& net = *m_batch.net;
    for (int w = t; w < m_workers; w += team)
      for (std::size_t l = 0; l < net.numLayers(); ++l) {
        auto update = [&](Parameters part, Scalar* g, std::size_t size) {
          const auto [a, b] = slice(size, w);
          if (factor < 1)
            for (std::size_t k = a; k < b; ++k) g[k] *= f;
          optimizer.updateSlice(net, m_grads, l, part, a, b);
        };
        update(Parameters::Weights, m_grads.weights[l].data(), m_grads.weights[l].size());
        update(Parameters::Biases, m_grads.bias[l].data(),
               static_cast<std::size_t>(m_grads.bias[l].size()));
      }
  }

  int m_workers;
  // Per worker w: its shard's input, workspace (deltas), labels and loss counts.
  std::vector<Workspace<Scalar>> m_ws;
  std::vector<Activations<Scalar>> m_x;
  std::vector<std::vector<std::int32_t>> m_labels;
  std::vector<BlockStats> m_stats;
  Gradients<Scalar> m_grads;  ///< the minibatch's summed gradient, written piece by piece
  GradientTasks m_pieces;
  const std::vector<GradientTask>* m_tasks = nullptr;
  std::vector<double> m_partialSq;  ///< [w L + l]: worker w's slice of layer l, squared norm
  std::vector<double> m_layerSq;    ///< per layer, summed in worker order by the master
  // Synchronisation of the step in progress (see the file comment).
  std::unique_ptr<std::atomic<std::size_t>[]> m_ready;  ///< shards whose delta of l is final
  std::size_t m_readyLayers = 0;
  std::atomic<std::ptrdiff_t> m_next{0};  ///< the next piece to take
  std::atomic<bool> m_abandon{false};
  std::mutex m_errorMutex;
  std::exception_ptr m_error;
  Batch m_batch{};
  std::size_t m_shards = 0;  ///< S: shards with rows
  StepReport m_report;
  double m_factor = 1;
  int m_lastTeam = 0;
};

}  // namespace detail
}  // namespace tsnn
