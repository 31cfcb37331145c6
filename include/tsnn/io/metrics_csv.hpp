#pragma once
/// \file
/// \brief The per-epoch metrics CSV: header
/// `epoch,train_loss,train_accuracy,test_accuracy,epoch_seconds,nnz,neurons` (neurons: hidden
/// neurons in total after the epoch's importance pruning).

#include <iomanip>
#include <ostream>
#include <string>
#include <vector>

#include "tsnn/io/atomic_file.hpp"
#include "tsnn/io/history.hpp"

namespace tsnn {

/// \brief Writes the header and one row per record.
inline void writeMetricsCsv(std::ostream& os, const std::vector<EpochRecord>& history) {
  os << "epoch,train_loss,train_accuracy,test_accuracy,epoch_seconds,nnz,neurons\n";
  os << std::setprecision(6);
  for (const auto& r : history)
    os << r.epoch << ',' << r.trainLoss << ',' << r.trainAccuracy << ',' << r.testAccuracy << ','
       << r.epochSeconds << ',' << r.nnz << ',' << r.hiddenNeurons << '\n';
}

/// \brief Replaces \p path atomically with the CSV of \p history (see writeFileAtomically), so
/// the file on disk always holds every epoch finished so far and is never half-written.
inline void saveMetricsCsv(const std::string& path, const std::vector<EpochRecord>& history) {
  writeFileAtomically(
      path, [&](std::ostream& os) { writeMetricsCsv(os, history); }, "saveMetricsCsv()");
}

}  // namespace tsnn
