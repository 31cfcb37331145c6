/// \file
/// \brief The sparse kernels on one wide hidden layer (n -> n at SET's eps), where a batch's
/// activations leave the caches and the kernels are bound by the bytes they move.
///
/// Arguments: n (neurons on each side), eps (Erdos-Renyi: nnz = eps * 2n) and batch B.
/// `--benchmark_filter='/1000000/20/128'` picks one layer for every kernel.
///
/// Counters:
///   GBps       counted bytes per second of wall time (1e9). Counted bytes are what the kernel
///              must move at the least: for each connection the B values of the one activation
///              or delta row it gathers (4 B each, random rows: nothing is reused from cache at
///              these widths), its index, value and gradient entries (4 B each, those that it
///              reads or writes), and the rows it streams once (the B x n inputs, outputs or
///              deltas that are read or written whole). Compare with BM_ReadBandwidth/65536/T
///              of bench_machine run right before or after, on the same thread count.
///   Mcs        connection-samples per second, 1e6 (nnz * B per call).
///   bytes_per_cs  counted bytes per connection-sample.
/// Kernels: forward (Y = X W^T + b), backward_input (dX = dY W), weight_gradient (G at the
/// stored positions), the two backward kernels one after the other (backward_separate), and
/// the fused backward pass that does both in one read of dY (backward_fused).
///
/// Threads: OpenMP's default (OMP_NUM_THREADS), recorded as omp_threads. Memory: at n = 1M,
/// eps 20, B 128: 40M connections (CSR, transpose index, gradient: 0.8 GB) and four B x n
/// buffers of 0.5 GB (2 GB each at B 512).

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tsnn/core/memory.hpp"
#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/sparse/kernels.hpp"

namespace {

using Scalar = float;
using Index = std::int32_t;
using Csr = tsnn::CsrMatrix<Scalar, Index>;
using Act = tsnn::Activations<Scalar>;

enum Kernel {
  kForward,
  kBackwardInput,
  kWeightGradient,
  kBackwardSeparate,
  kBackwardFused,
  kForwardBf16,       // bfloat16 X gathered, float Y
  kBackwardFusedBf16  // bfloat16 X, dY (gathered) and dX, float gradient
};

/// One layer and its buffers, built once per (n, eps, B) and shared by the kernels' benchmarks
/// (building a 1M-wide layer takes seconds).
struct Layer {
  Index n = 0;
  double eps = 0;
  Index batch = 0;
  Csr w;
  tsnn::TransposeIndex<Index> t;
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> bias;
  Act x, y, dy, dx;
  tsnn::Activations<tsnn::BFloat16> x16, dy16, dx16;
  std::vector<Scalar> grad;

  static Layer& get(Index n, double eps, Index batch) {
    static Layer layer;
    if (layer.n != n || layer.eps != eps || layer.batch != batch) {
      layer = Layer();
      layer.n = n;
      layer.eps = eps;
      layer.batch = batch;
      tsnn::Rng rng(20261202);
      layer.w = tsnn::erdosRenyi<Scalar, Index>(n, n, tsnn::erdosRenyiDensity(n, n, eps), rng,
                                                tsnn::WeightInit::HeUniformSparse, n, n);
      layer.t.build(layer.w);
      layer.bias = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>::Zero(n);
      // Huge pages as the library's own workspaces get them (tsnn/core/memory.hpp).
      auto fill = [&](Act& a) {
        tsnn::resizeWithHugePages(a, batch, n);
        for (Eigen::Index i = 0; i < a.size(); ++i)
          a.data()[i] = static_cast<Scalar>(rng.uniform(-1.0, 1.0));
      };
      fill(layer.x);
      fill(layer.dy);
      // Touched once here, so that no timed call pays the first-touch page faults.
      tsnn::resizeWithHugePages(layer.y, batch, n);
      tsnn::resizeWithHugePages(layer.dx, batch, n);
      layer.y.setZero();
      layer.dx.setZero();
      for (auto [from, to] : {std::pair{&layer.x, &layer.x16}, std::pair{&layer.dy, &layer.dy16},
                              std::pair{&layer.dx, &layer.dx16}}) {
        tsnn::resizeWithHugePages(*to, batch, n);
        *to = from->template cast<tsnn::BFloat16>();
      }
      layer.grad.resize(static_cast<std::size_t>(layer.w.nonZeros()));
    }
    return layer;
  }
};

/// Counted bytes of one call (see the file comment).
double countedBytes(Kernel k, const Layer& l) {
  const double nnz = static_cast<double>(l.w.nonZeros());
  const double rows = static_cast<double>(l.batch) * static_cast<double>(l.n) * sizeof(Scalar);
  const double gathered = nnz * static_cast<double>(l.batch) * sizeof(Scalar);
  switch (k) {
    case kForward:  // rows of X; column index, value; Y written
      return gathered + nnz * 8 + rows;
    case kBackwardInput:  // rows of dY; row, position, value; dX written
      return gathered + nnz * 12 + rows;
    case kWeightGradient:  // rows of X; column index, gradient; dY read
      return gathered + nnz * 8 + rows;
    case kBackwardSeparate:
      return countedBytes(kBackwardInput, l) + countedBytes(kWeightGradient, l);
    case kBackwardFused:  // rows of dY; row, position, value, gradient; X read, dX written
      return gathered + nnz * 16 + 2 * rows;
    case kForwardBf16:  // half the gathered bytes; Y still float
      return gathered / 2 + nnz * 8 + rows;
    case kBackwardFusedBf16:  // half the gathered bytes and half of X and dX
      return gathered / 2 + nnz * 16 + rows;
  }
  return 0;
}

void run(benchmark::State& state, Kernel k, const char* name) {
  Layer& l = Layer::get(static_cast<Index>(state.range(0)), static_cast<double>(state.range(1)),
                        static_cast<Index>(state.range(2)));
  const auto threads = tsnn::Threads::automatic();
  for (auto _ : state) {
    switch (k) {
      case kForward:
        tsnn::sparseForward(l.w, l.bias, l.x, l.y, threads);
        break;
      case kBackwardInput:
        tsnn::sparseBackwardInput(l.w, l.t, l.dy, l.dx, threads);
        break;
      case kWeightGradient:
        tsnn::sparseWeightGradient(l.w, l.x, l.dy, Scalar(1), l.grad, threads);
        break;
      case kBackwardSeparate:
        tsnn::sparseBackwardInput(l.w, l.t, l.dy, l.dx, threads);
        tsnn::sparseWeightGradient(l.w, l.x, l.dy, Scalar(1), l.grad, threads);
        break;
      case kBackwardFused:
        tsnn::sparseBackwardFused(l.w, l.t, l.x, l.dy, l.dx, Scalar(1), l.grad, threads);
        break;
      case kForwardBf16:
        tsnn::sparseForward(l.w, l.bias, l.x16, l.y, threads);
        break;
      case kBackwardFusedBf16:
        tsnn::sparseBackwardFused(l.w, l.t, l.x16, l.dy16, l.dx16, Scalar(1), l.grad, threads);
        break;
    }
    benchmark::DoNotOptimize(l.dx.data());
    benchmark::DoNotOptimize(l.y.data());
    benchmark::ClobberMemory();
  }
  const double cs = static_cast<double>(l.w.nonZeros()) * static_cast<double>(l.batch);
  const double bytes = countedBytes(k, l);
  state.counters["GBps"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["Mcs"] =
      benchmark::Counter(cs * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes_per_cs"] = bytes / cs;
  state.SetLabel(std::string(name) + ", nnz " + std::to_string(l.w.nonZeros()));
}

void BM_WideForward(benchmark::State& s) { run(s, kForward, "forward"); }
void BM_WideBackwardInput(benchmark::State& s) { run(s, kBackwardInput, "backward_input"); }
void BM_WideWeightGradient(benchmark::State& s) { run(s, kWeightGradient, "weight_gradient"); }
void BM_WideBackwardSeparate(benchmark::State& s) {
  run(s, kBackwardSeparate, "backward_separate");
}
void BM_WideBackwardFused(benchmark::State& s) { run(s, kBackwardFused, "backward_fused"); }
void BM_WideForwardBf16(benchmark::State& s) { run(s, kForwardBf16, "forward_bf16"); }
void BM_WideBackwardFusedBf16(benchmark::State& s) {
  run(s, kBackwardFusedBf16, "backward_fused_bf16");
}

/// n x eps x batch: 100k (activations 51 MB per buffer) and 1M (512 MB).
void grid(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "eps", "batch"});
  b->ArgsProduct({{100000, 1000000}, {20}, {32, 128, 512}});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_WideForward)->Apply(grid);
BENCHMARK(BM_WideBackwardInput)->Apply(grid);
BENCHMARK(BM_WideWeightGradient)->Apply(grid);
BENCHMARK(BM_WideBackwardSeparate)->Apply(grid);
BENCHMARK(BM_WideBackwardFused)->Apply(grid);
BENCHMARK(BM_WideForwardBf16)->Apply(grid);
BENCHMARK(BM_WideBackwardFusedBf16)->Apply(grid);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_threads", std::to_string(tsnn::maxThreads()));
  benchmark::AddCustomContext("tsnn_simd_path", tsnn::simdPathName(tsnn::simdPath()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
