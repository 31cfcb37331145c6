#pragma once
/// \file
/// \brief StandardScaler: per-feature standardisation x' = (x - mean_j) / std_j, as
/// sklearn.preprocessing.StandardScaler with its defaults.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"

namespace tsnn::data {

/// \brief Standardises each feature (column) to zero mean and unit variance.
///
/// fit() computes, in double precision whatever Scalar is, for each column j over the N rows
///
///     mean_j = (1/N) sum_i x_ij
///     var_j  = (1/N) (sum_i (x_ij - mean_j)^2 - (1/N) (sum_i (x_ij - mean_j))^2)
///     std_j  = sqrt(var_j)
///
/// i.e. the population standard deviation (ddof = 0, as numpy.std and sklearn), with the
/// corrected two-pass algorithm: the second term cancels most of the rounding error of mean_j,
/// so columns with a large offset and a small spread keep their accuracy.
///
/// Constant features are left unscaled: scale_j = 1, so transform only centres them, and they
/// become exactly 0. A feature counts as constant when
///   - all its values are identical (then mean_j is set to that value exactly, so x - mean_j is
///     exactly 0 rather than a rounding residue), or
///   - std_j < 10 * DBL_EPSILON (about 2.2e-15), the absolute floor sklearn's
///     _handle_zeros_in_scale uses, below which dividing would only amplify rounding noise.
///
/// transform() computes (x - mean_j) / scale_j in double and rounds the result to Scalar.
/// Both loops are serial: callers that want parallelism split the rows themselves.
///
/// \tparam Scalar floating-point type of the data (float or double).
template <class Scalar>
class StandardScaler {
  static_assert(std::is_floating_point_v<Scalar>,
                "tsnn::data::StandardScaler: Scalar must be float or double");

 public:
  /// Data matrix: N x d, one sample per row.
  using Matrix = MatrixRowMajor<Scalar>;
  /// One value per feature.
  using RowVector = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

  /// \brief Learns mean_j and scale_j of every column of X. On failure the scaler is unchanged.
  /// \param X N x d data, N >= 1.
  /// \throws InvalidArgument if X has no rows or holds a NaN or infinity (the message names the
  ///   row and column).
  void fit(const Matrix& X) {
    using DVec = Eigen::Matrix<double, 1, Eigen::Dynamic>;
    const Eigen::Index n = X.rows();
    const Eigen::Index d = X.cols();
    if (n == 0) {
      tsnn::detail::raise<InvalidArgument>("StandardScaler::fit(): X has 0 rows (", d,
                                           " columns), expected at least 1 sample");
    }
    checkFinite(X, "StandardScaler::fit()");

    // Pass 1: sums, minima and maxima. Rows outermost, matching the row-major storage.
    DVec sum = DVec::Zero(d);
    RowVector lo = X.row(0);
    RowVector hi = X.row(0);
    for (Eigen::Index i = 0; i < n; ++i) {
      const Scalar* x = X.data() + i * d;
      for (Eigen::Index j = 0; j < d; ++j) {
        sum[j] += static_cast<double>(x[j]);
        if (x[j] < lo[j]) lo[j] = x[j];
        if (x[j] > hi[j]) hi[j] = x[j];
      }
    }
    const double invN = 1.0 / static_cast<double>(n);
    const DVec mean = sum * invN;

    // Pass 2: squared deviations and the deviations themselves, for the correction term.
    DVec sq = DVec::Zero(d);
    DVec dev = DVec::Zero(d);
    for (Eigen::Index i = 0; i < n; ++i) {
      const Scalar* x = X.data() + i * d;
      for (Eigen::Index j = 0; j < d; ++j) {
        const double e = static_cast<double>(x[j]) - mean[j];
        sq[j] += e * e;
        dev[j] += e;
      }
    }

    DVec meanOut = mean;
    DVec scaleOut(d);
    constexpr double kTiny = 10 * std::numeric_limits<double>::epsilon();
    for (Eigen::Index j = 0; j < d; ++j) {
      if (lo[j] == hi[j]) {  // identical values: centre exactly, do not divide
        meanOut[j] = static_cast<double>(lo[j]);
        scaleOut[j] = 1.0;
        continue;
      }
      const double var = std::max(0.0, (sq[j] - dev[j] * dev[j] * invN) * invN);
      const double sd = std::sqrt(var);
      scaleOut[j] = sd < kTiny ? 1.0 : sd;
    }

    // Commit only now, so a throw above leaves the previous fit intact.
    m_meanD = std::move(meanOut);
    m_scaleD = std::move(scaleOut);
    m_mean = m_meanD.cast<Scalar>();
    m_scale = m_scaleD.cast<Scalar>();
    m_fitted = true;
  }

  /// \brief Standardises X in place: X(i, j) = (X(i, j) - mean_j) / scale_j.
  /// On failure X is unchanged.
  /// \param X N x d data with the d columns the scaler was fitted on (N may be 0).
  /// \throws InvalidArgument if fit() was not called, X has a different number of columns
  ///   (the message names StandardScaler::transform and both counts), or X holds a NaN or
  ///   infinity (the message names the row and column).
  void transform(Matrix& X) const {
    if (!m_fitted) {
      tsnn::detail::raise<InvalidArgument>("StandardScaler::transform(): called before fit()");
    }
    const Eigen::Index d = m_meanD.size();
    if (X.cols() != d) {
      tsnn::detail::raise<InvalidArgument>("StandardScaler::transform(): X has ", X.cols(),
                                           " columns, but the scaler was fitted on ", d,
                                           " columns");
    }
    checkFinite(X, "StandardScaler::transform()");
    for (Eigen::Index i = 0; i < X.rows(); ++i) {
      Scalar* x = X.data() + i * d;
      for (Eigen::Index j = 0; j < d; ++j) {
        x[j] = static_cast<Scalar>((static_cast<double>(x[j]) - m_meanD[j]) / m_scaleD[j]);
      }
    }
  }

  /// \brief fit(X) followed by transform(X).
  /// \param X N x d data, N >= 1; standardised in place.
  /// \throws InvalidArgument as fit().
  void fitTransform(Matrix& X) {
    fit(X);
    transform(X);
  }

  /// \brief Per-feature means learnt by fit() (empty before fit()).
  const RowVector& mean() const { return m_mean; }

  /// \brief Per-feature divisors learnt by fit(): the population standard deviation, or 1 for
  /// constant features (empty before fit()).
  const RowVector& scale() const { return m_scale; }

  /// \brief True once fit() has succeeded.
  bool fitted() const { return m_fitted; }

  /// \brief The exact parameters transform() uses (double), for storing a fitted scaler.
  std::vector<double> meanParameters() const {
    return std::vector<double>(m_meanD.data(), m_meanD.data() + m_meanD.size());
  }
  std::vector<double> scaleParameters() const {
    return std::vector<double>(m_scaleD.data(), m_scaleD.data() + m_scaleD.size());
  }

  /// \brief Restores a scaler from meanParameters() and scaleParameters(), so transform() gives
  /// the same results bit for bit. On failure the scaler is unchanged.
  /// \throws InvalidArgument if the sizes differ or are 0, a mean is not finite, or a scale is
  /// not finite and positive (naming the feature and value)
  void setParameters(const std::vector<double>& mean, const std::vector<double>& scale) {
    constexpr const char* kCaller = "StandardScaler::setParameters()";
    if (mean.empty() || mean.size() != scale.size())
      tsnn::detail::raise<InvalidArgument>(kCaller, ": ", mean.size(), " means and ", scale.size(),
                                           " scales (need equal, non-zero counts)");
    for (std::size_t j = 0; j < mean.size(); ++j) {
      if (!std::isfinite(mean[j]))
        tsnn::detail::raise<InvalidArgument>(kCaller, ": mean of feature ", j, " is ", mean[j]);
      if (!(scale[j] > 0) || !std::isfinite(scale[j]))
        tsnn::detail::raise<InvalidArgument>(kCaller, ": scale of feature ", j, " is ", scale[j],
                                             " (must be finite and > 0)");
    }
    const auto d = static_cast<Eigen::Index>(mean.size());
    m_meanD = Eigen::Map<const Eigen::Matrix<double, 1, Eigen::Dynamic>>(mean.data(), d);
    m_scaleD = Eigen::Map<const Eigen::Matrix<double, 1, Eigen::Dynamic>>(scale.data(), d);
    m_mean = m_meanD.cast<Scalar>();
    m_scale = m_scaleD.cast<Scalar>();
    m_fitted = true;
  }

 private:
  static void checkFinite(const Matrix& X, const char* caller) {
    for (Eigen::Index i = 0; i < X.rows(); ++i) {
      for (Eigen::Index j = 0; j < X.cols(); ++j) {
        if (!std::isfinite(X(i, j))) {
          tsnn::detail::raise<InvalidArgument>(caller, ": X(", i, ", ", j, ") is ", X(i, j),
                                               ", expected finite values (row ", i, ", column ", j,
                                               ")");
        }
      }
    }
  }

  Eigen::Matrix<double, 1, Eigen::Dynamic> m_meanD;   // used by transform()
  Eigen::Matrix<double, 1, Eigen::Dynamic> m_scaleD;  // used by transform()
  RowVector m_mean;                                   // m_meanD rounded to Scalar, for callers
  RowVector m_scale;                                  // m_scaleD rounded to Scalar, for callers
  bool m_fitted = false;
};

/// \brief StandardScaler for single-precision data, the common case.
using StandardScalerf = StandardScaler<float>;
/// \brief StandardScaler for double-precision data.
using StandardScalerd = StandardScaler<double>;

}  // namespace tsnn::data
