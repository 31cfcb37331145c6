// Tests for tsnn/topology/gradient_regrowth.hpp and the rest of the evolution toolbox: the
// gradient ranking against a dense Eigen oracle, the full step's invariants (exact budget, valid
// storage, zero weights where grown, survivors untouched) and its remap (state carried through it
// follows its connection, grown connections get zero), both optimisers' state through the
// network-level step, CSR and COO agreement, errors; zeta schedules (set.hpp); ERK density
// allocation (sparse/init.hpp); and the trainers running each method, with either optimiser,
// keeping the budget after every epoch.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "support/optimizers.hpp"
#include "support/oracle.hpp"
#include "support/synthetic.hpp"
#include "tsnn/sparse/convert.hpp"
#include "tsnn/sparse/init.hpp"
#include "tsnn/topology/gradient_regrowth.hpp"
#include "tsnn/training/train.hpp"

namespace {

template <class Scalar>
using Dense = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

// The count empty positions of largest |(D^T X)_ji|, ties by row-major position, computed
// densely.
template <class Scalar, class Index>
std::set<std::pair<Index, Index>> denseTopK(const Dense<Scalar>& x, const Dense<Scalar>& delta,
                                            const tsnn::CsrMatrix<Scalar, Index>& kept,
                                            std::size_t count) {
  const Dense<Scalar> g = delta.transpose() * x;  // rows x cols
  const Dense<Scalar> pattern = tsnn::toDense(kept);
  std::vector<std::tuple<Scalar, Index, Index>> c;
  for (Index j = 0; j < kept.rows(); ++j)
    for (Index i = 0; i < kept.cols(); ++i) {
      bool present = false;
      for (Index k = kept.rowBegin(j); k < kept.rowEnd(j); ++k)
        present |= kept.colIdx()[static_cast<std::size_t>(k)] == i;
      if (!present) c.emplace_back(-std::abs(g(j, i)), j, i);
    }
  std::sort(c.begin(), c.end());
  std::set<std::pair<Index, Index>> out;
  for (std::size_t k = 0; k < count && k < c.size(); ++k)
    out.emplace(std::get<1>(c[k]), std::get<2>(c[k]));
  return out;
}

template <class Scalar, class Index>
std::vector<Index> rowPtrOf(const tsnn::CsrMatrix<Scalar, Index>& m) {
  std::vector<Index> p(static_cast<std::size_t>(m.rows()) + 1);
  for (Index r = 0; r <= m.rows(); ++r)
    p[static_cast<std::size_t>(r)] = r < m.rows() ? m.rowBegin(r) : m.nonZeros();
  return p;
}

}  // namespace

TEMPLATE_TEST_CASE("largestGradientPositions picks the empty positions of largest gradient",
                   "[topology][regrowth]", float, double) {
  using Scalar = TestType;
  using Index = std::int32_t;
  tsnn::Rng rng = tsnn::test::testRng(901);
  // 150 output rows: more than two row blocks of the blocked product, and a partial last one.
  const Index rows = 150, cols = 37;
  const auto kept = tsnn::test::randomCsr<Scalar, Index>(rows, cols, 0.2, rng);
  const Dense<Scalar> x = tsnn::test::randomDense<Scalar>(9, cols, rng);
  const Dense<Scalar> delta = tsnn::test::randomDense<Scalar>(9, rows, rng);
  for (long long count : {0LL, 1LL, 57LL, 600LL}) {
    INFO("count " << count);
    const auto got = tsnn::detail::largestGradientPositions<Scalar, Index>(x, delta, rowPtrOf(kept),
                                                                           kept.colIdx(), count);
    REQUIRE(got.size() == static_cast<std::size_t>(count));
    CHECK(std::is_sorted(got.begin(), got.end()));
    const std::set<std::pair<Index, Index>> gotSet(got.begin(), got.end());
    CHECK(gotSet == denseTopK<Scalar, Index>(x, delta, kept, static_cast<std::size_t>(count)));
  }
  // Asking for more than the empty positions is an error, not a short answer.
  const long long empty = static_cast<long long>(rows) * cols - kept.nonZeros();
  CHECK_THROWS_AS((tsnn::detail::largestGradientPositions<Scalar, Index>(x, delta, rowPtrOf(kept),
                                                                         kept.colIdx(), empty + 1)),
                  tsnn::InvalidArgument);
}

TEST_CASE("largestGradientPositions breaks ties by position", "[topology][regrowth]") {
  // All gradients equal: the first positions in row-major order that are empty win.
  const tsnn::CsrMatrix<double, std::int32_t> kept(3, 4, {0, 1, 1, 2}, {0, 2}, {1.0, 1.0});
  const Dense<double> x = Dense<double>::Ones(2, 4), delta = Dense<double>::Ones(2, 3);
  const auto got = tsnn::detail::largestGradientPositions<double, std::int32_t>(
      x, delta, rowPtrOf(kept), kept.colIdx(), 4);
  using P = std::pair<std::int32_t, std::int32_t>;
  CHECK(got == std::vector<P>{{0, 1}, {0, 2}, {0, 3}, {1, 0}});
}

TEMPLATE_TEST_CASE(
    "evolveSetGradient keeps the budget and grows zero weights where the gradient "
    "is largest",
    "[topology][regrowth]", float, double) {
  using Scalar = TestType;
  using Index = std::int32_t;
  tsnn::Rng rng = tsnn::test::testRng(902);
  tsnn::SparseLinear<Scalar, Index> layer(40, 30, 0.15, rng);
  // The test's own per-connection state, nonzero everywhere, carried through the remap.
  std::vector<Scalar> velBefore(static_cast<std::size_t>(layer.nonZeros()));
  for (auto& v : velBefore) v = static_cast<Scalar>(rng.uniform(0.5, 1));
  const auto before = layer.weights();
  const Dense<Scalar> x = tsnn::test::randomDense<Scalar>(16, 40, rng);
  const Dense<Scalar> delta = tsnn::test::randomDense<Scalar>(16, 30, rng);

  // What SET's removal keeps: the pattern evolveCsr hands to its grow function (recorded here
  // from a random step on the same weights; the removal does not depend on the growth rule).
  std::vector<Index> keptPtr, keptCol;
  {
    tsnn::CsrMatrix<Scalar, Index> next;
    std::vector<Index> source;
    tsnn::detail::evolveCsr(
        before, 0.3,
        [&](const std::vector<Index>& p, const std::vector<Index>& c, long long count) {
          keptPtr = p;
          keptCol = c;
          return tsnn::detail::drawEmptyPositions<Index>(30, 40, p, c, count, rng);
        },
        [] { return Scalar(1); }, next, source);
  }
  const tsnn::CsrMatrix<Scalar, Index> kept(30, 40, keptPtr, keptCol,
                                            std::vector<Scalar>(keptCol.size(), Scalar(1)));
  const auto grown = before.nonZeros() - kept.nonZeros();
  REQUIRE(grown > 0);

  tsnn::PatternRemap<Index> remap;
  const auto stats = tsnn::evolveSetGradient(layer, 0.3, x, delta, &remap);
  CHECK(stats.removed == grown);
  CHECK(stats.added == grown);
  const auto& w = layer.weights();
  CHECK(w.check().empty());
  CHECK(w.nonZeros() == before.nonZeros());
  CHECK(remap.from == before.patternId());
  CHECK(remap.to == w.patternId());
  CHECK(!remap.rows);
  REQUIRE(remap.entries.size() == static_cast<std::size_t>(w.nonZeros()));
  const std::vector<Scalar> velAfter = tsnn::remapped(velBefore, remap.entries);
  const auto expected = denseTopK<Scalar, Index>(x, delta, kept, static_cast<std::size_t>(grown));
  const Dense<Scalar> oldDense = tsnn::toDense(before);
  long long newCount = 0;
  for (Index r = 0; r < w.rows(); ++r)
    for (Index k = w.rowBegin(r); k < w.rowEnd(r); ++k) {
      const Index c = w.colIdx()[static_cast<std::size_t>(k)];
      const bool survivor =
          std::binary_search(keptCol.begin() + keptPtr[r], keptCol.begin() + keptPtr[r + 1], c);
      const Scalar v = w.values()[static_cast<std::size_t>(k)];
      const Scalar m = velAfter[static_cast<std::size_t>(k)];
      if (survivor) {
        CHECK(v == oldDense(r, c));  // survivors keep their weight
        // ... and their state: find it in the old storage.
        for (Index q = before.rowBegin(r); q < before.rowEnd(r); ++q)
          if (before.colIdx()[static_cast<std::size_t>(q)] == c)
            CHECK(m == velBefore[static_cast<std::size_t>(q)]);
      } else {
        ++newCount;
        CHECK(expected.count({r, c}) == 1);
        CHECK(v == Scalar(0));
        CHECK(m == Scalar(0));
      }
    }
  CHECK(newCount == grown);
}

TEMPLATE_TEST_CASE("Both optimisers' state follows its connection through gradient regrowth",
                   "[topology][regrowth][optim]", tsnn::test::SgdOf<float>,
                   tsnn::test::SgdOf<double>, tsnn::test::AdamOf<float>,
                   tsnn::test::AdamOf<double>) {
  using Optimizer = typename TestType::Type;
  using Scalar = typename TestType::ScalarType;
  tsnn::Rng rng = tsnn::test::testRng(909);
  tsnn::NetworkOptions o;
  o.sizes = {20, 16, 12, 3};
  o.epsilon = 3;
  o.dropout = 0;
  o.seed = tsnn::test::streamSeed(910);
  tsnn::Network<Scalar> net(o);
  Optimizer opt = TestType::make();
  tsnn::test::fillRandomState(opt, net, tsnn::test::streamSeed(911));
  std::vector<std::map<std::pair<std::int32_t, std::int32_t>, std::vector<Scalar>>> before;
  std::vector<std::vector<std::vector<Scalar>>> neurons;
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    before.push_back(tsnn::test::stateByConnection(opt, net, l));
    neurons.push_back(tsnn::test::stateByNeuron(opt, l));
  }
  const tsnn::Activations<Scalar> x = tsnn::test::randomDense<Scalar>(24, 20, rng);
  std::vector<std::int32_t> labels(24);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);
  tsnn::NetworkRemap<std::int32_t> remap;
  tsnn::evolveHiddenLayersByGradient(net, 0.3, x, labels, tsnn::Threads::automatic(), &remap);
  REQUIRE(remap.layers.size() == net.numLayers());
  CHECK(!remap.layers.back());  // the output layer does not evolve
  opt.remap(remap, net);
  for (std::size_t l = 0; l < net.numLayers(); ++l) {
    INFO("layer " << l);
    const auto after = tsnn::test::stateByConnection(opt, net, l);
    long long kept = 0, grown = 0, wrong = 0;
    const auto& w = net.layer(l).weights();
    for (std::int32_t r = 0; r < w.rows(); ++r)
      for (std::int32_t k = w.rowBegin(r); k < w.rowEnd(r); ++k) {
        const std::pair<std::int32_t, std::int32_t> pos{r, w.colIdx()[static_cast<std::size_t>(k)]};
        const auto& s = after.at(pos);
        const auto it = before[l].find(pos);
        if (it != before[l].end() && s == it->second)
          ++kept;  // a survivor: its exact state (never zero: fillRandomState drew it)
        else if (std::all_of(s.begin(), s.end(), [](Scalar v) { return v == 0; }) &&
                 w.values()[static_cast<std::size_t>(k)] == Scalar(0))
          ++grown;  // grown at weight 0 with zero state
        else
          ++wrong;
      }
    CHECK(wrong == 0);
    CHECK(kept + grown == w.nonZeros());
    if (l + 1 < net.numLayers()) CHECK(grown > 0);
    CHECK(tsnn::test::stateByNeuron(opt, l) == neurons[l]);
  }
}

TEST_CASE("Gradient regrowth of a bfloat16 network ranks on float gradients, as its float twin",
          "[topology][regrowth][bf16]") {
  tsnn::Rng rng = tsnn::test::testRng(912);
  tsnn::NetworkOptions o;
  o.sizes = {20, 16, 12, 3};
  o.epsilon = 3;
  o.seed = tsnn::test::streamSeed(913);
  tsnn::Networkf plain(o);
  o.activationStorage = tsnn::ActivationStorage::BFloat16;
  tsnn::Networkf half(o);
  const tsnn::Activations<float> x = tsnn::test::randomDense<float>(24, 20, rng);
  std::vector<std::int32_t> labels(24);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 3);
  tsnn::evolveHiddenLayersByGradient(plain, 0.3, x, labels);
  tsnn::evolveHiddenLayersByGradient(half, 0.3, x, labels);
  for (std::size_t l = 0; l < plain.numLayers(); ++l) {
    INFO("layer " << l);
    CHECK(half.layer(l).weights().colIdx() == plain.layer(l).weights().colIdx());
    CHECK(half.layer(l).weights().rowPtr() == plain.layer(l).weights().rowPtr());
    CHECK(half.layer(l).weights().values() == plain.layer(l).weights().values());
  }
  CHECK(half.options().activationStorage == tsnn::ActivationStorage::BFloat16);
}

TEST_CASE("evolveSetGradient on COO storage makes exactly the CSR step", "[topology][regrowth]") {
  tsnn::Rng rng = tsnn::test::testRng(903);
  tsnn::SparseLinear<float, std::int32_t> csr(25, 20, 0.2, rng);
  tsnn::SparseLinear<float, std::int32_t, tsnn::CooMatrix> coo(tsnn::toCoo(csr.weights()),
                                                               csr.bias());
  const Dense<float> x = tsnn::test::randomDense<float>(8, 25, rng);
  const Dense<float> delta = tsnn::test::randomDense<float>(8, 20, rng);
  for (int step = 0; step < 3; ++step) {
    tsnn::evolveSetGradient(csr, 0.3, x, delta);
    tsnn::evolveSetGradient(coo, 0.3, x, delta);
    const auto back = tsnn::toCsr(coo.weights());
    CHECK(back.colIdx() == csr.weights().colIdx());
    CHECK(back.values() == csr.weights().values());
  }
}

TEST_CASE("evolveSetGradient rejects bad zeta, bad shapes and non-finite gradients untouched",
          "[topology][regrowth]") {
  tsnn::Rng rng = tsnn::test::testRng(904);
  tsnn::SparseLinear<double, std::int32_t> layer(10, 6, 0.3, rng);
  const auto before = layer.weights();
  Dense<double> x = tsnn::test::randomDense<double>(4, 10, rng);
  const Dense<double> delta = tsnn::test::randomDense<double>(4, 6, rng);
  CHECK_THROWS_WITH(tsnn::evolveSetGradient(layer, 1.0, x, delta),
                    Catch::StartsWith("tsnn: evolveSetGradient()") && Catch::Contains("zeta"));
  CHECK_THROWS_WITH(tsnn::evolveSetGradient(layer, 0.3, Dense<double>(4, 9), delta),
                    Catch::Contains("evolveSetGradient()") && Catch::Contains("4 x 9"));
  CHECK_THROWS_AS(tsnn::evolveSetGradient(layer, 0.3, Dense<double>(0, 10), Dense<double>(0, 6)),
                  tsnn::InvalidArgument);
  x(1, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(tsnn::evolveSetGradient(layer, 0.3, x, delta), tsnn::NumericalError);
  CHECK(layer.weights().colIdx() == before.colIdx());
  CHECK(layer.weights().values() == before.values());
}

TEST_CASE("scheduledZeta decays linearly or by cosine to zero at the last epoch",
          "[topology][set][schedule]") {
  using tsnn::ZetaSchedule;
  for (int e = 1; e <= 10; ++e)
    CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Constant, e, 10) == 0.3);
  CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Linear, 1, 10) == Approx(0.27).margin(1e-15));
  CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Linear, 5, 10) == Approx(0.15).margin(1e-15));
  CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Linear, 10, 10) == Approx(0.0).margin(1e-15));
  CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Cosine, 5, 10) == Approx(0.15).margin(1e-15));
  // cos(pi / 10) = 0.95105651629515...
  CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Cosine, 1, 10) ==
        Approx(0.15 * (1 + 0.9510565162951535)).margin(1e-15));
  CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Cosine, 10, 10) == Approx(0.0).margin(1e-15));
  // Cosine stays above linear in the first half (it decays slowly at first).
  for (int e = 1; e < 5; ++e)
    CHECK(tsnn::scheduledZeta(0.3, ZetaSchedule::Cosine, e, 10) >
          tsnn::scheduledZeta(0.3, ZetaSchedule::Linear, e, 10));
  CHECK_THROWS_AS(tsnn::scheduledZeta(0.3, ZetaSchedule::Linear, 0, 10), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::scheduledZeta(0.3, ZetaSchedule::Linear, 11, 10), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::scheduledZeta(1.0, ZetaSchedule::Linear, 1, 10), tsnn::InvalidArgument);
  CHECK(tsnn::parseZetaSchedule("cosine") == ZetaSchedule::Cosine);
  CHECK(tsnn::parseZetaSchedule("linear") == ZetaSchedule::Linear);
  CHECK(tsnn::parseZetaSchedule("constant") == ZetaSchedule::Constant);
  CHECK_THROWS_WITH(tsnn::parseZetaSchedule("exp"), Catch::Contains("'exp'"));
  CHECK(tsnn::parseRegrowth("gradient") == tsnn::Regrowth::Gradient);
  CHECK(tsnn::parseRegrowth("random") == tsnn::Regrowth::Random);
  CHECK_THROWS_WITH(tsnn::parseRegrowth("rigl"), Catch::Contains("'rigl'"));
  CHECK(tsnn::parseDensityAllocation("erk") == tsnn::DensityAllocation::ErdosRenyiKernel);
  CHECK(tsnn::parseDensityAllocation("er") == tsnn::DensityAllocation::ErdosRenyi);
  CHECK_THROWS_WITH(tsnn::parseDensityAllocation("uniform"), Catch::Contains("'uniform'"));
}

TEST_CASE("ERK spends the global budget and redistributes what dense layers cannot take",
          "[sparse][init][erk]") {
  using tsnn::DensityAllocation;
  // The paper's Fashion-MNIST network: ER caps the 1000 x 10 output layer at density 1.
  const std::vector<long long> sizes{784, 1000, 1000, 1000, 10};
  const auto er = tsnn::layerDensities(sizes, 20, DensityAllocation::ErdosRenyi);
  const auto erk = tsnn::layerDensities(sizes, 20, DensityAllocation::ErdosRenyiKernel);
  REQUIRE(er.size() == 4);
  REQUIRE(erk.size() == 4);
  double budget = 0, spent = 0;
  for (std::size_t l = 0; l < 4; ++l) {
    CHECK(er[l] == tsnn::erdosRenyiDensity(sizes[l], sizes[l + 1], 20));
    const double n = static_cast<double>(sizes[l] * sizes[l + 1]);
    budget += 20.0 * static_cast<double>(sizes[l] + sizes[l + 1]);
    spent += erk[l] * n;
  }
  CHECK(spent == Approx(budget).epsilon(1e-12));  // 135,880 connections
  CHECK(erk[3] == 1.0);
  // The other layers share one scale c = (135,880 - 10,000) / (1,784 + 2,000 + 2,000).
  const double c = (135880.0 - 10000.0) / 5784.0;
  CHECK(erk[0] == Approx(c * 1784.0 / 784000.0).epsilon(1e-12));
  CHECK(erk[1] == Approx(c * 2000.0 / 1e6).epsilon(1e-12));
  CHECK(erk[2] == erk[1]);
  // Without a saturated layer ERK is ER.
  const std::vector<long long> wide{500, 400, 300};
  const auto a = tsnn::layerDensities(wide, 5, DensityAllocation::ErdosRenyi);
  const auto b = tsnn::layerDensities(wide, 5, DensityAllocation::ErdosRenyiKernel);
  for (std::size_t l = 0; l < a.size(); ++l) CHECK(b[l] == Approx(a[l]).epsilon(1e-12));
  // A budget above the dense network makes every layer dense; saturation can cascade.
  for (double d : tsnn::layerDensities({4, 3, 2}, 100, DensityAllocation::ErdosRenyiKernel))
    CHECK(d == 1.0);
  const auto cascade =
      tsnn::layerDensities({50, 4, 200, 3}, 3, DensityAllocation::ErdosRenyiKernel);
  for (double d : cascade) {
    CHECK(d > 0);
    CHECK(d <= 1.0);
  }
  CHECK_THROWS_AS(tsnn::layerDensities({5}, 20, DensityAllocation::ErdosRenyiKernel),
                  tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::layerDensities({5, 0}, 20, DensityAllocation::ErdosRenyi),
                  tsnn::InvalidArgument);

  // A network built with ERK draws close to the budget (Bernoulli rows: within 5 sigma).
  tsnn::NetworkOptions o;
  o.sizes = sizes;
  o.allocation = DensityAllocation::ErdosRenyiKernel;
  const tsnn::Network<float> net(o);
  CHECK(std::abs(static_cast<double>(net.nonZeros()) - budget) < 5 * std::sqrt(budget));
  CHECK(net.layer(3).nonZeros() == 10000);
}

TEST_CASE("Every evolution method trains and keeps the connection budget after every epoch",
          "[topology][regrowth][training]") {
  const auto train = tsnn::test::makeProblem<double>(400, 905);
  const auto test = tsnn::test::makeProblem<double>(200, 906);
  tsnn::NetworkOptions no;
  no.sizes = {tsnn::test::kFeatures, 40, 40, tsnn::test::kClasses};
  no.epsilon = 4;
  no.dropout = 0.1;
  no.seed = tsnn::test::streamSeed(907);
  struct Method {
    tsnn::Regrowth regrowth;
    tsnn::ZetaSchedule schedule;
    tsnn::TrainerKind kind;
    tsnn::OptimizerKind optimizer;
  };
  using K = tsnn::TrainerKind;
  using O = tsnn::OptimizerKind;
  for (const Method m :
       {Method{tsnn::Regrowth::Gradient, tsnn::ZetaSchedule::Constant, K::Sequential, O::Sgd},
        Method{tsnn::Regrowth::Gradient, tsnn::ZetaSchedule::Cosine, K::DataParallel, O::Sgd},
        Method{tsnn::Regrowth::Random, tsnn::ZetaSchedule::Linear, K::Sequential, O::Sgd},
        Method{tsnn::Regrowth::Gradient, tsnn::ZetaSchedule::Constant, K::Wasap, O::Sgd},
        Method{tsnn::Regrowth::Gradient, tsnn::ZetaSchedule::Constant, K::Sequential, O::Adam},
        Method{tsnn::Regrowth::Gradient, tsnn::ZetaSchedule::Cosine, K::DataParallel, O::Adam},
        Method{tsnn::Regrowth::Gradient, tsnn::ZetaSchedule::Constant, K::Wasap, O::Adam}}) {
    INFO("regrowth " << static_cast<int>(m.regrowth) << " schedule " << static_cast<int>(m.schedule)
                     << " trainer " << static_cast<int>(m.kind) << " optimizer "
                     << tsnn::optimizerName(m.optimizer));
    tsnn::Network<double> net(no);
    const long long budget = net.nonZeros();
    tsnn::TrainerOptions t;
    t.optimizer = m.optimizer;
    t.kind = m.kind;
    t.workers = 2;
    t.epochs = 8;
    t.batchSize = 20;
    t.sgd.learningRate = 0.05;
    t.adam.learningRate = 0.01;
    t.zeta = 0.3;
    t.regrowth = m.regrowth;
    t.zetaSchedule = m.schedule;
    t.seed = tsnn::test::streamSeed(908);
    const auto h = tsnn::train(net, train, &test, t);
    REQUIRE(h.size() == 8);
    for (const auto& r : h) CHECK(r.nnz == budget);
    for (std::size_t l = 0; l < net.numLayers(); ++l) CHECK(net.layer(l).weights().check().empty());
    CHECK(h.back().testAccuracy > 0.75);
  }
}
