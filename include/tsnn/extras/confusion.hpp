#pragma once
/// \file
/// \brief A confusion matrix of a classifier and its text rendering.
///
/// Entry (t, p) counts the samples of true class t predicted as class p. From it:
///   accuracy     = sum_c (c, c) / sum of all entries
///   recall(c)    = (c, c) / sum_p (c, p)    (the row of class c: how much of c was found)
///   precision(c) = (c, c) / sum_t (t, c)    (the column of c: how much predicted c was right)
/// Each is NaN when its denominator is 0.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"

namespace tsnn {

/// \brief Counts of (true class, predicted class) pairs over classes 0 .. classes-1.
class ConfusionMatrix {
 public:
  /// \brief An all-zero matrix for \p classes classes.
  /// \throws InvalidArgument if \p classes < 1.
  explicit ConfusionMatrix(int classes) : m_classes(classes) {
    if (classes < 1)
      detail::raise<InvalidArgument>("ConfusionMatrix::ConfusionMatrix(): ", classes,
                                     " classes; need at least 1");
    m_counts.assign(static_cast<std::size_t>(classes) * static_cast<std::size_t>(classes), 0);
  }

  int classes() const { return m_classes; }

  /// \brief Counts one sample of class \p truth predicted as \p predicted.
  /// \throws InvalidArgument naming the label if either is outside [0, classes()).
  void add(int truth, int predicted) {
    ++m_counts[index("ConfusionMatrix::add()", truth, predicted)];
    ++m_total;
  }

  /// \brief Adds the counts of \p other, e.g. one gathered by another thread.
  /// \throws InvalidArgument if the numbers of classes differ.
  ConfusionMatrix& operator+=(const ConfusionMatrix& other) {
    if (other.m_classes != m_classes)
      detail::raise<InvalidArgument>("ConfusionMatrix::operator+=(): ", other.m_classes,
                                     " classes added to a matrix of ", m_classes);
    for (std::size_t i = 0; i < m_counts.size(); ++i) m_counts[i] += other.m_counts[i];
    m_total += other.m_total;
    return *this;
  }

  /// \brief Samples of class \p truth predicted as \p predicted.
  /// \throws InvalidArgument naming the label if either is outside [0, classes()).
  long long at(int truth, int predicted) const {
    return m_counts[index("ConfusionMatrix::at()", truth, predicted)];
  }

  /// \brief All samples counted.
  long long total() const { return m_total; }

  /// \brief Samples whose true class is \p truth (row sum).
  long long rowTotal(int truth) const {
    checkClass("ConfusionMatrix::rowTotal()", "class", truth);
    long long sum = 0;
    for (int p = 0; p < m_classes; ++p) sum += m_counts[flat(truth, p)];
    return sum;
  }

  /// \brief Samples predicted as \p predicted (column sum).
  long long columnTotal(int predicted) const {
    checkClass("ConfusionMatrix::columnTotal()", "class", predicted);
    long long sum = 0;
    for (int t = 0; t < m_classes; ++t) sum += m_counts[flat(t, predicted)];
    return sum;
  }

  /// \brief Fraction of samples on the diagonal; NaN if nothing was counted.
  double accuracy() const {
    long long diag = 0;
    for (int c = 0; c < m_classes; ++c) diag += m_counts[flat(c, c)];
    return ratio(diag, m_total);
  }

  /// \brief at(c, c) / rowTotal(c); NaN if class \p c never occurred.
  double recall(int c) const {
    checkClass("ConfusionMatrix::recall()", "class", c);
    return ratio(m_counts[flat(c, c)], rowTotal(c));
  }

  /// \brief at(c, c) / columnTotal(c); NaN if class \p c was never predicted.
  double precision(int c) const {
    checkClass("ConfusionMatrix::precision()", "class", c);
    return ratio(m_counts[flat(c, c)], columnTotal(c));
  }

  /// \brief An aligned text table: a header row of predicted classes, one row per true class
  /// ending with the class's recall, a last row with each predicted class's precision, and a
  /// line with the accuracy and the number of samples. Undefined ratios print as "-".
  ///
  ///     true\pred      0      1  recall
  ///     0             48      2   96.0%
  ///     1              5     45   90.0%
  ///     precision  90.6%  95.7%
  ///     accuracy 93.0% of 100 samples
  ///
  /// \param classNames names for the rows and columns instead of the class numbers; empty, or
  /// one per class
  /// \throws InvalidArgument if \p classNames is neither empty nor of size classes().
  std::string format(const std::vector<std::string>& classNames = {}) const {
    if (!classNames.empty() && classNames.size() != static_cast<std::size_t>(m_classes))
      detail::raise<InvalidArgument>("ConfusionMatrix::format(): ", classNames.size(),
                                     " class names for ", m_classes, " classes");
    std::vector<std::string> names(static_cast<std::size_t>(m_classes));
    for (int c = 0; c < m_classes; ++c)
      names[static_cast<std::size_t>(c)] =
          classNames.empty() ? std::to_string(c) : classNames[static_cast<std::size_t>(c)];

    const std::string corner = "true\\pred";
    const std::string precisionLabel = "precision";
    std::size_t firstWidth = std::max(corner.size(), precisionLabel.size());
    std::size_t cellWidth = std::string("100.0%").size();
    for (const std::string& n : names) {
      firstWidth = std::max(firstWidth, n.size());
      cellWidth = std::max(cellWidth, n.size());
    }
    for (long long v : m_counts) cellWidth = std::max(cellWidth, std::to_string(v).size());
    const std::string recallLabel = "recall";
    const std::size_t recallWidth = std::max(recallLabel.size(), std::string("100.0%").size());

    std::ostringstream os;
    const auto left = [&](const std::string& s, std::size_t w) {
      os << s << std::string(w > s.size() ? w - s.size() : 0, ' ');
    };
    const auto right = [&](const std::string& s, std::size_t w) {
      os << std::string(w > s.size() ? w - s.size() : 0, ' ') << s;
    };
    left(corner, firstWidth);
    for (const std::string& n : names) right(n, cellWidth + 2);
    right(recallLabel, recallWidth + 2);
    os << '\n';
    for (int t = 0; t < m_classes; ++t) {
      left(names[static_cast<std::size_t>(t)], firstWidth);
      for (int p = 0; p < m_classes; ++p)
        right(std::to_string(m_counts[flat(t, p)]), cellWidth + 2);
      right(percent(recall(t)), recallWidth + 2);
      os << '\n';
    }
    left(precisionLabel, firstWidth);
    for (int p = 0; p < m_classes; ++p) right(percent(precision(p)), cellWidth + 2);
    os << '\n';
    os << "accuracy " << percent(accuracy()) << " of " << m_total
       << (m_total == 1 ? " sample\n" : " samples\n");
    return os.str();
  }

 private:
  std::size_t flat(int t, int p) const {
    return static_cast<std::size_t>(t) * static_cast<std::size_t>(m_classes) +
           static_cast<std::size_t>(p);
  }

  void checkClass(const char* caller, const char* what, int c) const {
    if (c < 0 || c >= m_classes)
      detail::raise<InvalidArgument>(caller, ": ", what, " ", c, " is outside [0, ", m_classes,
                                     ")");
  }

  std::size_t index(const char* caller, int truth, int predicted) const {
    checkClass(caller, "true label", truth);
    checkClass(caller, "predicted label", predicted);
    return flat(truth, predicted);
  }

  static double ratio(long long num, long long den) {
    return den == 0 ? std::numeric_limits<double>::quiet_NaN()
                    : static_cast<double>(num) / static_cast<double>(den);
  }

  /// "93.0%", or "-" for NaN.
  static std::string percent(double v) {
    if (std::isnan(v)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", 100 * v);
    return buf;
  }

  int m_classes;
  std::vector<long long> m_counts;  ///< row-major: (truth, predicted) at truth*classes+predicted
  long long m_total = 0;
};

/// \brief The confusion matrix of \p predicted against \p truth, sample by sample, e.g.
/// `confusionMatrix(test.labels, net.predict(test.features), test.numClasses)`.
/// \throws InvalidArgument if the sizes differ, \p classes < 1, or a label is outside
/// [0, classes) (naming the label, its index and which vector holds it); nothing is counted then.
inline ConfusionMatrix confusionMatrix(const std::vector<std::int32_t>& truth,
                                       const std::vector<std::int32_t>& predicted, int classes) {
  if (truth.size() != predicted.size())
    detail::raise<InvalidArgument>("confusionMatrix(): ", truth.size(), " true labels but ",
                                   predicted.size(), " predictions");
  if (classes < 1)
    detail::raise<InvalidArgument>("confusionMatrix(): ", classes, " classes; need at least 1");
  for (std::size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || truth[i] >= classes)
      detail::raise<InvalidArgument>("confusionMatrix(): true label ", truth[i], " at index ", i,
                                     " is outside [0, ", classes, ")");
    if (predicted[i] < 0 || predicted[i] >= classes)
      detail::raise<InvalidArgument>("confusionMatrix(): predicted label ", predicted[i],
                                     " at index ", i, " is outside [0, ", classes, ")");
  }
  ConfusionMatrix m(classes);
  for (std::size_t i = 0; i < truth.size(); ++i) m.add(truth[i], predicted[i]);
  return m;
}

}  // namespace tsnn
