#pragma once
// The program behind train_mnist and train_cifar10: flags, data preparation, training with
// progress, metrics CSV and JSON Lines, checkpoints (save, save every N epochs, resume), plots and
// a confusion matrix. Each example supplies its defaults and its loader; the program itself is
// compiled once (train_common.cpp) and linked into both.

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/data/dataset.hpp"

namespace example {

/// What differs between the training examples.
struct Defaults {
  std::string program, description;
  std::string data, dataHelp;
  std::string hidden = "1000,1000,1000";
  std::string alpha = "0.6";
  /// Image shape for the connectivity heatmap and augmentation; height 0: square images of one
  /// channel whose side is the square root of the feature count (MNIST).
  int channels = 1, height = 0, width = 0;
  /// Offer --augment-flip, --augment-shift and --augment-rotate.
  bool augmentation = false;
  /// The data sets --data may hold, as parseReferenceDataset() names them; the first is the
  /// default, and --dataset is offered when there is more than one.
  std::vector<std::string> datasets{"fashion-mnist"};
  std::vector<std::string> classNames;
};

using Loader =
    std::function<std::pair<tsnn::data::Datasetf, tsnn::data::Datasetf>(const std::string& dir)>;

/// Parses the flags, trains and writes every output. Returns the process exit code: 0 on success
/// or --help, 2 for usage errors, 1 for anything else (missing data, a failed save, divergence).
int run(int argc, char** argv, const Defaults& d, const Loader& load);

}  // namespace example
