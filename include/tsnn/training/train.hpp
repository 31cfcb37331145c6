#pragma once
/// \file
/// \brief The trainers' module header, and train(), which runs the trainer that
/// TrainerOptions::kind names.
///
/// The trainers, one concept per header:
///   options.hpp             TrainerOptions, TrainerCallbacks, TrainerKind, NonFinitePolicy
///   minibatch.hpp           shuffling, gathering, the training forward pass and the gradient
///   numerical_guards.hpp    the non-finite check and gradient clipping
///   topology_step.hpp       importance pruning and SET between epochs
///   epoch_loop.hpp          the synchronous trainers' epoch loop and resuming
///   sequential.hpp          trainSequential()
///   data_parallel_step.hpp  the data-parallel minibatch step and its protocol
///   data_parallel.hpp       trainDataParallel()
///   wasap.hpp               trainWasap(), averageModels()

#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/data_parallel.hpp"
#include "tsnn/training/options.hpp"
#include "tsnn/training/sequential.hpp"
#include "tsnn/training/wasap.hpp"

namespace tsnn {

/// \brief Trains with trainSequential(), trainDataParallel() or trainWasap() per options.kind.
/// \throws InvalidArgument for an unknown kind, else as the trainer it runs
template <class Scalar, class Index>
std::vector<EpochRecord> train(Network<Scalar, Index>& net, const data::Dataset<Scalar>& trainSet,
                               const typename detail::NoDeduce<data::Dataset<Scalar>>::type* test,
                               const TrainerOptions& options,
                               const TrainerCallbacks& callbacks = {},
                               TrainingState* state = nullptr) {
  switch (options.kind) {
    case TrainerKind::Sequential:
      return trainSequential(net, trainSet, test, options, callbacks, state);
    case TrainerKind::DataParallel:
      return trainDataParallel(net, trainSet, test, options, callbacks, state);
    case TrainerKind::Wasap:
      return trainWasap(net, trainSet, test, options, callbacks, state);
  }
  detail::raise<InvalidArgument>("train(): unknown trainer kind");
}

}  // namespace tsnn
