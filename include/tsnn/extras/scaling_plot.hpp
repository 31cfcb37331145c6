#pragma once
/// \file
/// \brief The figure of a scaling-by-width table: training speed and peak memory against the
/// number of neurons per hidden layer, both on log-log axes with a tick at every power of ten.
/// Drawn with the learning curves' panels (plots.hpp).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/extras/plots.hpp"
#include "tsnn/extras/png.hpp"

namespace tsnn {

/// \brief One row of a scaling table.
struct ScalingPoint {
  double neuronsPerLayer = 0;             ///< width of each hidden layer
  double connectionSamplesPerSecond = 0;  ///< training speed
  double peakResidentBytes = 0;           ///< peak resident memory of the run
};

namespace detail {

/// The label of 10^e: plain decimals from 0.001 to 100, then k, M, G up to 100G ("1k", "10M"),
/// else "1e<e>".
inline std::string decadeLabel(int e) {
  static const char* const kSuffix[] = {"k", "M", "G"};
  if (e >= -3 && e <= 2) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.*f", e < 0 ? -e : 0, std::pow(10.0, e));
    return buf;
  }
  if (e >= 3 && e <= 11) {
    static const char* const kMantissa[] = {"1", "10", "100"};
    return std::string(kMantissa[e % 3]) + kSuffix[e / 3 - 1];
  }
  return "1e" + std::to_string(e);
}

/// A logarithmic axis over [lo, hi] (both > 0), widened to the powers of ten around them (one
/// decade at least), with a tick and a decadeLabel() at each power of ten.
inline Axis decadeAxis(double lo, double hi) {
  int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (last <= first) last = first + 1;
  Axis a;
  a.lo = std::pow(10.0, first);
  a.hi = std::pow(10.0, last);
  for (int e = first; e <= last; ++e) {
    a.ticks.push_back(std::pow(10.0, e));
    a.labels.push_back(decadeLabel(e));
  }
  return a;
}

/// Places a log-log panel over columns [left, right) of a figure \p height tall, as
/// layoutPanel() places a learning-curve panel.
inline void layoutLogPanel(CurvePanel& p, int left, int right, int height) {
  p.left = left;
  p.right = right;
  double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
  bool any = false;
  for (const Series& ser : p.series)
    for (std::size_t i = 0; i < ser.x.size(); ++i) {
      xlo = any ? std::min(xlo, ser.x[i]) : ser.x[i];
      xhi = any ? std::max(xhi, ser.x[i]) : ser.x[i];
      ylo = any ? std::min(ylo, ser.y[i]) : ser.y[i];
      yhi = any ? std::max(yhi, ser.y[i]) : ser.y[i];
      any = true;
    }
  p.map.logX = p.map.logY = true;
  p.map.x = decadeAxis(xlo, xhi);
  p.map.y = decadeAxis(ylo, yhi);
  PixelRect r = panelRows(p.textScale, height);
  panelColumns(p, p.map.x.labels.back(), r);
  p.map.rect = r;
}

/// The two panels of scalingPlot(), laid out for a width x height figure.
inline std::array<CurvePanel, 2> scalingPanels(const std::vector<ScalingPoint>& points, int width,
                                               int height) {
  if (points.empty()) raise<InvalidArgument>("scalingPlot(): no points; nothing to plot");
  checkFigureSize("scalingPlot()", width, height);
  Series speed{{}, {}, kPlotTrainColor, "speed"};
  Series memory{{}, {}, kPlotTestColor, "memory"};
  for (std::size_t i = 0; i < points.size(); ++i) {
    const ScalingPoint& q = points[i];
    for (const double v : {q.neuronsPerLayer, q.connectionSamplesPerSecond, q.peakResidentBytes})
      if (!(v > 0) || !std::isfinite(v))
        raise<InvalidArgument>("scalingPlot(): point ", i, " has ", v,
                               "; widths, speeds and memory must be positive and finite (the "
                               "axes are logarithmic)");
    speed.x.push_back(q.neuronsPerLayer);
    speed.y.push_back(q.connectionSamplesPerSecond);
    memory.x.push_back(q.neuronsPerLayer);
    memory.y.push_back(q.peakResidentBytes / 1073741824.0);
  }
  const int s = width >= 720 && height >= 300 ? 2 : 1;
  std::array<CurvePanel, 2> panels;
  panels[0].title = "Training speed";
  panels[0].yLabel = "connection-samples/s";
  panels[0].series = {speed};
  panels[1].title = "Peak resident memory";
  panels[1].yLabel = "GiB";
  panels[1].series = {memory};
  for (int i = 0; i < 2; ++i) {
    CurvePanel& p = panels[static_cast<std::size_t>(i)];
    p.xLabel = "neurons per hidden layer";
    p.textScale = s;
    layoutLogPanel(p, i * width / 2, (i + 1) * width / 2, height);
  }
  return panels;
}

}  // namespace detail

/// \brief A two-panel figure of a scaling table: left, connection-samples per second against
/// neurons per hidden layer; right, peak resident memory in GiB (2^30 bytes) against the same.
/// Both axes of both panels are logarithmic, each spanning the powers of ten around its data,
/// with a tick at every power; the points, in the order given, are joined by lines and marked.
/// \throws InvalidArgument if \p points is empty, a value is not positive and finite, or the
/// size is outside 400 x 200 .. 16384 x 16384
inline Image scalingPlot(const std::vector<ScalingPoint>& points, int width = 960,
                         int height = 400) {
  return detail::drawFigure(detail::scalingPanels(points, width, height), width, height);
}

/// \brief Writes scalingPlot(points) to \p path as a PNG file, atomically (see writePng).
/// \throws InvalidArgument as scalingPlot; IoError if the file cannot be written.
inline void writeScalingPlot(const std::string& path, const std::vector<ScalingPoint>& points,
                             int width = 960, int height = 400) {
  writePng(path, scalingPlot(points, width, height));
}

}  // namespace tsnn
