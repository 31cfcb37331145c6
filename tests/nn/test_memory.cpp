// Tests for Network's memory: the MemoryReport against what the allocator really hands out
// (glibc's mallinfo2(), an independent count of every byte in use), the lean buffers of a
// training pass (no stored dropout masks, two reused delta buffers), the inference pass that
// keeps two buffers whatever the depth, and its chunk rule.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/sgd.hpp"

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define TSNN_HAVE_MALLINFO2 1
#endif

namespace {

using Catch::Matchers::Contains;

#if TSNN_HAVE_MALLINFO2
// Bytes the main arena and mmap hold for the program (every test here allocates on its own
// thread, serially, so no other arena is involved).
long long allocatedBytes() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<long long>(m.uordblks + m.hblkhd);
}

// Whether mallinfo2 counts this program's allocations (a sanitizer's allocator replaces malloc
// and reports nothing): an 8 MiB block must show.
bool allocatorCounts() {
  const long long before = allocatedBytes();
  void* p = std::malloc(8u << 20);
  const long long during = allocatedBytes();
  std::free(p);
  return p != nullptr && during - before >= (8 << 20);
}
#endif

tsnn::NetworkOptions options() {
  tsnn::NetworkOptions o;
  o.sizes = {784, 3000, 2000, 3000, 10};
  o.epsilon = 20;
  o.dropout = 0.3;
  o.seed = tsnn::test::streamSeed(3301);
  return o;
}

// |measured - reported| <= 10% of reported, and the figure is not trivially small.
void checkWithinTenPercent(long long measured, std::size_t reported, const char* what) {
  INFO(what << ": measured " << measured << " bytes, reported " << reported);
  CHECK(reported > 100000);
  CHECK(std::abs(static_cast<double>(measured) - static_cast<double>(reported)) <=
        0.10 * static_cast<double>(reported));
}

}  // namespace

TEST_CASE("Network::memoryReport matches what the allocator hands out, kind by kind, within 10%",
          "[nn][network][memory]") {
#if !TSNN_HAVE_MALLINFO2
  WARN("no mallinfo2 on this platform: the report is not checked against the allocator");
  return;
#else
  if (!allocatorCounts()) {
    WARN("mallinfo2 does not see this program's allocations (a sanitizer's allocator?)");
    return;
  }
  const tsnn::Threads serial = tsnn::Threads::serial();
  const Eigen::Index batch = 64;
  const tsnn::Activations<float> x = tsnn::Activations<float>::Random(batch, 784);
  std::vector<std::int32_t> y(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int32_t>(i % 10);

  long long before = allocatedBytes();
  tsnn::Network<float> net(options());
  const long long model = allocatedBytes() - before;

  before = allocatedBytes();
  auto grads = net.makeGradients();
  const long long gradients = allocatedBytes() - before;

  tsnn::SgdOptions so;
  tsnn::Sgd<float> sgd(so);
  before = allocatedBytes();
  sgd.reset(net);
  const long long optimizer = allocatedBytes() - before;

  tsnn::MemoryPlan plan;
  plan.batch = batch;
  plan.optimizerStateBytes = sgd.bytes();
  const tsnn::MemoryReport r = net.memoryReport(plan);
  REQUIRE(r.connections == net.nonZeros());

  // The sequential trainer's pass: forward, then backward, its hidden deltas written over a.
  tsnn::Workspace<float> ws;
  before = allocatedBytes();
  net.forward(x, ws, tsnn::PassOptions::training(1).threads(serial));
  net.backward(x, y.data(), ws, grads, 1.0f / static_cast<float>(batch), serial);
  const long long sequentialPass = allocatedBytes() - before;

  // The same pass with bfloat16 storage: 2 bytes for each hidden z and a, and one float scratch
  // as wide as the widest hidden layer.
  auto ob = options();
  ob.activationStorage = tsnn::ActivationStorage::BFloat16;
  tsnn::Network<float> half(ob);
  auto halfGrads = half.makeGradients();
  const tsnn::MemoryReport rh = half.memoryReport(plan);
  tsnn::Workspace<float> wh;
  before = allocatedBytes();
  half.forward(x, wh, tsnn::PassOptions::training(1).threads(serial));
  half.backward(x, y.data(), wh, halfGrads, 1.0f / static_cast<float>(batch), serial);
  const long long halfPass = allocatedBytes() - before;

  // The data-parallel trainer's: every layer's delta kept.
  tsnn::Workspace<float> wd;
  before = allocatedBytes();
  net.forward(x, wd, tsnn::PassOptions::training(1).threads(serial));
  net.backwardDeltas(y.data(), wd, 1.0f / static_cast<float>(batch), serial);
  const long long deltasPass = allocatedBytes() - before;
  plan.perLayerDeltas = true;
  const tsnn::MemoryReport rd = net.memoryReport(plan);

  // Evaluation: one chunk of the report's size through infer().
  const tsnn::Activations<float> chunk =
      tsnn::Activations<float>::Random(static_cast<Eigen::Index>(r.inferenceChunk), 784);
  tsnn::InferenceWorkspace<float> iw;
  before = allocatedBytes();
  net.infer(chunk, iw, serial);
  const long long inference = allocatedBytes() - before;

  checkWithinTenPercent(model, r.model(), "model");
  checkWithinTenPercent(gradients, r.gradients, "gradients");
  checkWithinTenPercent(optimizer, r.optimizerState, "optimiser state");
  checkWithinTenPercent(sequentialPass, r.workspace, "sequential training pass");
  checkWithinTenPercent(deltasPass, rd.workspace, "training pass with every delta");
  checkWithinTenPercent(halfPass, rh.workspace, "bfloat16 training pass");
  CHECK(static_cast<long long>(wh.bytes()) <= halfPass);
  // The report's inference figure includes the gathered input chunk, made before measuring.
  checkWithinTenPercent(inference + static_cast<long long>(chunk.size() * sizeof(float)),
                        r.inference, "inference chunk");
  CHECK(static_cast<long long>(ws.bytes()) <= sequentialPass);
  // The lean pass holds per sample: z and a of each hidden layer, z and the output of the last,
  // and the output layer's delta (backward() writes the hidden deltas over a):
  // 2 * 8000 + 2 * 10 + 10 floats.
  CHECK(r.workspacePerSample == (2 * 8000 + 2 * 10 + 10) * sizeof(float));
  CHECK(rd.workspacePerSample == (2 * 8000 + 2 * 10 + 8010) * sizeof(float));
  // In bfloat16: 2 x 8000 values of 2 bytes, and in float the scratch (3000), z and the output
  // of the last layer and its delta.
  CHECK(rh.workspacePerSample == 2 * 8000 * 2 + (3000 + 2 * 10 + 10) * sizeof(float));
#endif
}

TEST_CASE("infer() gives forward()'s inference scores bit for bit with two buffers",
          "[nn][network][memory]") {
  for (tsnn::LossKind loss :
       {tsnn::LossKind::SoftmaxCrossEntropy, tsnn::LossKind::MeanSquaredError}) {
    auto o = options();
    o.sizes = {20, 300, 50, 400, 7};
    o.loss = loss;
    o.outputActivation = tsnn::ActivationKind::Sigmoid;
    const tsnn::Network<double> net(o);
    const tsnn::Activations<double> x = tsnn::Activations<double>::Random(33, 20);
    tsnn::Workspace<double> ws;
    tsnn::InferenceWorkspace<double> iw;
    const tsnn::Activations<double> full = net.forward(x, ws, tsnn::PassOptions::inference());
    CHECK(tsnn::test::bitIdentical(net.infer(x, iw), full));
    // Two buffers of 33 x 400, whatever the depth.
    CHECK(iw.buffer[0].size() == 33 * 400);
    CHECK(iw.buffer[1].size() == 33 * 400);
    // predictScores in chunks of 5 gives each chunk's forward() scores (the kernels' batch
    // tiles depend on the block's size, so chunks are compared with chunks).
    tsnn::Network<double>::Features rowsMajor = x;
    std::vector<std::pair<long long, long long>> progress;
    const auto scores = net.predictScores(
        rowsMajor, tsnn::Threads::serial(), 5,
        [&](long long done, long long total) { progress.emplace_back(done, total); });
    // One report per chunk of 5, the last one at all 33 samples.
    REQUIRE(progress.size() == 7);
    for (std::size_t c = 0; c < progress.size(); ++c) {
      CHECK(progress[c].first == std::min<long long>(33, 5 * static_cast<long long>(c + 1)));
      CHECK(progress[c].second == 33);
    }
    CHECK(
        tsnn::test::bitIdentical(net.predictScores(rowsMajor, tsnn::Threads::serial(), 5), scores));
    for (Eigen::Index b0 = 0; b0 < 33; b0 += 5) {
      const Eigen::Index n = std::min<Eigen::Index>(5, 33 - b0);
      const tsnn::Activations<double> part = x.middleRows(b0, n);
      tsnn::Workspace<double> wp;
      CHECK(tsnn::test::bitIdentical(tsnn::Activations<double>(scores.middleRows(b0, n)),
                                     net.forward(part, wp, tsnn::PassOptions::inference())));
    }
  }
  const tsnn::Network<double> net(options());
  tsnn::InferenceWorkspace<double> iw;
  CHECK_THROWS_WITH(net.infer(tsnn::Activations<double>::Zero(3, 5), iw),
                    Catch::StartsWith("tsnn: Network::infer(): input has 5 features"));
  CHECK_THROWS_WITH(
      net.predictScores(tsnn::Network<double>::Features::Zero(3, 784), tsnn::Threads::serial(), -1),
      Catch::StartsWith("tsnn: Network::predictScores(): chunk must be >= 0"));
}

TEST_CASE("The inference chunk keeps two buffers of the widest layer within 512 MiB",
          "[nn][network][memory]") {
  tsnn::NetworkOptions o;
  o.epsilon = 1;
  o.sizes = {10, 1000, 2};
  CHECK(tsnn::Network<float>(o).inferenceChunk() == 1024);
  // 2^29 / (2 * 100,000 * 4) = 671.09
  o.sizes = {10, 100000, 2};
  CHECK(tsnn::Network<float>(o).inferenceChunk() == 671);
  // doubles need twice the bytes: 335.5
  CHECK(tsnn::Network<double>(o).inferenceChunk() == 335);
  // never fewer than 16: 2^29 / (2 * 20,000,000 * 4) = 3.4
  CHECK(tsnn::Network<float>::inferenceChunkFor(20000000) == 16);
  CHECK(tsnn::Network<float>::inferenceChunkFor(2500000) == 26);
}

TEST_CASE("MemoryReport prints every kind with bytes per connection and per neuron-sample",
          "[nn][network][memory]") {
  const tsnn::Network<float> net(options());
  tsnn::MemoryPlan plan;
  plan.batch = 128;
  plan.optimizerStateBytes = 4 * static_cast<std::size_t>(net.nonZeros());
  const auto r = net.memoryReport(plan);
  CHECK(r.weights == 4 * static_cast<std::size_t>(net.nonZeros()));
  CHECK(r.transposeIndex >= 8 * static_cast<std::size_t>(net.nonZeros()));
  CHECK(r.workspace == 128 * r.workspacePerSample);
  CHECK(r.total() ==
        r.model() + r.optimizerState + r.gradients + r.inputBatch + r.workspace + r.inference);
  const std::string text = r.toString();
  for (const char* s : {"weights", "indices", "transpose index", "optimiser state", "gradients",
                        "activations (batch)", "evaluation buffers", "total", "B/connection",
                        "B/hidden neuron-sample"})
    CHECK_THAT(text, Contains(s));
  plan.batch = 0;
  CHECK_THROWS_WITH(net.memoryReport(plan),
                    Catch::StartsWith("tsnn: Network::memoryReport(): batch 0"));
}
