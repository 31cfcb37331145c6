/// \file
/// \brief The three sparse-layer kernels against Eigen's dense GEMM on the same layer shape.
///
/// Every benchmark takes the same three arguments, in this order:
///   n                 the layer: n inputs -> n outputs, except n = 784, which stands for the
///                     784 -> 1000 input layer of the reference network (784-1000-1000-1000-10);
///                     the label of each row spells the shape out ("784->1000")
///   density_permille  share of stored weights in thousandths: 40 = 0.04, 10 = 0.01, 4 = 0.004
///   batch             B, the number of samples per step
/// so a filter such as `--benchmark_filter='/1000/40/128'` selects one layer, density and batch
/// for every kernel and for the dense baseline, side by side.
///
/// Layout as in tsnn/sparse/kernels.hpp: W is n_out x n_in (CSR), activations are column-major
/// B x n (one neuron's batch values contiguous).
///
/// Counters:
///   GFLOPS   useful floating-point operations per second of wall time, in units of 1e9. Useful
///            work is 2*B*nnz for anything whose result is the sparse layer's (every sparse kernel
///            and the masked dense gradient) and 2*B*n_in*n_out for the dense GEMM, whose result
///            is a dense layer's. Sparse GFLOPS / dense GFLOPS at the same point is then the
///            kernel's share of the machine's dense speed; the dense time over the sparse time is
///            its speed-up over simply running the layer dense.
///   nnz      stored weights (n_in*n_out for the dense GEMM)
///   density  nnz / (n_in*n_out), 1 for the dense GEMM (the console writes values under 0.01
///            with an SI prefix: 9.99m is 0.00999)
///
/// Threads: OpenMP's default, i.e. OMP_NUM_THREADS or else every core. The sparse kernels open
/// their own region and Eigen's GEMM parallelises with OpenMP too, so both sides use the same
/// count; it is recorded in the report context as omp_threads (and eigen_threads). Times are wall
/// time (UseRealTime), since the work is spread over several threads.
///
/// SIMD path: the best the CPU has (recorded as tsnn_simd_path); TSNN_SIMD=generic|avx2|avx512
/// picks another, e.g. to compare them one after the other on the same build.
///
/// Inputs are uniform random from a fixed seed. The largest working set, the masked dense weight
/// gradient of a 4000 x 4000 layer, holds two dense float matrices of 64 MB each.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tsnn/core/parallel.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/sparse/kernels.hpp"

namespace {

using Scalar = float;
using Index = std::int32_t;
using Csr = tsnn::CsrMatrix<Scalar, Index>;
using Dense = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
using Act = tsnn::Activations<Scalar>;

constexpr std::uint64_t kSeed = 20240611;

/// The layer named by a benchmark's three arguments (see the file comment).
struct Point {
  Index nIn;
  Index nOut;
  double density;
  Index batch;

  explicit Point(const benchmark::State& state)
      : nIn(static_cast<Index>(state.range(0))),
        nOut(state.range(0) == 784 ? 1000 : static_cast<Index>(state.range(0))),
        density(static_cast<double>(state.range(1)) / 1000.0),
        batch(static_cast<Index>(state.range(2))) {}

  std::string shape() const { return std::to_string(nIn) + "->" + std::to_string(nOut); }
};

Csr randomWeights(const Point& p, tsnn::Rng& rng) {
  return tsnn::erdosRenyi<Scalar, Index>(p.nOut, p.nIn, p.density, rng, tsnn::WeightInit::HeUniform,
                                         p.nIn, p.nOut);
}

Dense randomDense(Index rows, Index cols, tsnn::Rng& rng) {
  Dense m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i)
    m.data()[i] = static_cast<Scalar>(rng.uniform(-1.0, 1.0));
  return m;
}

/// Sets GFLOPS (from the useful flops of one iteration), nnz, density and the shape label.
void report(benchmark::State& state, const Point& p, double usefulFlops, double nnz, double density,
            const char* what) {
  state.counters["GFLOPS"] =
      benchmark::Counter(usefulFlops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["nnz"] = benchmark::Counter(nnz);
  state.counters["density"] = benchmark::Counter(density);
  state.SetLabel(p.shape() + " " + what);
}

void reportSparse(benchmark::State& state, const Point& p, const Csr& w) {
  const double nnz = static_cast<double>(w.nonZeros());
  report(state, p, 2.0 * p.batch * nnz, nnz, w.density(), "sparse");
}

/// Y = X W^T + 1 b^T.
void BM_SparseForward(benchmark::State& state) {
  const Point p(state);
  tsnn::Rng rng(kSeed);
  const Csr w = randomWeights(p, rng);
  const Eigen::Matrix<Scalar, Eigen::Dynamic, 1> bias = randomDense(p.nOut, 1, rng);
  const Act x = randomDense(p.batch, p.nIn, rng);
  Act y(p.batch, p.nOut);
  for (auto _ : state) {
    tsnn::sparseForward(w, bias, x, y, tsnn::Threads::automatic());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  reportSparse(state, p, w);
}

/// dX = dY W, walking W by columns through its transpose index (built once, as after a
/// topology change, and not timed).
void BM_SparseBackwardInput(benchmark::State& state) {
  const Point p(state);
  tsnn::Rng rng(kSeed);
  const Csr w = randomWeights(p, rng);
  tsnn::TransposeIndex<Index> t;
  t.build(w);
  const Act dy = randomDense(p.batch, p.nOut, rng);
  Act dx(p.batch, p.nIn);
  for (auto _ : state) {
    tsnn::sparseBackwardInput(w, t, dy, dx, tsnn::Threads::automatic());
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  reportSparse(state, p, w);
}

/// G_k = (1/B) dot(X(:, c_k), dY(:, j)) at the stored positions only.
void BM_SparseWeightGradient(benchmark::State& state) {
  const Point p(state);
  tsnn::Rng rng(kSeed);
  const Csr w = randomWeights(p, rng);
  const Act x = randomDense(p.batch, p.nIn, rng);
  const Act dy = randomDense(p.batch, p.nOut, rng);
  const Scalar scale = Scalar(1) / static_cast<Scalar>(p.batch);
  std::vector<Scalar> grad(static_cast<std::size_t>(w.nonZeros()));
  for (auto _ : state) {
    tsnn::sparseWeightGradient(w, x, dy, scale, grad, tsnn::Threads::automatic());
    benchmark::DoNotOptimize(grad.data());
    benchmark::ClobberMemory();
  }
  reportSparse(state, p, w);
}

/// The baseline: the same layer stored dense, Y = X Wd^T with Wd n_out x n_in (Eigen GEMM).
/// The density argument does not change the work; it is there so that a filter on one point
/// shows the baseline next to the sparse kernels.
void BM_DenseGemm(benchmark::State& state) {
  const Point p(state);
  tsnn::Rng rng(kSeed);
  const Dense wd = randomDense(p.nOut, p.nIn, rng);
  const Act x = randomDense(p.batch, p.nIn, rng);
  Act y(p.batch, p.nOut);
  for (auto _ : state) {
    y.noalias() = x * wd.transpose();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double size = static_cast<double>(p.nIn) * static_cast<double>(p.nOut);
  report(state, p, 2.0 * p.batch * size, size, 1.0, "dense");
}

/// For context, the weight gradient of masked dense training (how sparse training is usually
/// simulated, e.g. in PyTorch): the full G = (1/B) dY^T X (n_out x n_in), then G *= M with the
/// 0/1 mask M of W's pattern. Its useful work is the same 2*B*nnz as BM_SparseWeightGradient, so
/// the two GFLOPS figures compare as inverse times.
void BM_DenseMaskedWeightGradient(benchmark::State& state) {
  const Point p(state);
  tsnn::Rng rng(kSeed);
  const Csr w = randomWeights(p, rng);
  Dense mask = Dense::Zero(p.nOut, p.nIn);
  for (Index r = 0; r < w.rows(); ++r)
    for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k)
      mask(r, w.colIdx()[static_cast<std::size_t>(k)]) = Scalar(1);
  const Act x = randomDense(p.batch, p.nIn, rng);
  const Act dy = randomDense(p.batch, p.nOut, rng);
  const Scalar scale = Scalar(1) / static_cast<Scalar>(p.batch);
  Dense g(p.nOut, p.nIn);
  const Eigen::Index cols = g.cols();
  for (auto _ : state) {
    g.noalias() = scale * (dy.transpose() * x);
    // Frameworks run the elementwise mask on all threads; Eigen alone would run it on one.
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (Eigen::Index c = 0; c < cols; ++c) g.col(c).array() *= mask.col(c).array();
    benchmark::DoNotOptimize(g.data());
    benchmark::ClobberMemory();
  }
  reportSparse(state, p, w);
}

/// n (784 = the 784 -> 1000 input layer) x density in per-mille x batch.
void layerGrid(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{784, 1000, 4000}, {40, 10, 4}, {32, 128, 256}});
  b->UseRealTime();
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_SparseForward)->Apply(layerGrid);
BENCHMARK(BM_SparseBackwardInput)->Apply(layerGrid);
BENCHMARK(BM_SparseWeightGradient)->Apply(layerGrid);
BENCHMARK(BM_DenseGemm)->Apply(layerGrid);
BENCHMARK(BM_DenseMaskedWeightGradient)->Apply(layerGrid);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("omp_threads", std::to_string(tsnn::maxThreads()));
  benchmark::AddCustomContext("eigen_threads", std::to_string(Eigen::nbThreads()));
  // The kernels' SIMD path: the best this CPU has unless TSNN_SIMD names another.
  benchmark::AddCustomContext("tsnn_simd_path", tsnn::simdPathName(tsnn::simdPath()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
