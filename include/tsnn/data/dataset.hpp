#pragma once
/// \file
/// \brief Dataset: a dense feature matrix with one sample per row and an integer class label per
/// sample.
///
/// Invariants (checked by Dataset::validate, assumed by the trainers):
///   - features is N x d and row-major, so each sample's d features are contiguous in memory;
///   - labels.size() == N and every label lies in [0, numClasses);
///   - every feature is finite.

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "tsnn/core/errors.hpp"

namespace tsnn::data {

/// \brief Dense row-major matrix: one sample per row, so a sample's features are contiguous.
/// \tparam Scalar element type.
template <class Scalar>
using MatrixRowMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// \brief A labelled classification dataset held in memory.
/// \tparam Scalar floating-point type of the features (float or double).
template <class Scalar>
struct Dataset {
  static_assert(std::is_floating_point_v<Scalar>,
                "tsnn::data::Dataset: Scalar must be float or double");

  using Matrix = MatrixRowMajor<Scalar>;

  /// N x d, one sample per row (sample-contiguous, row-major).
  Matrix features;
  /// Size N; each label lies in [0, numClasses).
  std::vector<std::int32_t> labels;
  /// Number of classes; labels are class indices 0 .. numClasses-1.
  int numClasses = 0;

  /// \brief Number of samples N (rows of features).
  Eigen::Index size() const { return features.rows(); }

  /// \brief Number of features d per sample (columns of features).
  Eigen::Index dim() const { return features.cols(); }

  /// \brief Checks the invariants listed in the file comment.
  /// \param caller name of the calling function, put at the start of the message.
  /// \throws InvalidArgument if numClasses < 1, labels.size() differs from the number of rows, a
  ///   label lies outside [0, numClasses), or a feature is NaN or infinite; the message names the
  ///   caller, the index and the offending value.
  void validate(const char* caller) const {
    if (numClasses < 1) {
      tsnn::detail::raise<InvalidArgument>(caller, ": dataset has numClasses = ", numClasses,
                                           ", expected at least 1");
    }
    if (static_cast<Eigen::Index>(labels.size()) != features.rows()) {
      tsnn::detail::raise<InvalidArgument>(caller, ": dataset has ", features.rows(),
                                           " feature rows but ", labels.size(), " labels");
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] < 0 || labels[i] >= numClasses) {
        tsnn::detail::raise<InvalidArgument>(caller, ": label ", labels[i], " at index ", i,
                                             " is outside [0, ", numClasses, ")");
      }
    }
    // Row-major storage: walk rows outermost so memory is read sequentially.
    for (Eigen::Index r = 0; r < features.rows(); ++r) {
      for (Eigen::Index c = 0; c < features.cols(); ++c) {
        const Scalar v = features(r, c);
        if (!std::isfinite(v)) {
          tsnn::detail::raise<InvalidArgument>(caller, ": feature at row ", r, ", column ", c,
                                               " is ", v, ", expected a finite value");
        }
      }
    }
  }
};

/// \brief Dataset with single-precision features, the common case.
using Datasetf = Dataset<float>;
/// \brief Dataset with double-precision features.
using Datasetd = Dataset<double>;

}  // namespace tsnn::data
