// Tests for tsnn/training/preset.hpp: the reference preset holds the authors' defaults, program
// by program (set_mlp_sequential.py for the sequential trainer on MNIST and Fashion-MNIST,
// parallel_training.py otherwise), and trains.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "support/synthetic.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/training/preset.hpp"
#include "tsnn/training/train.hpp"

using tsnn::ReferenceDataset;
using tsnn::TrainerKind;

TEST_CASE("The reference preset has the sequential script's values for the sequential trainer",
          "[training][preset]") {
  for (const auto data : {ReferenceDataset::FashionMnist, ReferenceDataset::Mnist}) {
    const auto p = tsnn::referencePreset(TrainerKind::Sequential, data);
    CHECK(p.source == "set_mlp_sequential.py");
    CHECK(p.hidden == std::vector<long long>{1000, 1000, 1000});
    CHECK(p.network.epsilon == 20);
    CHECK(p.network.alpha == 0.6);
    CHECK(p.network.dropout == 0.3);
    CHECK(p.network.hiddenActivation == tsnn::ActivationKind::AllReLU);
    CHECK(p.network.init == tsnn::WeightInit::HeUniform);
    CHECK(p.trainer.kind == TrainerKind::Sequential);
    CHECK(p.trainer.batchSize == 128);
    CHECK(p.trainer.dropLastPartialBatch);
    CHECK(p.trainer.sgd.learningRate == 0.01);
    CHECK(p.trainer.sgd.momentum == 0.9);
    CHECK(p.trainer.sgd.weightDecay == 2e-4);
    CHECK(p.trainer.zeta == 0.3);
    // Off, and when switched on: after the 0-based epochs 210, 220, ... at the 20th percentile.
    CHECK(!p.trainer.importancePruning);
    CHECK(!p.trainer.pruning.due(210));
    CHECK(p.trainer.pruning.due(211));
    CHECK(p.trainer.pruning.due(221));
    CHECK(!p.trainer.pruning.due(216));
    CHECK(p.trainer.pruning.percentile == 20);
    CHECK(!p.trainer.augment.enabled());
    CHECK(p.scaling == (data == ReferenceDataset::Mnist ? tsnn::InputScaling::DivideBy255
                                                        : tsnn::InputScaling::Standardize));
  }
}

TEST_CASE("The reference preset has the MPI code's values for the parallel trainers and CIFAR-10",
          "[training][preset]") {
  for (const auto kind : {TrainerKind::DataParallel, TrainerKind::Wasap, TrainerKind::Sequential}) {
    for (const auto data : {ReferenceDataset::FashionMnist, ReferenceDataset::Cifar10}) {
      if (kind == TrainerKind::Sequential && data != ReferenceDataset::Cifar10) continue;
      const auto p = tsnn::referencePreset(kind, data);
      CHECK(p.source == "parallel_training.py");
      CHECK(p.trainer.kind == kind);
      CHECK(p.trainer.sgd.weightDecay == 0);
      CHECK(p.trainer.importancePruning);
      CHECK(!p.trainer.pruning.due(220));
      CHECK(p.trainer.pruning.due(221));
      CHECK(!p.trainer.pruning.due(231));
      CHECK(p.trainer.pruning.due(241));
      CHECK(p.trainer.pruning.percentile == 10);
      CHECK(p.trainer.wasapLocalFraction == 0.3);
      CHECK(p.trainer.dropLastPartialBatch);
      if (data == ReferenceDataset::Cifar10) {
        CHECK(p.hidden == std::vector<long long>{4000, 1000, 4000});
        CHECK(p.network.alpha == 0.75);
        CHECK(p.trainer.augment.flip);
        CHECK(p.trainer.augment.maxShift == 3);
        CHECK(p.trainer.augment.maxRotation == 10);
        CHECK(p.trainer.augment.channels * p.trainer.augment.height * p.trainer.augment.width ==
              3072);
      } else {
        CHECK(p.network.alpha == 0.6);
        CHECK(!p.trainer.augment.enabled());
      }
    }
  }
  CHECK(tsnn::parseReferenceDataset("cifar10") == ReferenceDataset::Cifar10);
  CHECK_THROWS_WITH(tsnn::parseReferenceDataset("svhn"), Catch::Contains("'svhn'"));
  CHECK_THROWS_WITH(tsnn::parseInputScaling("minmax"), Catch::Contains("'minmax'"));
}

TEST_CASE("A network and trainer built from the reference preset train", "[training][preset]") {
  const auto train = tsnn::test::makeProblem<float>(300, 141);
  auto p = tsnn::referencePreset(TrainerKind::Sequential, ReferenceDataset::FashionMnist);
  p.network.sizes = {tsnn::test::kFeatures, 40, 40, tsnn::test::kClasses};
  p.network.epsilon = 4;
  p.trainer.batchSize = 32;
  p.trainer.epochs = 10;
  tsnn::Network<float> net(p.network);
  const auto h = tsnn::train(net, train, &train, p.trainer);
  REQUIRE(h.size() == 10);
  CHECK(h.back().trainLoss < h.front().trainLoss);
  CHECK(h.back().testAccuracy > 0.5);  // chance is 1/3
}
