#pragma once
/// \file
/// \brief Figures rasterised without any plotting library: learning curves of a training run and
/// a heatmap of the first layer's connectivity per input pixel. Everything (lines, axes, tick
/// labels, a 5x7 bitmap font) is drawn here into an Image, which writePng stores.
///
/// Learning curves: two panels side by side. Left: training loss per epoch. Right: training and
/// test accuracy per epoch, in percent, with a legend. Both have tick labels on "nice" values
/// (1, 2 or 5 times a power of ten) and skip non-finite values (NaN test accuracy when there is
/// no test set); a line breaks at a skipped value.
///
/// Connectivity heatmap: one square cell per input pixel coloured by its number of outgoing
/// connections on a viridis colour map from the smallest count (dark purple) to the largest
/// (yellow); a multi-channel input (CHW order, as CIFAR: channel c, pixel (y, x) at index
/// c*H*W + y*W + x) is shown as one panel per channel, side by side, sharing the colour scale,
/// which a colour bar labelled with the minimum and maximum explains.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tsnn/core/config.hpp"
#include "tsnn/core/errors.hpp"
#include "tsnn/extras/png.hpp"
#include "tsnn/io/history.hpp"
#include "tsnn/sparse/csr_matrix.hpp"

namespace tsnn {

/// Colours of the training and test series in learningCurves (matplotlib's first two).
inline constexpr Rgb kPlotTrainColor{31, 119, 180};
inline constexpr Rgb kPlotTestColor{255, 127, 14};

/// \brief The viridis colour map (matplotlib's default), approximated by linear interpolation
/// between its values at t = 0, 0.1, ..., 1. Perceived lightness increases monotonically with t,
/// so larger values always look brighter, also in grayscale print.
/// \param t position in [0, 1]; values outside are clamped, NaN maps to 0.
inline Rgb viridis(double t) {
  static constexpr std::array<std::array<int, 3>, 11> kStops = {{{68, 1, 84},
                                                                 {72, 36, 117},
                                                                 {65, 68, 135},
                                                                 {53, 95, 141},
                                                                 {42, 120, 142},
                                                                 {33, 145, 140},
                                                                 {34, 168, 132},
                                                                 {68, 191, 112},
                                                                 {122, 209, 81},
                                                                 {189, 223, 38},
                                                                 {253, 231, 37}}};
  if (!(t > 0)) t = 0;  // also NaN
  if (t > 1) t = 1;
  const double pos = t * 10;
  const int i = std::min(static_cast<int>(pos), 9);
  const double f = pos - i;
  const auto mix = [&](int c) {
    const double v = kStops[static_cast<std::size_t>(i)][static_cast<std::size_t>(c)] * (1 - f) +
                     kStops[static_cast<std::size_t>(i) + 1][static_cast<std::size_t>(c)] * f;
    return static_cast<std::uint8_t>(std::lround(v));
  };
  return Rgb{mix(0), mix(1), mix(2)};
}

namespace detail {

// ---------------------------------------------------------------------------------------------
// Bitmap font. Each glyph is 5 pixels wide and 9 rows tall: rows 0-6 hold capitals, digits and
// the body of lower-case letters (baseline under row 6), rows 7-8 the descenders of g, j, p, q,
// y and ','. In each row value bit 4 is the leftmost pixel. Characters advance by 6 pixels (one
// blank column); characters without a glyph are drawn as '?'.

struct Glyph {
  char c;
  std::array<std::uint8_t, 9> rows;
};

inline const Glyph* findGlyph(char c) {
  static const Glyph kFont[] = {
      {' ', {0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {'0', {0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110, 0, 0}},
      {'1', {0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0}},
      {'2', {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111, 0, 0}},
      {'3', {0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110, 0, 0}},
      {'4', {0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010, 0, 0}},
      {'5', {0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110, 0, 0}},
      {'6', {0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110, 0, 0}},
      {'7', {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0, 0}},
      {'8', {0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110, 0, 0}},
      {'9', {0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100, 0, 0}},
      {'A', {0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0, 0}},
      {'B', {0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110, 0, 0}},
      {'C', {0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110, 0, 0}},
      {'D', {0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100, 0, 0}},
      {'E', {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111, 0, 0}},
      {'F', {0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000, 0, 0}},
      {'G', {0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111, 0, 0}},
      {'H', {0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0, 0}},
      {'I', {0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0}},
      {'J', {0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100, 0, 0}},
      {'K', {0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001, 0, 0}},
      {'L', {0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111, 0, 0}},
      {'M', {0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001, 0, 0}},
      {'N', {0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001, 0, 0}},
      {'O', {0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0, 0}},
      {'P', {0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000, 0, 0}},
      {'Q', {0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101, 0, 0}},
      {'R', {0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001, 0, 0}},
      {'S', {0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110, 0, 0}},
      {'T', {0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0, 0}},
      {'U', {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0, 0}},
      {'V', {0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0, 0}},
      {'W', {0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010, 0, 0}},
      {'X', {0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001, 0, 0}},
      {'Y', {0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0, 0}},
      {'Z', {0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111, 0, 0}},
      {'a', {0, 0, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111, 0, 0}},
      {'b', {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110, 0, 0}},
      {'c', {0, 0, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0, 0}},
      {'d', {0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111, 0, 0}},
      {'e', {0, 0, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110, 0, 0}},
      {'f', {0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000, 0, 0}},
      {'g', {0, 0, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110}},
      {'h', {0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0, 0}},
      {'i', {0b00100, 0, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0}},
      {'j', {0b00010, 0, 0b00110, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100}},
      {'k', {0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0, 0}},
      {'l', {0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0}},
      {'m', {0, 0, 0b11010, 0b10101, 0b10101, 0b10101, 0b10101, 0, 0}},
      {'n', {0, 0, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0, 0}},
      {'o', {0, 0, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110, 0, 0}},
      {'p', {0, 0, 0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000}},
      {'q', {0, 0, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001}},
      {'r', {0, 0, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000, 0, 0}},
      {'s', {0, 0, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110, 0, 0}},
      {'t', {0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110, 0, 0}},
      {'u', {0, 0, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0, 0}},
      {'v', {0, 0, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0, 0}},
      {'w', {0, 0, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010, 0, 0}},
      {'x', {0, 0, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0, 0}},
      {'y', {0, 0, 0b10001, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110}},
      {'z', {0, 0, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111, 0, 0}},
      {'.', {0, 0, 0, 0, 0, 0b01100, 0b01100, 0, 0}},
      {',', {0, 0, 0, 0, 0, 0b01100, 0b01100, 0b00100, 0b01000}},
      {':', {0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0, 0, 0}},
      {'%', {0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011, 0, 0}},
      {'-', {0, 0, 0, 0b01110, 0, 0, 0, 0, 0}},
      {'+', {0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0, 0, 0}},
      {'=', {0, 0, 0b11111, 0, 0b11111, 0, 0, 0, 0}},
      {'(', {0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010, 0, 0}},
      {')', {0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000, 0, 0}},
      {'/', {0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0, 0, 0}},
      {'_', {0, 0, 0, 0, 0, 0, 0, 0b11111, 0}},
      {'?', {0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100, 0, 0}},
  };
  for (const Glyph& g : kFont)
    if (g.c == c) return &g;
  return nullptr;
}

constexpr int kGlyphAdvance = 6;  ///< font pixels per character, including the blank column
constexpr int kGlyphCap = 7;      ///< font pixels from the top of a capital to the baseline
constexpr int kGlyphRows = 9;     ///< font pixels from the top of a capital to a descender's end

/// Width in image pixels of \p text drawn at \p scale (no trailing blank column).
inline int textWidth(const std::string& text, int scale) {
  return text.empty() ? 0 : (kGlyphAdvance * static_cast<int>(text.size()) - 1) * scale;
}

inline void putPixel(Image& img, int x, int y, Rgb c) {
  if (img.contains(x, y)) img.set(x, y, c);
}

/// Fills the pixels x0 <= x < x1, y0 <= y < y1 that lie inside the image.
inline void fillRect(Image& img, int x0, int y0, int x1, int y1, Rgb c) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, img.width);
  y1 = std::min(y1, img.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) img.set(x, y, c);
}

/// Draws \p text with the top of its capitals at row \p y, starting at column \p x, each font
/// pixel a scale x scale square. Reads left to right.
inline void drawText(Image& img, int x, int y, const std::string& text, Rgb c, int scale) {
  const Glyph* unknown = findGlyph('?');
  for (std::size_t i = 0; i < text.size(); ++i) {
    const Glyph* g = findGlyph(text[i]);
    if (g == nullptr) g = unknown;
    const int gx = x + static_cast<int>(i) * kGlyphAdvance * scale;
    for (int r = 0; r < kGlyphRows; ++r)
      for (int col = 0; col < 5; ++col)
        if ((g->rows[static_cast<std::size_t>(r)] >> (4 - col)) & 1U)
          fillRect(img, gx + col * scale, y + r * scale, gx + (col + 1) * scale,
                   y + (r + 1) * scale, c);
  }
}

/// Draws \p text rotated a quarter turn counter-clockwise, reading bottom to top: the text's
/// start is at row \p y (its last pixel row is y - 1) and the top of its capitals at column
/// \p x; a font pixel (column u, row v) of the horizontal text lands at (x + v, y - 1 - u).
inline void drawTextUp(Image& img, int x, int y, const std::string& text, Rgb c, int scale) {
  const Glyph* unknown = findGlyph('?');
  for (std::size_t i = 0; i < text.size(); ++i) {
    const Glyph* g = findGlyph(text[i]);
    if (g == nullptr) g = unknown;
    const int u0 = static_cast<int>(i) * kGlyphAdvance;
    for (int r = 0; r < kGlyphRows; ++r)
      for (int col = 0; col < 5; ++col)
        if ((g->rows[static_cast<std::size_t>(r)] >> (4 - col)) & 1U) {
          const int u = u0 + col;
          fillRect(img, x + r * scale, y - (u + 1) * scale, x + (r + 1) * scale, y - u * scale, c);
        }
  }
}

/// An inclusive pixel rectangle; drawing into it clips to it.
struct PixelRect {
  int left = 0, top = 0, right = -1, bottom = -1;
  bool contains(int x, int y) const { return x >= left && x <= right && y >= top && y <= bottom; }
};

/// Stamps a thickness x thickness square centred (rounding up and left) on (x, y), clipped to
/// \p clip.
inline void stamp(Image& img, int x, int y, int thickness, Rgb c, const PixelRect& clip) {
  const int lo = -(thickness - 1) / 2;
  for (int dy = lo; dy < lo + thickness; ++dy)
    for (int dx = lo; dx < lo + thickness; ++dx)
      if (clip.contains(x + dx, y + dy)) putPixel(img, x + dx, y + dy, c);
}

/// A line from (x0, y0) to (x1, y1), both ends included, by Bresenham's algorithm: it steps one
/// pixel along the major axis and carries the error 2*(dy*x - dx*y) of the minor axis.
inline void drawLine(Image& img, int x0, int y0, int x1, int y1, int thickness, Rgb c,
                     const PixelRect& clip) {
  const int dx = std::abs(x1 - x0);
  const int dy = -std::abs(y1 - y0);
  const int sx = x0 < x1 ? 1 : -1;
  const int sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    stamp(img, x0, y0, thickness, c, clip);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

/// The 1-pixel outline of \p r.
inline void drawFrame(Image& img, const PixelRect& r, Rgb c) {
  fillRect(img, r.left, r.top, r.right + 1, r.top + 1, c);
  fillRect(img, r.left, r.bottom, r.right + 1, r.bottom + 1, c);
  fillRect(img, r.left, r.top, r.left + 1, r.bottom + 1, c);
  fillRect(img, r.right, r.top, r.right + 1, r.bottom + 1, c);
}

// ---------------------------------------------------------------------------------------------
// Axes.

/// The values at the two ends of an axis' data range, the tick positions and their labels.
struct Axis {
  double lo = 0;
  double hi = 1;
  std::vector<double> ticks;
  std::vector<std::string> labels;
};

/// The "nice" step (1, 2 or 5 times a power of ten) that cuts \p span into at most about
/// \p maxTicks intervals.
inline double niceStep(double span, int maxTicks) {
  const double raw = span / std::max(1, maxTicks);
  if (!(raw > 0) || !std::isfinite(raw)) return 1;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

/// Tick labels for multiples of \p step: as many decimals as the step needs (0.25 -> 2), or
/// three significant digits (%g) for magnitudes from 1e6 on and for steps below 1e-4.
inline void labelTicks(Axis& axis, double step) {
  const double big = std::max(std::abs(axis.lo), std::abs(axis.hi));
  const bool general = !(big < 1e6) || !(step >= 1e-4);
  const int decimals =
      general ? 0 : std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  for (double v : axis.ticks) {
    if (std::abs(v) < step * 1e-6) v = 0;  // no "-0" from rounding
    char buf[64];
    if (general)
      std::snprintf(buf, sizeof buf, "%.3g", v);
    else
      std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    axis.labels.emplace_back(buf);
  }
}

/// A value axis covering [lo, hi], widened to multiples of a nice step. A constant (or nearly
/// constant) range is first widened by 10% of its value, or by 1 around 0, so that the mapping
/// never divides by zero.
inline Axis valueAxis(double lo, double hi, int maxTicks) {
  if (!(hi - lo > 1e-9 * std::max(std::abs(lo), std::abs(hi)))) {
    const double mid = 0.5 * (lo + hi);
    const double pad = mid != 0 ? 0.1 * std::abs(mid) : 1.0;
    lo = mid - pad;
    hi = mid + pad;
  }
  Axis a;
  if (!std::isfinite(hi - lo)) {  // beyond +-1e308 apart: just the two ends
    a.lo = lo;
    a.hi = hi;
    a.ticks = {lo, hi};
    labelTicks(a, hi - lo);
    return a;
  }
  const double step = niceStep(hi - lo, maxTicks);
  a.lo = std::floor(lo / step) * step;
  a.hi = std::ceil(hi / step) * step;
  const long long k0 = std::llround(a.lo / step);
  const long long k1 = std::llround(a.hi / step);
  for (long long k = k0; k <= k1; ++k) a.ticks.push_back(static_cast<double>(k) * step);
  labelTicks(a, step);
  return a;
}

/// An epoch axis from \p first to \p last with ticks on multiples of an integer step; a single
/// epoch gets the range first +- 0.5, so its point sits in the middle.
inline Axis epochAxis(int first, int last, int maxTicks) {
  Axis a;
  a.lo = first;
  a.hi = last;
  if (last <= first) {
    a.lo = first - 0.5;
    a.hi = first + 0.5;
  }
  const double step = std::max(1.0, std::round(niceStep(a.hi - a.lo, maxTicks)));
  for (double v = std::ceil(a.lo / step) * step; v <= a.hi + 1e-9; v += step) a.ticks.push_back(v);
  labelTicks(a, step);
  return a;
}

/// Maps data coordinates to pixels: the axis range [lo, hi] spans the plot rectangle minus an
/// inset of \p inset pixels on each side, so that markers at the extremes stay inside the frame.
/// A logarithmic axis (logX, logY; its range and values positive) places log10 of the value
/// linearly between log10(lo) and log10(hi).
struct PlotMapping {
  PixelRect rect;
  Axis x;
  Axis y;
  int inset = 6;
  bool logX = false;
  bool logY = false;
  static double fraction(double v, const Axis& a, bool log) {
    return log ? (std::log10(v) - std::log10(a.lo)) / (std::log10(a.hi) - std::log10(a.lo))
               : (v - a.lo) / (a.hi - a.lo);
  }
  int px(double v) const {
    const double f = fraction(v, x, logX);
    return rect.left + inset +
           static_cast<int>(std::lround(f * (rect.right - rect.left - 2 * inset)));
  }
  int py(double v) const {
    const double f = fraction(v, y, logY);
    return rect.bottom - inset -
           static_cast<int>(std::lround(f * (rect.bottom - rect.top - 2 * inset)));
  }
};

struct Series {
  std::vector<double> x;
  std::vector<double> y;  ///< non-finite values are skipped
  Rgb color;
  std::string name;
  bool any() const {
    return std::any_of(y.begin(), y.end(), [](double v) { return std::isfinite(v); });
  }
};

inline constexpr Rgb kPlotInk{40, 40, 40};
inline constexpr Rgb kPlotGrid{228, 228, 228};
inline constexpr Rgb kPlotBackground{255, 255, 255};

/// One panel of the learning-curve figure: where its plot rectangle lies and how it maps data.
struct CurvePanel {
  PlotMapping map;
  std::string title;
  std::string xLabel;
  std::string yLabel;
  std::vector<Series> series;
  int textScale = 1;
  int left = 0;   ///< the panel's first image column
  int right = 0;  ///< one past its last
};

/// The rows of a panel's plot rectangle in a figure \p height tall: the title row above it;
/// below it the tick marks, the tick labels and the axis label.
inline PixelRect panelRows(int textScale, int height) {
  const int pad = 6 * textScale;
  const int cap = kGlyphCap * textScale;
  PixelRect r;
  r.top = pad + cap + 2 * pad;
  r.bottom = height - 1 - (pad + cap + pad + cap + pad);
  return r;
}

/// The columns of the plot rectangle \p r of panel \p p (p.left, p.right and its y axis set):
/// left of the plot the rotated axis label, a gap, the tick labels and the tick marks; right of
/// it room for half of the last x tick label \p lastXLabel.
inline void panelColumns(const CurvePanel& p, const std::string& lastXLabel, PixelRect& r) {
  const int s = p.textScale;
  const int pad = 6 * s;
  const int tickLen = 2 * s + 2;
  int yLabelWidth = 0;
  for (const std::string& l : p.map.y.labels) yLabelWidth = std::max(yLabelWidth, textWidth(l, s));
  r.left = p.left + pad + kGlyphRows * s + pad + yLabelWidth + pad / 2 + tickLen;
  r.right = p.right - 1 - std::max(2 * pad, textWidth(lastXLabel, s) / 2 + pad);
}

/// Places a panel spanning columns [left, right) and all rows of a figure \p height tall: the
/// title row on top, the tick labels and axis label below and to the left of the plot.
inline void layoutPanel(CurvePanel& p, int left, int right, int height) {
  const int s = p.textScale;
  const int pad = 6 * s;
  const int cap = kGlyphCap * s;
  p.left = left;
  p.right = right;

  double lo = 0, hi = 0;
  bool any = false;
  int firstEpoch = 0, lastEpoch = 0;
  bool anyX = false;
  for (const Series& ser : p.series) {
    for (std::size_t i = 0; i < ser.x.size(); ++i) {
      const int e = static_cast<int>(ser.x[i]);
      firstEpoch = anyX ? std::min(firstEpoch, e) : e;
      lastEpoch = anyX ? std::max(lastEpoch, e) : e;
      anyX = true;
      const double v = ser.y[i];
      if (!std::isfinite(v)) continue;
      lo = any ? std::min(lo, v) : v;
      hi = any ? std::max(hi, v) : v;
      any = true;
    }
  }
  if (!any) {
    lo = 0;
    hi = 1;
  }

  PixelRect r = panelRows(s, height);
  p.map.y = valueAxis(lo, hi, std::max(2, (r.bottom - r.top) / (5 * cap)));
  const std::string lastLabel = std::to_string(lastEpoch);
  panelColumns(p, lastLabel, r);
  const int labelRoom = textWidth(lastLabel, s) + 4 * pad;
  p.map.x = epochAxis(firstEpoch, lastEpoch, std::max(1, (r.right - r.left) / labelRoom));
  p.map.rect = r;
}

/// Draws a laid-out panel: grid, frame, ticks, labels, series, title and legend.
inline void drawPanel(Image& img, const CurvePanel& p) {
  const int s = p.textScale;
  const int pad = 6 * s;
  const int cap = kGlyphCap * s;
  const int tickLen = 2 * s + 2;
  const PixelRect& r = p.map.rect;
  const PixelRect inner{r.left + 1, r.top + 1, r.right - 1, r.bottom - 1};

  for (std::size_t i = 0; i < p.map.y.ticks.size(); ++i) {
    const int y = p.map.py(p.map.y.ticks[i]);
    fillRect(img, inner.left, y, inner.right + 1, y + 1, kPlotGrid);
    fillRect(img, r.left - tickLen, y, r.left, y + 1, kPlotInk);
    const std::string& l = p.map.y.labels[i];
    drawText(img, r.left - tickLen - pad / 2 - textWidth(l, s), y - cap / 2, l, kPlotInk, s);
  }
  for (std::size_t i = 0; i < p.map.x.ticks.size(); ++i) {
    const int x = p.map.px(p.map.x.ticks[i]);
    fillRect(img, x, inner.top, x + 1, inner.bottom + 1, kPlotGrid);
    fillRect(img, x, r.bottom + 1, x + 1, r.bottom + 1 + tickLen, kPlotInk);
    const std::string& l = p.map.x.labels[i];
    drawText(img, x - textWidth(l, s) / 2, r.bottom + tickLen + pad / 2, l, kPlotInk, s);
  }
  drawFrame(img, r, kPlotInk);

  // Axis labels: x centred under the tick labels, y rotated and centred left of them.
  drawText(img, (r.left + r.right - textWidth(p.xLabel, s)) / 2,
           r.bottom + tickLen + pad / 2 + cap + pad, p.xLabel, kPlotInk, s);
  drawTextUp(img, p.left + pad, (r.top + r.bottom + textWidth(p.yLabel, s)) / 2, p.yLabel, kPlotInk,
             s);

  // Series: 2-pixel lines between consecutive finite points; square markers when the points
  // are few enough to tell apart, and always on a point with no finite neighbour (a single
  // epoch, or a value between two skipped ones), which a line alone would not show.
  const int thickness = 2;
  for (const Series& ser : p.series) {
    const std::size_t n = ser.y.size();
    const bool markers = n <= 30;
    const auto finite = [&](std::size_t i) { return i < n && std::isfinite(ser.y[i]); };
    for (std::size_t i = 0; i < n; ++i) {
      if (!finite(i)) continue;
      const int x = p.map.px(ser.x[i]);
      const int y = p.map.py(ser.y[i]);
      if (finite(i + 1))
        drawLine(img, x, y, p.map.px(ser.x[i + 1]), p.map.py(ser.y[i + 1]), thickness, ser.color,
                 inner);
      const bool isolated = !(i > 0 && finite(i - 1)) && !finite(i + 1);
      if (markers || isolated) stamp(img, x, y, 2 * s + 3, ser.color, inner);
    }
  }

  // Title on the left above the plot; legend (a short thick line and the name per series with
  // data) right-aligned on the same row.
  const int titleY = pad;
  drawText(img, r.left, titleY, p.title, kPlotInk, s);
  if (p.series.size() > 1) {
    int x = r.right;
    for (auto it = p.series.rbegin(); it != p.series.rend(); ++it) {
      if (!it->any()) continue;
      x -= textWidth(it->name, s);
      drawText(img, x, titleY, it->name, kPlotInk, s);
      x -= pad / 2 + 8 * s;
      fillRect(img, x, titleY + cap / 2 - s, x + 8 * s, titleY + cap / 2 + s, it->color);
      x -= 2 * pad;
    }
  }
}

/// \throws InvalidArgument naming \p caller unless the figure is 400 x 200 .. 16384 x 16384.
inline void checkFigureSize(const char* caller, int width, int height) {
  if (width < 400 || height < 200 || width > 16384 || height > 16384)
    raise<InvalidArgument>(caller, ": figure size ", width, " x ", height,
                           " is outside 400 x 200 .. 16384 x 16384");
}

/// A figure of two laid-out panels side by side on a white background.
inline Image drawFigure(const std::array<CurvePanel, 2>& panels, int width, int height) {
  Image img(width, height, kPlotBackground);
  for (const auto& p : panels) drawPanel(img, p);
  return img;
}

/// The two panels of learningCurves, laid out for a width x height figure.
inline std::array<CurvePanel, 2> learningCurvePanels(const std::vector<EpochRecord>& history,
                                                     int width, int height) {
  if (history.empty())
    raise<InvalidArgument>("learningCurves(): history is empty; nothing to plot");
  checkFigureSize("learningCurves()", width, height);
  const int s = width >= 720 && height >= 300 ? 2 : 1;
  std::array<CurvePanel, 2> panels;
  Series loss{{}, {}, kPlotTrainColor, "train"};
  Series trainAcc{{}, {}, kPlotTrainColor, "train"};
  Series testAcc{{}, {}, kPlotTestColor, "test"};
  for (const EpochRecord& r : history) {
    const double e = r.epoch;
    loss.x.push_back(e);
    loss.y.push_back(r.trainLoss);
    trainAcc.x.push_back(e);
    trainAcc.y.push_back(100 * r.trainAccuracy);
    testAcc.x.push_back(e);
    testAcc.y.push_back(100 * r.testAccuracy);
  }
  panels[0].title = "Training loss";
  panels[0].yLabel = "loss";
  panels[0].series = {loss};
  panels[1].title = "Accuracy";
  panels[1].yLabel = "accuracy (%)";
  panels[1].series = {trainAcc, testAcc};
  for (int i = 0; i < 2; ++i) {
    CurvePanel& p = panels[static_cast<std::size_t>(i)];
    p.xLabel = "epoch";
    p.textScale = s;
    layoutPanel(p, i * width / 2, (i + 1) * width / 2, height);
  }
  return panels;
}

// ---------------------------------------------------------------------------------------------
// Connectivity heatmap layout.

/// Where connectivityHeatmap puts things: channel c's cell for pixel (y, x) is the square of
/// side \c cell with top-left corner (cellsLeft + c * channelStride + x * cell, cellsTop +
/// y * cell); the colour bar is the rectangle \c bar, viridis(1) on its top row.
struct HeatmapLayout {
  int imageWidth = 0;
  int imageHeight = 0;
  int textScale = 1;
  int cell = 1;
  int cellsLeft = 0;
  int cellsTop = 0;
  int channelStride = 0;
  PixelRect bar;
  int labelLeft = 0;  ///< first column of the colour bar's labels
  int titleTop = 0;
  int channelLabelTop = 0;
};

inline const char* heatmapTitle() { return "Outgoing connections per input"; }

inline HeatmapLayout heatmapLayout(int channels, int height, int width, int scale,
                                   const std::string& minLabel, const std::string& maxLabel) {
  HeatmapLayout l;
  l.cell = scale;
  const int panelW = width * scale;
  const int panelH = height * scale;
  l.textScale = panelH >= 96 ? 2 : 1;
  const int s = l.textScale;
  const int pad = 6 * s;
  const int cap = kGlyphCap * s;
  l.titleTop = pad;
  l.cellsLeft = 2 * pad;
  l.cellsTop = pad + cap + 2 * pad;
  l.channelStride = panelW + 3 * pad;
  const int cellsRight = l.cellsLeft + channels * panelW + (channels - 1) * 3 * pad;
  const int barH = std::max(panelH, 5 * kGlyphRows * s);
  l.bar = PixelRect{cellsRight + 3 * pad, l.cellsTop, cellsRight + 3 * pad + 4 * pad - 1,
                    l.cellsTop + barH - 1};
  l.labelLeft = l.bar.right + 1 + pad;
  const int labelW = std::max(textWidth(minLabel, s), textWidth(maxLabel, s));
  l.channelLabelTop = l.cellsTop + panelH + pad;
  l.imageWidth =
      std::max(l.labelLeft + labelW + 2 * pad, 2 * pad + textWidth(heatmapTitle(), s) + 2 * pad);
  const int below = channels > 1 ? pad + kGlyphRows * s + pad : pad;
  l.imageHeight = l.cellsTop + std::max(barH, panelH + below) + pad;
  return l;
}

}  // namespace detail

/// \brief A two-panel figure of a training run: left, the training loss per epoch; right, the
/// training and test accuracy per epoch in percent (two colours, kPlotTrainColor and
/// kPlotTestColor, with a legend). The x axes are the records' epoch numbers. Non-finite values
/// are skipped (a run without a test set has NaN test accuracy and gets no test curve); a
/// constant series is drawn as a flat line in the middle of a widened range.
/// \param width, height size of the figure in pixels (text is drawn twice as large from 720 x 300)
/// \throws InvalidArgument if \p history is empty or the size is outside 400 x 200 .. 16384 x
/// 16384.
inline Image learningCurves(const std::vector<EpochRecord>& history, int width = 960,
                            int height = 400) {
  return detail::drawFigure(detail::learningCurvePanels(history, width, height), width, height);
}

/// \brief Writes learningCurves(history) to \p path as a PNG file, atomically (see writePng).
/// \throws InvalidArgument as learningCurves; IoError if the file cannot be written.
inline void writeLearningCurves(const std::string& path, const std::vector<EpochRecord>& history,
                                int width = 960, int height = 400) {
  writePng(path, learningCurves(history, width, height));
}

/// \brief A heatmap of the number of outgoing connections of each input pixel: one
/// \p scale x \p scale cell per pixel coloured with viridis((count - min) / (max - min)), min and
/// max taken over all inputs (all cells get viridis(0.5) when every count is equal). A
/// multi-channel input, stored channel-major (CHW: channel c, pixel (y, x) at index
/// c*height*width + y*width + x), is drawn as one panel per channel from left to right, labelled
/// "channel c". A colour bar on the right is labelled with min (bottom) and max (top).
/// \param outgoingPerInput channels * height * width non-negative counts, e.g. from
/// outgoingConnections() of the first layer's weights
/// \throws InvalidArgument if a dimension is not positive, \p scale is outside [1, 64], the
/// vector size is not channels * height * width, a count is negative, or the image would be
/// larger than 16384 pixels on a side.
inline Image connectivityHeatmap(const std::vector<long long>& outgoingPerInput, int channels,
                                 int height, int width, int scale = 8) {
  if (channels < 1 || height < 1 || width < 1)
    detail::raise<InvalidArgument>("connectivityHeatmap(): shape ", channels, " x ", height, " x ",
                                   width, " (channels x height x width) must be positive");
  if (scale < 1 || scale > 64)
    detail::raise<InvalidArgument>("connectivityHeatmap(): scale ", scale, " is outside [1, 64]");
  const long long n = static_cast<long long>(channels) * height * width;
  if (static_cast<long long>(outgoingPerInput.size()) != n)
    detail::raise<InvalidArgument>("connectivityHeatmap(): ", outgoingPerInput.size(),
                                   " counts for a ", channels, " x ", height, " x ", width,
                                   " input, expected ", n);
  if (static_cast<long long>(channels) * width * scale > 16384 ||
      static_cast<long long>(height) * scale > 16384)
    detail::raise<InvalidArgument>("connectivityHeatmap(): ", channels, " x ", height, " x ", width,
                                   " at scale ", scale, " exceeds 16384 pixels on a side");
  long long lo = outgoingPerInput[0];
  long long hi = lo;
  for (std::size_t i = 0; i < outgoingPerInput.size(); ++i) {
    const long long v = outgoingPerInput[i];
    if (v < 0)
      detail::raise<InvalidArgument>("connectivityHeatmap(): negative count ", v, " at index ", i);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }

  const std::string minLabel = std::to_string(lo);
  const std::string maxLabel = std::to_string(hi);
  const detail::HeatmapLayout l =
      detail::heatmapLayout(channels, height, width, scale, minLabel, maxLabel);
  const int s = l.textScale;
  Image img(l.imageWidth, l.imageHeight, detail::kPlotBackground);

  const std::size_t plane = static_cast<std::size_t>(height) * static_cast<std::size_t>(width);
  for (int c = 0; c < channels; ++c) {
    const int x0 = l.cellsLeft + c * l.channelStride;
    const detail::PixelRect frame{x0 - 1, l.cellsTop - 1, x0 + width * scale,
                                  l.cellsTop + height * scale};
    detail::drawFrame(img, frame, detail::kPlotInk);
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const long long v =
            outgoingPerInput[static_cast<std::size_t>(c) * plane +
                             static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                             static_cast<std::size_t>(x)];
        const double t = hi > lo ? static_cast<double>(v - lo) / static_cast<double>(hi - lo) : 0.5;
        detail::fillRect(img, x0 + x * scale, l.cellsTop + y * scale, x0 + (x + 1) * scale,
                         l.cellsTop + (y + 1) * scale, viridis(t));
      }
    if (channels > 1) {
      const std::string label = "channel " + std::to_string(c);
      detail::drawText(img, x0 + (width * scale - detail::textWidth(label, s)) / 2,
                       l.channelLabelTop, label, detail::kPlotInk, s);
    }
  }

  // Colour bar: row r of the bar shows t = 1 - r / (rows - 1), so the top is the maximum.
  const int rows = l.bar.bottom - l.bar.top + 1;
  for (int r = 0; r < rows; ++r)
    detail::fillRect(img, l.bar.left, l.bar.top + r, l.bar.right + 1, l.bar.top + r + 1,
                     viridis(1.0 - static_cast<double>(r) / (rows - 1)));
  detail::drawFrame(
      img, detail::PixelRect{l.bar.left - 1, l.bar.top - 1, l.bar.right + 1, l.bar.bottom + 1},
      detail::kPlotInk);
  detail::drawText(img, l.labelLeft, l.bar.top, maxLabel, detail::kPlotInk, s);
  detail::drawText(img, l.labelLeft, l.bar.bottom + 1 - detail::kGlyphCap * s, minLabel,
                   detail::kPlotInk, s);
  detail::drawText(img, 2 * 6 * s, l.titleTop, detail::heatmapTitle(), detail::kPlotInk, s);
  return img;
}

/// \brief Writes connectivityHeatmap(...) to \p path as a PNG file, atomically (see writePng).
/// \throws InvalidArgument as connectivityHeatmap; IoError if the file cannot be written.
inline void writeConnectivityHeatmap(const std::string& path,
                                     const std::vector<long long>& outgoingPerInput, int channels,
                                     int height, int width, int scale = 8) {
  writePng(path, connectivityHeatmap(outgoingPerInput, channels, height, width, scale));
}

/// \brief The number of outgoing connections of each input of a layer whose weights \p w are
/// stored n_out x n_in (row i holds the connections into output i): entry j counts the
/// occurrences of column index j among the stored entries, so the result has w.cols() entries
/// and sums to w.nonZeros(). Explicitly stored zeros count as connections.
template <class Scalar, class Index>
std::vector<long long> outgoingConnections(const CsrMatrix<Scalar, Index>& w) {
  std::vector<long long> counts(static_cast<std::size_t>(w.cols()), 0);
  for (const Index j : w.colIdx()) {
    TSNN_ASSERT(j >= 0 && j < w.cols());
    ++counts[static_cast<std::size_t>(j)];
  }
  return counts;
}

}  // namespace tsnn
