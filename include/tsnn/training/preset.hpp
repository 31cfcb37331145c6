#pragma once
/// \file
/// \brief The reference preset: every default of the authors' code (the public repository
/// SelimaC/large-scale-sparse-neural-networks) for a trainer and a data set, so that a run can be
/// compared with theirs setting for setting.
///
/// The reference has two programs with different defaults:
///   - set_mlp_sequential.py (sequential SET-MLP on Fashion-MNIST): weight decay 2e-4,
///     importance pruning off (when switched on: after every 10th 0-based epoch above 200, that
///     is after epochs 211, 221, ... counted from 1, at the 20th percentile);
///   - parallel_training.py (the MPI WASAP and synchronous trainers, also run on one process):
///     weight decay 0 (its model configuration fixes it, whatever the flag says), importance
///     pruning on, after every 20th epoch above 200 counted from 1 (221, 241, ...; its epoch
///     counter is incremented before the check), at the 10th percentile; CIFAR-10 augmented.
/// Both: 3 hidden layers (1000 each; 4000, 1000, 4000 for CIFAR-10), epsilon 20, zeta 0.3,
/// All-ReLU with slope 0.6 (0.75 for CIFAR-10), He-uniform weights over the dense fan-in, dropout
/// 0.3, momentum SGD with learning rate 0.01 and momentum 0.9, minibatches of 128 with the last
/// partial one dropped, and (WASAP) the last 30% of the epochs local. Inputs: MNIST divided by
/// 255; Fashion-MNIST and CIFAR-10 standardised per feature with the training set's mean and
/// standard deviation. CIFAR-10 augmentation (Keras ImageDataGenerator): rotations up to 10
/// degrees, shifts up to 10% of the side (3 of 32 pixels here: tsnn shifts by whole pixels) and
/// horizontal flips.
///
/// The sequential trainer takes set_mlp_sequential.py's values on MNIST and Fashion-MNIST; the
/// data-parallel and WASAP trainers, and every trainer on CIFAR-10 (for which the reference has
/// only parallel_training.py), take parallel_training.py's. Epochs, threads, workers and seed are
/// the caller's.

#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/options.hpp"

namespace tsnn {

/// \brief The data sets the reference code trains on.
enum class ReferenceDataset { FashionMnist, Mnist, Cifar10 };

/// \throws InvalidArgument unless \p name is "fashion-mnist", "mnist" or "cifar10"
inline ReferenceDataset parseReferenceDataset(const std::string& name) {
  if (name == "fashion-mnist") return ReferenceDataset::FashionMnist;
  if (name == "mnist") return ReferenceDataset::Mnist;
  if (name == "cifar10") return ReferenceDataset::Cifar10;
  detail::raise<InvalidArgument>("parseReferenceDataset(): unknown data set '", name,
                                 "' (fashion-mnist, mnist, cifar10)");
}

/// \brief How inputs are prepared before training.
enum class InputScaling {
  Standardize,  ///< per feature, (x - mean) / standard deviation of the training set
  DivideBy255   ///< x / 255 (8-bit pixels to [0, 1])
};

/// \throws InvalidArgument unless \p name is "standard" or "unit"
inline InputScaling parseInputScaling(const std::string& name) {
  if (name == "standard") return InputScaling::Standardize;
  if (name == "unit") return InputScaling::DivideBy255;
  detail::raise<InvalidArgument>("parseInputScaling(): unknown scaling '", name,
                                 "' (standard, unit)");
}

/// \brief The reference code's settings for one trainer and data set (see the file comment).
struct ReferencePreset {
  /// Network options; sizes is empty (inputs, hidden and outputs are the caller's to set).
  NetworkOptions network;
  /// The hidden layer widths.
  std::vector<long long> hidden;
  /// Trainer options, kind included; epochs, threads, workers and seed keep their defaults. For
  /// CIFAR-10 the augmentation's image shape (3 x 32 x 32) is set.
  TrainerOptions trainer;
  InputScaling scaling = InputScaling::Standardize;
  /// The reference program the values come from.
  std::string source;
};

/// \brief The reference code's settings for trainer \p kind on \p data.
inline ReferencePreset referencePreset(TrainerKind kind, ReferenceDataset data) {
  const bool cifar = data == ReferenceDataset::Cifar10;
  const bool sequentialScript = kind == TrainerKind::Sequential && !cifar;
  ReferencePreset p;
  p.source = sequentialScript ? "set_mlp_sequential.py" : "parallel_training.py";
  NetworkOptions& n = p.network;
  n.sizes.clear();
  n.epsilon = 20;
  n.init = WeightInit::HeUniform;
  n.hiddenActivation = ActivationKind::AllReLU;
  n.alpha = cifar ? 0.75 : 0.6;
  n.loss = LossKind::SoftmaxCrossEntropy;
  n.dropout = 0.3;
  n.allocation = DensityAllocation::ErdosRenyi;
  p.hidden =
      cifar ? std::vector<long long>{4000, 1000, 4000} : std::vector<long long>{1000, 1000, 1000};
  TrainerOptions& t = p.trainer;
  t.kind = kind;
  t.batchSize = 128;
  t.dropLastPartialBatch = true;
  t.optimizer = OptimizerKind::Sgd;
  t.sgd.learningRate = 0.01;
  t.sgd.momentum = 0.9;
  t.sgd.nesterov = false;
  t.sgd.weightDecay = sequentialScript ? 2e-4 : 0.0;
  t.zeta = 0.3;
  t.zetaSchedule = ZetaSchedule::Constant;
  t.regrowth = Regrowth::Random;
  t.evolve = true;
  t.importancePruning = !sequentialScript;
  t.pruning.startEpoch = sequentialScript ? 211 : 221;
  t.pruning.period = sequentialScript ? 10 : 20;
  t.pruning.percentile = sequentialScript ? 20 : 10;
  t.wasapLocalFraction = 0.3;
  if (cifar) {
    t.augment.channels = 3;
    t.augment.height = t.augment.width = 32;
    t.augment.flip = true;
    t.augment.maxShift = 3;
    t.augment.maxRotation = 10;
  }
  p.scaling =
      data == ReferenceDataset::Mnist ? InputScaling::DivideBy255 : InputScaling::Standardize;
  return p;
}

}  // namespace tsnn
