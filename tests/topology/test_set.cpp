// Tests for tsnn/topology/set.hpp: one SET step compared position by position with an oracle
// that works out which connections must go, plus the storage invariants, the remap it reports
// (state carried through it follows its connection; grown connections get zero) and the column
// index after the step; and both optimisers' state following its connections through SET.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/optimizers.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/nn/network.hpp"
#include "tsnn/nn/sparse_linear.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/sparse/pattern_remap.hpp"
#include "tsnn/topology/set.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

using Position = std::pair<std::int64_t, std::int64_t>;

template <class Scalar>
struct Connection {
  Scalar value;
  Scalar state;         // the test's own per-connection state, carried through the remaps
  std::size_t storage;  // position in values()
};

// (row, col) -> value, state and storage position.
template <class Scalar, class Index>
std::map<Position, Connection<Scalar>> snapshot(const tsnn::SparseLinear<Scalar, Index>& layer,
                                                const std::vector<Scalar>& state) {
  std::map<Position, Connection<Scalar>> out;
  const auto& w = layer.weights();
  REQUIRE(state.size() == static_cast<std::size_t>(w.nonZeros()));
  for (Index r = 0; r < w.rows(); ++r)
    for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k) {
      const auto s = static_cast<std::size_t>(k);
      out[{r, w.colIdx()[s]}] = {w.values()[s], state[s], s};
    }
  return out;
}

// A distinct nonzero state per connection, so that a survivor and a regrown connection can
// always be told apart.
template <class Scalar, class Index, template <class, class> class Storage>
std::vector<Scalar> makeState(const tsnn::SparseLinear<Scalar, Index, Storage>& layer,
                              std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(0.5, 1.0);
  std::vector<Scalar> state(static_cast<std::size_t>(layer.nonZeros()));
  for (auto& v : state) v = static_cast<Scalar>(u(gen));
  return state;
}

// One SET step that reports its remap, which must go from the old pattern to the new one with
// one entry per connection and leave the rows alone; \p state follows it.
template <class Scalar, class Index, template <class, class> class Storage>
tsnn::SetStats evolveTracked(tsnn::SparseLinear<Scalar, Index, Storage>& layer, double zeta,
                             tsnn::Rng& rng, std::vector<Scalar>& state,
                             tsnn::WeightInit init = tsnn::WeightInit::HeUniform) {
  const std::uint64_t from = layer.weights().patternId();
  tsnn::PatternRemap<Index> r;
  const auto stats = tsnn::evolveSet(layer, zeta, rng, init, &r);
  CHECK(r.from == from);
  CHECK(r.to == layer.weights().patternId());
  CHECK(!r.rows);
  REQUIRE(r.entries.size() == static_cast<std::size_t>(layer.nonZeros()));
  state = tsnn::remapped(state, r.entries);
  return stats;
}

// The positions one SET step must remove, worked out directly from the file comment: every
// exact zero, the floor(zeta n-) negatives closest to zero and the floor(zeta n+) smallest
// positives, ties going to the lower storage position.
template <class Scalar>
std::set<Position> expectedRemovals(const std::map<Position, Connection<Scalar>>& before,
                                    double zeta) {
  std::vector<std::pair<Connection<Scalar>, Position>> neg, pos;
  std::set<Position> out;
  for (const auto& [p, c] : before) {
    if (c.value < 0)
      neg.push_back({c, p});
    else if (c.value > 0)
      pos.push_back({c, p});
    else
      out.insert(p);
  }
  std::sort(neg.begin(), neg.end(), [](const auto& a, const auto& b) {
    return a.first.value != b.first.value ? a.first.value > b.first.value
                                          : a.first.storage < b.first.storage;
  });
  std::sort(pos.begin(), pos.end(), [](const auto& a, const auto& b) {
    return a.first.value != b.first.value ? a.first.value < b.first.value
                                          : a.first.storage < b.first.storage;
  });
  const auto nNeg = static_cast<std::size_t>(std::floor(zeta * static_cast<double>(neg.size())));
  const auto nPos = static_cast<std::size_t>(std::floor(zeta * static_cast<double>(pos.size())));
  for (std::size_t i = 0; i < nNeg; ++i) out.insert(neg[i].second);
  for (std::size_t i = 0; i < nPos; ++i) out.insert(pos[i].second);
  return out;
}

// A layer with random weights and a few exact zeros.
template <class Scalar>
tsnn::SparseLinear<Scalar, std::int32_t> makeLayer(std::int32_t inputs, std::int32_t outputs,
                                                   double density, std::uint64_t seed, int zeros) {
  tsnn::Rng rng(seed);
  tsnn::SparseLinear<Scalar, std::int32_t> layer(inputs, outputs, density, rng);
  auto& values = layer.values();
  for (int z = 0; z < zeros && !values.empty(); ++z)
    values[(static_cast<std::size_t>(z) * 7919u) % values.size()] = Scalar(0);
  return layer;
}

template <class Scalar>
double tol() {
  return std::is_same<Scalar, float>::value ? 1e-5 : 1e-13;
}

// Every check the brief asks for after one step from `before` with the given zeta.
template <class Scalar>
void checkStep(const tsnn::SparseLinear<Scalar, std::int32_t>& layer,
               const std::vector<Scalar>& state,
               const std::map<Position, Connection<Scalar>>& before, const tsnn::SetStats& stats,
               double zeta, std::size_t nnzBefore, double limit, std::uint64_t seed) {
  const auto removed = expectedRemovals(before, zeta);
  CHECK(stats.removed == static_cast<long long>(removed.size()));
  CHECK(stats.added == stats.removed);
  REQUIRE(static_cast<std::size_t>(layer.nonZeros()) == nnzBefore);
  REQUIRE(layer.weights().check().empty());

  const auto after = snapshot(layer, state);
  REQUIRE(after.size() == nnzBefore);
  // Survivors keep value and state at the same (row, col).
  long long survivorsMissing = 0, survivorsChanged = 0;
  for (const auto& [p, c] : before) {
    if (removed.count(p)) continue;
    const auto it = after.find(p);
    if (it == after.end()) {
      ++survivorsMissing;
      continue;
    }
    if (it->second.value != c.value || it->second.state != c.state) ++survivorsChanged;
  }
  CHECK(survivorsMissing == 0);
  CHECK(survivorsChanged == 0);
  // Everything else is new: zero state, a value from U(-limit, limit). Removed positions may be
  // drawn again, but then they too carry zero state (the old one was never zero).
  long long fresh = 0, badFresh = 0;
  for (const auto& [p, c] : after) {
    const auto old = before.find(p);
    const bool survivor = old != before.end() && !removed.count(p);
    if (survivor) continue;
    ++fresh;
    if (c.state != Scalar(0)) ++badFresh;
    if (!(std::abs(static_cast<double>(c.value)) <= limit)) ++badFresh;
  }
  CHECK(fresh == static_cast<long long>(removed.size()));
  CHECK(badFresh == 0);

  // The column index was rebuilt: both products still agree with the dense oracle.
  const Mat<double> w = tsnn::toDense(layer.weights()).template cast<double>();
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  Mat<Scalar> dy(9, layer.outputs()), x(9, layer.inputs());
  for (Eigen::Index j = 0; j < dy.cols(); ++j)
    for (Eigen::Index i = 0; i < dy.rows(); ++i) dy(i, j) = static_cast<Scalar>(u(gen));
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    for (Eigen::Index i = 0; i < x.rows(); ++i) x(i, j) = static_cast<Scalar>(u(gen));
  Mat<Scalar> dx(9, layer.inputs()), y(9, layer.outputs());
  layer.backwardInput(dy, dx);
  layer.forward(x, y);
  CHECK(tsnn::test::maxAbsDifferenceMatrix(dx.template cast<double>(),
                                           (dy.template cast<double>() * w).eval()) <=
        tol<Scalar>() * 10);
  Mat<double> yRef = x.template cast<double>() * w.transpose();
  yRef.rowwise() += layer.bias().template cast<double>().transpose();
  CHECK(tsnn::test::maxAbsDifferenceMatrix(y.template cast<double>(), yRef) <= tol<Scalar>() * 10);
}

}  // namespace

TEMPLATE_TEST_CASE(
    "evolveSet removes exactly the weakest weights and the zeros, keeps survivors "
    "with their state and regrows as many",
    "[topology][set]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(8801);
  const std::int32_t inputs = 40, outputs = 30;
  const double limit = std::sqrt(6.0 / inputs);
  // 0.1 draws new positions by rejection; 0.9 lists the empty positions instead.
  for (double density : {0.1, 0.3, 0.9}) {
    for (double zeta : {0.05, 0.3, 0.5, 0.99}) {
      INFO("density " << density << ", zeta " << zeta);
      auto layer = makeLayer<Scalar>(inputs, outputs, density, seed, 5);
      auto state = makeState(layer, seed + 1);
      const auto before = snapshot(layer, state);
      const auto nnz = static_cast<std::size_t>(layer.nonZeros());
      tsnn::Rng rng(seed + 2);
      const auto stats = evolveTracked(layer, zeta, rng, state);
      checkStep(layer, state, before, stats, zeta, nnz, limit, seed + 3);
    }
  }
}

TEMPLATE_TEST_CASE("evolveSet keeps its invariants over repeated steps", "[topology][set]", float,
                   double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(8802);
  auto layer = makeLayer<Scalar>(25, 20, 0.25, seed, 0);
  tsnn::Rng rng(seed + 2);
  const double limit = std::sqrt(6.0 / 25);
  for (int step = 0; step < 6; ++step) {
    INFO("step " << step);
    // Give every connection a nonzero state again, as training would.
    std::vector<Scalar> state(static_cast<std::size_t>(layer.nonZeros()));
    for (std::size_t k = 0; k < state.size(); ++k)
      state[k] = static_cast<Scalar>(0.5 + 0.001 * static_cast<double>(k));
    const auto before = snapshot(layer, state);
    const auto nnz = static_cast<std::size_t>(layer.nonZeros());
    const auto stats = evolveTracked(layer, 0.3, rng, state);
    checkStep(layer, state, before, stats, 0.3, nnz, limit,
              seed + 10 + static_cast<std::uint64_t>(step));
  }
}

TEST_CASE("evolveSet breaks ties at the threshold by storage position", "[topology][set]") {
  const auto seed = tsnn::test::testSeed(8803);
  auto layer = makeLayer<double>(12, 10, 0.4, seed, 0);
  // Only two distinct magnitudes: every comparison at the threshold is a tie.
  auto& v = layer.values();
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = (k % 3 == 0) ? -0.25 : 0.25;
  auto state = makeState(layer, seed + 1);
  const auto before = snapshot(layer, state);
  const auto nnz = static_cast<std::size_t>(layer.nonZeros());
  tsnn::Rng rng(seed + 2);
  const auto stats = evolveTracked(layer, 0.3, rng, state);
  checkStep(layer, state, before, stats, 0.3, nnz, std::sqrt(6.0 / 12), seed + 3);
}

TEMPLATE_TEST_CASE("evolveSet with zeta 0 and no zero weights changes nothing", "[topology][set]",
                   float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(8804);
  auto layer = makeLayer<Scalar>(30, 20, 0.2, seed, 0);
  const auto values = layer.weights().values();
  const auto cols = layer.weights().colIdx();
  const auto rowPtr = layer.weights().rowPtr();
  const auto stateBefore = makeState(layer, seed + 1);
  auto state = stateBefore;
  tsnn::Rng rng(seed + 2);
  const auto stats = evolveTracked(layer, 0.0, rng, state);
  CHECK(stats.removed == 0);
  CHECK(stats.added == 0);
  CHECK(layer.weights().values() == values);
  CHECK(layer.weights().colIdx() == cols);
  CHECK(layer.weights().rowPtr() == rowPtr);
  CHECK(state == stateBefore);
}

TEST_CASE("evolveSet with zeta 0 still replaces exact zeros", "[topology][set]") {
  const auto seed = tsnn::test::testSeed(8805);
  auto layer = makeLayer<double>(30, 20, 0.2, seed, 4);
  auto state = makeState(layer, seed + 1);
  const auto before = snapshot(layer, state);
  const auto nnz = static_cast<std::size_t>(layer.nonZeros());
  tsnn::Rng rng(seed + 2);
  const auto stats = evolveTracked(layer, 0.0, rng, state);
  CHECK(stats.removed == 4);
  checkStep(layer, state, before, stats, 0.0, nnz, std::sqrt(6.0 / 30), seed + 3);
}

TEST_CASE("evolveSet rejects zeta outside [0, 1) and leaves the layer untouched",
          "[topology][set][errors]") {
  auto layer = makeLayer<double>(10, 8, 0.3, tsnn::test::testSeed(8806), 0);
  const auto values = layer.weights().values();
  tsnn::Rng rng(1);
  for (double zeta : {-0.1, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN(),
                      std::numeric_limits<double>::infinity()}) {
    INFO("zeta " << zeta);
    CHECK_THROWS_AS(tsnn::evolveSet(layer, zeta, rng), tsnn::InvalidArgument);
  }
  CHECK_THROWS_WITH(tsnn::evolveSet(layer, 1.0, rng),
                    Catch::StartsWith("tsnn: evolveSet()") && Catch::Contains("zeta"));
  CHECK(layer.weights().values() == values);
}

TEMPLATE_TEST_CASE(
    "evolveSet works on a fully dense layer, where only removed positions can "
    "be regrown",
    "[topology][set]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(8807);
  auto layer = makeLayer<Scalar>(9, 7, 1.0, seed, 2);
  REQUIRE(layer.nonZeros() == 63);
  auto state = makeState(layer, seed + 1);
  const auto before = snapshot(layer, state);
  tsnn::Rng rng(seed + 2);
  const auto stats = evolveTracked(layer, 0.4, rng, state);
  checkStep(layer, state, before, stats, 0.4, 63, std::sqrt(6.0 / 9), seed + 3);
  CHECK(layer.nonZeros() == 63);
}

TEST_CASE("evolveSet regrows from the requested initial distribution", "[topology][set]") {
  const auto seed = tsnn::test::testSeed(8808);
  auto layer = makeLayer<double>(50, 40, 0.2, seed, 0);
  auto state = makeState(layer, seed + 1);
  const auto before = snapshot(layer, state);
  const auto nnz = static_cast<std::size_t>(layer.nonZeros());
  tsnn::Rng rng(seed + 2);
  const auto stats = evolveTracked(layer, 0.5, rng, state, tsnn::WeightInit::XavierUniform);
  checkStep(layer, state, before, stats, 0.5, nnz, std::sqrt(6.0 / (50 + 40)), seed + 3);
}

TEMPLATE_TEST_CASE("evolveSet is deterministic for a fixed Rng seed", "[topology][set]", float,
                   double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(8809);
  for (double density : {0.15, 0.9}) {
    INFO("density " << density);
    auto a = makeLayer<Scalar>(20, 16, density, seed, 1);
    auto b = a;
    auto sa = makeState(a, seed + 1), sb = sa;
    tsnn::Rng ra(seed + 5), rb(seed + 5);
    for (int step = 0; step < 3; ++step) {
      evolveTracked(a, 0.3, ra, sa);
      evolveTracked(b, 0.3, rb, sb);
    }
    CHECK(a.weights().rowPtr() == b.weights().rowPtr());
    CHECK(a.weights().colIdx() == b.weights().colIdx());
    CHECK(a.weights().values() == b.weights().values());
    CHECK(sa == sb);
    // Another stream gives another topology.
    auto c = makeLayer<Scalar>(20, 16, density, seed, 1);
    tsnn::Rng rc(seed + 6);
    for (int step = 0; step < 3; ++step) tsnn::evolveSet(c, 0.3, rc);
    CHECK(c.weights().values() != a.weights().values());
  }
}

TEST_CASE("evolveSet on a COO layer makes exactly the CSR layer's step", "[topology][set][coo]") {
  tsnn::Rng init(tsnn::mix64(0x5E7C));
  tsnn::SparseLinear<float> csr(60, 40, 0.15, init);
  tsnn::SparseLinear<float, std::int32_t, tsnn::CooMatrix> coo(tsnn::toCoo(csr.weights()),
                                                               csr.bias());
  std::vector<float> csrState(static_cast<std::size_t>(csr.nonZeros()));
  for (std::size_t k = 0; k < csrState.size(); ++k) csrState[k] = static_cast<float>(k % 7) - 3.0f;
  auto cooState = csrState;
  tsnn::Rng r1(99), r2(99);
  for (int step = 0; step < 3; ++step) {
    const auto s1 = evolveTracked(csr, 0.3, r1, csrState);
    const auto s2 = evolveTracked(coo, 0.3, r2, cooState);
    CHECK(s1.removed == s2.removed);
    CHECK(s1.added == s2.added);
    const auto back = tsnn::toCsr(coo.weights());
    CHECK(coo.weights().check().empty());
    CHECK(back.rowPtr() == csr.weights().rowPtr());
    CHECK(back.colIdx() == csr.weights().colIdx());
    CHECK(back.values() == csr.weights().values());
    CHECK(cooState == csrState);
  }
}

TEMPLATE_TEST_CASE(
    "Both optimisers' state follows its connection through SET: survivors keep it "
    "exactly, grown connections start at zero",
    "[topology][set][optim]", tsnn::test::SgdOf<float>, tsnn::test::SgdOf<double>,
    tsnn::test::AdamOf<float>, tsnn::test::AdamOf<double>) {
  using Optimizer = typename TestType::Type;
  using Scalar = typename TestType::ScalarType;
  const auto seed = tsnn::test::testSeed(8810);
  tsnn::NetworkOptions o;
  o.sizes = {30, 24, 20, 5};
  o.epsilon = 4;
  o.seed = seed;
  tsnn::Network<Scalar> net(o);
  Optimizer opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, seed + 1);
  for (int round = 0; round < 2; ++round) {
    std::vector<std::map<std::pair<std::int32_t, std::int32_t>, std::vector<Scalar>>> before;
    std::vector<std::vector<std::vector<Scalar>>> neuronsBefore;
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      before.push_back(tsnn::test::stateByConnection(opt, net, l));
      neuronsBefore.push_back(tsnn::test::stateByNeuron(opt, l));
    }
    tsnn::NetworkRemap<std::int32_t> all(net.numLayers());
    std::vector<long long> added(net.numLayers(), 0);
    for (std::size_t l = 0; l + 1 < net.numLayers(); ++l) {
      tsnn::PatternRemap<std::int32_t> r;
      added[l] =
          tsnn::evolveSet(net.layer(l), 0.4, net.rng(), tsnn::WeightInit::HeUniform, &r).added;
      all.add(l, r);
    }
    opt.remap(all, net);
    for (std::size_t l = 0; l < net.numLayers(); ++l) {
      INFO("round " << round << ", layer " << l);
      const auto after = tsnn::test::stateByConnection(opt, net, l);
      long long kept = 0, grown = 0, wrong = 0;
      for (const auto& [pos, s] : after) {
        const auto it = before[l].find(pos);
        // A survivor's old state is never zero (fillRandomState draws it), a grown one's is.
        const bool survivor = it != before[l].end() && s == it->second;
        const bool zero = std::all_of(s.begin(), s.end(), [](Scalar v) { return v == 0; });
        if (survivor)
          ++kept;
        else if (zero)
          ++grown;
        else
          ++wrong;
      }
      CHECK(wrong == 0);
      CHECK(grown == added[l]);  // zero for the output layer, which does not evolve
      CHECK(kept + grown == net.layer(l).nonZeros());
      if (l + 1 < net.numLayers()) CHECK(grown > 0);
      CHECK(tsnn::test::stateByNeuron(opt, l) == neuronsBefore[l]);
    }
    tsnn::test::fillRandomState(opt, net, seed + 2 + static_cast<std::uint64_t>(round));
  }
  // The remap brought the state to the new patterns: the optimiser steps on them.
  auto g = net.makeGradients();
  CHECK_NOTHROW(opt.step(net, g));
}

// Distributional checks of what SET grows: explicit bands, fixed seeds. The layer is wide
// enough that each count below has a standard deviation of at most about 2% of its mean.
TEST_CASE(
    "evolveSet grows at empty positions spread over every row and column, with fresh "
    "U(-l, l) values",
    "[topology][set][statistics]") {
  const std::int32_t inputs = 300, outputs = 200;
  const double limit = std::sqrt(6.0 / inputs);  // He-uniform over the dense fan-in
  // 0.1 draws new positions by rejection; 0.6 lists the empty positions instead.
  for (double density : {0.1, 0.6}) {
    INFO("density " << density);
    auto layer = makeLayer<double>(inputs, outputs, density, tsnn::test::testSeed(8811), 0);
    auto state = makeState(layer, 3);
    const auto before = snapshot(layer, state);
    tsnn::Rng rng(tsnn::test::testSeed(8812));
    const auto stats = evolveTracked(layer, 0.5, rng, state);
    const auto after = snapshot(layer, state);
    // Grown: positions that are new, or old ones whose state the step reset.
    std::vector<double> values;
    long long upperRows = 0, leftColumns = 0;
    for (const auto& [p, c] : after) {
      const auto old = before.find(p);
      if (old != before.end() && c.state == old->second.state) continue;
      values.push_back(c.value);
      upperRows += p.first < outputs / 2;
      leftColumns += p.second < inputs / 2;
    }
    const auto grown = static_cast<double>(values.size());
    REQUIRE(grown == static_cast<double>(stats.added));
    REQUIRE(grown > 2000);
    // Every half of the rows and of the columns gets about half of what is grown.
    CHECK(static_cast<double>(upperRows) / grown == Approx(0.5).margin(0.06));
    CHECK(static_cast<double>(leftColumns) / grown == Approx(0.5).margin(0.06));
    // Values: U(-l, l) has mean 0 and variance l^2 / 3; none is exactly 0.
    double sum = 0, sumSq = 0, hi = 0;
    long long zeros = 0;
    for (double v : values) {
      sum += v;
      sumSq += v * v;
      hi = std::max(hi, std::abs(v));
      zeros += v == 0;
    }
    CHECK(zeros == 0);
    CHECK(std::abs(sum / grown) < 0.1 * limit);
    CHECK(sumSq / grown == Approx(limit * limit / 3).epsilon(0.15));
    CHECK(hi <= limit);
    CHECK(hi >= 0.95 * limit);
  }
}

TEST_CASE("A layer's He-uniform weights are scaled by its fan-in, not its fan-out",
          "[topology][set][init]") {
  for (const auto& [inputs, outputs] : {std::pair<int, int>{400, 100}, {100, 400}}) {
    INFO(inputs << " inputs, " << outputs << " outputs");
    tsnn::Rng rng(tsnn::test::testSeed(8813));
    const tsnn::SparseLinear<double, std::int32_t> layer(inputs, outputs, 0.2, rng);
    const double limit = std::sqrt(6.0 / inputs);
    double hi = 0;
    for (double v : layer.weights().values()) hi = std::max(hi, std::abs(v));
    CHECK(hi <= limit);
    CHECK(hi >= 0.99 * limit);
  }
}

TEST_CASE("With a sparse-fan rule, SET regrows at the scale of the layer's mean real fan-in",
          "[topology][set][init]") {
  // 200 neurons with about 40 of 2000 inputs each: the dense He limit sqrt(6 / 2000) = 0.055 is
  // 7x below the sparse one, sqrt(6 / (nnz / 200)).
  tsnn::Rng rng(tsnn::test::testSeed(8814));
  tsnn::SparseLinear<double, std::int32_t> layer(2000, 200, 0.02, rng,
                                                 tsnn::WeightInit::HeUniformSparse);
  const double limit = std::sqrt(6.0 / (static_cast<double>(layer.nonZeros()) / 200.0));
  tsnn::PatternRemap<std::int32_t> remap;
  tsnn::evolveSet(layer, 0.3, rng, tsnn::WeightInit::HeUniformSparse, &remap);
  double hi = 0;
  long long grown = 0;
  for (std::size_t k = 0; k < remap.entries.size(); ++k)
    if (remap.entries[k] < 0) {
      hi = std::max(hi, std::abs(layer.weights().values()[k]));
      ++grown;
    }
  REQUIRE(grown > 2000);  // about 0.3 x 8000
  CHECK(hi <= limit);
  // P(all of more than 2000 draws below 0.99 l) < 0.99^2000 = 2e-9.
  CHECK(hi >= 0.99 * limit);
}
