#pragma once
/// \file
/// \brief makeOptimizer(): the optimiser an OptimizerKind names, from its options.

#include <cstdint>
#include <memory>

#include "tsnn/core/errors.hpp"
#include "tsnn/optim/adam.hpp"
#include "tsnn/optim/optimizer.hpp"
#include "tsnn/optim/optimizer_state.hpp"
#include "tsnn/optim/sgd.hpp"

namespace tsnn {

/// \brief A new optimiser of kind \p kind, without state (it is created at the first step), made
/// from \p sgd or \p adam (whichever \p kind selects; the other is not read).
/// \throws InvalidArgument naming the first bad option of the selected optimiser
template <class Scalar, class Index = std::int32_t>
std::unique_ptr<Optimizer<Scalar, Index>> makeOptimizer(OptimizerKind kind, const SgdOptions& sgd,
                                                        const AdamOptions& adam) {
  switch (kind) {
    case OptimizerKind::Sgd:
      return std::make_unique<Sgd<Scalar, Index>>(sgd);
    case OptimizerKind::Adam:
      return std::make_unique<Adam<Scalar, Index>>(adam);
  }
  detail::raise<InvalidArgument>("makeOptimizer(): unknown optimizer kind ",
                                 static_cast<int>(kind));
}

}  // namespace tsnn
