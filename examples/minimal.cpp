// The README's minimal example: a truly sparse MLP learns a synthetic 3-class problem.
#include <cstdio>

#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/sequential.hpp"

int main() {
  // 3000 samples, 20 features; the class is decided by which of three features is largest.
  tsnn::Rng rng(42);
  tsnn::data::Dataset<float> train;
  train.features.resize(3000, 20);
  train.numClasses = 3;
  for (Eigen::Index i = 0; i < train.features.rows(); ++i) {
    for (Eigen::Index j = 0; j < 20; ++j) train.features(i, j) = float(rng.normal());
    Eigen::Index label;
    train.features.row(i).head(3).maxCoeff(&label);
    train.labels.push_back(std::int32_t(label));
  }

  tsnn::NetworkOptions options;
  options.sizes = {20, 256, 256, 3};  // input, hidden, hidden, output
  options.epsilon = 10;               // Erdos-Renyi density eps*(n_in+n_out)/(n_in*n_out)
  options.alpha = 0.6;                // All-ReLU slopes -0.6, +0.6
  tsnn::Networkf net(options);
  std::printf("%s", net.summary().c_str());

  tsnn::TrainerOptions training;
  training.epochs = 5;
  training.sgd.learningRate = 0.05;
  const auto history = tsnn::trainSequential(net, train, &train, training);
  std::printf("accuracy after %d epochs: %.3f\n", training.epochs, history.back().testAccuracy);
  return history.back().testAccuracy > 0.8 ? 0 : 1;
}
