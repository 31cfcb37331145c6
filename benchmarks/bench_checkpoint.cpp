/// \file
/// \brief Saving and loading the checkpoint of a wide network: seconds, and the memory a call
/// holds only while it runs (a copy of the file, where a format is not streamed).
///
/// Arguments: n (neurons in each of the two hidden layers of 784 -> n -> n -> 10, at eps 20)
/// and momentum (1: the checkpoint holds SGD momentum, as a training run's does; 0: none).
///
/// Counters:
///   file_MB       the checkpoint's size (1e6 bytes)
///   MBps          file bytes per second of wall time (1e6)
///   resident_MB   resident memory after the call (the process's, the networks included)
///   transient_MB  peak resident memory during the call minus resident memory after it: what
///                 the call needed beyond its result. A save that assembled the file in memory
///                 would show the file's size here, and so would a load that read it whole.
/// The peak is Linux's VmHWM, reset before each call by writing 5 to /proc/self/clear_refs
/// (without that, it reads as 0). Files go to $TSNN_BENCH_DIR (default /tmp), and are removed.
/// Memory: at n = 1M, 80M connections: the network with its momentum and transpose index is
/// about 2 GB, the file about 1 GB.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/nn/network.hpp"

namespace {

using Net = tsnn::Network<float, std::int32_t>;

/// A /proc/self/status field in bytes (it is given in kB), or 0 where there is none.
double statusBytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  double kb = 0;
  while (in >> key) {
    if (key == field) {
      in >> kb;
      return kb * 1024.0;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

/// Resets VmHWM to the current resident size; false where the kernel does not allow it.
bool resetPeak() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

std::string benchPath(const std::string& name) {
  const char* dir = std::getenv("TSNN_BENCH_DIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/" + name;
}

/// The network and training state, built once per argument pair (a 1M-wide network takes
/// seconds) and shared by both benchmarks.
struct Model {
  long long n = 0;
  bool momentum = false;
  std::unique_ptr<Net> net;
  tsnn::TrainingState state;

  static Model& get(long long n, bool momentum) {
    static Model m;
    if (m.n != n || m.momentum != momentum) {
      m = Model();
      tsnn::NetworkOptions o;
      o.sizes = {784, n, n, 10};
      o.epsilon = 20;
      o.init = tsnn::WeightInit::HeUniformSparse;
      o.seed = 20261203;
      m.net = std::make_unique<Net>(o);
      if (momentum) {
        tsnn::OptimizerState s;
        s.kind = tsnn::OptimizerKind::Sgd;
        s.steps = 1;
        auto& layers = s.layersOf<float>();
        layers.resize(m.net->numLayers());
        tsnn::Rng rng(7);
        for (std::size_t l = 0; l < layers.size(); ++l) {
          const auto& layer = m.net->layer(l);
          std::vector<float> v(static_cast<std::size_t>(layer.nonZeros()));
          for (float& x : v) x = static_cast<float>(rng.uniform(-1e-3, 1e-3));
          layers[l].entries.push_back(std::move(v));
          layers[l].rows.emplace_back(static_cast<std::size_t>(layer.outputs()), 0.0f);
          layers[l].pattern = layer.weights().patternId();
        }
        m.state.optimizer = std::move(s);
      }
      m.n = n;
      m.momentum = momentum;
    }
    return m;
  }
};

/// Sets the counters from the last call's peak and resident bytes, and removes the file.
void finish(benchmark::State& st, const std::string& path, double seconds, double peak,
            double resident) {
  double fileBytes = 0;
  {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    fileBytes = static_cast<double>(f.tellg());
  }
  std::remove(path.c_str());
  seconds /= static_cast<double>(st.iterations());
  st.counters["file_MB"] = fileBytes / 1e6;
  st.counters["MBps"] = fileBytes / 1e6 / seconds;
  st.counters["resident_MB"] = resident / 1e6;
  st.counters["transient_MB"] = (peak - resident) / 1e6;
}

/// Times \p call on each iteration, with the peak reset before it and read after it, then
/// runs \p release (which frees what \p call made) untimed.
template <class Call, class Release>
void measure(benchmark::State& st, const std::string& path, const Call& call,
             const Release& release) {
  double seconds = 0, peak = 0, resident = 0;
  for (auto _ : st) {
    st.PauseTiming();
    if (!resetPeak()) st.SkipWithError("cannot reset VmHWM through /proc/self/clear_refs");
    st.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    call();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.PauseTiming();
    peak = statusBytes("VmHWM:");
    resident = statusBytes("VmRSS:");  // with what the call made still alive
    release();
    st.ResumeTiming();
  }
  finish(st, path, seconds, peak, resident);
}

void BM_SaveCheckpoint(benchmark::State& st) {
  Model& m = Model::get(st.range(0), st.range(1) != 0);
  const std::string path = benchPath("tsnn_bench_save.ckpt");
  measure(
      st, path, [&] { tsnn::saveCheckpoint(path, *m.net, m.state); }, [] {});
}

void BM_LoadCheckpoint(benchmark::State& st) {
  const std::string path = benchPath("tsnn_bench_load.ckpt");
  {
    Model& m = Model::get(st.range(0), st.range(1) != 0);
    tsnn::saveCheckpoint(path, *m.net, m.state);
  }
  tsnn::TrainingState loaded;
  std::unique_ptr<Net> back;
  measure(
      st, path,
      [&] {
        back = std::make_unique<Net>(tsnn::loadCheckpoint<float, std::int32_t>(path, &loaded));
      },
      [&] {
        back.reset();
        loaded = tsnn::TrainingState();
      });
}

void args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "momentum"});
  for (long long n : {10000LL, 100000LL, 1000000LL, 2500000LL}) b->Args({n, 1});
  b->Args({100000, 0});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_SaveCheckpoint)->Apply(args);
BENCHMARK(BM_LoadCheckpoint)->Apply(args);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_threads", std::to_string(tsnn::maxThreads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
