// The training program shared by train_mnist and train_cifar10 (see train_common.hpp).

#include "train_common.hpp"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "command_line.hpp"
#include "tsnn/data/augment.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/data/standard_scaler.hpp"
#include "tsnn/extras/confusion.hpp"
#include "tsnn/extras/plots.hpp"
#include "tsnn/extras/progress.hpp"
#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/io/metrics_csv.hpp"
#include "tsnn/io/metrics_json.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/preset.hpp"
#include "tsnn/training/train.hpp"

namespace example {

namespace {

// The signal StopSignals last caught (0: none); written only by the handler.
volatile std::sig_atomic_t g_stopSignal = 0;

extern "C" void recordStopSignal(int sig) { g_stopSignal = sig; }

// Catches SIGINT and SIGTERM while it lives, once each (SA_RESETHAND: a second one takes the
// default action, so a run that does not stop can still be killed), and restores the previous
// handlers when it goes.
class StopSignals {
 public:
  StopSignals() {
    g_stopSignal = 0;
    struct sigaction sa {};
    sa.sa_handler = recordStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &m_int);
    sigaction(SIGTERM, &sa, &m_term);
  }
  ~StopSignals() {
    sigaction(SIGINT, &m_int, nullptr);
    sigaction(SIGTERM, &m_term, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  int received() const { return g_stopSignal; }

 private:
  struct sigaction m_int {
  }, m_term{};
};

}  // namespace

namespace {

// The program's settings: what the flags and the --config file say, converted. Each flag's text
// stays in the CLI::App (for --write-config and the checkpoint's config string).
struct Settings {
  std::string data, hidden;
  tsnn::NetworkOptions net;
  tsnn::TrainerOptions tr;
  /// --lr; absent, the optimiser's own default learning rate applies (0.01 for SGD, 1e-3 for
  /// Adam).
  std::optional<double> lr;
  std::string trainer;
  std::string metrics, logJson, save, resume, plots, writeConfig;
  int saveEvery = 0;
  double checkpointMinutes = 0;
  long long checkpointBatches = 0;
  long long limit = 0;
  long long limitTest = 0;
  bool quiet = false;
  bool bf16 = false;
  std::string preset, dataset;
  tsnn::InputScaling scaling = tsnn::InputScaling::Standardize;
  /// With --preset: the default text of each flag the preset sets ("--zeta" -> "0.3"); a flag
  /// given on the command line or in a --config file still wins.
  std::map<std::string, std::string> presetDefaults;
};

// Declares every flag of the program on \p app, bound to \p s.
void declare(CLI::App& app, Settings& s, const Defaults& d) {
  auto text = [&app](const std::string& name, const std::string& meta, std::string& target,
                     const std::string& def, const std::string& help) {
    return addValue(app, name, meta, def, help, [&target](const std::string& v) { target = v; });
  };
  // The default of a flag a preset may set: the preset's text, else the program's own.
  auto def = [&s](const std::string& flag, const std::string& own) {
    const auto it = s.presetDefaults.find(flag);
    return it == s.presetDefaults.end() ? own : it->second;
  };
  // A boolean flag's preset value is its starting value and the default --write-config writes
  // (a flag can only switch on: a preset's true cannot be turned off).
  auto flagDefault = [&s](CLI::Option* opt, bool& target) {
    const auto it = s.presetDefaults.find(opt->get_name());
    if (it == s.presetDefaults.end()) return;
    target = it->second == "true";
    opt->default_str(it->second);
  };
  text("--data", "DIR", s.data, d.data, d.dataHelp);
  text("--preset", "NAME", s.preset, "none",
       "none, or reference: every default of the authors' code for the trainer and data set "
       "(README: \"The reference preset\"); flags given still win")
      ->check(CLI::IsMember({"none", "reference"}).description(""));
  if (d.datasets.size() > 1) {
    std::string names;
    for (const auto& n : d.datasets) names += (names.empty() ? "" : ", ") + n;
    text("--dataset", "NAME", s.dataset, d.datasets.front(),
         "which data set --data holds (" + names + "): the reference preset's input scaling")
        ->check(CLI::IsMember(d.datasets).description(""));
  } else {
    s.dataset = d.datasets.front();
  }
  addValue(app, "--scaling", "standard|unit", def("--scaling", "standard"),
           "input scaling: standard (per-feature mean and deviation of the training set) or "
           "unit (x/255)",
           [&s](const std::string& v) { s.scaling = tsnn::parseInputScaling(v); })
      ->check(CLI::IsMember({"standard", "unit"}).description(""));
  text("--hidden", "N,N,...", s.hidden, def("--hidden", d.hidden), "hidden layer sizes")
      ->check(integerList(1, 100000000));
  addReal(app, "--epsilon", "E", s.net.epsilon, def("--epsilon", "20"), 1e-9, 1e9, false,
          "SET sparsity: density eps*(n_in+n_out)/(n_in*n_out)");
  addValue(app, "--init", "RULE", "he-uniform",
           "initial and regrown weights: he-uniform or xavier-uniform over the dense fans (the "
           "reference's), he-uniform-sparse or xavier-uniform-sparse over each neuron's real "
           "fan-in (keeps wide layers' activations at scale), or normal",
           [&s](const std::string& v) { s.net.init = tsnn::parseWeightInit(v); })
      ->check(acceptedBy([](const std::string& v) { tsnn::parseWeightInit(v); },
                         "he-uniform, xavier-uniform, he-uniform-sparse, xavier-uniform-sparse, "
                         "normal"));
  addValue(app, "--density-allocation", "er|erk", "er",
           "er: each layer at its own eps density (capped at 1); erk: one global budget of "
           "eps*sum(n_in+n_out) connections, dense layers' excess given to the others",
           [&s](const std::string& v) { s.net.allocation = tsnn::parseDensityAllocation(v); })
      ->check(acceptedBy([](const std::string& v) { tsnn::parseDensityAllocation(v); }, "er, erk"));
  addReal(app, "--zeta", "Z", s.tr.zeta, def("--zeta", "0.3"), 0, 1, true,
          "fraction of weights replaced after each epoch, in [0,1)");
  addValue(app, "--zeta-schedule", "KIND", "constant",
           "constant, linear (zeta*(1-e/E)) or cosine (zeta*(1+cos(pi*e/E))/2)",
           [&s](const std::string& v) { s.tr.zetaSchedule = tsnn::parseZetaSchedule(v); })
      ->check(acceptedBy([](const std::string& v) { tsnn::parseZetaSchedule(v); },
                         "constant, linear, cosine"));
  addValue(app, "--regrow", "random|gradient", "random",
           "where new connections grow: at random (SET) or at the largest gradients (RigL)",
           [&s](const std::string& v) { s.tr.regrowth = tsnn::parseRegrowth(v); })
      ->check(acceptedBy([](const std::string& v) { tsnn::parseRegrowth(v); }, "random, gradient"));
  addReal(app, "--alpha", "A", s.net.alpha, def("--alpha", d.alpha), 0, 1e3, false,
          "All-ReLU slope magnitude (signs alternate -a,+a,...)");
  addValue(
      app, "--optimizer", "sgd|adam", "sgd",
      "sgd (momentum, optional Nesterov, decoupled weight decay) or adam (AdamW: --weight-decay "
      "given is its decoupled decay, else 0; --momentum and --nesterov are SGD's)",
      [&s](const std::string& v) { s.tr.optimizer = tsnn::parseOptimizer(v); })
      ->check(acceptedBy([](const std::string& v) { tsnn::parseOptimizer(v); }, "sgd, adam"));
  // No default text: without --lr the optimiser's own default applies, and the settings record
  // that --lr was not given.
  app.add_option_function<std::string>(
         "--lr", [&s](const std::string& v) { s.lr = toReal(v); },
         "learning rate (default: the optimiser's own, " +
             shortestText(tsnn::SgdOptions{}.learningRate) + " for SGD, " +
             shortestText(tsnn::AdamOptions{}.learningRate) + " for Adam)")
      ->type_name("LR")
      ->check(realIn(1e-12, 1e3));
  addReal(app, "--momentum", "M", s.tr.sgd.momentum, def("--momentum", "0.9"), 0, 1, true,
          "momentum, in [0,1)");
  addReal(app, "--weight-decay", "WD", s.tr.sgd.weightDecay, def("--weight-decay", "0.0002"), 0, 1,
          true, "decoupled weight decay per step, in [0,1)");
  addReal(app, "--dropout", "P", s.net.dropout, def("--dropout", "0.3"), 0, 1, true,
          "dropout rate on hidden layers, in [0,1)");
  addInteger(app, "--batch", "B", s.tr.batchSize, def("--batch", "128"), 1, 1 << 20,
             "minibatch size");
  flagDefault(app.add_flag("--drop-last", s.tr.dropLastPartialBatch,
                           "skip each epoch's last minibatch when it is smaller than --batch")
                  ->disable_flag_override(),
              s.tr.dropLastPartialBatch);
  addInteger(app, "--epochs", "N", s.tr.epochs, "10", 0, 1000000,
             "training epochs (with --resume: the total, done ones included)");
  addInteger(app, "--seed", "S", s.net.seed, "1", 0, 1ll << 62,
             "random seed (topology, weights, shuffling, dropout)");
  addInteger(app, "--threads", "T", s.tr.threads, "0", 0, 4096,
             "OpenMP threads (0: OpenMP default)");
  text("--trainer", "KIND", s.trainer, "auto",
       "sequential (parallel kernels), data-parallel (shards per thread), wasap, or auto: "
       "data-parallel with more than one thread and no --bf16, else sequential")
      ->check(acceptedBy(
          [](const std::string& v) {
            if (v != "auto") tsnn::parseTrainer(v);
          },
          "auto, sequential, data-parallel, wasap"));
  addInteger(app, "--workers", "N", s.tr.workers, "0", 0, 4096,
             "data-parallel shards or WASAP workers (0: the thread count)");
  addReal(app, "--wasap-local", "F", s.tr.wasapLocalFraction, def("--wasap-local", "0.3"), 0, 1,
          false, "WASAP: fraction of epochs trained locally at the end");
  app.add_flag("--bf16", s.bf16,
               "store the hidden layers' activations and deltas in bfloat16 (weights, gradients "
               "and arithmetic stay float): half the activation memory and the bytes each "
               "connection-sample gathers; sequential and wasap trainers only")
      ->disable_flag_override();
  addReal(app, "--lr-fan-in", "K", s.tr.fanInReference, "0", 0, 1e300, false,
          "per-layer learning rates lr*min(1,K/mean real fan-in), 0: off; 1000 keeps the default "
          "network's rates and tames a wide network's dense output layer");
  addReal(app, "--clip-norm", "C", s.tr.clipNorm, "0", 0, 1e300, false,
          "clip each minibatch gradient to global L2 norm C (0: off)");
  addValue(app, "--on-nonfinite", "POLICY", "throw",
           "throw: stop at a NaN/inf loss or gradient; skip: drop that update and halve the "
           "learning rate (stops after 10 in a row)",
           [&s](const std::string& v) {
             s.tr.onNonFinite =
                 v == "skip" ? tsnn::NonFinitePolicy::SkipBatch : tsnn::NonFinitePolicy::Throw;
           })
      ->check(CLI::IsMember({"throw", "skip"}).description(""));
  flagDefault(
      app.add_flag(
             "--importance-pruning", s.tr.importancePruning,
             "remove hidden neurons whose importance (sum of |incoming weights|) is at or below "
             "a percentile of their layer")
          ->disable_flag_override(),
      s.tr.importancePruning);
  addInteger(app, "--prune-start", "E", s.tr.pruning.startEpoch, def("--prune-start", "200"), 1,
             1000000, "first epoch after which neurons are pruned");
  addInteger(app, "--prune-every", "K", s.tr.pruning.period, def("--prune-every", "10"), 1, 1000000,
             "then every K epochs");
  addReal(app, "--prune-percentile", "P", s.tr.pruning.percentile, def("--prune-percentile", "20"),
          0, 100, true, "percentile of importance at or below which to prune");
  if (d.augmentation) {
    flagDefault(app.add_flag("--augment-flip", s.tr.augment.flip,
                             "mirror training images left-right with probability 1/2")
                    ->disable_flag_override(),
                s.tr.augment.flip);
    addInteger(app, "--augment-shift", "PX", s.tr.augment.maxShift, def("--augment-shift", "0"), 0,
               1 << 20, "shift training images by up to PX pixels (0: off)");
    addReal(app, "--augment-rotate", "DEG", s.tr.augment.maxRotation, def("--augment-rotate", "0"),
            0, 180, false, "rotate training images by up to DEG degrees (0: off)");
  }
  text("--metrics", "FILE", s.metrics, "", "write per-epoch metrics CSV to FILE");
  text("--log-json", "FILE", s.logJson, "", "write per-epoch records as JSON Lines to FILE");
  text("--save", "FILE", s.save, "",
       "save a checkpoint to FILE at the end (and with --save-every)");
  addInteger(app, "--save-every", "N", s.saveEvery, "0", 0, 1000000,
             "also save after every N epochs (needs --save)");
  addReal(app, "--checkpoint-minutes", "M", s.checkpointMinutes, "0", 0, 1e6, false,
          "also save to --save every M minutes of training, inside epochs (0: off)");
  addInteger(app, "--checkpoint-batches", "K", s.checkpointBatches, "0", 0, 1ll << 40,
             "also save to --save every K minibatches, inside epochs (0: off)");
  text("--resume", "FILE", s.resume, "",
       "continue the run saved in checkpoint FILE, up to --epochs");
  text("--plots", "DIR", s.plots, "",
       "write learning_curves.png and connectivity.png to DIR after every epoch");
  app.add_flag("--quiet", s.quiet, "no progress bar and no per-epoch lines; only the final result")
      ->disable_flag_override();
  addInteger(app, "--limit-train", "N", s.limit, "0", 0, 1ll << 40,
             "use only the first N training samples (0: all)");
  addInteger(app, "--limit-test", "N", s.limitTest, "0", 0, 1ll << 40,
             "evaluate on the first N test samples only (0: all)");
  app.add_flag("--nesterov", s.tr.sgd.nesterov, "use Nesterov momentum")->disable_flag_override();
  app.set_config("--config", "",
                 "read the settings from a TOML file (as --write-config writes it); flags given "
                 "on the command line take precedence")
      ->type_name("FILE");
  app.add_option("--write-config", s.writeConfig,
                 "write every setting (defaults included) to a TOML file, then run; the file is "
                 "replaced atomically, before any data is read")
      ->type_name("FILE")
      ->configurable(false);
}

// The flags that determine a run's trajectory; a resumed run must repeat them. --epochs is not
// among them (a run may be extended), nor are output paths.
const std::vector<std::string>& trajectoryFlags(bool augmentation) {
  static const std::vector<std::string> base{"hidden",
                                             "epsilon",
                                             "zeta",
                                             "alpha",
                                             "lr",
                                             "momentum",
                                             "weight-decay",
                                             "dropout",
                                             "batch",
                                             "seed",
                                             "threads",
                                             "trainer",
                                             "workers",
                                             "wasap-local",
                                             "clip-norm",
                                             "on-nonfinite",
                                             "prune-start",
                                             "prune-every",
                                             "prune-percentile",
                                             "limit-train",
                                             "regrow",
                                             "zeta-schedule",
                                             "density-allocation"};
  static const std::vector<std::string> images = [] {
    auto v = base;
    v.push_back("augment-shift");
    return v;
  }();
  return augmentation ? images : base;
}

// "name=value;..." of the trajectory flags, the text of each as given (or its default; the
// learning rate's is the optimiser default in effect), trainer and threads as resolved from auto.
// Checkpoints store it, and a resumed run must produce the same string.
std::string configString(const CLI::App& app, const Settings& s, const Defaults& d,
                         const std::string& trainer, int threads) {
  std::ostringstream os;
  for (const auto& name : trajectoryFlags(d.augmentation)) {
    std::string v = optionText(app, "--" + name);
    if (name == "trainer") v = trainer;
    if (name == "threads") v = std::to_string(threads);
    os << name << '=' << v << ';';
  }
  os << "importance-pruning=" << s.tr.importancePruning << ';';
  os << "nesterov=" << s.tr.sgd.nesterov << ';';
  // Only when not the default, so that the config strings of SGD runs saved before the flag
  // existed still match.
  if (s.tr.optimizer != tsnn::OptimizerKind::Sgd)
    os << "optimizer=" << tsnn::optimizerName(s.tr.optimizer) << ';';
  if (d.augmentation) os << "augment-flip=" << s.tr.augment.flip << ';';
  // Likewise only when not the default: the settings added with the reference preset.
  if (s.preset != "none") os << "preset=" << s.preset << ';';
  if (s.tr.dropLastPartialBatch) os << "drop-last=1;";
  if (s.scaling != tsnn::InputScaling::Standardize) os << "scaling=unit;";
  if (s.tr.fanInReference != 0) os << "lr-fan-in=" << optionText(app, "--lr-fan-in") << ';';
  if (s.net.init != tsnn::WeightInit::HeUniform)
    os << "init=" << tsnn::weightInitName(s.net.init) << ';';
  if (s.tr.augment.maxRotation != 0)
    os << "augment-rotate=" << optionText(app, "--augment-rotate") << ';';
  if (s.bf16) os << "bf16=1;";
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

// --threads as run: 0 is the OpenMP default.
int resolvedThreads(const Settings& s) {
  return s.tr.threads > 0 ? s.tr.threads : tsnn::maxThreads();
}

// --trainer as run: auto is data-parallel with more than one thread, else sequential; with --bf16
// always sequential (the data-parallel trainer has no bfloat16 form).
std::string resolvedTrainer(const Settings& s) {
  if (s.trainer != "auto") return s.trainer;
  return resolvedThreads(s) > 1 && !s.bf16 ? "data-parallel" : "sequential";
}

// The reference preset (tsnn::referencePreset()) for the trainer and data set of \p s, as the
// default text of each flag it sets.
std::map<std::string, std::string> referenceDefaults(const Settings& s, const Defaults& d) {
  const tsnn::ReferencePreset p = tsnn::referencePreset(tsnn::parseTrainer(resolvedTrainer(s)),
                                                        tsnn::parseReferenceDataset(s.dataset));
  std::string hidden;
  for (long long h : p.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(h);
  const tsnn::TrainerOptions& t = p.trainer;
  auto flag = [](bool on) { return std::string(on ? "true" : "false"); };
  std::map<std::string, std::string> out{
      {"--hidden", hidden},
      {"--epsilon", shortestText(p.network.epsilon)},
      {"--alpha", shortestText(p.network.alpha)},
      {"--dropout", shortestText(p.network.dropout)},
      {"--batch", std::to_string(t.batchSize)},
      {"--drop-last", flag(t.dropLastPartialBatch)},
      {"--momentum", shortestText(t.sgd.momentum)},
      {"--weight-decay", shortestText(t.sgd.weightDecay)},
      {"--zeta", shortestText(t.zeta)},
      {"--importance-pruning", flag(t.importancePruning)},
      {"--prune-start", std::to_string(t.pruning.startEpoch)},
      {"--prune-every", std::to_string(t.pruning.period)},
      {"--prune-percentile", shortestText(t.pruning.percentile)},
      {"--wasap-local", shortestText(t.wasapLocalFraction)},
      {"--scaling", p.scaling == tsnn::InputScaling::DivideBy255 ? "unit" : "standard"}};
  if (d.augmentation) {
    out["--augment-flip"] = flag(t.augment.flip);
    out["--augment-shift"] = std::to_string(t.augment.maxShift);
    out["--augment-rotate"] = shortestText(t.augment.maxRotation);
  }
  // The reference's learning rate 0.01 and its optimiser are tsnn's SGD defaults already.
  return out;
}

// A file the run writes (FILE of \p flag) is checked before anything is read or trained, so that
// a long run does not lose its result at its end to a destination that never was writable.
void checkDestination(const std::string& flag, const std::string& path) {
  try {
    tsnn::checkWritableDestination(path, flag.c_str());
  } catch (const tsnn::IoError& e) {
    std::string why = e.what();
    if (why.rfind("tsnn: ", 0) == 0) why.erase(0, 6);
    throw UsageError(why);
  }
}

// --plots DIR: the directory is made now (with its parents), and must take the plots' files.
void checkPlotsDirectory(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UsageError("--plots: cannot create directory '" + dir + "': " + ec.message());
  if (!std::filesystem::is_directory(dir, ec))
    throw UsageError("--plots: '" + dir + "' exists and is not a directory");
  checkDestination("--plots", (std::filesystem::path(dir) / "learning_curves.png").string());
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

// The memory report printed before training, for the trainer as configured: the sequential
// trainer's two reused delta buffers, the data-parallel trainer's per-layer deltas over its
// shards, and for WASAP one gradient, workspace and model copy per worker (the copies are
// named, not counted).
// The workers of the data-parallel and WASAP trainers: --workers, else one per thread.
int resolvedWorkers(const tsnn::TrainerOptions& tr, int threads) {
  return tr.workers > 0 ? tr.workers : threads;
}

std::string memoryReport(const tsnn::Networkf& model, const tsnn::TrainerOptions& tr, int threads) {
  tsnn::MemoryPlan plan;
  plan.batch = tr.batchSize;
  std::size_t params = static_cast<std::size_t>(model.nonZeros());
  for (std::size_t l = 0; l < model.numLayers(); ++l)
    params += static_cast<std::size_t>(model.layer(l).outputs());
  plan.optimizerStateBytes = tsnn::optimizerSlots(tr.optimizer) * params * sizeof(float);
  plan.perLayerDeltas = tr.kind != tsnn::TrainerKind::Sequential;
  const int workers = resolvedWorkers(tr, threads);
  if (tr.kind == tsnn::TrainerKind::Wasap) {
    plan.gradientCopies = workers;
    plan.batch = tr.batchSize * workers;
  }
  std::string text = model.memoryReport(plan).toString();
  if (tr.kind == tsnn::TrainerKind::Wasap)
    text += "  (wasap: plus a copy of the model and its optimiser state per worker, " +
            std::to_string(workers) + " workers)\n";
  return text;
}

}  // namespace

int run(int argc, char** argv, const Defaults& d, const Loader& load) {
  auto parse = [&](std::unique_ptr<CLI::App>& app, Settings& s) {
    app = std::make_unique<CLI::App>(d.description, d.program);
    return parseCommandLine(
        *app, s, [&d](CLI::App& a, Settings& st) { declare(a, st, d); }, argc, argv);
  };
  // The app's options are bound to the Settings they were declared with, so both live to the end.
  std::unique_ptr<CLI::App> appPtr;
  Settings plain, withPreset;
  int status = parse(appPtr, plain);
  if (status >= 0) return status;
  const bool preset = plain.preset == "reference";
  if (preset) {
    // The preset's values are defaults: parse again with them, so that every flag given (on the
    // command line or in a --config file) still wins and --write-config writes what runs.
    withPreset.presetDefaults = referenceDefaults(plain, d);
    status = parse(appPtr, withPreset);
    if (status >= 0) return status;
  }
  Settings& s = preset ? withPreset : plain;
  CLI::App& app = *appPtr;
  const std::string prog = d.program;
  try {
    tsnn::NetworkOptions net = s.net;
    tsnn::TrainerOptions tr = s.tr;
    const std::string dir = s.data;
    const auto hidden = toIntegers(s.hidden);
    if (tr.optimizer == tsnn::OptimizerKind::Adam) {
      // Adam keeps its own defaults; a --weight-decay given (on the command line or in a
      // --config file) becomes AdamW's decoupled decay.
      if (app.count("--weight-decay") > 0) tr.adam.weightDecay = tr.sgd.weightDecay;
      if (s.lr) tr.adam.learningRate = *s.lr;
    } else if (s.lr) {
      tr.sgd.learningRate = *s.lr;
    }
    tr.seed = net.seed;
    const int threads = resolvedThreads(s);
    const std::string trainer = resolvedTrainer(s);
    tr.kind = tsnn::parseTrainer(trainer);
    if (s.bf16) {
      if (tr.kind == tsnn::TrainerKind::DataParallel)
        throw UsageError(
            "--bf16: the data-parallel trainer has no bfloat16 form; use --trainer sequential "
            "(its kernels use every thread) or wasap");
      net.activationStorage = tsnn::ActivationStorage::BFloat16;
    }
    const long long limit = s.limit;
    const std::string &metrics = s.metrics, &logJson = s.logJson;
    const std::string &save = s.save, &resume = s.resume, &plots = s.plots;
    const int saveEvery = s.saveEvery;
    if (saveEvery > 0 && save.empty()) throw UsageError("--save-every needs --save FILE");
    const double checkpointMinutes = s.checkpointMinutes;
    const long long checkpointBatches = s.checkpointBatches;
    if ((checkpointMinutes > 0 || checkpointBatches > 0) && save.empty())
      throw UsageError("--checkpoint-minutes and --checkpoint-batches need --save FILE");
    if ((checkpointMinutes > 0 || checkpointBatches > 0) && tr.kind == tsnn::TrainerKind::Wasap)
      throw UsageError(
          "--checkpoint-minutes, --checkpoint-batches: the wasap trainer saves only the final "
          "model");
    const bool quiet = s.quiet;
    if (!resume.empty() && tr.kind == tsnn::TrainerKind::Wasap)
      throw UsageError("--resume: the wasap trainer cannot resume a run");
    if (saveEvery > 0 && tr.kind == tsnn::TrainerKind::Wasap)
      throw UsageError("--save-every: the wasap trainer saves only the final model");
    if (!save.empty()) checkDestination("--save", save);
    if (!metrics.empty()) checkDestination("--metrics", metrics);
    if (!logJson.empty()) checkDestination("--log-json", logJson);
    if (!plots.empty()) checkPlotsDirectory(plots);
    // The learning rate in effect, as text: what --write-config writes and the checkpoint's
    // config string holds when --lr is not given, so that both fix the run exactly.
    if (!s.lr) app.get_option("--lr")->default_str(shortestText(tr.learningRate()));
    const std::string config = configString(app, s, d, trainer, threads);
    // Written before any data is read, so a file exists for every run that starts.
    if (!s.writeConfig.empty()) {
      tsnn::writeFileAtomically(s.writeConfig,
                                [&](std::ostream& os) { os << app.config_to_str(true, true); });
      if (!quiet) {
        std::printf("settings written to %s\n", s.writeConfig.c_str());
        std::fflush(stdout);
      }
    }

    // Named references rather than a structured binding: C++17 lambdas cannot capture those.
    auto loaded = load(dir);
    tsnn::data::Datasetf& train = loaded.first;
    tsnn::data::Datasetf& test = loaded.second;
    if (limit > 0 && limit < train.size()) {
      train.features.conservativeResize(limit, Eigen::NoChange);
      train.labels.resize(static_cast<std::size_t>(limit));
    }
    if (s.limitTest > 0 && s.limitTest < test.size()) {
      test.features.conservativeResize(s.limitTest, Eigen::NoChange);
      test.labels.resize(static_cast<std::size_t>(s.limitTest));
    }
    // Scaling is fitted on the training set only; with --resume the same data gives the same
    // scaler, so it need not be stored in the checkpoint.
    tsnn::Preprocessing prep;  // saved with the model, so predict scales its input the same way
    if (s.scaling == tsnn::InputScaling::Standardize) {
      tsnn::data::StandardScaler<float> scaler;
      scaler.fit(train.features);
      scaler.transform(train.features);
      scaler.transform(test.features);
      prep.mean = scaler.meanParameters();
      prep.scale = scaler.scaleParameters();
    } else {  // x / 255, as (x - 0) / 255 for predict
      train.features /= 255.0f;
      test.features /= 255.0f;
      prep.mean.assign(static_cast<std::size_t>(train.dim()), 0.0);
      prep.scale.assign(static_cast<std::size_t>(train.dim()), 255.0);
    }
    int channels = d.channels, height = d.height, width = d.width;
    if (height == 0) {
      const auto side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(train.dim()))));
      height = width = side * side == train.dim() ? side : 0;
    }
    const bool images =
        height > 0 && static_cast<long long>(channels) * height * width == train.dim();
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
        throw UsageError("--resume " + resume + ": flags differ from the saved run (" + diff + ")");
      if (m.inputs() != train.dim() || m.outputs() < train.numClasses)
        throw UsageError("--resume " + resume + ": the checkpoint's network takes " +
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
        std::printf(", workers: %d", resolvedWorkers(tr, threads));
      if (!resume.empty()) {
        std::printf(", resumed at epoch %d", state.epoch);
        if (state.inEpoch.batches > 0)
          std::printf(" + %lld minibatches of epoch %d",
                      static_cast<long long>(state.inEpoch.batches), state.epoch + 1);
      }
      std::printf("\n%s", memoryReport(model, tr, threads).c_str());
      std::fflush(stdout);
    }
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
    // The evaluation after each epoch has its own bar: at millions of neurons per layer it takes
    // minutes.
    cb.onEvaluation = [&](int epoch, long long done, long long total) {
      if (barEpoch != -epoch) {
        barEpoch = -epoch;
        bar.start("test " + std::to_string(epoch) + "/" + std::to_string(tr.epochs));
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
    // Checkpoints inside epochs, and SIGINT/SIGTERM: the current minibatch is finished, the
    // state saved (with --save) and the program exits with 130. A second signal kills at once.
    StopSignals stopSignals;
    auto lastSave = std::chrono::steady_clock::now();
    long long batchesSinceSave = 0;
    bool stopped = false;
    cb.afterBatch = [&](int, long long, long long) {
      if (stopSignals.received() != 0) {
        stopped = true;
        return tsnn::BatchAction::Stop;
      }
      ++batchesSinceSave;
      const double minutes =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - lastSave).count() / 60;
      if ((checkpointBatches > 0 && batchesSinceSave >= checkpointBatches) ||
          (checkpointMinutes > 0 && minutes >= checkpointMinutes))
        return tsnn::BatchAction::Checkpoint;
      return tsnn::BatchAction::Continue;
    };
    cb.onCheckpoint = [&](const tsnn::TrainingState& st) {
      if (!save.empty()) {
        tsnn::saveCheckpoint(save, model, st, prep);
        if (!quiet) {
          bar.finish();
          std::printf("saved %s inside epoch %d after minibatch %lld\n", save.c_str(), st.epoch + 1,
                      static_cast<long long>(st.inEpoch.batches));
          std::fflush(stdout);
          barEpoch = 0;  // the bar starts again
        }
      }
      lastSave = std::chrono::steady_clock::now();
      batchesSinceSave = 0;
    };
    history = tsnn::train(model, train, &test, tr, cb, &state);
    if (stopped) {
      bar.finish();
      if (!metrics.empty()) tsnn::saveMetricsCsv(metrics, history);
      if (!logJson.empty()) tsnn::saveMetricsJson(logJson, history);
      std::fprintf(stderr, "%s: stopped by signal %d inside epoch %d after minibatch %lld; %s\n",
                   prog.c_str(), stopSignals.received(), state.epoch + 1,
                   static_cast<long long>(state.inEpoch.batches),
                   save.empty() ? "nothing saved (no --save)"
                                : ("saved " + save + ", continue with --resume " + save).c_str());
      return 130;
    }
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
    if (!quiet)
      std::printf("\nconfusion matrix on the test set (rows: true class)\n%s",
                  cm.format(d.classNames).c_str());
    std::printf(
        "final test accuracy %.4f after %d epochs (%lld hidden neurons, %lld connections)\n",
        cm.accuracy(), tr.epochs, model.hiddenNeurons(), model.nonZeros());
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), e.what());
    return 1;
  }
}

}  // namespace example
