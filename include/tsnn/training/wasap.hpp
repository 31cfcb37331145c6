#pragma once
/// \file
/// \brief WASAP-SGD (Curci, Mocanu, Pechenizkiy 2021): asynchronous parallel training of a truly
/// sparse network, followed by local training and weight averaging.
///
/// T workers each own a contiguous partition of the (once shuffled) training set. Workers are
/// logical: the threads the OpenMP runtime grants share them out (see trainWasap()), so every
/// partition is trained whatever the team size.
///
/// Phase 1, asynchronous (the first 1 - f of the epochs, f = wasapLocalFraction): a worker
/// computes a minibatch gradient on its private copy of the shared model, without any lock, then
/// takes the shared model's lock to (a) translate the gradient to the shared topology if SET
/// changed it since the copy was taken (positions are matched by (row, column); gradients of
/// connections that no longer exist are dropped), (b) apply the optimiser (TrainerOptions::
/// optimizer, one shared instance whose state belongs to the shared model) to the shared model,
/// (c) refresh its copy. Staleness, the number of shared updates between taking the copy and
/// applying the gradient, is measured. Every N applied samples (N = training set size) is an
/// epoch of the shared model: importance pruning (when due) and the evolution step run on the
/// shared model at that boundary, under the lock, so no update can be lost or applied to a
/// half-changed topology. Gradients computed on a copy taken before such a change are matched
/// to the new topology by original neuron ids (detail::retargetGradient()).
///
/// Phase 2, local (the last f of the epochs): each worker copies the shared model and trains it on
/// its own partition with its own evolution steps (no neuron pruning in this phase: the workers'
/// models must keep equal shapes to be averaged), each with its own copy of the shared
/// optimiser. At the end the workers' weights are averaged over the union of their patterns (a
/// connection missing in a worker counts as 0 there) and the result is pruned back to the shared
/// model's connection budget by magnitude; the optimisers' states are averaged the same way
/// (Optimizer::average()) and become the shared optimiser's.
///
/// Numerical guards: gradients are clipped to TrainerOptions::clipNorm on the worker; a non-finite
/// loss or gradient always stops training with NumericalError (the SkipBatch policy of the
/// synchronous trainers is not offered here: with stale gradients in flight there is no single
/// minibatch to skip).
///
/// Synchronisation: every access to the shared model happens under one mutex; workers otherwise
/// touch only their own copies and buffers. There are no data races, intended or otherwise. The
/// asynchrony of the algorithm is in *which* model state a gradient was computed on, not in
/// unsynchronised memory access.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/make_optimizer.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/numerical_guards.hpp"
#include "tsnn/training/options.hpp"
#include "tsnn/training/topology_step.hpp"

namespace tsnn {

namespace detail {

/// Original id of position \p i among a layer's inputs or outputs: hidden neurons map through
/// Network::neuronIds(), network inputs and outputs (\p ids null) are never removed.
inline long long originalId(const std::vector<long long>* ids, long long i) {
  return ids ? (*ids)[static_cast<std::size_t>(i)] : i;
}

/// Re-targets layer \p l's gradient (weights \p g aligned with \p from's pattern, biases
/// \p gb) to \p to's current layer \p l. Rows and columns are matched by original neuron id,
/// so the gradient survives both SET (pattern changes) and importance pruning (neurons removed,
/// indices compacted): entries at connections present in both are moved, the rest dropped, and
/// connections new in \p to get 0. Ids are increasing along a layer in both networks (removal
/// keeps the survivors' order), so each row is one merge of two sorted lists.
template <class Scalar, class Index>
void retargetGradient(const Network<Scalar, Index>& from, const Network<Scalar, Index>& to,
                      std::size_t l, const std::vector<Scalar>& g,
                      const typename Network<Scalar, Index>::Vector& gb, std::vector<Scalar>& out,
                      typename Network<Scalar, Index>::Vector& outBias) {
  const bool hiddenOut = l + 1 < to.numLayers();
  const std::vector<long long>* fromRows = hiddenOut ? &from.neuronIds(l) : nullptr;
  const std::vector<long long>* toRows = hiddenOut ? &to.neuronIds(l) : nullptr;
  const std::vector<long long>* fromCols = l > 0 ? &from.neuronIds(l - 1) : nullptr;
  const std::vector<long long>* toCols = l > 0 ? &to.neuronIds(l - 1) : nullptr;
  const auto& fw = from.layer(l).weights();
  const auto& tw = to.layer(l).weights();
  out.assign(static_cast<std::size_t>(tw.nonZeros()), Scalar(0));
  outBias.setZero(tw.rows());
  Index r = 0;
  for (Index R = 0; R < tw.rows(); ++R) {
    const long long id = originalId(toRows, R);
    while (r < fw.rows() && originalId(fromRows, r) < id) ++r;
    if (r == fw.rows() || originalId(fromRows, r) != id) continue;
    outBias[R] = gb[r];
    Index a = fw.rowBegin(r);
    const Index ae = fw.rowEnd(r);
    for (Index b = tw.rowBegin(R); b < tw.rowEnd(R); ++b) {
      const long long c = originalId(toCols, tw.colIdx()[static_cast<std::size_t>(b)]);
      while (a < ae && originalId(fromCols, fw.colIdx()[static_cast<std::size_t>(a)]) < c) ++a;
      if (a < ae && originalId(fromCols, fw.colIdx()[static_cast<std::size_t>(a)]) == c)
        out[static_cast<std::size_t>(b)] = g[static_cast<std::size_t>(a)];
    }
  }
}

/// The training samples of each of \p T workers: the samples 0 .. n-1 shuffled once by a stream
/// of \p seed, then cut into T contiguous slices of n/T (rounded down or up). \p all, if not
/// null, receives the whole shuffled order.
inline std::vector<std::vector<std::int64_t>> wasapPartitions(std::int64_t n, int T,
                                                              std::uint64_t seed,
                                                              std::vector<std::int64_t>* all) {
  Rng partRng(seed ^ 0xA5A5ull);
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  shuffleOrder(order, partRng);
  std::vector<std::vector<std::int64_t>> part(static_cast<std::size_t>(T));
  for (int t = 0; t < T; ++t)
    part[static_cast<std::size_t>(t)].assign(order.begin() + n * t / T,
                                             order.begin() + n * (t + 1) / T);
  if (all) *all = std::move(order);
  return part;
}

}  // namespace detail

/// \brief Averages \p models (same layer shapes) over the union of their patterns and prunes each
/// layer back to \p budget[l] connections, keeping the largest magnitudes (ties: lower position):
/// a connection's averaged weight is the sum, in model order, of w_t / T over the T models that
/// have it (a missing connection counts as 0); a bias is 0 + b_0 / T + b_1 / T + ... The result
/// replaces \p target's layers.
/// \param remaps if not null, receives one NetworkRemap per model, from its patterns to
///        \p target's new ones (each averaged connection continues that model's copy, or -1
///        where the model lacks it), for Optimizer::average()
template <class Scalar, class Index>
void averageModels(const std::vector<Network<Scalar, Index>>& models,
                   const std::vector<long long>& budget, Network<Scalar, Index>& target,
                   std::vector<NetworkRemap<Index>>* remaps = nullptr) {
  const auto T = static_cast<Scalar>(models.size());
  if (remaps) remaps->assign(models.size(), NetworkRemap<Index>(target.numLayers()));
  for (std::size_t l = 0; l < target.numLayers(); ++l) {
    const Index rows = models[0].layer(l).outputs(), cols = models[0].layer(l).inputs();
    // Union per row by merging the workers' sorted column lists.
    std::vector<Index> rowPtr(static_cast<std::size_t>(rows) + 1, 0), colIdx;
    std::vector<Scalar> values;
    std::vector<std::pair<Index, Scalar>> rowEntries;
    for (Index r = 0; r < rows; ++r) {
      rowEntries.clear();
      for (const auto& m : models) {
        const auto& w = m.layer(l).weights();
        for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k)
          rowEntries.push_back({w.colIdx()[static_cast<std::size_t>(k)],
                                w.values()[static_cast<std::size_t>(k)] / T});
      }
      std::stable_sort(rowEntries.begin(), rowEntries.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      for (std::size_t i = 0; i < rowEntries.size(); ++i) {
        // Same column as the previous entry of this row: another worker's copy, add it.
        if (static_cast<Index>(colIdx.size()) > rowPtr[static_cast<std::size_t>(r)] &&
            colIdx.back() == rowEntries[i].first) {
          values.back() += rowEntries[i].second;
        } else {
          colIdx.push_back(rowEntries[i].first);
          values.push_back(rowEntries[i].second);
        }
      }
      rowPtr[static_cast<std::size_t>(r) + 1] = static_cast<Index>(colIdx.size());
    }
    // Prune back to the budget by magnitude.
    const auto keep = static_cast<std::size_t>(
        std::min<long long>(budget[l], static_cast<long long>(values.size())));
    std::vector<char> kept(values.size(), 1);
    if (keep < values.size()) {
      std::vector<std::size_t> idx(values.size());
      std::iota(idx.begin(), idx.end(), std::size_t{0});
      std::nth_element(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep), idx.end(),
                       [&](std::size_t a, std::size_t b) {
                         const Scalar x = std::abs(values[a]), y = std::abs(values[b]);
                         return x != y ? x > y : a < b;
                       });
      std::fill(kept.begin(), kept.end(), 0);
      for (std::size_t i = 0; i < keep; ++i) kept[idx[i]] = 1;
    }
    std::vector<Index> pPtr(static_cast<std::size_t>(rows) + 1, 0), pCol;
    std::vector<Scalar> pVal;
    for (Index r = 0; r < rows; ++r) {
      for (Index k = rowPtr[static_cast<std::size_t>(r)];
           k < rowPtr[static_cast<std::size_t>(r) + 1]; ++k)
        if (kept[static_cast<std::size_t>(k)]) {
          pCol.push_back(colIdx[static_cast<std::size_t>(k)]);
          pVal.push_back(values[static_cast<std::size_t>(k)]);
        }
      pPtr[static_cast<std::size_t>(r) + 1] = static_cast<Index>(pCol.size());
    }
    typename Network<Scalar, Index>::Vector bias = Network<Scalar, Index>::Vector::Zero(rows);
    for (const auto& m : models) bias += m.layer(l).bias() / T;
    CsrMatrix<Scalar, Index> w;
    w.assignUnchecked(rows, cols, std::move(pPtr), std::move(pCol), std::move(pVal));
    if (remaps)  // where each kept connection is in each model (rows stay where they are)
      for (std::size_t t = 0; t < models.size(); ++t) {
        const auto& mw = models[t].layer(l).weights();
        PatternRemap<Index> r;
        r.from = mw.patternId();
        r.entries.reserve(static_cast<std::size_t>(w.nonZeros()));
        for (Index row = 0; row < rows; ++row)
          for (Index k = w.rowBegin(row); k < w.rowEnd(row); ++k)
            r.entries.push_back(mw.find(row, w.colIdx()[static_cast<std::size_t>(k)]));
        (*remaps)[t].layers[l] = std::move(r);
      }
    target.layer(l).reshape(std::move(w), std::move(bias));
    if (remaps)
      for (auto& r : *remaps) r.layers[l]->to = target.layer(l).weights().patternId();
  }
}

/// \brief WASAP-SGD training (see the file comment). T = options.workerCount() logical workers
/// (options.workers, else options.threads, else the OpenMP default), each owning one data
/// partition; the last round(wasapLocalFraction * epochs) epochs are local. Records: one per
/// shared epoch in phase 1 (test accuracy of the shared model); one per local epoch in phase 2
/// (loss and accuracy averaged over workers, test accuracy of worker 0's model, and for the last
/// epoch of the averaged model, which is what \p net holds at the end).
///
/// Threads: both phases ask for options.teamFor(T) threads, and thread t of the P granted plays
/// workers t, t + P, ...: every partition is trained whatever team the runtime grants. Phase 2
/// and a one-worker phase 1 give the same bits for every team size (each worker's training
/// depends on its own partition and random streams only, and the averaging runs in worker order).
/// In phase 1 a thread that plays several workers takes one minibatch of each in turn; its
/// timing decides which shared model state each gradient was computed on, as the asynchrony of
/// T threads does.
/// \throws InvalidArgument, NumericalError as trainSequential()
template <class Scalar, class Index>
std::vector<EpochRecord> trainWasap(
    Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
    const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
    const TrainerOptions& options, const TrainerCallbacks& callbacks = {},
    TrainingState* state = nullptr) {
  detail::checkRun(net, train, test, options, "trainWasap()");
  if (state && state->epoch > 0)
    detail::raise<InvalidArgument>(
        "trainWasap(): resuming a run is not supported by the WASAP "
        "trainer (its workers' copies and stale gradients are not "
        "part of a checkpoint)");
  const int T = options.workerCount();
  [[maybe_unused]] const int team = options.teamFor(T);  // only num_threads reads it
  const std::int64_t n = train.size();
  if (n < T)
    detail::raise<InvalidArgument>("trainWasap(): ", T,
                                   " workers need at least as many samples, got ", n);
  const int localEpochs =
      static_cast<int>(std::lround(options.wasapLocalFraction * options.epochs));
  const int asyncEpochs = options.epochs - localEpochs;

  std::vector<std::int64_t> all;
  const std::vector<std::vector<std::int64_t>> part =
      detail::wasapPartitions(n, T, options.seed, &all);

  std::vector<EpochRecord> history;
  // The shared model's optimiser; used only under the lock in phase 1.
  const std::unique_ptr<Optimizer<Scalar, Index>> optimizer =
      makeOptimizer<Scalar, Index>(options.optimizer, options.sgd, options.adam);
  optimizer->setFanInReference(options.fanInReference);
  std::mutex shared;
  std::exception_ptr error;
  auto fail = [&](std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(shared);
    if (!error) error = e;
  };

  // ---- phase 1: asynchronous ----
  if (asyncEpochs > 0) {
    std::int64_t applied = 0;       // samples applied to the shared model in this epoch
    std::int64_t epochSamples = 0;  // samples whose loss is credited to this epoch
    std::uint64_t updates = 0;      // gradient applications to the shared model
    std::uint64_t topology = 0;     // bumped by every SET on the shared model
    int epochsDone = 0;
    double lossSum = 0, stalenessSum = 0;
    long long correct = 0, applications = 0;
    auto epochStart = std::chrono::steady_clock::now();
    // One worker's private side: its partition's order and stream, its copy of the shared model
    // and the shared state the copy was taken at, its buffers, and where it is in its pass.
    struct AsyncWorker {
      AsyncWorker(int w, std::vector<std::int64_t> partition, Rng stream,
                  const Network<Scalar, Index>& shared, std::uint64_t firstStep)
          : id(w), order(std::move(partition)), rng(stream), local(shared), step(firstStep) {}
      int id;
      std::vector<std::int64_t> order;
      Rng rng;
      Network<Scalar, Index> local;
      std::uint64_t step;
      std::uint64_t copyUpdates = 0, copyTopology = 0;
      Workspace<Scalar> ws;
      Gradients<Scalar> grads;
      std::vector<Scalar> moved;
      typename Network<Scalar, Index>::Vector movedBias;
      Activations<Scalar> x;
      std::vector<std::int32_t> labels;
      std::size_t first = 0;  // next minibatch of the pass; a pass starts with a shuffle
    };
    // One minibatch of worker \p wk: its gradient on its copy, then, under the lock, the update
    // of the shared model, the epoch's bookkeeping and the refresh of the copy. Returns false
    // once training is over (all asynchronous epochs done, or another worker failed).
    auto advance = [&](AsyncWorker& wk) {
      // A pass that drops its partial minibatch ends when less than a minibatch is left.
      if (options.dropLastPartialBatch &&
          wk.first + static_cast<std::size_t>(options.batchSize) > wk.order.size())
        wk.first = 0;
      if (wk.first == 0) detail::shuffleOrder(wk.order, wk.rng);
      const std::size_t first = wk.first;
      const auto count = static_cast<Eigen::Index>(std::min<std::size_t>(
          static_cast<std::size_t>(options.batchSize), wk.order.size() - first));
      wk.first += static_cast<std::size_t>(options.batchSize);
      if (wk.first >= wk.order.size()) wk.first = 0;
      const BlockStats s =
          detail::computeGradients(wk.local, train, wk.order, static_cast<std::int64_t>(first),
                                   count, 0, wk.step++, Scalar(1) / static_cast<Scalar>(count),
                                   wk.ws, wk.grads, wk.x, wk.labels, options, Threads::serial());
      const std::string problem = detail::guardAndClip(wk.local, wk.ws, s, wk.grads, options);
      std::lock_guard<std::mutex> lock(shared);
      if (error || epochsDone >= asyncEpochs) return false;
      if (!problem.empty())
        detail::raise<NumericalError>("trainWasap(): ", problem, " in worker ", wk.id,
                                      " at shared epoch ", epochsDone + 1);
      Gradients<Scalar>& grads = wk.grads;
      if (wk.copyTopology != topology)
        for (std::size_t l = 0; l < net.numLayers(); ++l) {
          detail::retargetGradient(wk.local, net, l, grads.weights[l], grads.bias[l], wk.moved,
                                   wk.movedBias);
          grads.weights[l].swap(wk.moved);
          grads.bias[l].swap(wk.movedBias);
        }
      optimizer->step(net, grads, Threads::serial());
      stalenessSum += static_cast<double>(updates - wk.copyUpdates);
      ++updates;
      ++applications;
      lossSum += s.lossSum;
      correct += s.correct;
      applied += count;
      epochSamples += count;
      if (applied >= n) {
        ++epochsDone;
        EpochRecord rec;
        rec.epoch = epochsDone;
        const auto now = std::chrono::steady_clock::now();
        rec.epochSeconds = std::chrono::duration<double>(now - epochStart).count();
        // The minibatch that crosses the boundary belongs wholly to this epoch, so divide
        // by the samples actually credited, which can exceed n.
        rec.trainLoss = lossSum / static_cast<double>(epochSamples);
        rec.trainAccuracy = static_cast<double>(correct) / static_cast<double>(epochSamples);
        rec.meanStaleness = stalenessSum / static_cast<double>(std::max(1LL, applications));
        // Inside the region: the evaluation's kernels run serially on this thread.
        rec.testAccuracy = test ? net.accuracy(test->features, test->labels, Threads::serial())
                                : std::numeric_limits<double>::quiet_NaN();
        // Pruning (when due) and evolution on the shared model; gradient regrowth ranks
        // on the first minibatch of the once-shuffled training set.
        if (detail::topologyStep(net, options, epochsDone, train, all, rec, *optimizer)) ++topology;
        rec.nnz = net.nonZeros();
        rec.hiddenNeurons = net.hiddenNeurons();
        history.push_back(rec);
        if (callbacks.onEpoch) callbacks.onEpoch(rec);
        lossSum = stalenessSum = 0;
        correct = applications = 0;
        epochSamples = 0;
        applied -= n;
        epochStart = std::chrono::steady_clock::now();
      } else if (callbacks.onBatch) {
        callbacks.onBatch(epochsDone + 1, applied, n);
      }
      // Refresh the private copy (values always; structure only if SET changed it).
      if (wk.copyTopology != topology) {
        wk.local = net;
        wk.copyTopology = topology;
      } else {
        for (std::size_t l = 0; l < net.numLayers(); ++l) {
          wk.local.layer(l).values() = net.layer(l).weights().values();
          wk.local.layer(l).bias() = net.layer(l).bias();
        }
      }
      wk.copyUpdates = updates;
      return true;
    };
#if defined(_OPENMP)
#pragma omp parallel num_threads(team)
#endif
    {
      const int t = threadId();
      const int P = teamSize();
      try {
        // The workers this thread plays, each with its copy of the shared model as it is now.
        std::vector<AsyncWorker> mine;
        for (int w = t; w < T; w += P) {
          std::lock_guard<std::mutex> lock(shared);
          mine.emplace_back(w, part[static_cast<std::size_t>(w)],
                            Rng(options.seed + 7919ull * static_cast<std::uint64_t>(w + 1)), net,
                            static_cast<std::uint64_t>(w) << 40);
        }
        // One minibatch of each in turn, until training is over.
        for (bool more = !mine.empty(); more;)
          for (AsyncWorker& wk : mine)
            if (!(more = advance(wk))) break;
      } catch (...) {
        fail(std::current_exception());
      }
    }
    if (error) std::rethrow_exception(error);
  }

  // ---- phase 2: local training, then averaging ----
  if (localEpochs > 0) {
    std::vector<long long> budget;
    for (std::size_t l = 0; l < net.numLayers(); ++l) budget.push_back(net.layer(l).nonZeros());
    std::vector<Network<Scalar, Index>> models(static_cast<std::size_t>(T), net);
    // Copies share the shared model's patterns, so clones of its optimiser fit them.
    std::vector<std::unique_ptr<Optimizer<Scalar, Index>>> optimizers;
    for (int t = 0; t < T; ++t) optimizers.push_back(optimizer->clone());
    for (int t = 0; t < T; ++t)  // independent SET draws per worker
      models[static_cast<std::size_t>(t)].rng() =
          Rng(options.seed ^ (0xC0FFEEull * static_cast<std::uint64_t>(t + 1)));
    std::vector<BlockStats> stats(static_cast<std::size_t>(T));
    std::vector<std::int64_t> trained(static_cast<std::size_t>(T));  // samples, this epoch
    bool stop = false;
    // Workers evolve their copies but keep every neuron: averaging needs equal shapes.
    TrainerOptions localOptions = options;
    localOptions.importancePruning = false;
    // One worker's side of phase 2: its model is models[id].
    struct LocalWorker {
      LocalWorker(int w, std::vector<std::int64_t> partition, Rng stream, std::uint64_t firstStep)
          : id(w), order(std::move(partition)), rng(stream), step(firstStep) {}
      int id;
      std::vector<std::int64_t> order;
      Rng rng;
      std::uint64_t step;
      Workspace<Scalar> ws;
      Gradients<Scalar> grads;
      Activations<Scalar> x;
      std::vector<std::int32_t> labels;
    };
#if defined(_OPENMP)
#pragma omp parallel num_threads(team)
#endif
    {
      const int t = threadId();
      const int P = teamSize();
      std::vector<LocalWorker> mine;
      try {
        for (int w = t; w < T; w += P)
          mine.emplace_back(w, part[static_cast<std::size_t>(w)],
                            Rng(options.seed + 104729ull * static_cast<std::uint64_t>(w + 1)),
                            (static_cast<std::uint64_t>(w) << 40) + (1ull << 39));
      } catch (...) {
        fail(std::current_exception());  // the master stops the run after the first epoch
      }
      for (int e = 0; e < localEpochs; ++e) {
        const auto t0 = std::chrono::steady_clock::now();
        for (const LocalWorker& wk : mine) {
          stats[static_cast<std::size_t>(wk.id)] = BlockStats{};
          trained[static_cast<std::size_t>(wk.id)] = 0;
        }
        // Every thread reaches both barriers of every epoch, error or not, so none can hang.
        try {
          if (!stop)
            for (LocalWorker& wk : mine) {
              const auto uw = static_cast<std::size_t>(wk.id);
              Network<Scalar, Index>& model = models[uw];
              detail::shuffleOrder(wk.order, wk.rng);
              for (std::size_t first = 0; first < wk.order.size();
                   first += static_cast<std::size_t>(options.batchSize)) {
                const auto count = static_cast<Eigen::Index>(std::min<std::size_t>(
                    static_cast<std::size_t>(options.batchSize), wk.order.size() - first));
                if (count < options.batchSize && options.dropLastPartialBatch) break;
                trained[uw] += count;
                const BlockStats s = detail::computeGradients(
                    model, train, wk.order, static_cast<std::int64_t>(first), count, 0, wk.step++,
                    Scalar(1) / static_cast<Scalar>(count), wk.ws, wk.grads, wk.x, wk.labels,
                    options, Threads::serial());
                const std::string problem =
                    detail::guardAndClip(model, wk.ws, s, wk.grads, options);
                if (!problem.empty())
                  detail::raise<NumericalError>("trainWasap(): ", problem, " in worker ", wk.id,
                                                " at local epoch ", asyncEpochs + e + 1);
                optimizers[uw]->step(model, wk.grads, Threads::serial());
                stats[uw].lossSum += s.lossSum;
                stats[uw].correct += s.correct;
              }
            }
        } catch (...) {
          fail(std::current_exception());
        }
#if defined(_OPENMP)
#pragma omp barrier
#pragma omp master
#endif
        {
          try {
            if (error) stop = true;
            if (!stop) {
              EpochRecord rec;
              rec.epoch = asyncEpochs + e + 1;
              rec.epochSeconds =
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              std::int64_t samples = 0;
              for (const std::int64_t t : trained) samples += t;
              for (const auto& s : stats) {
                rec.trainLoss += s.lossSum / static_cast<double>(samples);
                rec.trainAccuracy += static_cast<double>(s.correct) / static_cast<double>(samples);
              }
              rec.nnz = models[0].nonZeros();
              rec.hiddenNeurons = models[0].hiddenNeurons();
              if (e + 1 < localEpochs) {
                rec.testAccuracy =
                    test ? models[0].accuracy(test->features, test->labels, Threads::serial())
                         : std::numeric_limits<double>::quiet_NaN();
                history.push_back(rec);
                if (callbacks.onEpoch) callbacks.onEpoch(rec);
              } else {
                history.push_back(rec);  // completed after averaging
              }
            }
          } catch (...) {
            fail(std::current_exception());
            stop = true;
          }
        }
#if defined(_OPENMP)
#pragma omp barrier
#endif
        // SET after the epoch was recorded, so worker 0's model is evaluated as trained.
        try {
          EpochRecord unused;
          if (!stop)
            for (LocalWorker& wk : mine)
              detail::topologyStep(models[static_cast<std::size_t>(wk.id)], localOptions,
                                   asyncEpochs + e + 1, train, wk.order, unused,
                                   *optimizers[static_cast<std::size_t>(wk.id)]);
        } catch (...) {
          fail(std::current_exception());
        }
      }
    }
    if (error) std::rethrow_exception(error);
    std::vector<NetworkRemap<Index>> remaps;
    averageModels(models, budget, net, &remaps);
    std::vector<const Optimizer<Scalar, Index>*> from;
    for (const auto& o : optimizers) from.push_back(o.get());
    optimizer->average(from, remaps, net);
    EpochRecord& last = history.back();
    last.testAccuracy = test ? net.accuracy(test->features, test->labels, options.kernelThreads(),
                                            detail::evaluationProgress(callbacks, last.epoch))
                             : std::numeric_limits<double>::quiet_NaN();
    last.nnz = net.nonZeros();
    last.hiddenNeurons = net.hiddenNeurons();
    if (callbacks.onEpoch) callbacks.onEpoch(last);
  }
  return history;
}

}  // namespace tsnn
