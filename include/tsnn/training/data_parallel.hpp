#pragma once
/// \file
/// \brief The data-parallel trainer: the epoch loop of the synchronous trainers with each
/// minibatch trained by W logical workers (detail::DataParallelStep).

#include <vector>

#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/training/data_parallel_step.hpp"
#include "tsnn/training/epoch_loop.hpp"
#include "tsnn/training/options.hpp"

namespace tsnn {

/// \brief Data-parallel training with W = options.workerCount() workers, one minibatch at a
/// time: the minibatch's rows are split into W contiguous shards whose forward and backward
/// passes run side by side; the weight gradient, summed over the shards in a fixed order, is
/// split by neurons among the threads as their shards' deltas become ready; the step is decided
/// once (non-finite check, clipping) and each worker applies it to its slice of the parameters
/// (training/data_parallel_step.hpp gives the protocol).
///
/// Threads: options.teamFor(W), one per worker unless options.threads caps it. The runtime may
/// grant fewer (OMP_THREAD_LIMIT, nested regions, no OpenMP); each thread then plays several
/// workers. The result depends on W only: for a fixed worker count every run, with any team
/// size, is bit-identical, and with one worker it is trainSequential()'s bit for bit. With W > 1
/// the gradient is the sequential trainer's up to the order of float additions (dropout masks
/// and augmentations are keyed by the row's position in the whole minibatch).
/// \throws InvalidArgument, NumericalError as trainSequential(); InvalidArgument if the network
/// stores its activations in bfloat16 (NetworkOptions::activationStorage), checked before
/// anything runs
template <class Scalar, class Index>
std::vector<EpochRecord> trainDataParallel(
    Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
    const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
    const TrainerOptions& options, const TrainerCallbacks& callbacks = {},
    TrainingState* state = nullptr) {
  detail::checkRun(net, train, test, options, "trainDataParallel()");
  if (net.options().activationStorage != ActivationStorage::Scalar)
    detail::raise<InvalidArgument>(
        "trainDataParallel(): the network stores its activations in bfloat16, but the "
        "data-parallel trainer keeps every layer's delta (Network::backwardDeltas()), which has "
        "no bfloat16 form; train it with the sequential or the WASAP trainer");
  const int workers = options.workerCount();
  const int team = options.teamFor(workers);
  detail::DataParallelStep<Scalar, Index> minibatch(workers);
  std::vector<std::int64_t> order;
  return detail::runEpochs(
      net, train, test, options, callbacks, state, order, "trainDataParallel()",
      [&](std::int64_t first, std::int64_t count, std::uint64_t step,
          Optimizer<Scalar, Index>& optimizer) {
        return minibatch.run(net, train, order, first, count, step, optimizer, options, team);
      });
}

}  // namespace tsnn
