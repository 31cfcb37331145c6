// Trains a truly sparse MLP on CIFAR-10 (the binary version: data_batch_1.bin ... test_batch.bin)
// with SET. Defaults are the paper's CIFAR-10 setting: 3072-4000-1000-4000-10, eps 20, All-ReLU
// with a = 0.75, standard scaling, dropout 0.3, SGD lr 0.01 momentum 0.9 weight decay 2e-4,
// batch 128, zeta 0.3; optional random flips and shifts (--augment-flip, --augment-shift).
// Every other flag is shared with train_mnist (train_common.hpp); --help lists them.

#include "train_common.hpp"
#include "tsnn/data/cifar10.hpp"

int main(int argc, char** argv) {
  example::Defaults d;
  d.program = "train_cifar10";
  d.description = "Train a truly sparse MLP (SET + All-ReLU) on CIFAR-10.";
  d.data = "cifar-10-batches-bin";
  d.dataHelp =
      "directory with data_batch_1.bin ... data_batch_5.bin and test_batch.bin (the extracted "
      "cifar-10-binary.tar.gz), or its parent";
  d.hidden = "4000,1000,4000";
  d.alpha = "0.75";
  d.channels = 3;
  d.height = 32;
  d.width = 32;
  d.augmentation = true;
  d.datasets = {"cifar10"};
  for (const char* name : tsnn::data::kCifar10ClassNames) d.classNames.emplace_back(name);
  return example::run(argc, argv, d,
                      [](const std::string& dir) { return tsnn::data::loadCifar10<float>(dir); });
}
