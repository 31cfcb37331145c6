// Tests for tsnn/training/wasap.hpp: detail::retargetGradient on hand-made patterns;
// averageModels on two hand-built networks whose union average and magnitude pruning are worked
// out by hand below (ties, signs, biases, the rebuilt column index), with both optimisers' state
// averaged through the remaps it reports (Optimizer::average()); and trainWasap on a small
// synthetic three-class problem with two workers, with SGD and with Adam: it learns, keeps the
// connection budget, records every epoch, works as pure asynchronous and as pure local training,
// reports divergence and rejects more workers than samples; its workers are logical, so every
// partition is trained and the local phase gives the same bits whatever team of threads the
// runtime grants. Every multi-worker test repeats its run a few times to give races and
// deadlocks a chance to show.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/optimizers.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "support/trainers.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/training/wasap.hpp"

namespace {

using tsnn::EpochRecord;
using tsnn::TrainerKind;
using tsnn::TrainerOptions;
using tsnn::data::Dataset;

constexpr int kRepetitions = 5;

using tsnn::test::kClasses;
using tsnn::test::kFeatures;
using tsnn::test::makeProblem;

tsnn::NetworkOptions netOptions(std::uint64_t seed = 23) {
  tsnn::NetworkOptions o;
  o.sizes = {kFeatures, 32, 32, kClasses};
  o.epsilon = 4;
  o.dropout = 0.1;
  o.seed = tsnn::test::streamSeed(seed);
  return o;
}

TrainerOptions wasapOptions(int workers, int epochs, double localFraction, int batch = 20) {
  TrainerOptions o;
  o.kind = TrainerKind::Wasap;
  o.workers = workers;
  o.epochs = epochs;
  o.wasapLocalFraction = localFraction;
  o.batchSize = batch;
  o.sgd.learningRate = 0.05;
  o.sgd.momentum = 0.9;
  o.sgd.weightDecay = 1e-4;
  o.zeta = 0.2;
  o.seed = tsnn::test::streamSeed(777);
  return o;
}

template <class Scalar>
constexpr const Dataset<Scalar>* kNoTest = nullptr;

template <class Scalar, class Index>
std::vector<long long> layerNonZeros(const tsnn::Network<Scalar, Index>& net) {
  std::vector<long long> n;
  for (std::size_t l = 0; l < net.numLayers(); ++l) n.push_back(net.layer(l).nonZeros());
  return n;
}

// The column index a layer would build from scratch for its current weights.
template <class Scalar, class Index>
bool columnIndexCurrent(const tsnn::SparseLinear<Scalar, Index>& layer) {
  tsnn::TransposeIndex<Index> fresh;
  fresh.build(layer.weights());
  const auto& t = layer.transposeIndex();
  return t.patternId == layer.weights().patternId() && t.colPtr == fresh.colPtr &&
         t.rowIdx == fresh.rowIdx && t.valuePos == fresh.valuePos;
}

// The checks every WASAP run must pass, whatever the interleaving of the workers.
template <class Scalar>
void checkRun(const tsnn::Network<Scalar>& net, const std::vector<EpochRecord>& history,
              const std::vector<EpochRecord>& seen, const TrainerOptions& o,
              const std::vector<long long>& budget, const Dataset<Scalar>& test) {
  const int localEpochs = static_cast<int>(std::lround(o.wasapLocalFraction * o.epochs));
  const int asyncEpochs = o.epochs - localEpochs;
  long long total = 0;
  for (long long b : budget) total += b;
  REQUIRE(history.size() == static_cast<std::size_t>(o.epochs));
  REQUIRE(seen.size() == history.size());  // onEpoch once per epoch, the last after averaging
  for (std::size_t e = 0; e < history.size(); ++e) {
    const EpochRecord& r = history[e];
    INFO("epoch " << r.epoch << " loss " << r.trainLoss << " train acc " << r.trainAccuracy
                  << " test acc " << r.testAccuracy << " staleness " << r.meanStaleness);
    CHECK(r.epoch == static_cast<int>(e) + 1);
    CHECK(seen[e].epoch == r.epoch);
    CHECK(std::isfinite(r.trainLoss));
    CHECK(r.trainLoss > 0);
    CHECK(r.trainAccuracy >= 0);
    CHECK(std::isfinite(r.trainAccuracy));
    CHECK(r.testAccuracy >= 0);
    CHECK(r.testAccuracy <= 1);
    CHECK(r.epochSeconds >= 0);
    CHECK(r.evolveSeconds >= 0);
    CHECK(r.nnz == total);  // SET and the final pruning keep the budget
    CHECK(r.hiddenNeurons == 64);
    if (r.epoch <= asyncEpochs) {
      CHECK(std::isfinite(r.meanStaleness));
      CHECK(r.meanStaleness >= 0);
    } else {
      CHECK(r.meanStaleness == 0);
    }
  }
  CHECK(seen.back().testAccuracy == history.back().testAccuracy);
  CHECK(layerNonZeros(net) == budget);
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    CHECK(net.layer(l).weights().check().empty());
    CHECK(columnIndexCurrent(net.layer(l)));
  }
  // The last record describes the network the call leaves behind.
  CHECK(history.back().testAccuracy == net.accuracy(test.features, test.labels));
}

template <class Scalar>
void runAndCheck(double localFraction, int epochs, double minAccuracy,
                 tsnn::OptimizerKind optimizer = tsnn::OptimizerKind::Sgd,
                 tsnn::ActivationStorage storage = tsnn::ActivationStorage::Scalar) {
  const auto train = makeProblem<Scalar>(600, 201);
  const auto test = makeProblem<Scalar>(200, 202);
  auto o = wasapOptions(2, epochs, localFraction);
  o.optimizer = optimizer;
  o.adam.learningRate = 0.01;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    INFO("repetition " << rep);
    auto no = netOptions();
    no.activationStorage = storage;
    tsnn::Network<Scalar> net(no);
    const auto budget = layerNonZeros(net);
    std::vector<EpochRecord> seen;
    tsnn::TrainerCallbacks cb;
    cb.onEpoch = [&](const EpochRecord& r) { seen.push_back(r); };
    const auto history = tsnn::trainWasap(net, train, &test, o, cb);
    checkRun(net, history, seen, o, budget, test);
    CHECK(history.back().testAccuracy > minAccuracy);  // chance is 1/3
    CHECK(net.options().activationStorage == storage);
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-built networks for averageModels. Two layers: 3 -> 2 (layer 0) and 2 -> 2 (layer 1). All
// values are dyadic, so every average below is exact in float and double.
//
// Layer 0, weights (row, col) = value, optimiser state s (the optimiser's first array holds s;
// Adam's second, which must be >= 0, holds 2 |s|, checked against the same rule applied to the
// models' entries by derivedState()):
//   model A: (0,0) = 0.5, 0.125   (0,2) = -0.25, -0.5   (1,1) = -0.75, 0.25
//   model B: (0,0) = 0.25, 1.0    (0,1) = 1.0, 0.5      (1,1) = 0.25, -0.25   (1,2) = 0.5, 0.75
// Average over the union (an absent connection counts as 0), in union storage order:
//   pos 0 (0,0):  0.5/2 + 0.25/2 = 0.375     state 0.125/2 + 1.0/2 = 0.5625
//   pos 1 (0,1):          1.0/2 = 0.5       state          0.5/2 = 0.25
//   pos 2 (0,2):        -0.25/2 = -0.125    state         -0.5/2 = -0.25
//   pos 3 (1,1): -0.75/2 + 0.25/2 = -0.25   state 0.25/2 - 0.25/2 = 0
//   pos 4 (1,2):          0.5/2 = 0.25      state         0.75/2 = 0.375
// Magnitudes 0.375, 0.5, 0.125, 0.25, 0.25: positions 3 and 4 tie, and the tie goes to the lower
// position (3, the negative one). Kept for each budget:
//   5 or more: all   4: {0, 1, 3, 4}   3: {0, 1, 3}   2: {0, 1}   1: {1}   0: none
// Biases A = (0.5, -1), B = (1.5, 0) -> (1, -0.5); bias states A = (0.25, 0.25),
// B = (-0.25, 0.75) -> (0, 0.5).
//
// Layer 1 (budget 4 = the union, nothing pruned):
//   model A: dense (0,0) = 1, (0,1) = -0.5, (1,0) = 0.25, (1,1) = 2, states all 0.5
//   model B: (0,1) = 1.5 with state -0.5
//   average: (0,0) = 0.5, (0,1) = 0.5, (1,0) = 0.125, (1,1) = 1
//   states:  (0,0) = 0.25, (0,1) = 0.25 - 0.25 = 0, (1,0) = 0.25, (1,1) = 0.25
// Biases A = (0, 0.5), B = (-1, 0.25) -> (-0.5, 0.375); bias states all zero.

struct Entry {
  int row, col;
  double value, state;
};

// One hand-built model: its two layers' entries (row-major), biases and bias states.
struct HandModel {
  std::vector<Entry> l0, l1;
  std::vector<double> b0, bs0, b1, bs1;
};

const HandModel kModelA{{{0, 0, 0.5, 0.125}, {0, 2, -0.25, -0.5}, {1, 1, -0.75, 0.25}},
                        {{0, 0, 1, 0.5}, {0, 1, -0.5, 0.5}, {1, 0, 0.25, 0.5}, {1, 1, 2, 0.5}},
                        {0.5, -1},
                        {0.25, 0.25},
                        {0, 0.5},
                        {0, 0}};
const HandModel kModelB{
    {{0, 0, 0.25, 1.0}, {0, 1, 1.0, 0.5}, {1, 1, 0.25, -0.25}, {1, 2, 0.5, 0.75}},
    {{0, 1, 1.5, -0.5}},
    {1.5, 0},
    {-0.25, 0.75},
    {-1, 0.25},
    {0, 0}};

template <class Scalar, class Index>
tsnn::SparseLinear<Scalar, Index> handLayer(int rows, int cols, const std::vector<Entry>& entries,
                                            const std::vector<double>& bias) {
  std::vector<Index> rowPtr(static_cast<std::size_t>(rows) + 1, 0), colIdx;
  std::vector<Scalar> values;
  for (const Entry& e : entries) {  // entries are listed row-major
    ++rowPtr[static_cast<std::size_t>(e.row) + 1];
    colIdx.push_back(static_cast<Index>(e.col));
    values.push_back(static_cast<Scalar>(e.value));
  }
  for (int r = 0; r < rows; ++r)
    rowPtr[static_cast<std::size_t>(r) + 1] += rowPtr[static_cast<std::size_t>(r)];
  typename tsnn::SparseLinear<Scalar, Index>::Vector b(rows);
  for (int r = 0; r < rows; ++r) b[r] = static_cast<Scalar>(bias[static_cast<std::size_t>(r)]);
  return tsnn::SparseLinear<Scalar, Index>(
      tsnn::CsrMatrix<Scalar, Index>(static_cast<Index>(rows), static_cast<Index>(cols),
                                     std::move(rowPtr), std::move(colIdx), std::move(values)),
      b);
}

template <class Scalar, class Index>
tsnn::Network<Scalar, Index> handNetwork(const HandModel& m) {
  std::vector<tsnn::SparseLinear<Scalar, Index>> layers;
  layers.push_back(handLayer<Scalar, Index>(2, 3, m.l0, m.b0));
  layers.push_back(handLayer<Scalar, Index>(2, 2, m.l1, m.b1));
  tsnn::NetworkOptions o;
  o.dropout = 0;
  return tsnn::Network<Scalar, Index>(o, std::move(layers));
}

template <class Scalar, class Index>
tsnn::Network<Scalar, Index> modelA() {
  return handNetwork<Scalar, Index>(kModelA);
}

template <class Scalar, class Index>
tsnn::Network<Scalar, Index> modelB() {
  return handNetwork<Scalar, Index>(kModelB);
}

// What array i of an optimiser holds for a listed state s: s itself, or 2 |s| for Adam's second
// moment (exact for the dyadic values here).
double arrayValue(std::size_t i, double s) { return i == 0 ? s : 2 * std::abs(s); }

// Gives \p opt the hand model's state for \p net: arrayValue(i, s) in array i.
template <class Scalar, class Index>
void handState(tsnn::Optimizer<Scalar, Index>& opt, const tsnn::Network<Scalar, Index>& net,
               const HandModel& m, std::uint64_t steps) {
  opt.reset(net);
  tsnn::OptimizerState s = opt.state();
  s.steps = steps;
  auto& layers = s.layersOf<Scalar>();
  const std::vector<Entry>* entries[] = {&m.l0, &m.l1};
  const std::vector<double>* rows[] = {&m.bs0, &m.bs1};
  for (std::size_t l = 0; l < 2; ++l)
    for (std::size_t i = 0; i < opt.slots(); ++i) {
      for (std::size_t k = 0; k < entries[l]->size(); ++k)
        layers[l].entries[i][k] = static_cast<Scalar>(arrayValue(i, (*entries[l])[k].state));
      for (std::size_t j = 0; j < rows[l]->size(); ++j)
        layers[l].rows[i][j] = static_cast<Scalar>(arrayValue(i, (*rows[l])[j]));
    }
  opt.setState(s, net);
}

// Layer-0 union in storage order, as worked out above.
const Entry kUnion0[] = {{0, 0, 0.375, 0.5625},
                         {0, 1, 0.5, 0.25},
                         {0, 2, -0.125, -0.25},
                         {1, 1, -0.25, 0.0},
                         {1, 2, 0.25, 0.375}};
const Entry kAverage1[] = {
    {0, 0, 0.5, 0.25}, {0, 1, 0.5, 0.0}, {1, 0, 0.125, 0.25}, {1, 1, 1.0, 0.25}};

// The averaging rule applied to array i of the two hand models: the sum over the models that
// have (row, col) in layer l of arrayValue(i, s) / 2. Array 0 is checked against the tables
// worked out by hand instead.
double derivedState(std::size_t l, int row, int col, std::size_t i) {
  double sum = 0;
  for (const HandModel* m : {&kModelA, &kModelB})
    for (const Entry& e : l == 0 ? m->l0 : m->l1)
      if (e.row == row && e.col == col) sum += arrayValue(i, e.state) / 2;
  return sum;
}

// The layer must hold exactly these entries (row-major), with exactly these values, and the
// optimiser's state of layer l these states in its first array and derivedState() in the others.
template <class Scalar, class Index>
void checkLayer(const tsnn::SparseLinear<Scalar, Index>& layer,
                const tsnn::Optimizer<Scalar, Index>& opt, std::size_t l,
                const std::vector<Entry>& expect) {
  const auto& w = layer.weights();
  CHECK(w.check().empty());
  CHECK(columnIndexCurrent(layer));
  REQUIRE(static_cast<std::size_t>(w.nonZeros()) == expect.size());
  const auto& state = opt.layerState(l);
  REQUIRE(state.pattern == w.patternId());
  for (const auto& a : state.entries) REQUIRE(a.size() == expect.size());
  std::size_t k = 0;
  for (Index r = 0; r < w.rows(); ++r)
    for (Index p = w.rowBegin(r); p < w.rowEnd(r); ++p, ++k) {
      const Entry& e = expect[k];
      INFO("entry " << k << " expected (" << e.row << ", " << e.col << ") = " << e.value);
      CHECK(r == e.row);
      CHECK(w.colIdx()[static_cast<std::size_t>(p)] == e.col);
      CHECK(w.values()[static_cast<std::size_t>(p)] == static_cast<Scalar>(e.value));
      for (std::size_t i = 0; i < opt.slots(); ++i)
        CHECK(state.entries[i][static_cast<std::size_t>(p)] ==
              static_cast<Scalar>(i == 0 ? e.state : derivedState(l, e.row, e.col, i)));
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE(
    "retargetGradient matches rows and columns by original neuron id across SET and pruning",
    "[training][wasap]", (tsnn::test::Types<float, std::int32_t>),
    (tsnn::test::Types<double, std::int64_t>)) {
  using Scalar = typename TestType::Scalar;
  using Index = typename TestType::Index;
  using Csr = tsnn::CsrMatrix<Scalar, Index>;
  using Layer = tsnn::SparseLinear<Scalar, Index>;
  using Net = tsnn::Network<Scalar, Index>;
  using Vec = typename Net::Vector;
  tsnn::NetworkOptions o;
  o.sizes = {5, 3, 2};
  // Layer 0 of `from`: row 0 {0, 2, 4}, row 1 {1}, row 2 {0, 1, 3}; gradient 1..7 in storage order.
  const Csr from0(3, 5, {0, 3, 4, 7}, {0, 2, 4, 1, 0, 1, 3}, std::vector<Scalar>(7, Scalar(9)));
  // Layer 0 of `to`: row 0 {2, 3, 4}, row 1 {} (its only entry removed), row 2 {1, 2, 3, 4}.
  const Csr to0(3, 5, {0, 3, 3, 7}, {2, 3, 4, 1, 2, 3, 4}, std::vector<Scalar>(7, Scalar(9)));
  // Layer 1 (output) of both: row 0 {0, 1, 2}, row 1 {1, 2}.
  const Csr out1(2, 3, {0, 3, 5}, {0, 1, 2, 1, 2}, std::vector<Scalar>(5, Scalar(1)));
  const Net from(o, {Layer(from0, Vec::Zero(3)), Layer(out1, Vec::Zero(2))});
  Net to(o, {Layer(to0, Vec::Zero(3)), Layer(out1, Vec::Zero(2))});
  const std::vector<Scalar> g0{1, 2, 3, 4, 5, 6, 7}, g1{1, 2, 3, 4, 5};
  Vec b0(3), b1(2);
  b0 << 10, 20, 30;
  b1 << 7, 8;
  std::vector<Scalar> out(11, std::numeric_limits<Scalar>::quiet_NaN());  // stale, wrong size
  Vec outBias = Vec::Constant(4, std::numeric_limits<Scalar>::quiet_NaN());

  // Same neurons, SET-changed pattern: (0,2) <- 2, (0,3) new, (0,4) <- 3, (2,1) <- 6, (2,2) new,
  // (2,3) <- 7, (2,4) new; (0,0) = 1, (1,1) = 4 and (2,0) = 5 are dropped.
  tsnn::detail::retargetGradient(from, to, 0, g0, b0, out, outBias);
  CHECK(out == std::vector<Scalar>{2, 0, 3, 6, 0, 7, 0});
  CHECK(outBias == b0);
  // Same pattern: a plain copy.
  tsnn::detail::retargetGradient(from, from, 0, g0, b0, out, outBias);
  CHECK(out == g0);
  tsnn::detail::retargetGradient(from, to, 1, g1, b1, out, outBias);
  CHECK(out == g1);
  CHECK(outBias == b1);

  // Hidden neuron 1 (input-less in `to`) removed: layer 0 keeps rows of ids 0 and 2, layer 1's
  // columns are compacted to ids {0, 2}.
  to.removeHiddenNeurons(0, {Index(1)});
  REQUIRE(to.neuronIds(0) == std::vector<long long>{0, 2});
  tsnn::detail::retargetGradient(from, to, 0, g0, b0, out, outBias);
  CHECK(out == std::vector<Scalar>{2, 0, 3, 6, 0, 7, 0});
  CHECK(outBias == (Vec(2) << 10, 30).finished());
  // Layer 1: row 0 {0, 1, 2} -> {0, 2} keeps 1 and 3; row 1 {1, 2} -> {2} keeps 5.
  tsnn::detail::retargetGradient(from, to, 1, g1, b1, out, outBias);
  CHECK(out == std::vector<Scalar>{1, 3, 5});
  CHECK(outBias == b1);
}

TEMPLATE_TEST_CASE(
    "averageModels averages over the union and prunes to the budget by magnitude, "
    "and the optimisers' state is averaged the same way",
    "[training][wasap][average][optim]", (tsnn::test::SgdOf<float, std::int32_t>),
    (tsnn::test::SgdOf<double, std::int64_t>), (tsnn::test::AdamOf<float, std::int32_t>),
    (tsnn::test::AdamOf<double, std::int32_t>)) {
  using Scalar = typename TestType::ScalarType;
  using NetIndex = typename TestType::IndexType;
  using Optimizer = typename TestType::Type;
  using Net = tsnn::Network<Scalar, NetIndex>;
  const std::vector<Net> models{modelA<Scalar, NetIndex>(), modelB<Scalar, NetIndex>()};
  std::vector<Optimizer> opts{TestType::make(), TestType::make()};
  handState(opts[0], models[0], kModelA, 3);
  handState(opts[1], models[1], kModelB, 7);
  opts[0].setLearningRate(0.125);
  const std::vector<const tsnn::Optimizer<Scalar, NetIndex>*> from{&opts[0], &opts[1]};
  const std::vector<std::vector<std::size_t>> keptFor{
      /*0*/ {},        /*1*/ {1},          /*2*/ {0, 1},
      /*3*/ {0, 1, 3}, /*4*/ {0, 1, 3, 4}, /*5*/ {0, 1, 2, 3, 4}};
  for (long long budget0 = 0; budget0 <= 7; ++budget0) {
    INFO("layer-0 budget " << budget0);
    Net target = modelB<Scalar, NetIndex>();  // replaced, whatever it held
    Optimizer averaged = TestType::make();    // replaced too
    std::vector<tsnn::NetworkRemap<NetIndex>> remaps;
    tsnn::averageModels(models, {budget0, 4}, target, &remaps);
    REQUIRE(remaps.size() == 2);
    averaged.average(from, remaps, target);
    CHECK(averaged.learningRate() == TestType::make().learningRate());  // its own rate
    CHECK(averaged.steps() == 7);  // the largest of the models' step counts

    std::vector<Entry> expect0;
    for (std::size_t p : keptFor[static_cast<std::size_t>(std::min<long long>(budget0, 5))])
      expect0.push_back(kUnion0[p]);
    checkLayer(target.layer(0), averaged, 0, expect0);
    checkLayer(target.layer(1), averaged, 1,
               std::vector<Entry>(std::begin(kAverage1), std::end(kAverage1)));

    CHECK(target.layer(0).bias()[0] == Scalar(1));
    CHECK(target.layer(0).bias()[1] == Scalar(-0.5));
    CHECK(target.layer(1).bias()[0] == Scalar(-0.5));
    CHECK(target.layer(1).bias()[1] == Scalar(0.375));
    // Bias states (0.25, 0.25) and (-0.25, 0.75) average to (0, 0.5); Adam's second array holds
    // (0.5, 0.5) and (0.5, 1.5), averaging to (0.5, 1). Layer 1's are all zero.
    CHECK(averaged.layerState(0).rows[0] == std::vector<Scalar>{Scalar(0), Scalar(0.5)});
    if (averaged.slots() == 2)
      CHECK(averaged.layerState(0).rows[1] == std::vector<Scalar>{Scalar(0.5), Scalar(1)});
    for (std::size_t i = 0; i < averaged.slots(); ++i)
      CHECK(averaged.layerState(1).rows[i] == std::vector<Scalar>{Scalar(0), Scalar(0)});

    // The averaged network computes with its new weights: first layer against a dense oracle.
    tsnn::test::Dense<Scalar> x(1, 3);
    x << Scalar(1), Scalar(-2), Scalar(0.5);
    tsnn::Workspace<Scalar> ws;
    target.forward(x, ws, tsnn::PassOptions::inference().serial());
    for (int j = 0; j < 2; ++j) {
      Scalar z = target.layer(0).bias()[j];
      for (const Entry& e : expect0)
        if (e.row == j) z += static_cast<Scalar>(e.value) * x(0, e.col);
      CHECK(ws.z[0](0, j) == Approx(z).margin(1e-6));
    }
  }
}

TEMPLATE_TEST_CASE("averageModels of identical copies returns the same model and state",
                   "[training][wasap][average][optim]", tsnn::test::SgdOf<float>,
                   tsnn::test::SgdOf<double>, tsnn::test::AdamOf<float>,
                   tsnn::test::AdamOf<double>) {
  using Scalar = typename TestType::ScalarType;
  const tsnn::Network<Scalar> net(netOptions(31));
  tsnn::Network<Scalar> m = net;
  // Give the biases and the state generic values, so that they are checked too.
  tsnn::Rng rng = tsnn::test::testRng(203);
  for (std::size_t l = 0; l < m.numLayers(); ++l)
    for (Eigen::Index j = 0; j < m.layer(l).bias().size(); ++j)
      m.layer(l).bias()[j] = static_cast<Scalar>(rng.uniform(-1, 1));
  auto opt = TestType::make();
  tsnn::test::fillRandomState(opt, m, tsnn::test::streamSeed(204));
  const std::vector<tsnn::Network<Scalar>> models{m, m};
  tsnn::Network<Scalar> target = net;
  std::vector<tsnn::NetworkRemap<std::int32_t>> remaps;
  tsnn::averageModels(models, layerNonZeros(m), target, &remaps);
  auto averaged = TestType::make();
  averaged.average({&opt, &opt}, remaps, target);
  for (std::size_t l = 0; l < m.numLayers(); ++l) {
    CHECK(target.layer(l).weights().rowPtr() == m.layer(l).weights().rowPtr());
    CHECK(target.layer(l).weights().colIdx() == m.layer(l).weights().colIdx());
    CHECK(tsnn::test::bitIdentical(target.layer(l).weights().values(),
                                   m.layer(l).weights().values()));
    CHECK(tsnn::test::bitIdentical(target.layer(l).bias(), m.layer(l).bias()));
    for (std::size_t i = 0; i < opt.slots(); ++i) {
      CHECK(tsnn::test::bitIdentical(averaged.layerState(l).entries[i],
                                     opt.layerState(l).entries[i]));
      CHECK(tsnn::test::bitIdentical(averaged.layerState(l).rows[i], opt.layerState(l).rows[i]));
    }
    CHECK(columnIndexCurrent(target.layer(l)));
  }
  CHECK(averaged.steps() == opt.steps());
  // The averaged state is aligned with the target: the optimiser steps on it.
  auto g = target.makeGradients();
  CHECK_NOTHROW(averaged.step(target, g));
  // Remaps that do not start at a model's state are refused, and leave the state alone.
  const auto before = averaged.state();
  CHECK_THROWS_WITH(averaged.average({&averaged, &opt}, remaps, target),
                    Catch::StartsWith("tsnn: Optimizer::average(): the remap of optimizer 0"));
  CHECK(averaged.layerState(0).entries == before.template layersOf<Scalar>()[0].entries);
}

TEST_CASE("trainWasap trains with Adam in both phases", "[training][wasap][optim]") {
  runAndCheck<float>(1.0 / 3.0, 6, 0.7, tsnn::OptimizerKind::Adam);
}

TEST_CASE("trainWasap trains a network storing bfloat16 activations in both phases",
          "[training][wasap][bf16]") {
  runAndCheck<float>(1.0 / 3.0, 6, 0.7, tsnn::OptimizerKind::Sgd,
                     tsnn::ActivationStorage::BFloat16);
}

TEMPLATE_TEST_CASE("trainWasap with two workers learns and keeps the connection budget",
                   "[training][wasap]", float, double) {
  // 6 epochs, local fraction 1/3: 4 asynchronous epochs, then 2 local ones and the averaging.
  runAndCheck<TestType>(1.0 / 3.0, 6, 0.7);
}

TEST_CASE("trainWasap works as pure asynchronous training with local fraction 0",
          "[training][wasap]") {
  runAndCheck<float>(0.0, 8, 0.65);
}

TEST_CASE("trainWasap works as pure local training and averaging with local fraction 1",
          "[training][wasap]") {
  // Each worker sees only its half of the data and the average of two independently trained
  // sparse models loses some accuracy, so the bar is lower.
  runAndCheck<float>(1.0, 8, 0.6);
}

TEST_CASE("trainWasap with one worker is deterministic", "[training][wasap]") {
  const auto train = makeProblem<double>(150, 204);
  const auto test = makeProblem<double>(50, 205);
  const auto o = wasapOptions(1, 3, 1.0 / 3.0);
  tsnn::Network<double> a(netOptions()), b(netOptions());
  const auto ha = tsnn::trainWasap(a, train, &test, o);
  const auto hb = tsnn::trainWasap(b, train, &test, o);
  REQUIRE(ha.size() == 3);
  REQUIRE(hb.size() == 3);
  for (std::size_t e = 0; e < ha.size(); ++e) {
    CHECK(ha[e].trainLoss == hb[e].trainLoss);
    CHECK(ha[e].testAccuracy == hb[e].testAccuracy);
    CHECK(ha[e].meanStaleness == 0);  // one worker: its copy is always current
  }
  for (std::size_t l = 0; l < a.numLayers(); ++l) {
    CHECK(a.layer(l).weights().colIdx() == b.layer(l).weights().colIdx());
    CHECK(tsnn::test::bitIdentical(a.layer(l).weights().values(), b.layer(l).weights().values()));
    CHECK(tsnn::test::bitIdentical(a.layer(l).bias(), b.layer(l).bias()));
  }
}

TEST_CASE("trainWasap rejects more workers than samples", "[training][wasap]") {
  const auto tiny = makeProblem<float>(3, 206);
  for (int rep = 0; rep < kRepetitions; ++rep) {
    tsnn::Network<float> net(netOptions());
    const std::string msg = tsnn::test::messageOf(
        [&] { tsnn::trainWasap(net, tiny, kNoTest<float>, wasapOptions(4, 2, 0.5, 2)); });
    CHECK_THAT(msg,
               Catch::Contains("trainWasap(): 4 workers need at least as many samples, got 3"));
    // As many workers as samples is fine: one sample each.
    const auto history = tsnn::trainWasap(net, tiny, kNoTest<float>, wasapOptions(3, 2, 0.5, 2));
    CHECK(history.size() == 2);
  }
}

// As in test_sequential.cpp, a learning rate of 1e15 overflows the logits within a few minibatches.
// The error must surface as NumericalError from whichever worker saw it, in either phase, and
// the other workers must stop rather than hang.
TEST_CASE("trainWasap reports divergence as NumericalError in both phases", "[training][wasap]") {
  const auto train = makeProblem<float>(200, 207);
  for (double localFraction : {0.0, 1.0}) {
    for (int rep = 0; rep < kRepetitions; ++rep) {
      INFO("local fraction " << localFraction << ", repetition " << rep);
      tsnn::Network<float> net(netOptions());
      auto o = wasapOptions(2, 4, localFraction, 10);
      o.sgd.learningRate = 1e15;
      const std::string msg = tsnn::test::messageOf<tsnn::NumericalError>(
          [&] { tsnn::trainWasap(net, train, kNoTest<float>, o); });
      INFO(msg);
      CHECK_THAT(msg, Catch::StartsWith("tsnn: trainWasap(): "));
      CHECK_THAT(msg, Catch::Contains(" in worker "));
      CHECK_THAT(msg,
                 Catch::Contains(localFraction == 0 ? " at shared epoch " : " at local epoch "));
    }
  }
}

// In phase 1 the minibatch that crosses an epoch boundary of the shared model belongs wholly to
// the ending epoch, which can then count up to N + B - 1 samples; loss and accuracy must be
// averages over the samples counted (an earlier version divided by N and reported 1.1).
TEST_CASE("trainWasap phase-1 training accuracy is a fraction of the epoch's samples",
          "[training][wasap]") {
  Dataset<double> d;
  d.numClasses = kClasses;
  d.features = Dataset<double>::Matrix::Zero(10, kFeatures);
  d.labels.assign(10, 0);
  for (int rep = 0; rep < kRepetitions; ++rep) {
    tsnn::Network<double> net(netOptions());
    net.layer(net.numLayers() - 1).bias()[0] = 10;  // every sample is classified correctly
    auto o = wasapOptions(3, 8, 0.0, 2);
    const auto history = tsnn::trainWasap(net, d, kNoTest<double>, o);
    for (const auto& r : history) {
      INFO("epoch " << r.epoch);
      CHECK(r.trainAccuracy <= 1.0);
    }
  }
}

TEST_CASE("trainWasap prunes neurons on the shared model while stale gradients are in flight",
          "[training][wasap][importance]") {
  const auto train = makeProblem<float>(300, 210);
  const auto test = makeProblem<float>(150, 211);
  // 8 epochs: 5 asynchronous (pruning after 2 and 4), 3 local (where pruning, due after 6,
  // does not run).
  auto o = wasapOptions(2, 8, 0.375);
  o.importancePruning = true;
  o.pruning.startEpoch = 2;
  o.pruning.period = 2;
  o.pruning.percentile = 15;
  for (int rep = 0; rep < kRepetitions; ++rep) {
    tsnn::Network<float> net(netOptions());
    const auto h = tsnn::trainWasap(net, train, &test, o);
    REQUIRE(h.size() == 8);
    long long removed = 0;
    for (const auto& r : h) {
      INFO("epoch " << r.epoch << " removed " << r.neuronsRemoved);
      // Epoch 4's pruning runs too but removes only what fell below the threshold since epoch 2
      // (pruning does not compound), which may be nothing.
      if (r.epoch == 2) CHECK(r.neuronsRemoved > 0);
      if (r.epoch != 2 && r.epoch != 4) CHECK(r.neuronsRemoved == 0);
      removed += r.neuronsRemoved;
      CHECK(r.hiddenNeurons == 64 - removed);
      CHECK(std::isfinite(r.trainLoss));
    }
    CHECK(removed >= 8);  // 15% of 32 in each layer (5 each) at epoch 2
    CHECK(net.hiddenNeurons() == 64 - removed);
    CHECK(net.nonZeros() == h.back().nnz);
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      CHECK(net.layer(l).weights().check().empty());
      CHECK(columnIndexCurrent(net.layer(l)));
    }
    for (std::size_t hdn = 0; hdn + 1 < net.numLayers(); ++hdn)
      CHECK(net.neuronIds(hdn).size() == static_cast<std::size_t>(net.layer(hdn).outputs()));
    CHECK(h.back().testAccuracy > 0.7);
  }
}

TEST_CASE("trainWasap refuses to resume a saved state", "[training][wasap]") {
  const auto train = makeProblem<float>(60, 212);
  tsnn::Network<float> net(netOptions());
  tsnn::TrainingState state;
  state.epoch = 1;
  CHECK_THROWS_WITH(
      tsnn::trainWasap(net, train, kNoTest<float>, wasapOptions(2, 3, 0.3), {}, &state),
      Catch::Contains("trainWasap()") && Catch::Contains("resum"));
}

// With a learning rate of 1e-30, no momentum, no decay, no dropout and no evolution, training
// leaves every weight where it is (to far below the loss's precision), so the mean training loss
// of an epoch in which every sample is seen once is the initial network's mean loss over the
// whole training set, and the accuracy its accuracy. A worker that never trains its partition
// (as when a team of one thread ran only worker 0) leaves half the samples out: in phase 2 the
// loss and accuracy drop to about half, in phase 1 they become partition 0's.
TEST_CASE("trainWasap trains every partition whatever team the runtime grants",
          "[training][wasap][threads]") {
  const auto train = makeProblem<double>(64, 213);
  auto netOpts = netOptions(24);
  netOpts.dropout = 0;
  const tsnn::Network<double> initial(netOpts);
  // The initial network's loss and correct count over the whole training set.
  tsnn::Workspace<double> ws;
  const tsnn::Activations<double> x = train.features;
  initial.forward(x, ws, tsnn::PassOptions::inference().serial());
  auto grads = initial.makeGradients();
  const tsnn::BlockStats all =
      initial.backward(x, train.labels.data(), ws, grads, 1.0, tsnn::Threads::serial());
  const double meanLoss = all.lossSum / 64, accuracy = static_cast<double>(all.correct) / 64;
  INFO("initial mean loss " << meanLoss << ", accuracy " << accuracy);

  // Two workers of 32 samples, minibatches of 8: one asynchronous epoch is eight minibatches.
  auto o = wasapOptions(2, 2, 0.5, 8);
  o.sgd.learningRate = 1e-30;
  o.sgd.momentum = 0;
  o.sgd.weightDecay = 0;
  o.evolve = false;
  // threads = 1 asks for a team of one; threads = 0 for one thread per worker, which the runtime
  // may cut (OMP_THREAD_LIMIT=1 in the ctest run thread_limit_1.test_wasap, or no OpenMP).
  for (int threads : {1, 0}) {
    o.threads = threads;
    const int team = tsnn::test::grantedTeam(o.teamFor(2));
    INFO("threads " << threads << ", team of " << team);
    tsnn::Network<double> net(netOpts);
    const auto h = tsnn::trainWasap(net, train, kNoTest<double>, o);
    REQUIRE(h.size() == 2);
    // Phase 1 is deterministic on one thread, which then takes one minibatch of each worker in
    // turn: every sample exactly once in the epoch's 64.
    if (team == 1) {
      CHECK(h[0].trainLoss == Approx(meanLoss).epsilon(1e-9));
      CHECK(h[0].trainAccuracy == Approx(accuracy).epsilon(1e-12));
    }
    // Phase 2, on any team: each worker's whole partition.
    CHECK(h[1].trainLoss == Approx(meanLoss).epsilon(1e-9));
    CHECK(h[1].trainAccuracy == Approx(accuracy).epsilon(1e-12));
  }
}

// Phase 2 (and a one-worker phase 1) do not depend on the timing of the threads: each worker's
// training depends on its own partition and random streams only, and the averaging and the
// records run in worker order. So a team of fewer threads than workers, each playing several,
// must give the same bits as one thread per worker.
TEST_CASE("trainWasap's local phase gives the same bits whatever the team",
          "[training][wasap][threads]") {
  const auto train = makeProblem<float>(150, 214);
  const auto test = makeProblem<float>(50, 215);
  struct Case {
    int workers, epochs;
    double localFraction;
  };
  for (const Case c : {Case{3, 3, 1.0}, Case{1, 3, 1.0 / 3.0}}) {
    INFO("workers " << c.workers << ", local fraction " << c.localFraction);
    auto o = wasapOptions(c.workers, c.epochs, c.localFraction);
    tsnn::Network<float> full(netOptions());
    const auto hFull = tsnn::test::finishesWithin(
        300, "trainWasap", [&] { return tsnn::trainWasap(full, train, &test, o); });
    for (int threads : {1, 2}) {
      INFO("threads " << threads);
      o.threads = threads;
      tsnn::Network<float> fewer(netOptions());
      const auto h = tsnn::test::finishesWithin(300, "trainWasap on fewer threads", [&] {
        return tsnn::trainWasap(fewer, train, &test, o);
      });
      CHECK(tsnn::test::sameNetwork(full, fewer));
      CHECK(tsnn::test::sameHistory(hFull, h));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The algorithm's steps, each checked where a broken version would show (see the README's
// "Mutation check"): SET on the shared model after every asynchronous epoch and on every
// worker's model in the local phase, at the configured zeta, never on the output layer; an
// average that takes every worker's model; staleness measured as the updates a gradient missed.

namespace {

using Pattern = std::vector<std::vector<long long>>;  // per row: original column ids, sorted

template <class Scalar>
std::vector<Pattern> patternsOf(const tsnn::Network<Scalar>& net) {
  std::vector<Pattern> out;
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    const auto& w = net.layer(l).weights();
    Pattern p(static_cast<std::size_t>(w.rows()));
    for (int r = 0; r < w.rows(); ++r)
      for (int k = w.rowBegin(r); k < w.rowEnd(r); ++k)
        p[static_cast<std::size_t>(r)].push_back(w.colIdx()[static_cast<std::size_t>(k)]);
    out.push_back(std::move(p));
  }
  return out;
}

// The fraction of b's connections that a lacks (same shapes: no neuron is removed here).
double fractionNew(const Pattern& a, const Pattern& b) {
  long long total = 0, fresh = 0;
  for (std::size_t r = 0; r < b.size(); ++r) {
    total += static_cast<long long>(b[r].size());
    for (long long c : b[r]) fresh += !std::binary_search(a[r].begin(), a[r].end(), c);
  }
  return static_cast<double>(fresh) / static_cast<double>(total);
}

// zeta = 0.2 replaces 20% of a layer; a few regrow where a removed one was (densities 0.25 to
// 0.46 here), so each step makes 10% to 20% of the connections new.
void checkSetStep(const std::vector<Pattern>& before, const std::vector<Pattern>& after) {
  REQUIRE(before.size() == after.size());
  for (std::size_t l = 0; l < after.size(); ++l) {
    INFO("layer " << l);
    const double f = fractionNew(before[l], after[l]);
    if (l + 1 < after.size()) {
      CHECK(f > 0.1);
      CHECK(f <= 0.2);
    } else {
      CHECK(f == 0);  // the output layer is never evolved
    }
  }
}

}  // namespace

TEST_CASE("trainWasap evolves the shared model's hidden layers after every asynchronous epoch",
          "[training][wasap][set]") {
  const auto train = makeProblem<float>(200, 216);
  auto o = wasapOptions(2, 3, 0.0);
  tsnn::Network<float> net(netOptions());
  std::vector<std::vector<Pattern>> seen{patternsOf(net)};
  tsnn::TrainerCallbacks cb;
  // onEpoch runs under the shared model's lock, after that epoch's topology step.
  cb.onEpoch = [&](const EpochRecord&) { seen.push_back(patternsOf(net)); };
  tsnn::trainWasap(net, train, kNoTest<float>, o, cb);
  REQUIRE(seen.size() == 4);
  checkSetStep(seen[0], seen[1]);
  checkSetStep(seen[1], seen[2]);
  CHECK(seen[3] == seen[2]);  // no topology step after the last epoch
}

TEST_CASE("trainWasap's local phase evolves each worker's model at the configured zeta",
          "[training][wasap][set]") {
  // One worker, all local: the final average of one model pruned to its own budget is that
  // model, so its pattern shows the worker's one SET step (after local epoch 1 of 2).
  const auto train = makeProblem<float>(200, 217);
  auto o = wasapOptions(1, 2, 1.0);
  tsnn::Network<float> net(netOptions());
  const auto initial = patternsOf(net);
  tsnn::trainWasap(net, train, kNoTest<float>, o);
  checkSetStep(initial, patternsOf(net));
}

TEST_CASE("trainWasap's final average takes every worker's model", "[training][wasap]") {
  // Two workers, one local epoch each (no SET), then the average. Changing the samples of one
  // partition only must change the result, whichever partition it is.
  const auto train = makeProblem<float>(200, 218);
  auto o = wasapOptions(2, 1, 1.0);
  const auto part = tsnn::detail::wasapPartitions(train.size(), 2, o.seed, nullptr);
  auto run = [&](const Dataset<float>& d) {
    tsnn::Network<float> net(netOptions());
    tsnn::trainWasap(net, d, kNoTest<float>, o);
    return net;
  };
  const auto reference = run(train);
  CHECK(tsnn::test::sameNetwork(reference, run(train)));  // deterministic
  for (std::size_t w = 0; w < 2; ++w) {
    INFO("partition " << w << " changed");
    auto changed = train;
    for (const std::int64_t i : part[w]) changed.features.row(i) *= -1.0f;
    CHECK(!tsnn::test::sameNetwork(reference, run(changed)));
  }
}

TEST_CASE("trainWasap measures staleness as the shared updates a gradient missed",
          "[training][wasap]") {
  // On a team of one thread the workers take turns, one minibatch each: every gradient but
  // worker 0's first was computed on a copy one update old (the other worker's update came in
  // between). One worker alone is never stale.
  const auto train = makeProblem<float>(200, 219);
  for (int workers : {1, 2}) {
    INFO(workers << " workers");
    auto o = wasapOptions(workers, 3, 0.0);
    o.threads = 1;
    tsnn::Network<float> net(netOptions());
    const auto h = tsnn::trainWasap(net, train, kNoTest<float>, o);
    REQUIRE(h.size() == 3);
    if (workers == 1) {
      for (const auto& r : h) CHECK(r.meanStaleness == 0);
    } else {
      // Epoch 1 applies 10 minibatches of 20, the first with staleness 0.
      CHECK(h[0].meanStaleness == Approx(0.9).margin(1e-12));
      CHECK(h[1].meanStaleness == 1);
      CHECK(h[2].meanStaleness == 1);
    }
  }
}
