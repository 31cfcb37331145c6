#pragma once
/// \file
/// \brief Per-epoch records as JSON Lines (one JSON object per line, https://jsonlines.org), the
/// machine-readable companion of the metrics CSV: every field of EpochRecord, by name, so that
/// tools need not know the CSV's column order. Non-finite numbers (a NaN test accuracy when there
/// is no test set) are written as null, since JSON has no NaN.

#include <cmath>
#include <iomanip>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/history.hpp"

namespace tsnn {

namespace detail {

inline void jsonNumber(std::ostream& os, double v) {
  if (std::isfinite(v))
    os << v;
  else
    os << "null";
}

}  // namespace detail

/// \brief Writes one line per record: {"epoch":1,"train_loss":...,...}.
inline void writeMetricsJson(std::ostream& os, const std::vector<EpochRecord>& history) {
  os << std::setprecision(std::numeric_limits<double>::max_digits10);
  for (const auto& r : history) {
    os << "{\"epoch\":" << r.epoch << ",\"train_loss\":";
    detail::jsonNumber(os, r.trainLoss);
    os << ",\"train_accuracy\":";
    detail::jsonNumber(os, r.trainAccuracy);
    os << ",\"test_accuracy\":";
    detail::jsonNumber(os, r.testAccuracy);
    os << ",\"epoch_seconds\":";
    detail::jsonNumber(os, r.epochSeconds);
    os << ",\"evolve_seconds\":";
    detail::jsonNumber(os, r.evolveSeconds);
    os << ",\"nnz\":" << r.nnz << ",\"neurons\":" << r.hiddenNeurons
       << ",\"neurons_removed\":" << r.neuronsRemoved << ",\"skipped_batches\":" << r.skippedBatches
       << ",\"clipped_batches\":" << r.clippedBatches << ",\"mean_staleness\":";
    detail::jsonNumber(os, r.meanStaleness);
    os << "}\n";
  }
}

/// \brief Replaces \p path atomically with the JSON Lines of \p history.
inline void saveMetricsJson(const std::string& path, const std::vector<EpochRecord>& history) {
  writeFileAtomically(
      path, [&](std::ostream& os) { writeMetricsJson(os, history); }, "saveMetricsJson()");
}

}  // namespace tsnn
