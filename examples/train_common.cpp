// The training program shared by train_mnist and train_cifar10 (see train_common.hpp).

#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "train_common.hpp"
#include "tsnn/data/augment.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/data/standard_scaler.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/extras/confusion.hpp"
#include "tsnn/io/metrics_csv.hpp"
#include "tsnn/io/metrics_json.hpp"
#include "tsnn/extras/plots.hpp"
#include "tsnn/extras/progress.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/train.hpp"

namespace example {

namespace {

// The flags that determine a run's trajectory; a resumed run must repeat them. --epochs is not
// among them (a run may be extended), nor are output paths.
const std::vector<std::string>& trajectoryFlags(bool augmentation) {
  static const std::vector<std::string> base{
      "hidden",      "epsilon",          "zeta",        "alpha",        "lr",
      "momentum",    "weight-decay",     "dropout",     "batch",        "seed",
      "threads",     "trainer",          "workers",     "wasap-local",  "clip-norm",
      "on-nonfinite", "prune-start",     "prune-every", "prune-percentile", "limit-train",
      "regrow",      "zeta-schedule",    "density-allocation"};
  static const std::vector<std::string> images = [] {
    auto v = base;
    v.push_back("augment-shift");
    return v;
  }();
  return augmentation ? images : base;
}

// "name=value;..." of the trajectory flags (values as resolved: trainer and threads after auto).
std::string configString(const cli::Parser& p, const Defaults& d, const std::string& trainer,
                                int threads) {
  std::ostringstream os;
  for (const auto& name : trajectoryFlags(d.augmentation)) {
    std::string v = p.str(name);
    if (name == "trainer") v = trainer;
    if (name == "threads") v = std::to_string(threads);
    os << name << '=' << v << ';';
  }
  os << "importance-pruning=" << p.given("importance-pruning") << ';';
  os << "nesterov=" << p.given("nesterov") << ';';
  if (d.augmentation) os << "augment-flip=" << p.given("augment-flip") << ';';
  return os.str();
}

// The first flag whose value differs between two config strings, for the resume error.
std::string firstDifference(const std::string& saved, const std::string& now) {
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ';')) out.push_back(item);
    return out;
  };
  const auto a = split(saved), b = split(now);
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const std::string x = i < a.size() ? a[i] : "(none)", y = i < b.size() ? b[i] : "(none)";
    if (x != y) return "checkpoint has " + x + ", this run has " + y;
  }
  return {};
}

void printRecord(const tsnn::EpochRecord& r, long long samples) {
  std::printf(
      "epoch %3d  loss %.4f  train acc %.4f  test acc %.4f  train %.3fs  (%.0f samples/s)  "
      "SET %.3fs  nnz %lld",
      r.epoch, r.trainLoss, r.trainAccuracy, r.testAccuracy, r.epochSeconds,
      static_cast<double>(samples) / r.epochSeconds, r.evolveSeconds, r.nnz);
  if (r.meanStaleness > 0) std::printf("  staleness %.2f", r.meanStaleness);
  if (r.clippedBatches > 0) std::printf("  clipped %lld", r.clippedBatches);
  if (r.skippedBatches > 0) std::printf("  skipped %lld", r.skippedBatches);
  if (r.neuronsRemoved > 0)
    std::printf("  pruned %lld neurons (%lld left)", r.neuronsRemoved, r.hiddenNeurons);
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

int run(int argc, char** argv, const Defaults& d, const Loader& load) {
  cli::Parser p(d.program, d.description);
  p.option("data", "DIR", d.data, d.dataHelp);
  p.option("hidden", "N,N,...", d.hidden, "hidden layer sizes");
  p.option("epsilon", "E", "20", "SET sparsity: density eps*(n_in+n_out)/(n_in*n_out)");
  p.option("density-allocation", "er|erk", "er",
           "er: each layer at its own eps density (capped at 1); erk: one global budget of "
           "eps*sum(n_in+n_out) connections, dense layers' excess given to the others");
  p.option("zeta", "Z", "0.3", "fraction of weights replaced after each epoch, in [0,1)");
  p.option("zeta-schedule", "KIND", "constant",
           "constant, linear (zeta*(1-e/E)) or cosine (zeta*(1+cos(pi*e/E))/2)");
  p.option("regrow", "random|gradient", "random",
           "where new connections grow: at random (SET) or at the largest gradients (RigL)");
  p.option("alpha", "A", d.alpha, "All-ReLU slope magnitude (signs alternate -a,+a,...)");
  p.option("lr", "LR", "0.01", "learning rate");
  p.option("momentum", "M", "0.9", "momentum, in [0,1)");
  p.option("weight-decay", "WD", "0.0002", "decoupled weight decay per step, in [0,1)");
  p.option("dropout", "P", "0.3", "dropout rate on hidden layers, in [0,1)");
  p.option("batch", "B", "128", "minibatch size");
  p.option("epochs", "N", "10", "training epochs (with --resume: the total, done ones included)");
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
         "percentile of their layer");
  p.option("prune-start", "E", "200", "first epoch after which neurons are pruned");
  p.option("prune-every", "K", "10", "then every K epochs");
  p.option("prune-percentile", "P", "20", "percentile of importance at or below which to prune");
  if (d.augmentation) {
    p.flag("augment-flip", "mirror training images left-right with probability 1/2");
    p.option("augment-shift", "PX", "0", "shift training images by up to PX pixels (0: off)");
  }
  p.option("metrics", "FILE", "", "write per-epoch metrics CSV to FILE");
  p.option("log-json", "FILE", "", "write per-epoch records as JSON Lines to FILE");
  p.option("save", "FILE", "", "save a checkpoint to FILE at the end (and with --save-every)");
  p.option("save-every", "N", "0", "also save after every N epochs (needs --save)");
  p.option("resume", "FILE", "", "continue the run saved in checkpoint FILE, up to --epochs");
  p.option("plots", "DIR", "",
           "write learning_curves.png and connectivity.png to DIR after every epoch");
  p.flag("quiet", "no progress bar and no per-epoch lines; only the final result");
  p.option("limit-train", "N", "0", "use only the first N training samples (0: all)");
  p.flag("nesterov", "use Nesterov momentum");
  const std::string prog = d.program;
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
    auto parsed = [](const std::string& flag, const std::string& value, auto parse) {
      try {
        return parse(value);
      } catch (const tsnn::InvalidArgument& e) {
        throw cli::UsageError("--" + flag + ": " + e.what());
      }
    };
    net.allocation = parsed("density-allocation", p.str("density-allocation"),
                            [](const std::string& v) { return tsnn::parseDensityAllocation(v); });
    tr.zeta = p.real("zeta", 0, 1, true);
    tr.zetaSchedule = parsed("zeta-schedule", p.str("zeta-schedule"),
                             [](const std::string& v) { return tsnn::parseZetaSchedule(v); });
    tr.regrowth = parsed("regrow", p.str("regrow"),
                         [](const std::string& v) { return tsnn::parseRegrowth(v); });
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
    if (d.augmentation) {
      tr.augment.flip = p.given("augment-flip");
      tr.augment.maxShift = static_cast<int>(p.integer("augment-shift", 0, 1 << 20));
    }
    const long long limit = p.integer("limit-train", 0, 1ll << 40);
    const std::string metrics = p.str("metrics"), logJson = p.str("log-json");
    const std::string save = p.str("save"), resume = p.str("resume"), plots = p.str("plots");
    const int saveEvery = static_cast<int>(p.integer("save-every", 0, 1000000));
    if (saveEvery > 0 && save.empty()) throw cli::UsageError("--save-every needs --save FILE");
    const bool quiet = p.given("quiet");
    if (!resume.empty() && tr.kind == tsnn::TrainerKind::Wasap)
      throw cli::UsageError("--resume: the wasap trainer cannot resume a run");
    if (saveEvery > 0 && tr.kind == tsnn::TrainerKind::Wasap)
      throw cli::UsageError("--save-every: the wasap trainer saves only the final model");
    const std::string config = configString(p, d, trainer, threads);

    // Named references rather than a structured binding: C++17 lambdas cannot capture those.
    auto loaded = load(dir);
    tsnn::data::Datasetf& train = loaded.first;
    tsnn::data::Datasetf& test = loaded.second;
    if (limit > 0 && limit < train.size()) {
      train.features.conservativeResize(limit, Eigen::NoChange);
      train.labels.resize(static_cast<std::size_t>(limit));
    }
    // Scaling is fitted on the training set only; with --resume the same data gives the same
    // scaler, so it need not be stored in the checkpoint.
    tsnn::data::StandardScaler<float> scaler;
    scaler.fit(train.features);
    scaler.transform(train.features);
    scaler.transform(test.features);
    tsnn::Preprocessing prep;  // saved with the model, so predict scales its input the same way
    prep.mean = scaler.meanParameters();
    prep.scale = scaler.scaleParameters();
    int channels = d.channels, height = d.height, width = d.width;
    if (height == 0) {
      const auto side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(train.dim()))));
      height = width = side * side == train.dim() ? side : 0;
    }
    const bool images = height > 0 && static_cast<long long>(channels) * height * width == train.dim();
    tr.augment.channels = channels;
    tr.augment.height = height;
    tr.augment.width = width;

    net.sizes.push_back(train.dim());
    for (long long h : hidden) net.sizes.push_back(h);
    net.sizes.push_back(train.numClasses);
    tsnn::TrainingState state;
    tsnn::Networkf model = [&] {
      if (resume.empty()) return tsnn::Networkf(net);
      tsnn::Networkf m = tsnn::loadCheckpoint<float, std::int32_t>(resume, &state);
      const std::string diff = firstDifference(state.config, config);
      if (!diff.empty())
        throw cli::UsageError("--resume " + resume + ": flags differ from the saved run (" +
                              diff + ")");
      if (m.inputs() != train.dim() || m.outputs() < train.numClasses)
        throw cli::UsageError("--resume " + resume + ": the checkpoint's network takes " +
                              std::to_string(m.inputs()) + " inputs, the data has " +
                              std::to_string(train.dim()) + " features");
      return m;
    }();
    state.config = config;
    if (!quiet) {
      std::printf("data: %s (%lld train, %lld test, %lld features, %d classes)\n", dir.c_str(),
                  static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                  static_cast<long long>(train.dim()), train.numClasses);
      std::printf("%s", model.summary().c_str());
      std::printf("trainer: %s, threads: %d", trainer.c_str(), threads);
      if (tr.kind != tsnn::TrainerKind::Sequential)
        std::printf(", workers: %d", tr.workers > 0 ? tr.workers : threads);
      if (!resume.empty()) std::printf(", resumed at epoch %d", state.epoch);
      std::printf("\n");
      std::fflush(stdout);
    }
    if (!plots.empty()) std::filesystem::create_directories(plots);
    auto writePlots = [&](const std::vector<tsnn::EpochRecord>& history) {
      if (plots.empty()) return;
      const std::filesystem::path dirPath(plots);
      tsnn::writeLearningCurves((dirPath / "learning_curves.png").string(), history);
      if (images)
        tsnn::writeConnectivityHeatmap((dirPath / "connectivity.png").string(),
                                       tsnn::outgoingConnections(model.layer(0).weights()),
                                       channels, height, width);
    };

    tsnn::ProgressBar bar(stderr, !quiet);
    std::vector<tsnn::EpochRecord> history = state.history;
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
      if (!quiet) printRecord(r, static_cast<long long>(train.size()));
      if (!metrics.empty()) tsnn::saveMetricsCsv(metrics, history);
      if (!logJson.empty()) tsnn::saveMetricsJson(logJson, history);
      if (saveEvery > 0 && r.epoch % saveEvery == 0) {
        tsnn::saveCheckpoint(save, model, state, prep);
        if (!quiet) std::printf("saved %s after epoch %d\n", save.c_str(), r.epoch);
      }
      writePlots(history);
    };
    history = tsnn::train(model, train, &test, tr, cb, &state);
    if (!save.empty()) {
      tsnn::saveCheckpoint(save, model, state, prep);
      if (!quiet) std::printf("saved %s after epoch %d\n", save.c_str(), state.epoch);
    }
    // The files describe the whole run, also when nothing was left to train after a resume.
    if (!metrics.empty()) tsnn::saveMetricsCsv(metrics, history);
    if (!logJson.empty()) tsnn::saveMetricsJson(logJson, history);
    writePlots(history);

    const auto predicted = model.predict(test.features, tr.kernelThreads());
    const tsnn::ConfusionMatrix cm = tsnn::confusionMatrix(test.labels, predicted, model.outputs());
    if (!quiet) std::printf("\nconfusion matrix on the test set (rows: true class)\n%s",
                            cm.format(d.classNames).c_str());
    std::printf("final test accuracy %.4f after %d epochs (%lld hidden neurons, %lld connections)\n",
                cm.accuracy(), tr.epochs, model.hiddenNeurons(), model.nonZeros());
    return 0;
  } catch (const cli::UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.what());
    return 1;
  }
}

}  // namespace example
