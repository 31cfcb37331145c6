// Trains a truly sparse MLP on MNIST or Fashion-MNIST (IDX files, raw or gzip) with SET.
// Defaults reproduce the paper's Fashion-MNIST setting: 784-1000-1000-1000-10, eps 20, All-ReLU
// with a = 0.6, dropout 0.3, SGD lr 0.01 momentum 0.9 weight decay 2e-4, batch 128, zeta 0.3.

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "cli.hpp"
#include "tsnn/data/idx.hpp"
#include "tsnn/data/standard_scaler.hpp"
#include "tsnn/io/metrics_csv.hpp"
#include "tsnn/io/progress.hpp"
#include "tsnn/training/network.hpp"
#include "tsnn/training/train.hpp"

#ifndef TSNN_DEFAULT_DATA_DIR
#define TSNN_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#endif

int main(int argc, char** argv) {
  cli::Parser p("train_mnist",
                "Train a truly sparse MLP (SET + All-ReLU) on MNIST or Fashion-MNIST.");
  p.option("data", "DIR", TSNN_DEFAULT_DATA_DIR,
           "directory with train-/t10k- images and labels (IDX, raw or .gz)");
  p.option("hidden", "N,N,...", "1000,1000,1000", "hidden layer sizes");
  p.option("epsilon", "E", "20", "SET sparsity: density eps*(n_in+n_out)/(n_in*n_out)");
  p.option("zeta", "Z", "0.3", "fraction of weights SET replaces after each epoch, in [0,1)");
  p.option("alpha", "A", "0.6", "All-ReLU slope magnitude (signs alternate -a,+a,...)");
  p.option("lr", "LR", "0.01", "learning rate");
  p.option("momentum", "M", "0.9", "momentum, in [0,1)");
  p.option("weight-decay", "WD", "0.0002", "decoupled weight decay per step, in [0,1)");
  p.option("dropout", "P", "0.3", "dropout rate on hidden layers, in [0,1)");
  p.option("batch", "B", "128", "minibatch size");
  p.option("epochs", "N", "10", "training epochs");
  p.option("seed", "S", "1", "random seed (topology, weights, shuffling, dropout)");
  p.option("threads", "T", "0", "OpenMP threads (0: OpenMP default)");
  p.option("trainer", "KIND", "auto",
           "sequential (parallel kernels), data-parallel (shards per thread), wasap, or auto: "
           "data-parallel with more than one thread, else sequential");
  p.option("workers", "N", "0", "data-parallel shards or WASAP workers (0: the thread count)");
  p.option("wasap-local", "F", "0.3", "WASAP: fraction of epochs trained locally at the end");
  p.option("clip-norm", "C", "0", "clip each minibatch gradient to global L2 norm C (0: off)");
  p.option("on-nonfinite", "POLICY", "throw",
           "throw: stop at a NaN/inf loss or gradient; skip: drop that update and halve the "
           "learning rate (stops after 10 in a row)");
  p.flag("importance-pruning",
         "remove hidden neurons whose importance (sum of |incoming weights|) is at or below a "
         "percentile of their layer (sequential and data-parallel trainers)");
  p.option("prune-start", "E", "200", "first epoch after which neurons are pruned");
  p.option("prune-every", "K", "10", "then every K epochs");
  p.option("prune-percentile", "P", "20", "percentile of importance at or below which to prune");
  p.option("metrics", "FILE", "", "write per-epoch metrics CSV to FILE");
  p.option("limit-train", "N", "0", "use only the first N training samples (0: all)");
  p.flag("nesterov", "use Nesterov momentum");
  try {
    if (!p.parse(argc, argv)) return 0;
    tsnn::NetworkOptions net;
    tsnn::TrainerOptions tr;
    const std::string dir = p.str("data");
    const auto hidden = p.integers("hidden", 1, 100000000);
    net.epsilon = p.real("epsilon", 1e-9, 1e9);
    net.alpha = p.real("alpha", 0, 1e3);
    net.dropout = p.real("dropout", 0, 1, true);
    net.seed = static_cast<std::uint64_t>(p.integer("seed", 0, (1ll << 62)));
    tr.zeta = p.real("zeta", 0, 1, true);
    tr.sgd.learningRate = p.real("lr", 1e-12, 1e3);
    tr.sgd.momentum = p.real("momentum", 0, 1, true);
    tr.sgd.weightDecay = p.real("weight-decay", 0, 1, true);
    tr.sgd.nesterov = p.given("nesterov");
    tr.batchSize = static_cast<int>(p.integer("batch", 1, 1 << 20));
    tr.epochs = static_cast<int>(p.integer("epochs", 0, 1000000));
    tr.threads = static_cast<int>(p.integer("threads", 0, 4096));
    tr.seed = net.seed;
    std::string trainer = p.str("trainer");
    const int threads = tr.threads > 0 ? tr.threads : tsnn::maxThreads();
    if (trainer == "auto") trainer = threads > 1 ? "data-parallel" : "sequential";
    try {
      tr.kind = tsnn::parseTrainer(trainer);
    } catch (const tsnn::InvalidArgument&) {
      throw cli::UsageError("--trainer: '" + trainer +
                            "' is not one of auto, sequential, data-parallel, wasap");
    }
    tr.workers = static_cast<int>(p.integer("workers", 0, 4096));
    tr.wasapLocalFraction = p.real("wasap-local", 0, 1);
    tr.clipNorm = p.real("clip-norm", 0, 1e300);
    tr.importancePruning = p.given("importance-pruning");
    tr.pruning.startEpoch = static_cast<int>(p.integer("prune-start", 1, 1000000));
    tr.pruning.period = static_cast<int>(p.integer("prune-every", 1, 1000000));
    tr.pruning.percentile = p.real("prune-percentile", 0, 100, true);
    const std::string policy = p.str("on-nonfinite");
    if (policy == "throw")
      tr.onNonFinite = tsnn::NonFinitePolicy::Throw;
    else if (policy == "skip")
      tr.onNonFinite = tsnn::NonFinitePolicy::SkipBatch;
    else
      throw cli::UsageError("--on-nonfinite: '" + policy + "' is not one of throw, skip");
    const long long limit = p.integer("limit-train", 0, 1ll << 40);
    const std::string metrics = p.str("metrics");

    auto [train, test] = tsnn::data::loadMnist<float>(dir);
    if (limit > 0 && limit < train.size()) {
      train.features.conservativeResize(limit, Eigen::NoChange);
      train.labels.resize(static_cast<std::size_t>(limit));
    }
    tsnn::data::StandardScaler<float> scaler;
    scaler.fit(train.features);
    scaler.transform(train.features);
    scaler.transform(test.features);

    net.sizes.push_back(train.dim());
    for (long long h : hidden) net.sizes.push_back(h);
    net.sizes.push_back(train.numClasses);
    tsnn::Networkf model(net);
    std::printf("data: %s (%lld train, %lld test, %lld features, %d classes)\n", dir.c_str(),
                static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                static_cast<long long>(train.dim()), train.numClasses);
    std::printf("%s", model.summary().c_str());
    std::printf("trainer: %s, threads: %d", trainer.c_str(), threads);
    if (tr.kind != tsnn::TrainerKind::Sequential)
      std::printf(", workers: %d", tr.workers > 0 ? tr.workers : threads);
    std::printf("\n");
    std::fflush(stdout);

    tsnn::ProgressBar bar;
    std::vector<tsnn::EpochRecord> history;
    tsnn::TrainerCallbacks cb;
    int barEpoch = 0;
    cb.onBatch = [&](int epoch, long long done, long long total) {
      if (epoch != barEpoch) {
        barEpoch = epoch;
        bar.start("epoch " + std::to_string(epoch) + "/" + std::to_string(tr.epochs));
      }
      bar.update(done, total);
    };
    cb.onEpoch = [&](const tsnn::EpochRecord& r) {
      bar.finish();
      history.push_back(r);
      std::printf(
          "epoch %3d  loss %.4f  train acc %.4f  test acc %.4f  train %.3fs  (%.0f samples/s)  "
          "SET %.3fs  nnz %lld",
          r.epoch, r.trainLoss, r.trainAccuracy, r.testAccuracy, r.epochSeconds,
          static_cast<double>(train.size()) / r.epochSeconds, r.evolveSeconds, r.nnz);
      if (r.meanStaleness > 0) std::printf("  staleness %.2f", r.meanStaleness);
      if (r.clippedBatches > 0) std::printf("  clipped %lld", r.clippedBatches);
      if (r.skippedBatches > 0) std::printf("  skipped %lld", r.skippedBatches);
      if (r.neuronsRemoved > 0)
        std::printf("  pruned %lld neurons (%lld left)", r.neuronsRemoved, r.hiddenNeurons);
      std::printf("\n");
      std::fflush(stdout);
      if (!metrics.empty()) tsnn::saveMetricsCsv(metrics, history);
    };
    tsnn::train(model, train, &test, tr, cb);
    return 0;
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "train_mnist: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_mnist: %s\n", e.what());
    return 1;
  }
}
