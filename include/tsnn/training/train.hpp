#pragma once
/// \file
/// \brief train(): runs the trainer that TrainerOptions::kind names.

#include "tsnn/training/trainer.hpp"
#include "tsnn/training/wasap.hpp"

namespace tsnn {

/// \brief Trains with trainSequential(), trainDataParallel() or trainWasap() per options.kind.
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
