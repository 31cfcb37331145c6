#pragma once
// A synthetic classification problem shared by the trainer tests: 12 features uniform in
// (-1, 1); the class is the argmax of the first three features, each perturbed by uniform noise
// in (-0.2, 0.2). The other nine features are distractors. A linear model reaches about 90%;
// chance is 1/3.

#include <cstdint>
#include <limits>
#include <random>

#include "support/oracle.hpp"
#include "tsnn/core/random.hpp"
#include "tsnn/data/dataset.hpp"

namespace tsnn::test {

constexpr Eigen::Index kFeatures = 12;
constexpr int kClasses = 3;

template <class Scalar>
data::Dataset<Scalar> makeProblem(Eigen::Index n, std::uint64_t stream) {
  Rng rng = testRng(stream);
  data::Dataset<Scalar> d;
  d.numClasses = kClasses;
  d.features.resize(n, kFeatures);
  d.labels.resize(static_cast<std::size_t>(n));
  for (Eigen::Index s = 0; s < n; ++s) {
    for (Eigen::Index i = 0; i < kFeatures; ++i)
      d.features(s, i) = static_cast<Scalar>(rng.uniform(-1.0, 1.0));
    int best = 0;
    double bestScore = -std::numeric_limits<double>::infinity();
    for (int c = 0; c < kClasses; ++c) {
      const double score = static_cast<double>(d.features(s, c)) + rng.uniform(-0.2, 0.2);
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    d.labels[static_cast<std::size_t>(s)] = best;
  }
  return d;
}

/// \brief Three Gaussian blobs in 4 dimensions, well apart (sd 0.5 around centres at distance
/// about 3): n samples, sample i of class i % 3. A small network separates them in a few hundred
/// SGD steps.
template <class Scalar>
data::Dataset<Scalar> threeBlobs(Eigen::Index n, std::uint64_t seed) {
  constexpr int kBlobDims = 4;
  const double centers[kClasses][kBlobDims] = {{2, 0, 0, 1}, {-2, 1, 0, -1}, {0, -2, 2, 0}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 0.5);
  data::Dataset<Scalar> d;
  d.numClasses = kClasses;
  d.features.resize(n, kBlobDims);
  d.labels.resize(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    const int c = static_cast<int>(i % kClasses);
    d.labels[static_cast<std::size_t>(i)] = c;
    for (Eigen::Index j = 0; j < kBlobDims; ++j)
      d.features(i, j) = static_cast<Scalar>(centers[c][j] + noise(rng));
  }
  return d;
}

}  // namespace tsnn::test
