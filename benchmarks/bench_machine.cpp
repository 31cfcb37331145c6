/// \file
/// \brief What the machine gives one and two threads: arithmetic peak and read bandwidth.
///
/// The sparse kernels stream one input row per nonzero from L2, and a training step moves
/// several megabytes per thread (weights, gradients, activations). How far the data-parallel
/// trainer can scale with threads is therefore bounded by how the caches scale, which on a
/// shared virtual machine need not be 2x for 2 cores. These benchmarks measure that bound on
/// the machine at hand, with nothing of tsnn in them:
///   BM_FmaPeak/T          T threads each run independent multiply-adds on registers only;
///                         counter GFLOPS (2 flops per multiply-add, all threads together)
///   BM_ReadBandwidth/KB/T T threads each sum a private buffer of KB kibibytes over and over
///                         (32: L1, 512 and 1536: L2, 65536: beyond the caches); counter GBps
///                         (bytes read per second, all threads together)
/// Compare T = 2 with T = 1 in one run: `--benchmark_enable_random_interleaving=true
/// --benchmark_repetitions=5` spreads a slow minute over both.
///
/// Wall time: each iteration opens one OpenMP region and the counters divide by the region's
/// steady_clock time (as bench_trainers does, and for the same reason: the names stay bare).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tsnn/core/parallel.hpp"

namespace {

// Loops are written with independent accumulators so that the compiler vectorises them
// without reassociating anything: kLanes floats per accumulator (a 64-byte line), kChains
// accumulators to cover the latency of an add or a multiply-add.
constexpr int kLanes = 16;
constexpr int kChains = 8;

/// Multiply-adds on registers: every chain is acc = acc * m + c, lane by lane.
float fmaLoop(long rounds) {
  float acc[kChains][kLanes];
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) acc[c][l] = 1.0f + 1e-3f * static_cast<float>(c * kLanes + l);
  const float m = 0.999999f, add = 1e-7f;
  for (long r = 0; r < rounds; ++r)
    for (int c = 0; c < kChains; ++c)
      for (int l = 0; l < kLanes; ++l) acc[c][l] = acc[c][l] * m + add;
  float s = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) s += acc[c][l];
  return s;
}

/// Sums \p n floats (a multiple of kChains * kLanes) \p passes times.
float readLoop(const float* p, std::size_t n, long passes) {
  float acc[kChains][kLanes] = {};
  for (long r = 0; r < passes; ++r)
    for (std::size_t i = 0; i < n; i += kChains * kLanes)
      for (int c = 0; c < kChains; ++c)
        for (int l = 0; l < kLanes; ++l)
          acc[c][l] += p[i + static_cast<std::size_t>(c * kLanes + l)];
  float s = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) s += acc[c][l];
  return s;
}

/// Runs \p body(thread) on \p threads threads once per iteration and returns the summed wall time.
template <class Body>
double timedRegions(benchmark::State& state, int threads, Body&& body) {
  double seconds = 0;
  float sink = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads) reduction(+ : sink)
#endif
    sink += body(tsnn::threadId());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  benchmark::DoNotOptimize(sink);
  return seconds;
}

void BM_FmaPeak(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr long kRounds = 20'000'000;
  const double seconds = timedRegions(state, threads, [](int) { return fmaLoop(kRounds); });
  const double flops =
      2.0 * kRounds * kChains * kLanes * threads * static_cast<double>(state.iterations());
  state.counters["GFLOPS"] = flops / seconds * 1e-9;
  state.SetLabel(std::to_string(threads) + " thread(s)");
}

void BM_ReadBandwidth(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0)) * 1024;
  const int threads = static_cast<int>(state.range(1));
  const std::size_t n = bytes / sizeof(float);
  // At least 256 MiB per thread per iteration, so the region's start-up is noise.
  const long passes = std::max<long>(1, static_cast<long>((std::size_t{256} << 20) / bytes));
  // Each thread allocates and first touches its own buffer, so it starts in that thread's
  // caches and, on a NUMA machine, in its node's memory.
  std::vector<std::unique_ptr<float[]>> buffers(static_cast<std::size_t>(threads));
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
  {
    auto& b = buffers[static_cast<std::size_t>(tsnn::threadId())];
    b.reset(new float[n]);
    for (std::size_t i = 0; i < n; ++i) b[i] = 1.0f;
  }
  const double seconds = timedRegions(state, threads, [&](int t) {
    return readLoop(buffers[static_cast<std::size_t>(t)].get(), n, passes);
  });
  const double read = static_cast<double>(bytes) * static_cast<double>(passes) * threads *
                      static_cast<double>(state.iterations());
  state.counters["GBps"] = read / seconds * 1e-9;
  state.SetLabel(std::to_string(threads) + " thread(s), " + std::to_string(bytes >> 10) +
                 " KiB each");
}

BENCHMARK(BM_FmaPeak)->ArgName("threads")->Arg(1)->Arg(2);
BENCHMARK(BM_ReadBandwidth)
    ->ArgNames({"KiB", "threads"})
    ->ArgsProduct({{32, 512, 1536, 65536}, {1, 2}});

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_threads", std::to_string(tsnn::maxThreads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
