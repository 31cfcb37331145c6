// Tests for tsnn/data/augment.hpp: the transform formula on literal images, the batch function
// against a direct per-pixel computation, determinism, sharding and option validation.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "support/oracle.hpp"
#include "tsnn/data/augment.hpp"
#include "tsnn/sparse/kernels.hpp"

using tsnn::Activations;
using tsnn::data::ImageAugmentation;
using tsnn::data::ImageTransform;

namespace {

using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default

ImageAugmentation makeAug(int c, int h, int w, bool flip, int maxShift) {
  ImageAugmentation a;
  a.channels = c;
  a.height = h;
  a.width = w;
  a.flip = flip;
  a.maxShift = maxShift;
  return a;
}

template <class Scalar>
Activations<Scalar> randomBatch(Eigen::Index rows, Eigen::Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Activations<Scalar> x(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) x(i, j) = static_cast<Scalar>(u(rng));
  return x;
}

// The transform of one pixel straight from its definition:
// out(c, y, x) = in(c, y - dy, s(x - dx)), s(u) = W - 1 - u if flipped, 0 outside the image.
template <class Scalar>
Activations<Scalar> expectedBatch(const Activations<Scalar>& in, const ImageAugmentation& a,
                                  std::uint64_t seed, std::uint64_t step, Eigen::Index rowOffset) {
  Activations<Scalar> out(in.rows(), in.cols());
  for (Eigen::Index b = 0; b < in.rows(); ++b) {
    const ImageTransform t =
        tsnn::data::imageTransformFor(a, seed, step, static_cast<std::uint64_t>(rowOffset + b));
    for (int c = 0; c < a.channels; ++c)
      for (int y = 0; y < a.height; ++y)
        for (int x = 0; x < a.width; ++x) {
          const int sy = y - t.dy;
          const int sx = x - t.dx;
          Scalar v = 0;
          if (sy >= 0 && sy < a.height && sx >= 0 && sx < a.width) {
            const int srcX = t.flip ? a.width - 1 - sx : sx;
            v = in(b, (c * a.height + sy) * a.width + srcX);
          }
          out(b, (c * a.height + y) * a.width + x) = v;
        }
  }
  return out;
}

// Applies transformImage to a 1 x 3 x 4 image holding 1..12 row by row.
std::vector<float> transformed(const ImageTransform& t) {
  const ImageAugmentation shape = makeAug(1, 3, 4, false, 0);
  std::vector<float> src(12);
  for (int i = 0; i < 12; ++i) src[static_cast<std::size_t>(i)] = static_cast<float>(i + 1);
  std::vector<float> dst(12, -1.0f);
  tsnn::data::transformImage(src.data(), dst.data(), shape, t);
  return dst;
}

ImageTransform tf(bool flip, int dx, int dy) {
  ImageTransform t;
  t.flip = flip;
  t.dx = dx;
  t.dy = dy;
  return t;
}

}  // namespace

TEST_CASE("transformImage flips and shifts a literal image as documented", "[data][augment]") {
  // The source image:   1  2  3  4
  //                     5  6  7  8
  //                     9 10 11 12
  CHECK(transformed(tf(false, 0, 0)) == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  CHECK(transformed(tf(false, 1, 0)) == std::vector<float>{0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11});
  CHECK(transformed(tf(false, -2, 0)) == std::vector<float>{3, 4, 0, 0, 7, 8, 0, 0, 11, 12, 0, 0});
  CHECK(transformed(tf(false, 0, 1)) == std::vector<float>{0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(transformed(tf(false, 0, -1)) == std::vector<float>{5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0});
  CHECK(transformed(tf(true, 0, 0)) == std::vector<float>{4, 3, 2, 1, 8, 7, 6, 5, 12, 11, 10, 9});
  // Mirror first, then move one right and one up.
  CHECK(transformed(tf(true, 1, -1)) == std::vector<float>{0, 8, 7, 6, 0, 12, 11, 10, 0, 0, 0, 0});
  CHECK(transformed(tf(true, -1, 0)) == std::vector<float>{3, 2, 1, 0, 7, 6, 5, 0, 11, 10, 9, 0});
  // A shift by the full width leaves nothing.
  CHECK(transformed(tf(false, 4, 0)) == std::vector<float>(12, 0.0f));
}

TEMPLATE_TEST_CASE("augmentBatch matches the per-pixel definition on multi-channel images",
                   "[data][augment]", float, double) {
  const ImageAugmentation a = makeAug(3, 5, 6, true, 2);
  const std::uint64_t seed = testSeed();
  const Activations<TestType> x0 = randomBatch<TestType>(64, 3 * 5 * 6, seed);
  Activations<TestType> x = x0;
  tsnn::data::augmentBatch(x, a, seed, 7, 0);
  CHECK(x == expectedBatch(x0, a, seed, 7, 0));

  // The drawn transforms cover flips and non-zero shifts both ways, so the comparison above
  // exercised every branch.
  std::set<int> dxs;
  std::set<int> dys;
  int flips = 0;
  for (std::uint64_t r = 0; r < 64; ++r) {
    const ImageTransform t = tsnn::data::imageTransformFor(a, seed, 7, r);
    dxs.insert(t.dx);
    dys.insert(t.dy);
    flips += t.flip ? 1 : 0;
  }
  CHECK(dxs == std::set<int>{-2, -1, 0, 1, 2});
  CHECK(dys == std::set<int>{-2, -1, 0, 1, 2});
  CHECK(flips > 0);
  CHECK(flips < 64);
}

TEST_CASE("Flipping twice without shifts restores the batch", "[data][augment]") {
  const ImageAugmentation a = makeAug(2, 4, 5, true, 0);
  const Activations<float> x0 = randomBatch<float>(32, 40, testSeed());
  Activations<float> x = x0;
  tsnn::data::augmentBatch(x, a, testSeed(), 3, 0);
  CHECK(x != x0);
  // Every row is either unchanged or exactly mirrored.
  for (Eigen::Index b = 0; b < x.rows(); ++b) {
    const bool flipped =
        tsnn::data::imageTransformFor(a, testSeed(), 3, static_cast<std::uint64_t>(b)).flip;
    for (int c = 0; c < 2; ++c)
      for (int y = 0; y < 4; ++y)
        for (int col = 0; col < 5; ++col) {
          const int src = flipped ? 4 - col : col;
          REQUIRE(x(b, (c * 4 + y) * 5 + col) == x0(b, (c * 4 + y) * 5 + src));
        }
  }
  tsnn::data::augmentBatch(x, a, testSeed(), 3, 0);
  CHECK(x == x0);
}

TEST_CASE("augmentBatch is deterministic in seed and step and changes with either",
          "[data][augment]") {
  const ImageAugmentation a = makeAug(1, 8, 8, true, 3);
  const Activations<float> x0 = randomBatch<float>(16, 64, testSeed());
  Activations<float> x1 = x0;
  Activations<float> x2 = x0;
  tsnn::data::augmentBatch(x1, a, 42, 5, 0);
  tsnn::data::augmentBatch(x2, a, 42, 5, 0);
  CHECK(x1 == x2);
  Activations<float> otherStep = x0;
  tsnn::data::augmentBatch(otherStep, a, 42, 6, 0);
  CHECK(otherStep != x1);
  Activations<float> otherSeed = x0;
  tsnn::data::augmentBatch(otherSeed, a, 43, 5, 0);
  CHECK(otherSeed != x1);
  // Turning flips off keeps the shifts drawn for each row.
  const ImageAugmentation noFlip = makeAug(1, 8, 8, false, 3);
  for (std::uint64_t r = 0; r < 16; ++r) {
    const ImageTransform t = tsnn::data::imageTransformFor(a, 42, 5, r);
    const ImageTransform u = tsnn::data::imageTransformFor(noFlip, 42, 5, r);
    CHECK(t.dx == u.dx);
    CHECK(t.dy == u.dy);
    CHECK_FALSE(u.flip);
  }
}

TEST_CASE("Augmenting a minibatch in shards with row offsets equals augmenting it whole",
          "[data][augment]") {
  const ImageAugmentation a = makeAug(3, 6, 6, true, 2);
  const Activations<double> x0 = randomBatch<double>(37, 108, testSeed());
  Activations<double> whole = x0;
  tsnn::data::augmentBatch(whole, a, testSeed(), 11, 0);

  SECTION("separate matrices") {
    Activations<double> lo = x0.topRows(15);
    Activations<double> hi = x0.bottomRows(22);
    tsnn::data::augmentBatch(hi, a, testSeed(), 11, 15);  // order of shards does not matter
    tsnn::data::augmentBatch(lo, a, testSeed(), 11, 0);
    CHECK(lo == whole.topRows(15));
    CHECK(hi == whole.bottomRows(22));
  }
  SECTION("blocks of one matrix") {
    Activations<double> x = x0;
    for (Eigen::Index r = 0; r < 37; r += 10) {
      const Eigen::Index n = std::min<Eigen::Index>(10, 37 - r);
      tsnn::data::augmentBatch<double>(x.middleRows(r, n), a, testSeed(), 11, r);
    }
    CHECK(x == whole);
  }
  SECTION("a shard at the wrong offset differs") {
    Activations<double> hi = x0.bottomRows(22);
    tsnn::data::augmentBatch(hi, a, testSeed(), 11, 0);
    CHECK(hi != whole.bottomRows(22));
  }
}

TEST_CASE("imageTransformFor draws flips with probability 1/2 and shifts uniformly",
          "[data][augment]") {
  const ImageAugmentation a = makeAug(1, 10, 10, true, 2);
  const int n = 20000;
  int flips = 0;
  std::vector<int> dxCount(5, 0);
  std::vector<int> dyCount(5, 0);
  for (int r = 0; r < n; ++r) {
    const ImageTransform t =
        tsnn::data::imageTransformFor(a, testSeed(), 1, static_cast<std::uint64_t>(r));
    REQUIRE(t.dx >= -2);
    REQUIRE(t.dx <= 2);
    REQUIRE(t.dy >= -2);
    REQUIRE(t.dy <= 2);
    flips += t.flip ? 1 : 0;
    ++dxCount[static_cast<std::size_t>(t.dx + 2)];
    ++dyCount[static_cast<std::size_t>(t.dy + 2)];
  }
  // Binomial standard deviations: sqrt(n/4) ~ 71 for flips, sqrt(n * 0.2 * 0.8) ~ 57 per shift
  // value; 5 standard deviations of slack.
  CHECK(std::abs(flips - n / 2) < 360);
  for (int k = 0; k < 5; ++k) {
    CHECK(std::abs(dxCount[static_cast<std::size_t>(k)] - n / 5) < 290);
    CHECK(std::abs(dyCount[static_cast<std::size_t>(k)] - n / 5) < 290);
  }
  const ImageAugmentation flipOnly = makeAug(1, 10, 10, true, 0);
  for (std::uint64_t r = 0; r < 100; ++r) {
    const ImageTransform t = tsnn::data::imageTransformFor(flipOnly, testSeed(), 1, r);
    CHECK(t.dx == 0);
    CHECK(t.dy == 0);
  }
}

TEST_CASE("ImageAugmentation::validate rejects shapes and shifts that do not fit",
          "[data][augment]") {
  CHECK_FALSE(ImageAugmentation{}.enabled());
  CHECK_NOTHROW(ImageAugmentation{}.validate(784));  // off: the shape is not needed
  CHECK(makeAug(0, 0, 0, true, 0).enabled());
  CHECK(makeAug(0, 0, 0, false, 1).enabled());
  CHECK_NOTHROW(makeAug(3, 32, 32, true, 4).validate(3072));
  CHECK_NOTHROW(makeAug(1, 28, 28, false, 27).validate(784));

  CHECK_THROWS_AS(makeAug(3, 32, 32, true, 4).validate(3071), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(makeAug(3, 32, 32, true, 4).validate(784),
                    Catch::Contains("3 x 32 x 32") && Catch::Contains("784 features"));
  CHECK_THROWS_AS(makeAug(0, 32, 32, true, 0).validate(0), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(makeAug(1, 0, 28, true, 0).validate(784), Catch::Contains("1 x 0 x 28"));
  CHECK_THROWS_AS(makeAug(1, 28, 28, false, 28).validate(784), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(makeAug(1, 4, 8, false, 4).validate(32),
                    Catch::Contains("maxShift = 4") && Catch::Contains("height (4)"));
  CHECK_THROWS_AS(makeAug(1, 28, 28, true, -1).validate(784), tsnn::InvalidArgument);
  // Negative values are refused even when the augmentation is off.
  CHECK_THROWS_WITH(makeAug(-3, 32, 32, false, 0).validate(3072),
                    Catch::Contains("channels = -3") && Catch::Contains("negative"));
  // Huge shapes must not overflow into a match: 65537 * 65537 * 1 is 131073 modulo 2^32.
  CHECK_THROWS_AS(makeAug(65537, 65537, 1, true, 0).validate(131073), tsnn::InvalidArgument);
  CHECK_THROWS_AS(
      makeAug(2147483647, 2147483647, 2147483647, true, 0).validate(9223372036854775807LL),
      tsnn::InvalidArgument);
  CHECK_NOTHROW(makeAug(65536, 65536, 65536, true, 0).validate(281474976710656LL));
}

TEST_CASE("augmentBatch validates the options and does nothing when disabled", "[data][augment]") {
  Activations<float> x = randomBatch<float>(4, 12, testSeed());
  const Activations<float> x0 = x;
  CHECK_THROWS_AS(tsnn::data::augmentBatch(x, makeAug(1, 3, 5, true, 0), 1, 1, 0),
                  tsnn::InvalidArgument);
  CHECK(x == x0);
  tsnn::data::augmentBatch(x, ImageAugmentation{}, 1, 1, 0);
  CHECK(x == x0);
  tsnn::data::augmentBatch(x, makeAug(1, 3, 4, false, 0), 1, 1, 0);
  CHECK(x == x0);
  Activations<float> empty(0, 12);
  CHECK_NOTHROW(tsnn::data::augmentBatch(empty, makeAug(1, 3, 4, true, 1), 1, 1, 0));
}

TEST_CASE(
    "transformImage rotates about the centre, bilinearly, after the flip and before the "
    "shift",
    "[data][augment]") {
  ImageAugmentation shape;
  shape.channels = 2;
  shape.height = shape.width = 4;
  std::vector<double> in(32), out(32), expected(32);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = 1.0 + static_cast<double>(i * i % 17);
  auto at = [](const std::vector<double>& v, int c, int y, int x) -> double {
    return v[static_cast<std::size_t>((c * 4 + y) * 4 + x)];
  };
  // A quarter turn counterclockwise on screen: the top-right pixel goes to the top left,
  // out(y, x) = in(x, 3 - y), exactly (cos 90 degrees rounds to 6e-17).
  ImageTransform t;
  t.rotation = 90;
  tsnn::data::transformImage(in.data(), out.data(), shape, t);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x)
        CHECK(at(out, c, y, x) == Approx(at(in, c, x, 3 - y)).margin(1e-12));
  // A vanishing rotation with a flip and shifts is the integer transform of the file comment.
  t = ImageTransform{true, 1, -2, 1e-9};
  tsnn::data::transformImage(in.data(), out.data(), shape, t);
  tsnn::data::transformImage(in.data(), expected.data(), shape, ImageTransform{true, 1, -2, 0});
  for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i] == Approx(expected[i]).margin(1e-6));
  // Half a pixel's worth of interpolation: 45 degrees of a constant image keeps the centre's
  // value and brings zeros in at the corners.
  std::vector<double> ones(16, 1.0), turned(16);
  ImageAugmentation one = shape;
  one.channels = 1;
  t = ImageTransform{false, 0, 0, 45};
  tsnn::data::transformImage(ones.data(), turned.data(), one, t);
  CHECK(turned[5] == Approx(1.0).margin(1e-12));  // (1, 1): its source is inside the image
  CHECK(turned[0] < 0.5);                         // (0, 0): its source is mostly outside
}

TEST_CASE(
    "imageTransformFor draws rotations uniformly in [-m, m] degrees and leaves the flips "
    "and shifts as they were",
    "[data][augment]") {
  ImageAugmentation a;
  a.channels = 3;
  a.height = a.width = 32;
  a.flip = true;
  a.maxShift = 3;
  ImageAugmentation rotating = a;
  rotating.maxRotation = 10;
  double lo = 0, hi = 0, sum = 0;
  int upper = 0;
  const int n = 4000;
  for (int r = 0; r < n; ++r) {
    const ImageTransform plain =
        tsnn::data::imageTransformFor(a, 5, 9, static_cast<std::uint64_t>(r));
    const ImageTransform t =
        tsnn::data::imageTransformFor(rotating, 5, 9, static_cast<std::uint64_t>(r));
    CHECK(plain.rotation == 0);
    CHECK((t.flip == plain.flip && t.dx == plain.dx && t.dy == plain.dy));
    lo = std::min(lo, t.rotation);
    hi = std::max(hi, t.rotation);
    sum += t.rotation;
    upper += t.rotation > 5;
  }
  CHECK(lo >= -10);
  CHECK(hi <= 10);
  CHECK(lo < -9.9);
  CHECK(hi > 9.9);
  CHECK(std::abs(sum / n) < 0.5);  // mean 0, standard error 0.09
  CHECK(static_cast<double>(upper) / n == Approx(0.25).margin(0.03));  // P(theta > 5) = 1/4
  rotating.maxRotation = -1;
  CHECK_THROWS_WITH(rotating.validate(3072), Catch::Contains("maxRotation = -1"));
  rotating.maxRotation = 181;
  CHECK_THROWS_AS(rotating.validate(3072), tsnn::InvalidArgument);
  rotating.maxRotation = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(rotating.validate(3072), tsnn::InvalidArgument);
  rotating.maxRotation = 10;
  CHECK_NOTHROW(rotating.validate(3072));
}
