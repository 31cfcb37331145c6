// Tests for tsnn/optim/sgd.hpp: sgdUpdate against the header's formulas worked out by hand and
// iterated independently in long double, and SgdOptions::validate.
//
//   v <- mu v - lr g
//   w <- w + v - wd w                (classical)
//   w <- w + mu v - lr g - wd w      (Nesterov, v already updated)

#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/optim/sgd.hpp"

namespace {

tsnn::SgdOptions options(double lr, double mu, double wd, bool nesterov) {
  tsnn::SgdOptions o;
  o.learningRate = lr;
  o.momentum = mu;
  o.weightDecay = wd;
  o.nesterov = nesterov;
  return o;
}

// One step of the header's formulas for one parameter, in long double.
void referenceStep(long double& w, long double& v, long double g, const tsnn::SgdOptions& o) {
  const long double lr = o.learningRate, mu = o.momentum, wd = o.weightDecay;
  const long double wOld = w;
  v = mu * v - lr * g;
  if (o.nesterov)
    w = wOld + mu * v - lr * g - wd * wOld;
  else
    w = wOld + v - wd * wOld;
}

template <class Scalar>
double tol() {
  return std::is_same<Scalar, float>::value ? 1e-6 : 1e-15;
}

}  // namespace

TEMPLATE_TEST_CASE("sgdUpdate with classical momentum and decay gives the hand-computed values",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  // lr 0.1, mu 0.9, wd 0.01, w0 = 1, v0 = 0, gradients 0.5 then -0.2:
  //   v1 = -0.05,                      w1 = 1 - 0.05 - 0.01           = 0.94
  //   v2 = 0.9 * -0.05 + 0.02 = -0.025, w2 = 0.94 - 0.025 - 0.0094    = 0.9056
  const auto o = options(0.1, 0.9, 0.01, false);
  Scalar w = 1, v = 0;
  Scalar g = Scalar(0.5);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.05) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.94) <= tol<Scalar>());
  g = Scalar(-0.2);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.025) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.9056) <= tol<Scalar>());
}

TEMPLATE_TEST_CASE("sgdUpdate with Nesterov momentum and decay gives the hand-computed values",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  // Same setting with Nesterov:
  //   v1 = -0.05,  w1 = 1 + 0.9 * -0.05 - 0.05 - 0.01                     = 0.895
  //   v2 = -0.025, w2 = 0.895 + 0.9 * -0.025 + 0.02 - 0.01 * 0.895         = 0.88355
  const auto o = options(0.1, 0.9, 0.01, true);
  Scalar w = 1, v = 0;
  Scalar g = Scalar(0.5);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.05) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.895) <= tol<Scalar>());
  g = Scalar(-0.2);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(std::abs(static_cast<double>(v) - -0.025) <= tol<Scalar>());
  CHECK(std::abs(static_cast<double>(w) - 0.88355) <= tol<Scalar>());
}

TEMPLATE_TEST_CASE("sgdUpdate follows the formulas over several steps for many parameters",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(6601);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  const std::size_t n = 257;
  for (const auto& o : {options(0.05, 0.9, 0.0002, false), options(0.05, 0.9, 0.0002, true),
                        options(0.3, 0.0, 0.01, false), options(0.01, 0.5, 0.0, true)}) {
    INFO("lr " << o.learningRate << " mu " << o.momentum << " wd " << o.weightDecay << " nesterov "
               << o.nesterov);
    std::vector<Scalar> w(n), v(n), g(n);
    std::vector<long double> rw(n), rv(n);
    for (std::size_t k = 0; k < n; ++k) {
      w[k] = static_cast<Scalar>(u(rng));
      v[k] = static_cast<Scalar>(0.1 * u(rng));
      rw[k] = w[k];
      rv[k] = v[k];
    }
    for (int step = 0; step < 5; ++step) {
      for (std::size_t k = 0; k < n; ++k) g[k] = static_cast<Scalar>(u(rng));
      tsnn::sgdUpdate(w.data(), v.data(), g.data(), static_cast<std::ptrdiff_t>(n), o);
      for (std::size_t k = 0; k < n; ++k) referenceStep(rw[k], rv[k], g[k], o);
    }
    double errW = 0, errV = 0;
    for (std::size_t k = 0; k < n; ++k) {
      errW = std::max(errW, static_cast<double>(std::abs(static_cast<long double>(w[k]) - rw[k])));
      errV = std::max(errV, static_cast<double>(std::abs(static_cast<long double>(v[k]) - rv[k])));
      if (!std::isfinite(static_cast<double>(w[k])) || !std::isfinite(static_cast<double>(v[k])))
        errW = std::numeric_limits<double>::infinity();
    }
    CHECK(errW <= 10 * tol<Scalar>());
    CHECK(errV <= 10 * tol<Scalar>());
  }
}

TEMPLATE_TEST_CASE("Weight decay is decoupled: it neither scales with lr nor enters the momentum",
                   "[optim][sgd]", float, double) {
  using Scalar = TestType;
  // Zero gradient, zero momentum: v stays 0 and w shrinks by exactly the factor (1 - wd).
  const auto o = options(0.5, 0.9, 0.125, false);
  Scalar w = Scalar(2), v = Scalar(0), g = Scalar(0);
  tsnn::sgdUpdate(&w, &v, &g, 1, o);
  CHECK(v == Scalar(0));
  CHECK(w == Scalar(1.75));
}

TEMPLATE_TEST_CASE("sgdUpdate gives the same result serially and on three threads",
                   "[optim][sgd][openmp]", float, double) {
  using Scalar = TestType;
  const std::size_t n = 40000;  // above the size where the loop may go parallel
  std::mt19937_64 rng(tsnn::test::testSeed(6602));
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<Scalar> w(n), v(n), g(n);
  for (std::size_t k = 0; k < n; ++k) {
    w[k] = static_cast<Scalar>(u(rng));
    v[k] = static_cast<Scalar>(u(rng));
    g[k] = static_cast<Scalar>(u(rng));
  }
  auto w2 = w, v2 = v;
  const auto o = options(0.01, 0.9, 0.0002, true);
  // Three threads whatever the OpenMP default, so that the loop really runs in a region.
  tsnn::sgdUpdate(w.data(), v.data(), g.data(), static_cast<std::ptrdiff_t>(n), o,
                  tsnn::Threads::count(3));
  tsnn::sgdUpdate(w2.data(), v2.data(), g.data(), static_cast<std::ptrdiff_t>(n), o,
                  tsnn::Threads::serial());
  CHECK(w == w2);
  CHECK(v == v2);
}

TEST_CASE("SgdOptions defaults are valid", "[optim][sgd][options]") {
  CHECK_NOTHROW(tsnn::SgdOptions{}.validate());
  CHECK_NOTHROW(options(1e-4, 0.0, 0.0, false).validate());
  CHECK_NOTHROW(options(0.1, 0.99, 0.5, true).validate());
}

TEST_CASE("SgdOptions::validate rejects bad learning rates, momenta and decays",
          "[optim][sgd][options][errors]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_AS(options(0.0, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(-0.1, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(nan, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(inf, 0.9, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 1.0, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 1.5, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, -0.1, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, nan, 0.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.9, -1e-4, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.9, nan, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.9, 1.0, false).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_AS(options(0.1, 0.0, 0.0, true).validate(), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(options(-0.1, 0.9, 0.0, false).validate(),
                    Catch::StartsWith("tsnn: SgdOptions") && Catch::Contains("learning rate") &&
                        Catch::Contains("-0.1"));
  CHECK_THROWS_WITH(options(0.1, 1.0, 0.0, false).validate(), Catch::Contains("momentum"));
  CHECK_THROWS_WITH(options(0.1, 0.9, -1.0, false).validate(), Catch::Contains("weight decay"));
}
