// Tests for tsnn/io/checkpoint.hpp: bit-exact round trips of networks (after neuron removal, with
// an advanced random stream) and training states with SGD, Adam or no optimiser state, for float
// and double and two index widths, and a resumed step from the loaded state; format-1 files
// (fixtures written by the format-1 writer) loading with their momentum as SGD state; the
// documented byte layout; readCheckpointInfo; and the refusal, with FormatError or
// IoError naming the path, of every kind of damaged, foreign or inconsistent file, including
// corrupt counts that must be refused before anything large is allocated; and atomic saving.
//
// This file replaces the global operator new to record the largest request made while a load
// runs, which is how "refused before allocating" is observed (each test file is its own
// executable, so the replacement affects no other test).

#include <malloc.h>

#include <Eigen/Core>
#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#if defined(TSNN_HAS_ZLIB)
#include <zlib.h>
#endif

#include "support/files.hpp"
#include "support/optimizers.hpp"
#include "support/oracle.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/io/checkpoint.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/optim/make_optimizer.hpp"

namespace {

using tsnn::test::TempDir;
using tsnn::test::writeString;

// The largest single request made while gTrackAllocations is set; the bytes live through this
// operator new (malloc_usable_size of each block, always counted) and their peak while
// gTrackAllocations is set (reset it to gLiveBytes first).
std::atomic<bool> gTrackAllocations{false};
std::atomic<std::size_t> gLargestAllocation{0};
std::atomic<long long> gLiveBytes{0};
std::atomic<long long> gPeakLiveBytes{0};

void* trackedAllocate(std::size_t n) noexcept {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) return p;
  const long long live = gLiveBytes.fetch_add(static_cast<long long>(malloc_usable_size(p))) +
                         static_cast<long long>(malloc_usable_size(p));
  if (gTrackAllocations.load(std::memory_order_relaxed)) {
    std::size_t prev = gLargestAllocation.load(std::memory_order_relaxed);
    while (n > prev && !gLargestAllocation.compare_exchange_weak(prev, n)) {
    }
    long long peak = gPeakLiveBytes.load(std::memory_order_relaxed);
    while (live > peak && !gPeakLiveBytes.compare_exchange_weak(peak, live)) {
    }
  }
  return p;
}
void trackedFree(void* p) noexcept {
  if (p != nullptr) gLiveBytes.fetch_sub(static_cast<long long>(malloc_usable_size(p)));
  std::free(p);
}
}  // namespace

// Every non-aligned form is replaced, so that no pair mixes this allocator with another one
// (sanitizers provide their own nothrow and array forms otherwise). The deletes are not inlined:
// GCC 12 would otherwise see free() applied to the result of operator new and report a
// mismatch (-Wmismatched-new-delete), not knowing that this operator new is malloc.
#if defined(__GNUC__)
#define TSNN_TEST_NOINLINE __attribute__((noinline))
#else
#define TSNN_TEST_NOINLINE
#endif
void* operator new(std::size_t n) {
  if (void* p = trackedAllocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = trackedAllocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return trackedAllocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return trackedAllocate(n); }
TSNN_TEST_NOINLINE void operator delete(void* p) noexcept { trackedFree(p); }
TSNN_TEST_NOINLINE void operator delete[](void* p) noexcept { trackedFree(p); }
TSNN_TEST_NOINLINE void operator delete(void* p, std::size_t) noexcept { trackedFree(p); }
TSNN_TEST_NOINLINE void operator delete[](void* p, std::size_t) noexcept { trackedFree(p); }
TSNN_TEST_NOINLINE void operator delete(void* p, const std::nothrow_t&) noexcept { trackedFree(p); }
TSNN_TEST_NOINLINE void operator delete[](void* p, const std::nothrow_t&) noexcept {
  trackedFree(p);
}

namespace {

namespace fs = std::filesystem;
using tsnn::test::Types;

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Little-endian fields, read and written here independently of the library's code, so that the
// tests check the documented layout rather than the implementation's idea of it.
std::uint64_t getLe(const std::string& b, std::size_t at, std::size_t bytes) {
  REQUIRE(at + bytes <= b.size());
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}
void putLe(std::string& b, std::size_t at, std::uint64_t v, std::size_t bytes) {
  REQUIRE(at + bytes <= b.size());
  for (std::size_t i = 0; i < bytes; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}
std::uint64_t bitsOf(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, 8);
  return u;
}
std::uint32_t bitsOf(float v) {
  std::uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
}

std::uint32_t crcOf(const std::string& b, std::size_t n) {
  return tsnn::detail::crc32Portable(reinterpret_cast<const unsigned char*>(b.data()), n);
}
// Makes the trailing checksum match again after a deliberate edit, so that the edit is what the
// loader has to catch.
void fixChecksum(std::string& b) { putLe(b, b.size() - 4, crcOf(b, b.size() - 4), 4); }

struct Section {
  std::size_t payload;  // offset of the payload in the file
  std::uint64_t size;   // payload bytes
};

// Walks the section headers from byte 28 to the checksum.
std::map<std::string, Section> sectionsOf(const std::string& b, std::vector<std::string>* order) {
  std::map<std::string, Section> out;
  std::size_t pos = 28;
  while (pos < b.size() - 4) {
    const std::string tag = b.substr(pos, 4);
    const std::uint64_t n = getLe(b, pos + 4, 8);
    out[tag] = {pos + 12, n};
    if (order != nullptr) order->push_back(tag);
    pos += 12 + static_cast<std::size_t>(n);
  }
  REQUIRE(pos == b.size() - 4);
  return out;
}

tsnn::NetworkOptions makeOptions(int variant) {
  tsnn::NetworkOptions o;
  o.sizes = {20, 16, 12, 5};
  o.seed = 3;
  o.epsilon = 3;  // density about 0.3, so the patterns are truly sparse
  if (variant == 1) {
    o.epsilon = 2.5;
    o.init = tsnn::WeightInit::XavierUniform;
    o.hiddenActivation = tsnn::ActivationKind::LeakyReLU;
    o.alpha = 0.05;
    o.loss = tsnn::LossKind::MeanSquaredError;
    o.outputActivation = tsnn::ActivationKind::Sigmoid;
    o.dropout = 0.125;
    o.seed = 0xFEDCBA9876543210ull;
  }
  return o;
}

// A network with nonzero biases, neurons removed from both hidden layers and its random stream
// advanced: nothing a freshly built network would reproduce by chance.
template <class Scalar, class Index>
tsnn::Network<Scalar, Index> makeNetwork(int variant, std::uint64_t stream) {
  tsnn::Network<Scalar, Index> net(makeOptions(variant));
  tsnn::Rng rng = tsnn::test::testRng(stream);
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    auto& layer = net.layer(l);
    for (Eigen::Index j = 0; j < layer.bias().size(); ++j)
      layer.bias()[j] = static_cast<Scalar>(rng.uniform(-0.3, 0.3));
  }
  net.removeHiddenNeurons(0, {9, 1, 4});
  net.removeHiddenNeurons(1, {0, 11, 5});
  for (int i = 0; i < 5; ++i) net.rng()();
  return net;
}

tsnn::TrainingState makeState() {
  tsnn::TrainingState s;
  s.epoch = 3;
  s.shuffleRng = {0x0123456789ABCDEFull, 0xFFFFFFFFFFFFFFFFull, 1, 0x8000000000000000ull};
  s.order = {4, 0, 3, 1, 2, -7, std::numeric_limits<std::int64_t>::max()};
  s.step = 123456789012ull;
  s.learningRate = 0.0123;
  s.skippedInARow = -2;
  for (int e = 1; e <= 3; ++e) {
    tsnn::EpochRecord r;
    r.epoch = e;
    r.trainLoss = 1.0 / e;
    r.trainAccuracy = 0.5 + 0.1 * e;
    r.testAccuracy = e == 2 ? std::numeric_limits<double>::quiet_NaN() : 0.25 * e;
    r.epochSeconds = 1.5e-3 * e;
    r.evolveSeconds = -0.0;
    r.nnz = 1000 + e;
    r.hiddenNeurons = 28 - e;
    r.neuronsRemoved = e;
    r.skippedBatches = 7 * e;
    r.clippedBatches = std::numeric_limits<long long>::min() + e;
    r.meanStaleness = e == 3 ? std::numeric_limits<double>::infinity() : 0.75;
    s.history.push_back(r);
  }
  static const char config[] = "--epochs 3 --flag\0with NUL \xc3\xa9";  // NUL and UTF-8 inside
  s.config.assign(config, sizeof(config) - 1);
  s.topologyPending = true;
  return s;
}

// makeState() with an optimiser state of \p kind for \p net: distinct random values in every
// array (Adam's second moment positive) and a step count.
template <class Scalar, class Index>
tsnn::TrainingState makeStateFor(const tsnn::Network<Scalar, Index>& net, tsnn::OptimizerKind kind,
                                 std::uint64_t stream) {
  tsnn::TrainingState s = makeState();
  auto opt = tsnn::makeOptimizer<Scalar, Index>(kind, {}, {});
  tsnn::test::fillRandomState(*opt, net, tsnn::test::streamSeed(stream));
  s.optimizer = opt->state();
  s.optimizer.steps = 1000 + stream;
  return s;
}

template <class Scalar, class Index>
void requireSameNetwork(const tsnn::Network<Scalar, Index>& a,
                        const tsnn::Network<Scalar, Index>& b) {
  const auto &oa = a.options(), &ob = b.options();
  CHECK(oa.sizes == ob.sizes);
  CHECK(bitsOf(oa.epsilon) == bitsOf(ob.epsilon));
  CHECK(oa.init == ob.init);
  CHECK(oa.hiddenActivation == ob.hiddenActivation);
  CHECK(bitsOf(oa.alpha) == bitsOf(ob.alpha));
  CHECK(oa.loss == ob.loss);
  CHECK(oa.outputActivation == ob.outputActivation);
  CHECK(bitsOf(oa.dropout) == bitsOf(ob.dropout));
  CHECK(oa.seed == ob.seed);
  CHECK(oa.allocation == ob.allocation);
  CHECK(oa.activationStorage == ob.activationStorage);
  REQUIRE(a.numLayers() == b.numLayers());
  for (std::size_t l = 0; l < a.numLayers(); ++l) {
    INFO("layer " << l);
    const auto &la = a.layer(l), &lb = b.layer(l);
    CHECK(la.weights().rows() == lb.weights().rows());
    CHECK(la.weights().cols() == lb.weights().cols());
    CHECK(la.weights().rowPtr() == lb.weights().rowPtr());
    CHECK(la.weights().colIdx() == lb.weights().colIdx());
    CHECK(tsnn::test::bitIdentical(la.weights().values(), lb.weights().values()));
    CHECK(tsnn::test::bitIdentical(la.bias(), lb.bias()));
    CHECK(lb.weights().check().empty());
  }
  for (std::size_t l = 0; l + 1 < a.numLayers(); ++l) {
    CHECK(a.neuronIds(l) == b.neuronIds(l));
    CHECK(a.originalWidth(l) == b.originalWidth(l));
  }
  CHECK(a.rng().state() == b.rng().state());
  tsnn::Rng ra = a.rng(), rb = b.rng();
  for (int i = 0; i < 16; ++i) CHECK(ra() == rb());
}

// The optimiser states of \p a and \p b hold the same kind, steps and arrays, bit for bit.
template <class Scalar>
void requireSameOptimizerState(const tsnn::OptimizerState& a, const tsnn::OptimizerState& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.steps == b.steps);
  REQUIRE(a.numLayers() == b.numLayers());
  if (a.empty()) return;
  const auto& x = a.layersOf<Scalar>();
  const auto& y = b.layersOf<Scalar>();
  for (std::size_t l = 0; l < x.size(); ++l) {
    INFO("optimizer state of layer " << l);
    REQUIRE(x[l].entries.size() == y[l].entries.size());
    REQUIRE(x[l].rows.size() == y[l].rows.size());
    for (std::size_t i = 0; i < x[l].entries.size(); ++i) {
      CHECK(tsnn::test::bitIdentical(x[l].entries[i], y[l].entries[i]));
      CHECK(tsnn::test::bitIdentical(x[l].rows[i], y[l].rows[i]));
    }
  }
}

void requireSameState(const tsnn::TrainingState& a, const tsnn::TrainingState& b) {
  CHECK(a.epoch == b.epoch);
  CHECK(a.shuffleRng == b.shuffleRng);
  CHECK(a.order == b.order);
  CHECK(a.step == b.step);
  CHECK(bitsOf(a.learningRate) == bitsOf(b.learningRate));
  CHECK(a.skippedInARow == b.skippedInARow);
  CHECK(a.config == b.config);
  CHECK(a.topologyPending == b.topologyPending);
  CHECK(a.inEpoch.batches == b.inEpoch.batches);
  CHECK(a.inEpoch.trained == b.inEpoch.trained);
  CHECK(bitsOf(a.inEpoch.lossSum) == bitsOf(b.inEpoch.lossSum));
  CHECK(a.inEpoch.correct == b.inEpoch.correct);
  CHECK(a.inEpoch.skipped == b.inEpoch.skipped);
  CHECK(a.inEpoch.clipped == b.inEpoch.clipped);
  CHECK(bitsOf(a.inEpoch.seconds) == bitsOf(b.inEpoch.seconds));
  REQUIRE(a.history.size() == b.history.size());
  for (std::size_t i = 0; i < a.history.size(); ++i) {
    INFO("history record " << i);
    const auto &x = a.history[i], &y = b.history[i];
    CHECK(x.epoch == y.epoch);
    CHECK(bitsOf(x.trainLoss) == bitsOf(y.trainLoss));
    CHECK(bitsOf(x.trainAccuracy) == bitsOf(y.trainAccuracy));
    CHECK(bitsOf(x.testAccuracy) == bitsOf(y.testAccuracy));
    CHECK(bitsOf(x.epochSeconds) == bitsOf(y.epochSeconds));
    CHECK(bitsOf(x.evolveSeconds) == bitsOf(y.evolveSeconds));
    CHECK(x.nnz == y.nnz);
    CHECK(x.hiddenNeurons == y.hiddenNeurons);
    CHECK(x.neuronsRemoved == y.neuronsRemoved);
    CHECK(x.skippedBatches == y.skippedBatches);
    CHECK(x.clippedBatches == y.clippedBatches);
    CHECK(bitsOf(x.meanStaleness) == bitsOf(y.meanStaleness));
  }
}

template <class F>
std::string formatErrorOf(F&& f) {
  return tsnn::test::messageOf<tsnn::FormatError>(std::forward<F>(f));
}

// A float / int32 checkpoint of makeNetwork(0, stream) with makeState() and optimiser state of
// \p kind, as bytes.
std::string savedBytes(const TempDir& dir, std::uint64_t stream,
                       tsnn::OptimizerKind kind = tsnn::OptimizerKind::Sgd) {
  const std::string path = dir.file("source.ckpt");
  const auto net = makeNetwork<float, std::int32_t>(0, stream);
  tsnn::saveCheckpoint(path, net, makeStateFor(net, kind, stream));
  return readBytes(path);
}

// The format-1 fixtures (tests/io/data/README.md) and what they were made from.
fs::path fixture(const char* name) { return fs::path(__FILE__).parent_path() / "data" / name; }

template <class Scalar, class Index>
tsnn::Network<Scalar, Index> fixtureNetwork() {
  tsnn::NetworkOptions o;
  o.sizes = {6, 5, 4, 3};
  o.epsilon = 2;
  o.seed = 42;
  tsnn::Network<Scalar, Index> net(o);
  net.removeHiddenNeurons(0, {1});
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    for (Eigen::Index j = 0; j < net.layer(l).bias().size(); ++j)
      net.layer(l).bias()[j] = static_cast<Scalar>(0.5 * static_cast<double>(j) - 0.75);
  net.rng()();
  return net;
}

}  // namespace

TEST_CASE("The checksum is zlib's CRC-32", "[io]") {
  const std::string check = "123456789";
  const auto* p = reinterpret_cast<const unsigned char*>(check.data());
  CHECK(tsnn::detail::crc32Portable(p, check.size()) == 0xCBF43926u);
  CHECK(tsnn::detail::crc32(p, check.size()) == 0xCBF43926u);
  CHECK(tsnn::detail::crc32Portable(p, 0) == 0u);
  // Continuing from a partial CRC gives the CRC of the whole.
  CHECK(tsnn::detail::crc32Portable(p + 4, 5, tsnn::detail::crc32Portable(p, 4)) == 0xCBF43926u);

  tsnn::Rng rng = tsnn::test::testRng(0xC4C);
  std::string data(10007, '\0');
  for (auto& c : data) c = static_cast<char>(rng() & 0xFFu);
  const auto* d = reinterpret_cast<const unsigned char*>(data.data());
  CHECK(tsnn::detail::crc32(d, data.size()) == tsnn::detail::crc32Portable(d, data.size()));
#if defined(TSNN_HAS_ZLIB)
  CHECK(static_cast<std::uint32_t>(::crc32(0L, d, static_cast<uInt>(data.size()))) ==
        tsnn::detail::crc32Portable(d, data.size()));
#endif
}

TEMPLATE_TEST_CASE("A saved network loads back bit for bit with its training state", "[io]",
                   (Types<float, std::int32_t>), (Types<double, std::int32_t>),
                   (Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  const int variant = GENERATE(0, 1);
  INFO("options variant " << variant);
  const int optimizer = GENERATE(0, 1, 2);  // SGD state, Adam state, none
  INFO("options variant " << variant << ", optimizer state " << optimizer);
  auto net = makeNetwork<Scalar, Index>(variant, 0xC0 + static_cast<std::uint64_t>(variant));
  const tsnn::OptimizerKind kind =
      optimizer == 1 ? tsnn::OptimizerKind::Adam : tsnn::OptimizerKind::Sgd;
  const tsnn::TrainingState state = optimizer == 2 ? makeState() : makeStateFor(net, kind, 0xC2);
  // The removals took effect, so the ids have gaps that a fresh network would not have.
  REQUIRE(net.neuronIds(0) == std::vector<long long>{0, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15});
  REQUIRE(net.neuronIds(1) == std::vector<long long>{1, 2, 3, 4, 6, 7, 8, 9, 10});

  tsnn::saveCheckpoint(path, net, state);
  tsnn::TrainingState loaded;
  auto back = tsnn::loadCheckpoint<Scalar, Index>(path, &loaded);
  requireSameNetwork(net, back);
  requireSameState(state, loaded);
  requireSameOptimizerState<Scalar>(state.optimizer, loaded.optimizer);
  REQUIRE(std::isnan(loaded.history[1].testAccuracy));
  // The loaded state is aligned with the loaded network.
  if (optimizer != 2)
    for (std::size_t l = 0; l < back.numLayers(); ++l)
      CHECK(loaded.optimizer.layersOf<Scalar>()[l].pattern == back.layer(l).weights().patternId());

  // Saving the loaded network again reproduces the file byte for byte.
  const std::string again = dir.file("again.ckpt");
  tsnn::saveCheckpoint(again, back, loaded);
  CHECK(readBytes(again) == readBytes(path));

  // Without a state pointer the network is the same.
  requireSameNetwork(net, tsnn::loadCheckpoint<Scalar, Index>(path));

  tsnn::Rng rng = tsnn::test::testRng(0xC1);
  typename tsnn::Network<Scalar, Index>::Features x(37, 20);
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j) x(i, j) = static_cast<Scalar>(rng.uniform(-2, 2));
  CHECK(tsnn::test::bitIdentical(net.predictScores(x), back.predictScores(x)));

  // One training step with dropout, continuing from the optimiser state: it reads the state, the
  // pattern and the options, so the two networks stay identical only if all were restored.
  const auto batch = tsnn::test::randomDense<Scalar>(8, 20, rng);
  std::vector<std::int32_t> labels(8);
  for (auto& y : labels) y = static_cast<std::int32_t>(rng.below(5));
  std::vector<tsnn::OptimizerState> after;
  using Pair = std::pair<tsnn::Network<Scalar, Index>*, const tsnn::TrainingState*>;
  for (auto [n, s] : {Pair(&net, &state), Pair(&back, &loaded)}) {
    auto opt = tsnn::makeOptimizer<Scalar, Index>(kind, {}, {});
    opt->setState(s->optimizer, *n);
    tsnn::Workspace<Scalar> ws;
    auto g = n->makeGradients();
    n->forward(batch, ws, tsnn::PassOptions::training(17).serial());
    n->backward(batch, labels.data(), ws, g, Scalar(1) / Scalar(8), tsnn::Threads::serial());
    opt->step(*n, g, tsnn::Threads::serial());
    after.push_back(opt->state());
  }
  requireSameNetwork(net, back);
  requireSameOptimizerState<Scalar>(after[0], after[1]);
}

TEMPLATE_TEST_CASE("The file has the documented little-endian layout", "[io]",
                   (Types<float, std::int32_t>), (Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  const auto net = makeNetwork<Scalar, Index>(0, 0xD0);
  const tsnn::TrainingState state = makeStateFor(net, tsnn::OptimizerKind::Adam, 0xD1);
  tsnn::saveCheckpoint(path, net, state);
  const std::string b = readBytes(path);

  CHECK(b.substr(0, 8) == "TSNNCKPT");
  CHECK(b.substr(8, 4) == std::string("\x05\x00\x00\x00", 4));
  CHECK(getLe(b, 12, 8) == b.size());
  CHECK(getLe(b, 20, 4) == sizeof(Scalar));
  CHECK(getLe(b, 24, 4) == sizeof(Index));
  CHECK(getLe(b, b.size() - 4, 4) == crcOf(b, b.size() - 4));

  std::vector<std::string> order;
  const auto sec = sectionsOf(b, &order);
  CHECK(order == std::vector<std::string>{"OPTS", "NRNG", "TRST", "LAYR", "OPTM", "NIDS", "PREP"});

  const std::size_t o = sec.at("OPTS").payload;
  REQUIRE(getLe(b, o, 8) == 4);
  CHECK(getLe(b, o + 8, 8) == 20);
  CHECK(getLe(b, o + 16, 8) == 13);
  CHECK(getLe(b, o + 24, 8) == 9);
  CHECK(getLe(b, o + 32, 8) == 5);
  CHECK(getLe(b, o + 40, 8) == bitsOf(3.0));  // epsilon
  CHECK(getLe(b, o + 80, 8) == 3);            // seed
  CHECK(getLe(b, o + 88, 4) == 0);            // allocation: ER
  CHECK(getLe(b, o + 92, 4) == 0);            // activation storage: Scalar
  CHECK(sec.at("OPTS").size == 96);
  // TRST ends with the topology-pending flag and the epoch in progress (7 x 8 bytes, zero at an
  // epoch boundary); PREP is empty (no preprocessing given).
  const std::size_t trstEnd = sec.at("TRST").payload + sec.at("TRST").size;
  CHECK(getLe(b, trstEnd - 60, 4) == 1);
  for (std::size_t i = 0; i < 7; ++i) CHECK(getLe(b, trstEnd - 56 + 8 * i, 8) == 0);
  CHECK(sec.at("PREP").size == 8);
  CHECK(getLe(b, sec.at("PREP").payload, 8) == 0);

  const std::size_t r = sec.at("NRNG").payload;
  for (std::size_t i = 0; i < 4; ++i) CHECK(getLe(b, r + 8 * i, 8) == net.rng().state()[i]);

  const std::size_t t = sec.at("TRST").payload;
  CHECK(getLe(b, t, 4) == 3);                     // epoch
  CHECK(getLe(b, t + 36, 8) == 123456789012ull);  // step
  CHECK(getLe(b, t + 56, 8) == makeState().order.size());

  // Layer 0: header, then rowPtr, colIdx and the first value in the network's own widths.
  const std::size_t l = sec.at("LAYR").payload;
  const auto& w = net.layer(0).weights();
  CHECK(getLe(b, l, 8) == 3);
  CHECK(getLe(b, l + 8, 8) == 13);
  CHECK(getLe(b, l + 16, 8) == 20);
  REQUIRE(getLe(b, l + 24, 8) == static_cast<std::uint64_t>(w.nonZeros()));
  const std::size_t ptr = l + 32, col = ptr + 14 * sizeof(Index);
  const std::size_t val = col + static_cast<std::size_t>(w.nonZeros()) * sizeof(Index);
  CHECK(getLe(b, ptr + 13 * sizeof(Index), sizeof(Index)) ==
        static_cast<std::uint64_t>(w.nonZeros()));
  CHECK(getLe(b, col, sizeof(Index)) == static_cast<std::uint64_t>(w.colIdx()[0]));
  CHECK(getLe(b, val, sizeof(Scalar)) == bitsOf(w.values()[0]));
  // The bias follows the values directly (no momentum in the layers since version 2).
  const std::size_t bias = val + static_cast<std::size_t>(w.nonZeros()) * sizeof(Scalar);
  CHECK(getLe(b, bias, sizeof(Scalar)) == bitsOf(net.layer(0).bias()[0]));
  CHECK(getLe(b, bias + 13 * sizeof(Scalar), 8) == 9);       // layer 1's rows
  CHECK(getLe(b, bias + 13 * sizeof(Scalar) + 8, 8) == 13);  // and columns

  // "OPTM": kind (Adam 1), steps, 2 arrays per parameter, 3 layers, then layer 0's m, v, and
  // its biases' m, v; its size is exactly that.
  const std::size_t m = sec.at("OPTM").payload;
  const auto& s0 = state.optimizer.layersOf<Scalar>()[0];
  CHECK(getLe(b, m, 4) == 1);
  CHECK(getLe(b, m + 4, 8) == state.optimizer.steps);
  CHECK(getLe(b, m + 12, 4) == 2);
  CHECK(getLe(b, m + 16, 8) == 3);
  const std::size_t nnz = static_cast<std::size_t>(w.nonZeros());
  CHECK(getLe(b, m + 24, sizeof(Scalar)) == bitsOf(s0.entries[0][0]));
  CHECK(getLe(b, m + 24 + nnz * sizeof(Scalar), sizeof(Scalar)) == bitsOf(s0.entries[1][0]));
  CHECK(getLe(b, m + 24 + 2 * nnz * sizeof(Scalar), sizeof(Scalar)) == bitsOf(s0.rows[0][0]));
  CHECK(getLe(b, m + 24 + (2 * nnz + 13) * sizeof(Scalar), sizeof(Scalar)) ==
        bitsOf(s0.rows[1][0]));
  CHECK(sec.at("OPTM").size ==
        24 + 2 * static_cast<std::uint64_t>(net.nonZeros() + net.hiddenNeurons() + 5) *
                 sizeof(Scalar));

  // "NIDS": hidden layer 0's 13 ids, then its original width 16; then hidden layer 1's 9 ids
  // and its original width 12 (above its last id 10: neuron 11 was removed).
  const std::size_t n = sec.at("NIDS").payload;
  CHECK(getLe(b, n, 8) == 13);
  CHECK(getLe(b, n + 16, 8) == 2);  // the second surviving neuron of hidden layer 0
  CHECK(getLe(b, n + 8 + 13 * 8, 8) == 16);
  CHECK(getLe(b, n + 8 + 14 * 8, 8) == 9);
  CHECK(getLe(b, n + 8 + 14 * 8 + 8 + 8 * 8, 8) == 10);
  CHECK(getLe(b, n + 8 + 14 * 8 + 8 + 9 * 8, 8) == 12);
  CHECK(sec.at("NIDS").size == 8 + 14 * 8 + 8 + 10 * 8);
}

TEST_CASE("readCheckpointInfo reports the header, options and epoch of any checkpoint", "[io]") {
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  const auto net = makeNetwork<double, std::int64_t>(1, 0xE0);
  tsnn::saveCheckpoint(path, net, makeState());
  const tsnn::CheckpointInfo info = tsnn::readCheckpointInfo(path);
  CHECK(info.formatVersion == 5);
  CHECK(info.scalarBytes == 8);
  CHECK(info.indexBytes == 8);
  CHECK(info.fileBytes == fs::file_size(path));
  CHECK(info.options.sizes == std::vector<long long>{20, 13, 9, 5});
  CHECK(info.options.loss == tsnn::LossKind::MeanSquaredError);
  CHECK(info.options.hiddenActivation == tsnn::ActivationKind::LeakyReLU);
  CHECK(info.options.seed == 0xFEDCBA9876543210ull);
  CHECK(info.epoch == 3);
  CHECK(info.step == 123456789012ull);

  std::string b = readBytes(path);
  writeString(path, b.substr(0, b.size() / 2));
  const std::string msg = formatErrorOf([&] { tsnn::readCheckpointInfo(path); });
  CHECK_THAT(msg, Catch::Contains("truncated") && Catch::Contains(path));
  CHECK_THROWS_AS(tsnn::readCheckpointInfo(dir.file("missing.ckpt")), tsnn::IoError);
}

TEST_CASE("A flipped byte is reported as a checksum mismatch", "[io]") {
  TempDir dir;
  const std::string good = savedBytes(dir, 0xF0);
  const std::string path = dir.file("flipped.ckpt");
  // Bytes 20 onwards: everything after the magic, version and length, the checksum included.
  std::vector<std::size_t> positions = {good.size() / 2, 20, 24, 28, good.size() - 5,
                                        good.size() - 1};
  for (std::size_t pos = 29; pos < good.size(); pos += 37) positions.push_back(pos);
  for (std::size_t pos : positions) {
    INFO("byte " << pos << " of " << good.size());
    std::string b = good;
    b[pos] = static_cast<char>(b[pos] ^ 0x10);
    writeString(path, b);
    const std::string msg = formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); });
    CHECK_THAT(msg, Catch::Contains("checksum mismatch") && Catch::Contains(path));
  }
}

TEST_CASE("A truncated checkpoint is reported as truncated", "[io]") {
  TempDir dir;
  const std::string good = savedBytes(dir, 0xF1);
  const std::string path = dir.file("short.ckpt");
  for (std::size_t len :
       {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{12},
        std::size_t{20}, std::size_t{27}, std::size_t{28}, std::size_t{31}, std::size_t{32},
        std::size_t{100}, good.size() / 2, good.size() - 4, good.size() - 1}) {
    INFO("first " << len << " of " << good.size() << " bytes");
    writeString(path, good.substr(0, len));
    const std::string msg = formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); });
    CHECK_THAT(msg, Catch::Contains("truncated") && Catch::Contains(path));
  }
}

TEST_CASE("Trailing bytes after a checkpoint are refused", "[io]") {
  TempDir dir;
  const std::string good = savedBytes(dir, 0xF2);
  const std::string path = dir.file("long.ckpt");
  for (std::size_t extra : {1, 4, 100}) {
    writeString(path, good + std::string(extra, '\0'));
    const std::string msg = formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); });
    CHECK_THAT(msg,
               Catch::Contains(std::to_string(extra) + " trailing bytes") && Catch::Contains(path));
  }
}

TEST_CASE("A file without the magic bytes is not taken for a checkpoint", "[io]") {
  TempDir dir;
  const std::string path = dir.file("other.ckpt");
  writeString(path,
              "epoch,train_loss,train_accuracy,test_accuracy,epoch_seconds,nnz\n1,2,3,4,5,6\n");
  CHECK_THAT(formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); }),
             Catch::Contains("magic") && Catch::Contains(path));

  std::string b = savedBytes(dir, 0xF3);
  b[3] = 'X';
  fixChecksum(b);
  writeString(path, b);
  CHECK_THAT(formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); }),
             Catch::Contains("magic") && Catch::Contains(path));
}

TEST_CASE("A checkpoint of a future format version is refused", "[io]") {
  TempDir dir;
  const std::string path = dir.file("future.ckpt");
  std::string b = savedBytes(dir, 0xF4);
  for (const std::uint32_t version : {6u, 0u}) {
    INFO("version " << version);
    putLe(b, 8, version, 4);
    fixChecksum(b);
    writeString(path, b);
    CHECK_THAT(formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); }),
               Catch::Contains("format version " + std::to_string(version) +
                               " is not supported (this build of tsnn reads versions 1 to 5)") &&
                   Catch::Contains(path));
    CHECK_THAT(formatErrorOf([&] { tsnn::readCheckpointInfo(path); }),
               Catch::Contains("format version " + std::to_string(version)));
  }
}

TEST_CASE("Loading into other scalar or index types is refused naming both", "[io]") {
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  tsnn::saveCheckpoint(path, makeNetwork<double, std::int32_t>(0, 0xF5), makeState());
  std::string msg = formatErrorOf([&] { tsnn::loadCheckpoint<float, std::int32_t>(path); });
  CHECK_THAT(msg, Catch::Contains("Network<double, int32>") &&
                      Catch::Contains("Network<float, int32>") && Catch::Contains(path));

  tsnn::saveCheckpoint(path, makeNetwork<float, std::int32_t>(0, 0xF5), makeState());
  msg = formatErrorOf([&] { tsnn::loadCheckpoint<float, std::int64_t>(path); });
  CHECK_THAT(msg,
             Catch::Contains("Network<float, int32>") && Catch::Contains("Network<float, int64>"));
  msg = formatErrorOf([&] { tsnn::loadCheckpoint<double, std::int32_t>(path); });
  CHECK_THAT(msg,
             Catch::Contains("Network<float, int32>") && Catch::Contains("Network<double, int32>"));
}

TEST_CASE("Corrupt counts are refused before anything large is allocated", "[io]") {
  TempDir dir;
  const std::string good = savedBytes(dir, 0xF6);
  const std::string path = dir.file("counts.ckpt");
  const auto sec = sectionsOf(good, nullptr);
  const std::size_t trst = sec.at("TRST").payload, layr = sec.at("LAYR").payload;
  const std::size_t orderCount = trst + 56;
  const std::size_t historyCount = orderCount + 8 + 8 * getLe(good, orderCount, 8);
  const std::size_t configCount = historyCount + 8 + 92 * getLe(good, historyCount, 8);
  const std::map<std::string, std::size_t> fields = {
      {"layer sizes", sec.at("OPTS").payload},
      {"section OPTS size", sec.at("OPTS").payload - 8},
      {"section TRST size", trst - 8},
      {"sample order", orderCount},
      {"history", historyCount},
      {"config", configCount},
      {"section LAYR size", layr - 8},
      {"layers", layr},
      {"rows of layer 0", layr + 8},
      {"cols of layer 0", layr + 16},
      {"nonzeros of layer 0", layr + 24},
      {"neuron ids of hidden layer 0", sec.at("NIDS").payload},
      {"section OPTM size", sec.at("OPTM").payload - 8},
      {"optimizer layers", sec.at("OPTM").payload + 16},
  };
  // Anything the loader legitimately allocates is bounded by the file size.
  const std::size_t bound = 2 * good.size() + (std::size_t{1} << 16);
  for (const auto& [name, at] : fields) {
    for (std::uint64_t value :
         {std::uint64_t{1} << 24, std::uint64_t{1} << 26, std::uint64_t{1} << 40,
          std::uint64_t{1} << 63, ~std::uint64_t{0}}) {
      INFO(name << " at byte " << at << " set to " << value);
      std::string b = good;
      putLe(b, at, value, 8);
      fixChecksum(b);
      writeString(path, b);
      gLargestAllocation = 0;
      gTrackAllocations = true;
      std::string msg;
      try {
        tsnn::loadCheckpoint<float>(path);
        msg = "<no exception>";
      } catch (const tsnn::FormatError& e) {
        msg = e.what();
      } catch (const std::exception& e) {
        msg = std::string("<other exception> ") + e.what();
      }
      gTrackAllocations = false;
      CHECK_THAT(msg, Catch::StartsWith("tsnn: loadCheckpoint(): '" + path + "'"));
      CHECK(gLargestAllocation.load() <= bound);
    }
  }
}

TEST_CASE("Inconsistent contents are refused even with a valid checksum", "[io]") {
  TempDir dir;
  const std::string good = savedBytes(dir, 0xF7);
  const std::string path = dir.file("inconsistent.ckpt");
  const auto sec = sectionsOf(good, nullptr);
  const std::size_t opts = sec.at("OPTS").payload, layr = sec.at("LAYR").payload;
  const std::size_t rows = getLe(good, layr + 8, 8), nnz = getLe(good, layr + 24, 8);
  const std::size_t rowPtr = layr + 32, colIdx = rowPtr + 4 * (rows + 1);
  const std::size_t values = colIdx + 4 * nnz, bias = values + 4 * nnz;
  const std::size_t ids = sec.at("NIDS").payload, optm = sec.at("OPTM").payload;
  REQUIRE(rows == 13);
  REQUIRE(nnz > 2);
  const std::uint32_t nanBits = bitsOf(std::numeric_limits<float>::quiet_NaN());
  const std::uint32_t infBits = bitsOf(std::numeric_limits<float>::infinity());

  const auto set = [](std::size_t at, std::uint64_t value, std::size_t bytes) {
    return [=](std::string& b) { putLe(b, at, value, bytes); };
  };
  struct Case {
    const char* what;
    std::function<void(std::string&)> patch;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"column index out of range", set(colIdx, 20, 4), "column index 20 out of range"},
      {"negative column index", set(colIdx, 0xFFFFFFFFu, 4), "column index -1 out of range"},
      {"rowPtr not starting at 0", set(rowPtr, 1, 4), "invalid sparsity pattern: rowPtr[0]"},
      {"nonzero count not matching rowPtr", set(layr + 24, nnz - 1, 8),
       "invalid sparsity pattern: rowPtr[rows]"},
      {"NaN weight", set(values + 4, nanBits, 4), "layer 0 weight 1 is not finite"},
      {"infinite momentum", set(optm + 24 + 4, infBits, 4),
       "optimizer state array 0 of layer 0 holds inf at 1 (not finite)"},
      {"unknown optimizer kind", set(optm, 2, 4), "unknown optimizer kind 2"},
      {"arrays not matching the kind", set(optm + 12, 2, 4),
       "sgd keeps 1 state arrays per parameter, the file has 2"},
      {"optimizer layers not matching the network", set(optm + 16, 2, 8),
       "optimizer state for 2 layers"},
      {"optimizer state cut short", set(optm - 8, 30, 8), "optimizer state value count"},
      {"NaN bias", set(bias + 8, nanBits, 4), "layer 0 bias 2 is not finite"},
      {"ids not increasing", set(ids + 16, 0, 8), "negative or not increasing"},
      {"negative id", set(ids + 8, ~std::uint64_t{0}, 8), "neuron id -1 at position 0"},
      {"id count not matching the layer", set(ids, rows + 1, 8), "has 14 neuron ids"},
      {"original width not above the last id", set(ids + 8 + 8 * rows, 15, 8),
       "the original width 15 of hidden layer 0 is not above its last neuron id 15"},
      {"unknown weight initialisation", set(opts + 48, 7, 4), "unknown weight initialisation 7"},
      {"unknown hidden activation", set(opts + 52, 1000, 4), "unknown hidden activation 1000"},
      {"unknown loss", set(opts + 64, 2, 4), "unknown loss 2"},
      {"invalid dropout", set(opts + 72, bitsOf(1.5), 8), "dropout must be in [0, 1)"},
      {"NaN epsilon", set(opts + 40, bitsOf(std::numeric_limits<double>::quiet_NaN()), 8),
       "epsilon must be positive and finite"},
      {"sizes not matching the layers", set(opts + 16, 12, 8), "section 'OPTS' gives sizes"},
      {"an input width no genuine file of this size has", set(opts + 8, 1LL << 25, 8),
       "claims 33554432 inputs"},
      {"section tag", set(layr - 12, 0x5859414Cu /* "LAYX" */, 4), "expected section 'LAYR'"},
      {"section shorter than its contents", set(opts - 8, 92, 8), "truncated activation storage"},
      {"unknown density allocation", set(opts + 88, 2, 4), "unknown density allocation 2"},
      {"unknown activation storage", set(opts + 92, 2, 4), "unknown activation storage 2"},
      {"topology-pending flag not 0 or 1",
       set(sec.at("TRST").payload + sec.at("TRST").size - 60, 2, 4), "topology-pending flag"},
      {"a negative minibatch count in the epoch in progress",
       set(sec.at("TRST").payload + sec.at("TRST").size - 56, ~std::uint64_t{0}, 8),
       "the epoch in progress has a negative or non-finite figure (-1 minibatches"},
      {"a NaN loss sum in the epoch in progress",
       set(sec.at("TRST").payload + sec.at("TRST").size - 40,
           bitsOf(std::numeric_limits<double>::quiet_NaN()), 8),
       "loss sum nan"},
      {"section longer than its contents", set(opts - 8, 104, 8),
       "section 'OPTS' has 8 unexpected bytes"},
      {"no layers", set(layr, 0, 8), "section 'LAYR' has no layers"},
      {"bytes after the last section",
       [](std::string& b) {
         b.insert(b.size() - 4, 8, '\0');
         putLe(b, 12, b.size(), 8);
       },
       "8 unexpected bytes after the last section"},
      {"all-zero generator state",
       [&](std::string& b) {
         for (std::size_t i = 0; i < 4; ++i) putLe(b, sec.at("NRNG").payload + 8 * i, 0, 8);
       },
       "generator state is all zero"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    std::string b = good;
    c.patch(b);
    fixChecksum(b);
    writeString(path, b);
    const std::string msg = formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); });
    CHECK_THAT(msg, Catch::Contains(c.expected) &&
                        Catch::StartsWith("tsnn: loadCheckpoint(): '" + path + "'"));
  }
}

TEST_CASE("A save whose temporary file cannot be created keeps the old checkpoint", "[io]") {
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  const auto original = makeNetwork<float, std::int32_t>(0, 0xA0);
  tsnn::saveCheckpoint(path, original, makeState());
  const std::string before = readBytes(path);

  // "<path>.tmp" is a directory, so the temporary file cannot be opened.
  fs::create_directory(path + ".tmp");
  const auto other = makeNetwork<float, std::int32_t>(1, 0xA1);
  std::string msg;
  try {
    tsnn::saveCheckpoint(path, other, tsnn::TrainingState{});
    msg = "<no exception>";
  } catch (const tsnn::IoError& e) {
    msg = e.what();
  }
  CHECK_THAT(msg, Catch::Contains(path + ".tmp"));
  CHECK(readBytes(path) == before);
  tsnn::TrainingState state;
  requireSameNetwork(original, tsnn::loadCheckpoint<float>(path, &state));
  requireSameState(makeState(), state);
}

TEST_CASE("Saving into a missing directory throws IoError and writes nothing", "[io]") {
  TempDir dir;
  const std::string path = dir.file("missing/net.ckpt");
  CHECK_THROWS_AS(tsnn::saveCheckpoint(path, makeNetwork<float, std::int32_t>(0, 0xA2)),
                  tsnn::IoError);
  CHECK_FALSE(fs::exists(dir.file("missing")));
}

TEST_CASE("Loading a missing file or a directory throws IoError naming the path", "[io]") {
  TempDir dir;
  const std::string path = dir.file("nothing-here.ckpt");
  const std::string msg =
      tsnn::test::messageOf<tsnn::IoError>([&] { tsnn::loadCheckpoint<float>(path); });
  CHECK_THAT(msg, Catch::Contains(path));
  CHECK_THROWS_AS(tsnn::loadCheckpoint<float>(dir.file("")), tsnn::IoError);
}

TEST_CASE("Saving refuses non-finite parameters and keeps the old file", "[io]") {
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  auto net = makeNetwork<float, std::int32_t>(0, 0xA3);
  tsnn::saveCheckpoint(path, net);
  const std::string before = readBytes(path);
  auto state = makeStateFor(net, tsnn::OptimizerKind::Adam, 0xA4);
  state.optimizer.layersOf<float>()[2].rows[1][3] = std::numeric_limits<float>::infinity();
  std::string msg =
      tsnn::test::messageOf<tsnn::NumericalError>([&] { tsnn::saveCheckpoint(path, net, state); });
  CHECK_THAT(msg, Catch::Contains("optimizer state array 1 of layer 2 is inf at 3"));
  net.layer(1).values()[0] = std::numeric_limits<float>::quiet_NaN();
  msg = tsnn::test::messageOf<tsnn::NumericalError>([&] { tsnn::saveCheckpoint(path, net); });
  CHECK_THAT(msg, Catch::Contains("layer 1 weight 0"));
  CHECK(readBytes(path) == before);
}

TEST_CASE("Saving refuses optimiser state that does not fit the network and keeps the old file",
          "[io][optim]") {
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  auto net = makeNetwork<float, std::int32_t>(0, 0xA5);
  tsnn::saveCheckpoint(path, net);
  const std::string before = readBytes(path);
  const auto good = makeStateFor(net, tsnn::OptimizerKind::Sgd, 0xA6);
  struct Case {
    const char* what;
    std::function<void(tsnn::TrainingState&)> change;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"a layer too few", [](auto& s) { s.optimizer.template layersOf<float>().pop_back(); },
       "the optimizer state has 2 layers, the network 3"},
      {"an array too short",
       [](auto& s) { s.optimizer.template layersOf<float>()[1].entries[0].pop_back(); },
       "optimizer state array 0 of layer 1 has"},
      {"arrays of another kind", [](auto& s) { s.optimizer.kind = tsnn::OptimizerKind::Adam; },
       "adam keeps 2 of each"},
      {"another scalar type",
       [](auto& s) { s.optimizer.layers = std::vector<tsnn::LayerOptimizerState<double>>(3); },
       "holds double arrays for a float network"},
      {"another pattern",
       [](auto& s) { s.optimizer.template layersOf<float>()[0].pattern += 1000; },
       "another pattern than the layer's"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto s = good;
    c.change(s);
    CHECK_THROWS_WITH(tsnn::saveCheckpoint(path, net, s),
                      Catch::StartsWith("tsnn: saveCheckpoint(): ") && Catch::Contains(c.expected));
  }
  CHECK(readBytes(path) == before);
  // A negative second moment of Adam is refused when the file is read.
  std::string b = savedBytes(dir, 0xA7, tsnn::OptimizerKind::Adam);
  const auto sec = sectionsOf(b, nullptr);
  const std::size_t nnz0 = getLe(b, sec.at("LAYR").payload + 24, 8);
  putLe(b, sec.at("OPTM").payload + 24 + 4 * nnz0, bitsOf(-0.5f), 4);
  fixChecksum(b);
  writeString(path, b);
  CHECK_THAT(formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); }),
             Catch::Contains("optimizer state array 1 of layer 0 holds -0.5 at 0 (Adam's second "
                             "moment is >= 0)"));
}

TEMPLATE_TEST_CASE("A format-1 checkpoint loads, its momentum becoming SGD state", "[io][optim]",
                   (Types<float, std::int32_t>), (Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const fs::path path = fixture(sizeof(Scalar) == 4 ? "checkpoint_v1_float_int32.ckpt"
                                                    : "checkpoint_v1_double_int64.ckpt");
  REQUIRE(fs::exists(path));
  CHECK(tsnn::readCheckpointInfo(path.string()).formatVersion == 1);
  tsnn::TrainingState state;
  const auto net = tsnn::loadCheckpoint<Scalar, Index>(path.string(), &state);
  // The network the fixture was made from, rebuilt by this build.
  const auto expected = fixtureNetwork<Scalar, Index>();
  requireSameNetwork(expected, net);
  REQUIRE(net.nonZeros() == 43);
  CHECK(state.epoch == 2);
  CHECK(state.shuffleRng == std::array<std::uint64_t, 4>{1, 2, 3, 4});
  CHECK(state.order == std::vector<std::int64_t>{3, 1, 0, 2});
  CHECK(state.step == 17);
  CHECK(state.learningRate == 0.005);
  CHECK(state.skippedInARow == 1);
  CHECK(!state.topologyPending);
  REQUIRE(state.history.size() == 2);
  CHECK(state.history[1].epoch == 2);
  CHECK(state.history[0].trainLoss == 1.5);
  CHECK(state.config == "v1 fixture");
  // The momentum of every connection and bias, exactly as the fixture's README gives it.
  CHECK(state.optimizer.kind == tsnn::OptimizerKind::Sgd);
  CHECK(state.optimizer.steps == 17);
  const auto& layers = state.optimizer.layersOf<Scalar>();
  REQUIRE(layers.size() == 3);
  for (std::size_t l = 0; l < 3; ++l) {
    INFO("layer " << l);
    REQUIRE(layers[l].entries.size() == 1);
    REQUIRE(layers[l].rows.size() == 1);
    CHECK(layers[l].pattern == net.layer(l).weights().patternId());
    const auto& v = layers[l].entries[0];
    REQUIRE(v.size() == static_cast<std::size_t>(net.layer(l).nonZeros()));
    for (std::size_t k = 0; k < v.size(); ++k)
      CHECK(v[k] == static_cast<Scalar>(
                        (static_cast<double>(l) + 1) * 0.125 * static_cast<double>(k % 7) - 0.25));
    const auto& bv = layers[l].rows[0];
    REQUIRE(bv.size() == static_cast<std::size_t>(net.layer(l).outputs()));
    for (std::size_t j = 0; j < bv.size(); ++j)
      CHECK(bv[j] == static_cast<Scalar>(0.0625 * static_cast<double>(j + 1) * (l % 2 ? -1 : 1)));
  }
  // An SGD optimiser takes the state; the file saves again in the current version and loads
  // back equal.
  tsnn::Sgd<Scalar, Index> sgd;
  CHECK_NOTHROW(sgd.setState(state.optimizer, net));
  TempDir dir;
  const std::string again = dir.file("again.ckpt");
  tsnn::saveCheckpoint(again, net, state);
  CHECK(tsnn::readCheckpointInfo(again).formatVersion == tsnn::kCheckpointVersion);
  tsnn::TrainingState state2;
  requireSameNetwork(net, tsnn::loadCheckpoint<Scalar, Index>(again, &state2));
  requireSameState(state, state2);
  requireSameOptimizerState<Scalar>(state.optimizer, state2.optimizer);

  // Format 1's layer layout is checked as before: a non-finite momentum is refused.
  std::string b = readBytes(path.string());
  const auto sec = sectionsOf(b, nullptr);
  const std::size_t layr = sec.at("LAYR").payload;
  const std::size_t rows = getLe(b, layr + 8, 8), nnz = getLe(b, layr + 24, 8);
  const std::size_t velocity = layr + 32 + (rows + 1 + nnz) * sizeof(Index) + nnz * sizeof(Scalar);
  putLe(b, velocity + sizeof(Scalar), bitsOf(std::numeric_limits<Scalar>::quiet_NaN()),
        sizeof(Scalar));
  fixChecksum(b);
  writeString(again, b);
  CHECK_THAT(formatErrorOf([&] { tsnn::loadCheckpoint<Scalar, Index>(again); }),
             Catch::Contains("layer 0 momentum 1 is not finite"));
}

TEMPLATE_TEST_CASE(
    "A format-2 checkpoint loads, each hidden layer's original width taken as its "
    "last id + 1",
    "[io]", (Types<float, std::int32_t>), (Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const fs::path path = fixture(sizeof(Scalar) == 4 ? "checkpoint_v2_float_int32.ckpt"
                                                    : "checkpoint_v2_double_int64.ckpt");
  REQUIRE(fs::exists(path));
  CHECK(tsnn::readCheckpointInfo(path.string()).formatVersion == 2);
  tsnn::TrainingState state;
  const auto net = tsnn::loadCheckpoint<Scalar, Index>(path.string(), &state);
  requireSameNetwork(fixtureNetwork<Scalar, Index>(), net);
  // Hidden layer 0 lost neuron 1 of 5 (ids 0, 2, 3, 4); hidden layer 1 lost none.
  CHECK(net.neuronIds(0) == std::vector<long long>{0, 2, 3, 4});
  CHECK(net.originalWidth(0) == 5);
  CHECK(net.originalWidth(1) == 4);
  CHECK(state.config == "v2 fixture");
  CHECK(state.step == 17);
  CHECK(state.optimizer.empty());
}

TEMPLATE_TEST_CASE("A format-3 checkpoint loads at an epoch boundary", "[io]",
                   (Types<float, std::int32_t>), (Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const fs::path path = fixture(sizeof(Scalar) == 4 ? "checkpoint_v3_float_int32.ckpt"
                                                    : "checkpoint_v3_double_int64.ckpt");
  REQUIRE(fs::exists(path));
  CHECK(tsnn::readCheckpointInfo(path.string()).formatVersion == 3);
  tsnn::TrainingState state;
  state.inEpoch.batches = 9;  // overwritten by the load
  const auto net = tsnn::loadCheckpoint<Scalar, Index>(path.string(), &state);
  requireSameNetwork(fixtureNetwork<Scalar, Index>(), net);
  CHECK(net.originalWidth(0) == 5);
  CHECK(state.config == "v3 fixture");
  CHECK(state.epoch == 2);
  CHECK(state.step == 17);
  CHECK(state.order == std::vector<std::int64_t>{3, 1, 0, 2});
  CHECK(state.inEpoch.batches == 0);
  CHECK(state.inEpoch.trained == 0);
  CHECK(state.inEpoch.lossSum == 0);
  CHECK(state.inEpoch.seconds == 0);
}

TEMPLATE_TEST_CASE(
    "A format-4 checkpoint loads with the activations stored in the network's Scalar", "[io]",
    (Types<float, std::int32_t>), (Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  const fs::path path = fixture(sizeof(Scalar) == 4 ? "checkpoint_v4_float_int32.ckpt"
                                                    : "checkpoint_v4_double_int64.ckpt");
  REQUIRE(fs::exists(path));
  CHECK(tsnn::readCheckpointInfo(path.string()).formatVersion == 4);
  CHECK(tsnn::readCheckpointInfo(path.string()).options.activationStorage ==
        tsnn::ActivationStorage::Scalar);
  tsnn::TrainingState state;
  const auto net = tsnn::loadCheckpoint<Scalar, Index>(path.string(), &state);
  requireSameNetwork(fixtureNetwork<Scalar, Index>(), net);
  CHECK(net.options().activationStorage == tsnn::ActivationStorage::Scalar);
  CHECK(state.config == "v4 fixture");
  CHECK(state.step == 17);
  CHECK(state.inEpoch.batches == 3);
  CHECK(state.inEpoch.trained == 12);
  CHECK(state.inEpoch.lossSum == 4.5);
  CHECK(state.inEpoch.correct == 5);
  CHECK(state.inEpoch.clipped == 1);
  CHECK(state.inEpoch.seconds == 0.25);
}

TEST_CASE("A network storing bfloat16 activations round-trips with its storage", "[io]") {
  TempDir dir;
  const std::string path = dir.file("bf16.ckpt");
  tsnn::NetworkOptions o;
  o.sizes = {7, 9, 8, 3};
  o.epsilon = 3;
  o.seed = 0xBF;
  o.activationStorage = tsnn::ActivationStorage::BFloat16;
  const tsnn::Networkf net(o);
  tsnn::saveCheckpoint(path, net, makeState());
  CHECK(tsnn::readCheckpointInfo(path).options.activationStorage ==
        tsnn::ActivationStorage::BFloat16);
  const auto back = tsnn::loadCheckpoint<float, std::int32_t>(path);
  CHECK(back.options().activationStorage == tsnn::ActivationStorage::BFloat16);
  requireSameNetwork(net, back);
}

TEST_CASE("A state inside an epoch round-trips exactly", "[io]") {
  TempDir dir;
  const std::string path = dir.file("inside.ckpt");
  const auto net = makeNetwork<float, std::int32_t>(0, 0xB1);
  tsnn::TrainingState s = makeState();
  s.inEpoch.batches = 7;
  s.inEpoch.trained = 448;
  s.inEpoch.lossSum = 1234.5678901234567;
  s.inEpoch.correct = 301;
  s.inEpoch.skipped = 1;
  s.inEpoch.clipped = 2;
  s.inEpoch.seconds = 0.1 + std::ldexp(1.0, -40);
  tsnn::saveCheckpoint(path, net, s);
  CHECK(tsnn::readCheckpointInfo(path).formatVersion == 5);
  tsnn::TrainingState back;
  tsnn::loadCheckpoint<float>(path, &back);
  CHECK(back.inEpoch.batches == 7);
  CHECK(back.inEpoch.trained == 448);
  CHECK(back.inEpoch.lossSum == s.inEpoch.lossSum);  // exact: binary64 bit patterns
  CHECK(back.inEpoch.correct == 301);
  CHECK(back.inEpoch.skipped == 1);
  CHECK(back.inEpoch.clipped == 2);
  CHECK(back.inEpoch.seconds == s.inEpoch.seconds);
}

TEST_CASE("Preprocessing parameters round-trip exactly and are validated", "[io]") {
  TempDir dir;
  const std::string path = dir.file("prep.ckpt");
  const auto net = makeNetwork<float, std::int32_t>(0, 0xB0);
  tsnn::Preprocessing prep;
  for (long long j = 0; j < net.inputs(); ++j) {
    prep.mean.push_back(0.1 * static_cast<double>(j) - 1.0 / 3.0);
    prep.scale.push_back(1.0 + std::ldexp(1.0, -40) * static_cast<double>(j));
  }
  tsnn::saveCheckpoint(path, net, makeState(), prep);
  tsnn::Preprocessing back;
  tsnn::TrainingState state;
  tsnn::loadCheckpoint<float>(path, &state, &back);
  CHECK(back.mean == prep.mean);  // exact: stored as binary64 bit patterns
  CHECK(back.scale == prep.scale);
  requireSameState(makeState(), state);

  // Parameters that do not fit the network, or could not scale, are refused before writing.
  const std::string before = readBytes(path);
  auto wrong = prep;
  wrong.scale.pop_back();
  CHECK_THROWS_WITH(tsnn::saveCheckpoint(path, net, makeState(), wrong),
                    Catch::Contains("preprocessing has 20 means and 19 scales"));
  wrong = prep;
  wrong.scale[3] = 0;
  CHECK_THROWS_WITH(tsnn::saveCheckpoint(path, net, makeState(), wrong),
                    Catch::Contains("preprocessing of feature 3"));
  CHECK(readBytes(path) == before);

  // In the file: a count that is neither 0 nor the input width, and a scale of 0.
  const auto sec = sectionsOf(before, nullptr);
  const std::size_t at = sec.at("PREP").payload;
  std::string b = before;
  putLe(b, at + 8 + 8 * 20 + 8 * 3, bitsOf(0.0), 8);
  fixChecksum(b);
  writeString(path, b);
  CHECK_THAT(formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); }),
             Catch::Contains("preprocessing of feature 3 has mean"));
  b = before;
  putLe(b, at, 5, 8);
  fixChecksum(b);
  writeString(path, b);
  CHECK_THAT(formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); }),
             Catch::Contains("preprocessing for 5 features, but the network has 20 inputs"));
}

namespace {

// Saves makeNetwork<Scalar, Index>(variant, stream) and compares what readCheckpointInfo reports
// with what loadCheckpoint loads.
template <class Scalar, class Index>
void checkInfoAgreesWithLoad(const std::string& path, int variant, std::uint64_t stream) {
  tsnn::saveCheckpoint(path, makeNetwork<Scalar, Index>(variant, stream), makeState());
  const tsnn::CheckpointInfo info = tsnn::readCheckpointInfo(path);
  tsnn::TrainingState state;
  const auto loaded = tsnn::loadCheckpoint<Scalar, Index>(path, &state);
  CHECK(info.formatVersion == tsnn::kCheckpointVersion);
  CHECK(info.scalarBytes == sizeof(Scalar));
  CHECK(info.indexBytes == sizeof(Index));
  CHECK(info.fileBytes == fs::file_size(path));
  const tsnn::NetworkOptions &a = info.options, &b = loaded.options();
  CHECK(a.sizes == b.sizes);
  CHECK(bitsOf(a.epsilon) == bitsOf(b.epsilon));
  CHECK(a.init == b.init);
  CHECK(a.hiddenActivation == b.hiddenActivation);
  CHECK(bitsOf(a.alpha) == bitsOf(b.alpha));
  CHECK(a.loss == b.loss);
  CHECK(a.outputActivation == b.outputActivation);
  CHECK(bitsOf(a.dropout) == bitsOf(b.dropout));
  CHECK(a.seed == b.seed);
  CHECK(a.allocation == b.allocation);
  CHECK(info.epoch == state.epoch);
  CHECK(info.step == state.step);
}

}  // namespace

TEST_CASE("readCheckpointInfo agrees with loadCheckpoint on every field", "[io]") {
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  checkInfoAgreesWithLoad<float, std::int32_t>(path, 0, 0xB0);
  checkInfoAgreesWithLoad<double, std::int64_t>(path, 1, 0xB1);
  checkInfoAgreesWithLoad<double, std::int32_t>(path, 1, 0xB2);
}

TEST_CASE("readCheckpointInfo refuses a damaged file exactly as loading does", "[io]") {
  TempDir dir;
  const std::string good = savedBytes(dir, 0xB3);
  const std::string path = dir.file("damaged.ckpt");
  const auto sec = sectionsOf(good, nullptr);
  const std::size_t opts = sec.at("OPTS").payload, rng = sec.at("NRNG").payload;
  const std::size_t trst = sec.at("TRST").payload + sec.at("TRST").size;
  const auto set = [](std::size_t at, std::uint64_t value, std::size_t bytes) {
    return [=](std::string& b) {
      putLe(b, at, value, bytes);
      fixChecksum(b);
    };
  };
  const std::vector<std::pair<const char*, std::function<void(std::string&)>>> cases = {
      // A bit flipped in the layers, which readCheckpointInfo reads but does not decode.
      {"checksum", [&](std::string& b) { b[sec.at("LAYR").payload + 40] ^= 0x01; }},
      {"unknown loss", set(opts + 64, 2, 4)},
      {"section longer than its contents", set(opts - 8, 100, 8)},
      {"topology-pending flag", set(trst - 60, 2, 4)},
      {"epoch in progress", set(trst - 8, bitsOf(-1.0), 8)},
      {"all-zero generator state",
       [&](std::string& b) {
         for (std::size_t i = 0; i < 4; ++i) putLe(b, rng + 8 * i, 0, 8);
         fixChecksum(b);
       }},
      {"truncated", [&](std::string& b) { b.resize(b.size() / 3); }},
  };
  const std::string loadPrefix = "tsnn: loadCheckpoint(): ";
  const std::string infoPrefix = "tsnn: readCheckpointInfo(): ";
  for (const auto& [what, patch] : cases) {
    INFO(what);
    std::string b = good;
    patch(b);
    writeString(path, b);
    const std::string load = formatErrorOf([&] { tsnn::loadCheckpoint<float>(path); });
    const std::string info = formatErrorOf([&] { tsnn::readCheckpointInfo(path); });
    REQUIRE(load.rfind(loadPrefix, 0) == 0);
    REQUIRE(info.rfind(infoPrefix, 0) == 0);
    CHECK(info.substr(infoPrefix.size()) == load.substr(loadPrefix.size()));
  }
}

TEST_CASE("A checkpoint streams out in blocks and in through a window, byte for byte", "[io]") {
  TempDir dir;
  const std::string path = dir.file("net.ckpt");
  auto net = makeNetwork<float, std::int32_t>(1, 0xD0);
  const tsnn::TrainingState state = makeStateFor(net, tsnn::OptimizerKind::Adam, 0xD1);
  const std::string expected = tsnn::detail::encodeCheckpoint(net, state);
  // Blocks smaller than a field, than a section header and than a layer's arrays.
  for (std::size_t block : {std::size_t{1}, std::size_t{5}, std::size_t{64}, std::size_t{4096}}) {
    INFO("block " << block);
    std::string streamed;
    tsnn::detail::ByteWriter w(
        [&](const unsigned char* p, std::size_t n) {
          streamed.append(reinterpret_cast<const char*>(p), n);
        },
        block);
    tsnn::detail::writeCheckpoint(w, net, state, tsnn::Preprocessing{});
    w.flush();
    CHECK(streamed == expected);
  }
  tsnn::saveCheckpoint(path, net, state);
  REQUIRE(readBytes(path) == expected);

  // Windows smaller than a field, than the header, than a section; and the whole file.
  for (std::size_t window : {std::size_t{1}, std::size_t{3}, std::size_t{13}, std::size_t{64},
                             std::size_t{4096}, std::size_t{1} << 20}) {
    INFO("window " << window);
    auto source = std::make_shared<tsnn::detail::FileByteSource>(path, "test()", window);
    REQUIRE(source->size() == expected.size());
    source->trackCrc32Through(source->size() - 4);
    tsnn::TrainingState loaded;
    const auto back =
        tsnn::detail::decodeCheckpoint<float, std::int32_t>(source, source->size(), path, &loaded);
    requireSameNetwork(net, back);
    requireSameState(state, loaded);
    CHECK(tsnn::detail::encodeCheckpoint(back, loaded) == expected);
    // One pass: every byte is read once with a window that holds the 28-byte header; a smaller
    // window may reload a little where a field straddles two windows and a step back crosses
    // an edge (at most the header again and two windows).
    if (window >= 28)
      CHECK(source->bytesRead() == expected.size());
    else
      CHECK(source->bytesRead() <= expected.size() + 28 + 2 * window);
  }
}

TEST_CASE("Saving and loading hold a window of the file at a time, never the whole of it", "[io]") {
  TempDir dir;
  const std::string path = dir.file("wide.ckpt");
  tsnn::NetworkOptions o;
  o.sizes = {784, 5000, 5000, 10};
  o.epsilon = 20;
  o.seed = 5;
  const tsnn::Network<float, std::int32_t> net(o);
  const tsnn::TrainingState state = makeStateFor(net, tsnn::OptimizerKind::Sgd, 0xD2);
  std::size_t largestArray = 0;
  for (std::size_t l = 0; l < net.numLayers(); ++l)
    largestArray = std::max<std::size_t>(largestArray, 4 * net.layer(l).nonZeros());

  gLargestAllocation = 0;
  gTrackAllocations = true;
  tsnn::saveCheckpoint(path, net, state);
  gTrackAllocations = false;
  const std::size_t saving = gLargestAllocation.load();
  const std::size_t fileBytes = fs::file_size(path);
  INFO("file " << fileBytes << " bytes, largest array " << largestArray << " bytes");
  // The network is larger than a window several times over, and so is each of its arrays but
  // the largest, so that a whole-file buffer could not pass for an array.
  REQUIRE(fileBytes > 4 * tsnn::kCheckpointStreamBytes);
  REQUIRE(largestArray < fileBytes / 4);
  CHECK(saving <= tsnn::kCheckpointStreamBytes + 64);  // the writer's block and one field

  gLargestAllocation = 0;
  gPeakLiveBytes = gLiveBytes.load();
  gTrackAllocations = true;
  tsnn::TrainingState loaded;
  const auto back = tsnn::loadCheckpoint<float, std::int32_t>(path, &loaded);
  gTrackAllocations = false;
  const std::size_t loading = gLargestAllocation.load();
  CHECK(loading <= std::max(tsnn::kCheckpointStreamBytes, 2 * largestArray));
  // Beyond what it returns, loading holds its window, and not even one array of the largest
  // layer more (a temporary copy of its momentum, say).
  const long long transient = gPeakLiveBytes.load() - gLiveBytes.load();
  INFO("transient " << transient << " bytes");
  CHECK(transient <= static_cast<long long>(tsnn::kCheckpointStreamBytes + largestArray / 4));
  requireSameNetwork(net, back);

  gLargestAllocation = 0;
  gTrackAllocations = true;
  const tsnn::CheckpointInfo info = tsnn::readCheckpointInfo(path);
  gTrackAllocations = false;
  CHECK(gLargestAllocation.load() <= tsnn::kCheckpointStreamBytes + 64);
  CHECK(info.fileBytes == fileBytes);
}

TEST_CASE("FileByteSource reads through any window and checksums what it delivered", "[io]") {
  TempDir dir;
  const std::string path = dir.file("bytes.bin");
  std::string original(1000, '\0');
  tsnn::Rng rng = tsnn::test::testRng(0xD3);
  for (char& c : original) c = static_cast<char>(rng.below(256));
  const auto crcOfString = [](const std::string& s, std::size_t n) { return crcOf(s, n); };

  for (std::size_t window :
       {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1000}, std::size_t{5000}}) {
    INFO("window " << window);
    writeString(path, original);
    tsnn::detail::FileByteSource source(path, "test()", window);
    REQUIRE(source.size() == 1000);
    source.trackCrc32Through(996);
    // Pieces of varied sizes, in order, with short steps back as a reader's peeks make.
    std::string got;
    std::size_t at = 0;
    while (at < 1000) {
      const std::size_t n = std::min<std::size_t>(1 + rng.below(40), 1000 - at);
      std::string piece(n, '\0');
      source.read(at, piece.data(), n);
      CHECK(piece == original.substr(at, n));
      if (n > 3 && rng.below(4) == 0) {
        std::string again(2, '\0');
        source.read(at + 1, again.data(), 2);
        CHECK(again == original.substr(at + 1, 2));
      }
      got += piece;
      at += n;
    }
    CHECK(got == original);
    CHECK(source.crc32Through(996) == crcOfString(original, 996));
    CHECK(source.crc32Through(500) == crcOfString(original, 500));  // not tracked: read again
  }

  // Bytes changed in place after they were delivered: the checksum is of what was delivered,
  // so the change is not taken for the decoded contents; bytes changed before delivery count.
  writeString(path, original);
  tsnn::detail::FileByteSource source(path, "test()", 64);
  source.trackCrc32Through(996);
  std::string head(100, '\0');
  source.read(0, head.data(), 100);  // windows [0, 64) and [64, 128)
  std::string changed = original;
  changed[50] = static_cast<char>(changed[50] ^ 0x01);
  changed[600] = static_cast<char>(changed[600] ^ 0x01);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f.write(changed.data(), static_cast<std::streamsize>(changed.size()));
  }
  const std::string delivered = original.substr(0, 128) + changed.substr(128);
  CHECK(source.crc32Through(996) == crcOfString(delivered, 996));
  CHECK(source.crc32Through(996) != crcOfString(original, 996));

  // A file that shrinks while it is read is refused, not read past its end.
  writeString(path, original);
  tsnn::detail::FileByteSource shrinking(path, "loadThing()", 64);
  fs::resize_file(path, 500);
  std::string tail(8, '\0');
  const std::string msg =
      tsnn::test::messageOf<tsnn::IoError>([&] { shrinking.read(600, tail.data(), 8); });
  CHECK_THAT(msg, Catch::StartsWith("tsnn: loadThing(): cannot read '" + path + "'") &&
                      Catch::Contains("changed while it was read"));
  CHECK_THROWS_AS(shrinking.crc32Through(996), tsnn::IoError);

  CHECK_THROWS_AS(tsnn::detail::FileByteSource(dir.file("missing"), "t()"), tsnn::IoError);
  CHECK_THROWS_AS(tsnn::detail::FileByteSource(dir.dir(), "t()"), tsnn::IoError);
}
