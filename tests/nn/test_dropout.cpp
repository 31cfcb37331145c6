// Tests for tsnn/layers/dropout.hpp: mask values, keep rate, shard invariance (the property the
// data-parallel trainer relies on) and dependence of the mask on step and layer.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>

#include "support/gradcheck.hpp"
#include "tsnn/nn/dropout.hpp"

namespace {

template <class Scalar>
using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

template <class Scalar>
Mat<Scalar> randomActivations(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2, 2);
  Mat<Scalar> a(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) a(i, j) = static_cast<Scalar>(u(rng));
  return a;
}

// The one place that calls the function under test: row block [rowOffset, rowOffset + a.rows())
// of a minibatch.
template <class Scalar>
void applyDropout(Mat<Scalar>& a, Mat<Scalar>& mask, double rate, std::uint64_t key,
                  Eigen::Index rowOffset) {
  tsnn::dropoutForward(a, mask, rate, key, rowOffset);
}

// The whole-batch mask for key `key`.
template <class Scalar>
Mat<Scalar> fullMask(Eigen::Index rows, Eigen::Index cols, double rate, std::uint64_t key) {
  Mat<Scalar> a = Mat<Scalar>::Ones(rows, cols);
  Mat<Scalar> mask(rows, cols);
  applyDropout(a, mask, rate, key, 0);
  return mask;
}

}  // namespace

TEMPLATE_TEST_CASE("dropoutForward writes a mask of 0 or 1/(1-rate) and multiplies it in",
                   "[layers][dropout]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(5501);
  for (double rate : {0.1, 0.3, 0.5, 0.9}) {
    INFO("rate " << rate);
    const Mat<Scalar> a0 = randomActivations<Scalar>(37, 23, seed);
    Mat<Scalar> a = a0;
    Mat<Scalar> mask(a.rows(), a.cols());
    applyDropout(a, mask, rate, tsnn::dropoutKey(seed, 3, 1), 0);
    const Scalar keep = static_cast<Scalar>(1.0 / (1.0 - rate));
    long long bad = 0;
    for (Eigen::Index j = 0; j < a.cols(); ++j)
      for (Eigen::Index i = 0; i < a.rows(); ++i) {
        if (!(mask(i, j) == Scalar(0) || mask(i, j) == keep)) ++bad;
        if (a(i, j) != a0(i, j) * mask(i, j)) ++bad;
      }
    CHECK(bad == 0);
  }
}

TEST_CASE("dropoutForward with rate 0 keeps everything unchanged", "[layers][dropout]") {
  Mat<double> a = randomActivations<double>(9, 11, tsnn::test::testSeed(5502));
  const Mat<double> a0 = a;
  Mat<double> mask(9, 11);
  applyDropout(a, mask, 0.0, tsnn::dropoutKey(1, 0, 0), 0);
  CHECK(mask == Mat<double>::Ones(9, 11));
  CHECK(a == a0);
}

TEST_CASE("dropoutForward keeps a fraction close to 1 - rate on a large matrix",
          "[layers][dropout][statistics]") {
  const auto seed = tsnn::test::testSeed(5503);
  const Eigen::Index rows = 512, cols = 1024;  // n = 524288: sd of the fraction <= 7e-4
  for (double rate : {0.1, 0.3, 0.5, 0.8}) {
    INFO("rate " << rate);
    const Mat<float> mask = fullMask<float>(rows, cols, rate, tsnn::dropoutKey(seed, 17, 2));
    const double kept =
        static_cast<double>((mask.array() != 0.0f).count()) / static_cast<double>(rows * cols);
    CHECK(std::abs(kept - (1.0 - rate)) < 5e-3);  // > 7 standard deviations
    // No column or row is systematically dropped: every neuron keeps between 30% and 100% of
    // its expected share over 512 samples.
    const double n = static_cast<double>(rows);
    for (Eigen::Index j = 0; j < cols; ++j) {
      const double colKept = static_cast<double>((mask.col(j).array() != 0.0f).count()) / n;
      if (!(colKept > 0.3 * (1.0 - rate))) FAIL("column " << j << " kept only " << colKept);
    }
  }
}

TEMPLATE_TEST_CASE("The mask computed on two row shards equals the whole-batch mask exactly",
                   "[layers][dropout][shards]", float, double) {
  using Scalar = TestType;
  const auto seed = tsnn::test::testSeed(5504);
  const Eigen::Index batch = 29, width = 13;
  const double rate = 0.4;
  const std::uint64_t key = tsnn::dropoutKey(seed, 5, 0);
  const Mat<Scalar> a0 = randomActivations<Scalar>(batch, width, seed);

  Mat<Scalar> whole = a0;
  Mat<Scalar> wholeMask(batch, width);
  applyDropout(whole, wholeMask, rate, key, 0);

  for (Eigen::Index split : {Eigen::Index(1), Eigen::Index(11), Eigen::Index(28)}) {
    INFO("split at row " << split);
    Mat<Scalar> top = a0.topRows(split), bottom = a0.bottomRows(batch - split);
    Mat<Scalar> topMask(split, width), bottomMask(batch - split, width);
    applyDropout(top, topMask, rate, key, 0);
    applyDropout(bottom, bottomMask, rate, key, split);
    CHECK(topMask == wholeMask.topRows(split));
    CHECK(bottomMask == wholeMask.bottomRows(batch - split));
    CHECK(top == whole.topRows(split));
    CHECK(bottom == whole.bottomRows(batch - split));
  }

  // Three shards of unequal size as well.
  Mat<Scalar> s1 = a0.topRows(5), s2 = a0.middleRows(5, 17), s3 = a0.bottomRows(7);
  Mat<Scalar> m1(5, width), m2(17, width), m3(7, width);
  applyDropout(s1, m1, rate, key, 0);
  applyDropout(s2, m2, rate, key, 5);
  applyDropout(s3, m3, rate, key, 22);
  Mat<Scalar> stacked(batch, width);
  stacked << m1, m2, m3;
  CHECK(stacked == wholeMask);
}

TEMPLATE_TEST_CASE(
    "The mask computed on column blocks (colOffset) of row shards equals the "
    "whole-batch mask",
    "[layers][dropout][shards]", float, double) {
  using Scalar = TestType;
  // The network applies activation and dropout in column blocks, possibly in parallel, and the
  // data-parallel trainer in row shards: every combination must draw the same mask.
  const auto seed = tsnn::test::testSeed(5508);
  const Eigen::Index batch = 21, width = 17;
  const double rate = 0.35;
  const std::uint64_t key = tsnn::dropoutKey(seed, 8, 2);
  const Mat<Scalar> a0 = randomActivations<Scalar>(batch, width, seed);
  Mat<Scalar> whole = a0;
  Mat<Scalar> wholeMask(batch, width);
  applyDropout(whole, wholeMask, rate, key, 0);

  Mat<Scalar> pieces = a0;
  Mat<Scalar> pieceMask = Mat<Scalar>::Constant(batch, width, Scalar(-1));
  const Eigen::Index rowCuts[] = {0, 8, batch};
  const Eigen::Index colCuts[] = {0, 5, 6, width};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) {
      const Eigen::Index r0 = rowCuts[r], nr = rowCuts[r + 1] - r0;
      const Eigen::Index c0 = colCuts[c], nc = colCuts[c + 1] - c0;
      auto ab = pieces.block(r0, c0, nr, nc);
      auto mb = pieceMask.block(r0, c0, nr, nc);
      tsnn::dropoutForward(ab, mb, rate, key, r0, c0);
    }
  CHECK(pieceMask == wholeMask);
  CHECK(pieces == whole);
}

TEST_CASE("The keep decisions do not depend on the scalar type", "[layers][dropout]") {
  const std::uint64_t key = tsnn::dropoutKey(tsnn::test::testSeed(5505), 2, 1);
  const Mat<float> f = fullMask<float>(16, 16, 0.3, key);
  const Mat<double> d = fullMask<double>(16, 16, 0.3, key);
  CHECK(((f.array() != 0.0f) == (d.array() != 0.0)).all());
}

TEST_CASE("A different step, layer or seed gives a different mask; the same key the same mask",
          "[layers][dropout]") {
  const auto seed = tsnn::test::testSeed(5506);
  const double rate = 0.5;
  const Mat<double> base = fullMask<double>(32, 32, rate, tsnn::dropoutKey(seed, 10, 1));
  CHECK(fullMask<double>(32, 32, rate, tsnn::dropoutKey(seed, 10, 1)) == base);
  const Mat<double> nextStep = fullMask<double>(32, 32, rate, tsnn::dropoutKey(seed, 11, 1));
  const Mat<double> otherLayer = fullMask<double>(32, 32, rate, tsnn::dropoutKey(seed, 10, 2));
  const Mat<double> otherSeed = fullMask<double>(32, 32, rate, tsnn::dropoutKey(seed + 1, 10, 1));
  // With 1024 independent fair coins, two masks agree on about half the entries.
  for (const Mat<double>* m : {&nextStep, &otherLayer, &otherSeed}) {
    const auto same = ((m->array() != 0.0) == (base.array() != 0.0)).count();
    CHECK(same > 400);
    CHECK(same < 624);
  }
  CHECK(tsnn::dropoutKey(seed, 10, 1) == tsnn::dropoutKey(seed, 10, 1));
  CHECK(tsnn::dropoutKey(seed, 10, 1) != tsnn::dropoutKey(seed, 11, 1));
  CHECK(tsnn::dropoutKey(seed, 10, 1) != tsnn::dropoutKey(seed, 10, 2));
}

TEST_CASE("Consecutive layers' masks in one step are not shifted copies of each other",
          "[layers][dropout]") {
  // Each neuron's decisions come from a per-neuron key; if consecutive layers' keys were related
  // by a shift in the neuron index the masks would be shifted copies of each other.
  const auto seed = tsnn::test::testSeed(5507);
  const Eigen::Index batch = 8, width = 64;
  const Mat<double> l0 = fullMask<double>(batch, width, 0.5, tsnn::dropoutKey(seed, 4, 0));
  const Mat<double> l1 = fullMask<double>(batch, width, 0.5, tsnn::dropoutKey(seed, 4, 1));
  for (Eigen::Index shift = 1; shift < width; ++shift) {
    const bool copy = ((l0.rightCols(width - shift).array() != 0.0) ==
                       (l1.leftCols(width - shift).array() != 0.0))
                          .all();
    if (copy) FAIL("layer 1's mask is layer 0's shifted by " << shift << " neurons");
  }
}

TEMPLATE_TEST_CASE("Every SIMD path draws the same mask, the documented hash of each position",
                   "[layers][dropout][simd]", float, double) {
  using Scalar = TestType;
  using Mat = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  const std::uint64_t key = tsnn::dropoutKey(7, 3, 1);
  const double rate = 0.3;
  // 37 rows: vector bodies of 4, 8 and 16 lanes all leave a remainder.
  const Mat x = Mat::Constant(37, 19, Scalar(2));
  // The file comment's definition, position by position.
  Mat expected(37, 19);
  const auto threshold = static_cast<std::uint32_t>(rate * 4294967296.0);
  for (Eigen::Index i = 0; i < 19; ++i) {
    const std::uint64_t colKey = tsnn::mix64(key + static_cast<std::uint64_t>(5 + i));
    for (Eigen::Index b = 0; b < 37; ++b) {
      const std::uint32_t h = tsnn::fmix32(static_cast<std::uint32_t>(colKey) ^
                                           ((11u + static_cast<std::uint32_t>(b)) * 0x9E3779B9u +
                                            static_cast<std::uint32_t>(colKey >> 32)));
      expected(b, i) = h >= threshold ? static_cast<Scalar>(1.0 / (1.0 - rate)) : Scalar(0);
    }
  }
  const tsnn::SimdPath before = tsnn::simdPath();
  int ran = 0;
  for (const auto path : {tsnn::SimdPath::Generic, tsnn::SimdPath::Avx2, tsnn::SimdPath::Avx512}) {
    if (!tsnn::simdPathSupported(path)) continue;
    INFO("path " << tsnn::simdPathName(path));
    tsnn::setSimdPath(path);
    Mat a = x, mask(37, 19);
    tsnn::dropoutForward(a, mask, rate, key, 11, 5);
    CHECK(mask == expected);
    CHECK(a == (x.array() * expected.array()).matrix());
    ++ran;
  }
  tsnn::setSimdPath(before);
  CHECK(ran >= 1);
}
