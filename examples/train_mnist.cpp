// Trains a truly sparse MLP on MNIST or Fashion-MNIST (IDX files, raw or gzip) with SET.
// Defaults reproduce the paper's Fashion-MNIST setting: 784-1000-1000-1000-10, eps 20, All-ReLU
// with a = 0.6, dropout 0.3, SGD lr 0.01 momentum 0.9 weight decay 2e-4, batch 128, zeta 0.3.
// Every flag is shared with train_cifar10 (train_common.hpp); --help lists them.

#include "train_common.hpp"
#include "tsnn/data/idx.hpp"

#ifndef TSNN_DEFAULT_DATA_DIR
#define TSNN_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#endif

int main(int argc, char** argv) {
  example::Defaults d;
  d.program = "train_mnist";
  d.description = "Train a truly sparse MLP (SET + All-ReLU) on MNIST or Fashion-MNIST.";
  d.data = TSNN_DEFAULT_DATA_DIR;
  d.dataHelp = "directory with train-/t10k- images and labels (IDX, raw or .gz)";
  d.datasets = {"fashion-mnist", "mnist"};
  return example::run(argc, argv, d,
                      [](const std::string& dir) { return tsnn::data::loadMnist<float>(dir); });
}
