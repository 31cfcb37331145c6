#pragma once
// A synthetic classification problem shared by the trainer tests: 12 features uniform in
// (-1, 1); the class is the argmax of the first three features, each perturbed by uniform noise
// in (-0.2, 0.2). The other nine features are distractors. A linear model reaches about 90%;
// chance is 1/3.

#include <cstdint>
#include <limits>

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

}  // namespace tsnn::test
