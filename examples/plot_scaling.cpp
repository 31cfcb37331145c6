// Draws a scaling-by-width table as a PNG: connection-samples per second and peak resident memory
// against neurons per hidden layer, on log-log axes (tsnn::scalingPlot). The table is a CSV file
// with the header
//   neurons_per_layer,connection_samples_per_second,peak_resident_kb
// and one row per run (peak_resident_kb as /usr/bin/time -v reports "Maximum resident set
// size"). BENCHMARKS.md's tables are drawn with it.

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/extras/scaling_plot.hpp"

namespace {

struct Settings {
  std::string csv, out;
  int width = 960, height = 400;
};

void declare(CLI::App& app, Settings& s) {
  app.add_option("--csv", s.csv,
                 "the table: neurons_per_layer,connection_samples_per_second,"
                 "peak_resident_kb, one row per run")
      ->type_name("FILE")
      ->required();
  app.add_option("--out", s.out, "the PNG file to write")->type_name("FILE")->required();
  app.add_option("--width", s.width, "figure width in pixels")->capture_default_str();
  app.add_option("--height", s.height, "figure height in pixels")->capture_default_str();
}

constexpr const char* kHeader = "neurons_per_layer,connection_samples_per_second,peak_resident_kb";

// The whole of \p text as a finite number, else an error naming the file, line and column.
double number(const std::string& text, const std::string& where) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v))
    throw tsnn::FormatError("tsnn: plot_scaling: " + where + ": '" + text + "' is not a number");
  return v;
}

std::vector<tsnn::ScalingPoint> readTable(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw tsnn::IoError("tsnn: plot_scaling: cannot open '" + path + "'");
  std::string line;
  if (!std::getline(in, line) || line != kHeader)
    throw tsnn::FormatError("tsnn: plot_scaling: '" + path + "': the first line must be '" +
                            kHeader + "'");
  std::vector<tsnn::ScalingPoint> points;
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    const std::string where = "'" + path + "' line " + std::to_string(n);
    if (cells.size() != 3)
      throw tsnn::FormatError("tsnn: plot_scaling: " + where + " has " +
                              std::to_string(cells.size()) + " fields, expected 3");
    tsnn::ScalingPoint p;
    p.neuronsPerLayer = number(cells[0], where + " column 1");
    p.connectionSamplesPerSecond = number(cells[1], where + " column 2");
    p.peakResidentBytes = 1024.0 * number(cells[2], where + " column 3");
    points.push_back(p);
  }
  return points;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Draw a scaling-by-width table (speed and peak memory against width) as a PNG.",
               "plot_scaling");
  Settings s;
  const int status = example::parseCommandLine(app, s, declare, argc, argv);
  if (status >= 0) return status;
  try {
    const auto points = readTable(s.csv);
    tsnn::writeScalingPlot(s.out, points, s.width, s.height);
    std::printf("wrote %s: %zu points\n", s.out.c_str(), points.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plot_scaling: %s\n", e.what());
    return 1;
  }
}
