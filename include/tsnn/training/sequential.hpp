#pragma once
/// \file
/// \brief The sequential trainer: one minibatch at a time, each kernel parallel over neurons.

#include <cstdint>
#include <vector>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/training/epoch_loop.hpp"
#include "tsnn/training/minibatch.hpp"
#include "tsnn/training/numerical_guards.hpp"
#include "tsnn/training/options.hpp"

namespace tsnn {

/// \brief Trains \p net on \p train with minibatch SGD, evaluating on \p test (may be null)
/// after each epoch. Samples are reshuffled every epoch from options.seed; the last minibatch of
/// an epoch may be smaller. Kernels run in parallel over neurons with options.threads threads
/// (options.kernelThreads(): the OpenMP default when 0), as does the evaluation on \p test.
/// With \p state: if state->epoch > 0 the run continues from it (the network must be the one
/// saved with it, see io/checkpoint.hpp) and the returned history includes its earlier epochs;
/// after every epoch, before callbacks.onEpoch, \p state is brought up to date, so a callback
/// can save a checkpoint. A resumed run with the same options and thread count reproduces the
/// uninterrupted run exactly (decaying zeta schedules also need the same total epoch count).
/// \throws InvalidArgument for invalid options or data that does not fit the network, or a
/// state that cannot continue on this training set
/// \throws NumericalError if a minibatch loss is not finite
template <class Scalar, class Index>
std::vector<EpochRecord> trainSequential(
    Network<Scalar, Index>& net, const data::Dataset<Scalar>& train,
    const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
    const TrainerOptions& options, const TrainerCallbacks& callbacks = {},
    TrainingState* state = nullptr) {
  detail::checkRun(net, train, test, options, "trainSequential()");
  const Threads threads = options.kernelThreads();
  Workspace<Scalar> ws;
  Gradients<Scalar> grads;
  Activations<Scalar> x;
  std::vector<std::int32_t> labels;
  std::vector<std::int64_t> order;
  return detail::runEpochs(
      net, train, test, options, callbacks, state, order, "trainSequential()",
      [&](std::int64_t first, std::int64_t count, std::uint64_t step,
          Optimizer<Scalar, Index>& optimizer) {
        detail::StepReport r;
        r.stats = detail::computeGradients(net, train, order, first, count, 0, step,
                                           Scalar(1) / static_cast<Scalar>(count), ws, grads, x,
                                           labels, options, threads);
        r.problem = detail::guardAndClip(net, ws, r.stats, grads, options, &r.clipped);
        if (r.problem.empty()) optimizer.step(net, grads, threads);
        return r;
      });
}

}  // namespace tsnn
