// The second translation unit of consumer_extras: learning curves drawn and saved as PNG.
#include <string>
#include <vector>

#include "tsnn/extras/plots.hpp"

void writeCurves(const std::string& path) {
  std::vector<tsnn::EpochRecord> history(3);
  for (int e = 0; e < 3; ++e) {
    history[e].epoch = e + 1;
    history[e].trainLoss = 1.0 / (e + 1);
    history[e].trainAccuracy = 0.5 + 0.1 * e;
    history[e].testAccuracy = 0.45 + 0.1 * e;
  }
  tsnn::writeLearningCurves(path, history);
}
