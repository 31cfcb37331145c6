// Tests for tsnn/io/plots.hpp: the learning-curve figure, the connectivity heatmap and its
// colour map, and outgoingConnections. Pixel positions come from the layouts in
// tsnn::detail, which the drawing code uses, so that the tests can look where a value must be.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "support/oracle.hpp"
#include "tsnn/extras/plots.hpp"
#include "tsnn/sparse/csr_matrix.hpp"

namespace fs = std::filesystem;
using tsnn::EpochRecord;
using tsnn::Image;
using tsnn::Rgb;

namespace {

using tsnn::test::readBytes;
using tsnn::test::TempDir;
using tsnn::test::testSeed;  // TSNN_TEST_SEED overrides the default

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// A run of n epochs: the loss falls from 2 towards 0.3, training accuracy rises from 40% and
// test accuracy stays 10 points below it.
std::vector<EpochRecord> history(int n) {
  std::vector<EpochRecord> h;
  for (int e = 1; e <= n; ++e) {
    EpochRecord r;
    r.epoch = e;
    r.trainLoss = 0.3 + 1.7 * std::exp(-0.3 * (e - 1));
    r.trainAccuracy = 0.95 - 0.55 * std::exp(-0.3 * (e - 1));
    r.testAccuracy = r.trainAccuracy - 0.1;
    h.push_back(r);
  }
  return h;
}

struct Pixel {
  int x;
  int y;
};

// Pixels of colour c in the rectangle (inclusive bounds).
std::vector<Pixel> pixelsOf(const Image& img, Rgb c, const tsnn::detail::PixelRect& r) {
  std::vector<Pixel> out;
  for (int y = std::max(r.top, 0); y <= std::min(r.bottom, img.height - 1); ++y)
    for (int x = std::max(r.left, 0); x <= std::min(r.right, img.width - 1); ++x)
      if (img.at(x, y) == c) out.push_back({x, y});
  return out;
}

tsnn::detail::PixelRect whole(const Image& img) { return {0, 0, img.width - 1, img.height - 1}; }

// Pixels where two images of the same size differ.
std::vector<Pixel> differences(const Image& a, const Image& b) {
  REQUIRE(a.width == b.width);
  REQUIRE(a.height == b.height);
  std::vector<Pixel> out;
  for (int y = 0; y < a.height; ++y)
    for (int x = 0; x < a.width; ++x)
      if (a.at(x, y) != b.at(x, y)) out.push_back({x, y});
  return out;
}

// sRGB-weighted brightness of a colour (Rec. 709 luma on the encoded values).
double luma(Rgb c) { return 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b; }

}  // namespace

TEST_CASE("learningCurves has the requested size and a white background", "[io][plots]") {
  const auto size =
      GENERATE(std::make_pair(960, 400), std::make_pair(400, 200), std::make_pair(1280, 720));
  const Image img = tsnn::learningCurves(history(8), size.first, size.second);
  CHECK(img.width == size.first);
  CHECK(img.height == size.second);
  CHECK(img.rgb.size() == 3 * static_cast<std::size_t>(size.first) * size.second);
  CHECK(img.at(0, 0) == Rgb{255, 255, 255});
  CHECK(img.at(img.width - 1, img.height - 1) == Rgb{255, 255, 255});
  // Default arguments give the documented 960 x 400.
  const Image def = tsnn::learningCurves(history(3));
  CHECK(def.width == 960);
  CHECK(def.height == 400);
}

TEST_CASE("learningCurves draws each series inside its plot in its colour at its values",
          "[io][plots]") {
  const auto h = history(12);
  const Image img = tsnn::learningCurves(h);
  const auto panels = tsnn::detail::learningCurvePanels(h, img.width, img.height);
  const auto& loss = panels[0].map;
  const auto& acc = panels[1].map;
  // The plots lie in their own halves, one beside the other.
  CHECK(loss.rect.right < img.width / 2);
  CHECK(acc.rect.left >= img.width / 2);
  CHECK(loss.rect.bottom - loss.rect.top > img.height / 2);

  // Every data point is drawn at its mapped position.
  for (const EpochRecord& r : h) {
    INFO("epoch " << r.epoch);
    CHECK(img.at(loss.px(r.epoch), loss.py(r.trainLoss)) == tsnn::kPlotTrainColor);
    CHECK(img.at(acc.px(r.epoch), acc.py(100 * r.trainAccuracy)) == tsnn::kPlotTrainColor);
    CHECK(img.at(acc.px(r.epoch), acc.py(100 * r.testAccuracy)) == tsnn::kPlotTestColor);
  }
  // The mapping puts larger values higher and later epochs further right.
  CHECK(loss.py(h.front().trainLoss) < loss.py(h.back().trainLoss));
  CHECK(loss.px(1) < loss.px(12));
  CHECK(acc.py(100 * h.front().trainAccuracy) > acc.py(100 * h.back().trainAccuracy));

  // Lines, not just markers: a 2-pixel curve across the plot has several hundred pixels.
  const auto lossPixels = pixelsOf(img, tsnn::kPlotTrainColor, loss.rect);
  CHECK(lossPixels.size() > 600);
  CHECK(pixelsOf(img, tsnn::kPlotTrainColor, acc.rect).size() > 600);
  CHECK(pixelsOf(img, tsnn::kPlotTestColor, acc.rect).size() > 600);
  CHECK(pixelsOf(img, tsnn::kPlotTestColor, loss.rect).empty());

  // Outside the plot rectangles the series colours appear only in the accuracy legend, which
  // sits above the accuracy plot.
  for (Rgb c : {tsnn::kPlotTrainColor, tsnn::kPlotTestColor}) {
    std::size_t inLegend = 0;
    for (const Pixel& p : pixelsOf(img, c, whole(img))) {
      if (loss.rect.contains(p.x, p.y) || acc.rect.contains(p.x, p.y)) continue;
      INFO("pixel (" << p.x << ", " << p.y << ")");
      CHECK(p.x >= img.width / 2);
      CHECK(p.y < acc.rect.top);
      ++inLegend;
    }
    CHECK(inLegend > 0);
  }
  // Some ink besides the series: axes, ticks and labels.
  CHECK(pixelsOf(img, tsnn::detail::kPlotInk, whole(img)).size() > 1000);
}

TEST_CASE("More epochs and different values change the picture where they should", "[io][plots]") {
  const auto h = history(6);
  const Image base = tsnn::learningCurves(h);
  CHECK(differences(base, tsnn::learningCurves(h)).empty());  // deterministic

  CHECK_FALSE(differences(base, tsnn::learningCurves(history(7))).empty());

  auto lossChanged = h;
  lossChanged[3].trainLoss += 0.4;
  const auto dl = differences(base, tsnn::learningCurves(lossChanged));
  CHECK_FALSE(dl.empty());
  CHECK(std::all_of(dl.begin(), dl.end(), [&](const Pixel& p) { return p.x < base.width / 2; }));

  auto testChanged = h;
  testChanged[2].testAccuracy -= 0.2;
  const auto dt = differences(base, tsnn::learningCurves(testChanged));
  CHECK_FALSE(dt.empty());
  CHECK(std::all_of(dt.begin(), dt.end(), [&](const Pixel& p) { return p.x >= base.width / 2; }));
}

TEST_CASE("NaN test accuracy is skipped and breaks the test curve", "[io][plots]") {
  SECTION("no test set at all: no test curve and no test legend entry") {
    auto h = history(6);
    for (auto& r : h) r.testAccuracy = kNaN;
    Image img;
    REQUIRE_NOTHROW(img = tsnn::learningCurves(h));
    CHECK(pixelsOf(img, tsnn::kPlotTestColor, whole(img)).empty());
    const auto panels = tsnn::detail::learningCurvePanels(h, img.width, img.height);
    CHECK(pixelsOf(img, tsnn::kPlotTrainColor, panels[1].map.rect).size() > 300);
  }
  SECTION("one missing value: no test pixel in its column, the rest drawn") {
    auto h = history(6);
    h[2].testAccuracy = kNaN;  // epoch 3
    const Image img = tsnn::learningCurves(h);
    const auto panels = tsnn::detail::learningCurvePanels(h, img.width, img.height);
    const auto& acc = panels[1].map;
    const int x3 = acc.px(3);
    const tsnn::detail::PixelRect column{x3, acc.rect.top, x3, acc.rect.bottom};
    CHECK(pixelsOf(img, tsnn::kPlotTestColor, column).empty());
    CHECK_FALSE(pixelsOf(img, tsnn::kPlotTrainColor, column).empty());
    for (int e : {1, 2, 4, 5, 6})
      CHECK(img.at(acc.px(e), acc.py(100 * h[static_cast<std::size_t>(e - 1)].testAccuracy)) ==
            tsnn::kPlotTestColor);
  }
}

TEST_CASE("A single epoch is drawn as a visible marker in the middle of the x range",
          "[io][plots]") {
  auto h = history(1);
  h[0].epoch = 7;
  const Image img = tsnn::learningCurves(h);
  const auto panels = tsnn::detail::learningCurvePanels(h, img.width, img.height);
  const auto& loss = panels[0].map;
  const int x = loss.px(7);
  CHECK(std::abs(x - (loss.rect.left + loss.rect.right) / 2) <= 1);
  CHECK(img.at(x, loss.py(h[0].trainLoss)) == tsnn::kPlotTrainColor);
  CHECK(pixelsOf(img, tsnn::kPlotTrainColor, loss.rect).size() >= 9);
  CHECK(pixelsOf(img, tsnn::kPlotTestColor, panels[1].map.rect).size() >= 9);
}

TEST_CASE("Markers show every epoch of a short run and lone values of a long one", "[io][plots]") {
  // Flat curves: a 2-pixel line covers rows py and py + 1, so a coloured pixel 3 rows above a
  // point can only come from its 7-pixel marker.
  const auto flatRun = [](int n) {
    auto h = history(n);
    for (auto& r : h) {
      r.trainLoss = 1.0;
      r.testAccuracy = 0.5;
    }
    return h;
  };
  const auto markerAt = [](const Image& img, const tsnn::detail::PlotMapping& map, double e,
                           double v, Rgb c) { return img.at(map.px(e), map.py(v) - 3) == c; };

  const auto shortRun = flatRun(30);
  const Image a = tsnn::learningCurves(shortRun);
  const auto pa = tsnn::detail::learningCurvePanels(shortRun, a.width, a.height);
  for (int e : {1, 15, 30}) CHECK(markerAt(a, pa[0].map, e, 1.0, tsnn::kPlotTrainColor));

  auto longRun = flatRun(40);
  longRun[18].testAccuracy = kNaN;  // epochs 19 and 21: epoch 20 has no neighbour
  longRun[20].testAccuracy = kNaN;
  const Image b = tsnn::learningCurves(longRun);
  const auto pb = tsnn::detail::learningCurvePanels(longRun, b.width, b.height);
  CHECK_FALSE(markerAt(b, pb[0].map, 15, 1.0, tsnn::kPlotTrainColor));  // too many to mark
  CHECK(markerAt(b, pb[1].map, 20, 50.0, tsnn::kPlotTestColor));        // lone value marked
  CHECK(b.at(pb[1].map.px(20), pb[1].map.py(50.0)) == tsnn::kPlotTestColor);
}

TEST_CASE("Constant series become flat lines well inside their plot", "[io][plots]") {
  const double value = GENERATE(0.0, 0.5, 1e-12, 1234.5);
  auto h = history(10);
  for (auto& r : h) {
    r.trainLoss = value;
    r.trainAccuracy = 1.0;
    r.testAccuracy = 1.0;
  }
  Image img;
  REQUIRE_NOTHROW(img = tsnn::learningCurves(h));
  const auto panels = tsnn::detail::learningCurvePanels(h, img.width, img.height);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& r = panels[i].map.rect;
    const Rgb c = i == 0 ? tsnn::kPlotTrainColor : tsnn::kPlotTestColor;
    const auto px = pixelsOf(img, c, r);
    REQUIRE(px.size() > 300);
    const int quarter = (r.bottom - r.top) / 4;
    const auto [lo, hi] = std::minmax_element(
        px.begin(), px.end(), [](const Pixel& a, const Pixel& b) { return a.y < b.y; });
    CHECK(hi->y - lo->y <= 6);  // marker height, no slope
    CHECK(lo->y > r.top + quarter);
    CHECK(hi->y < r.bottom - quarter);
  }
}

TEST_CASE("learningCurves rejects an empty history and unusable sizes", "[io][plots]") {
  CHECK_THROWS_AS(tsnn::learningCurves({}), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::learningCurves({}),
                    Catch::StartsWith("tsnn: learningCurves()") && Catch::Contains("empty"));
  CHECK_THROWS_AS(tsnn::learningCurves(history(3), 399, 400), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::learningCurves(history(3), 300, 100), Catch::Contains("300 x 100"));
  CHECK_THROWS_AS(tsnn::learningCurves(history(3), 960, 199), tsnn::InvalidArgument);
  // Non-finite losses and accuracies are skipped, never thrown on.
  auto h = history(4);
  h[1].trainLoss = std::numeric_limits<double>::infinity();
  h[2].trainAccuracy = kNaN;
  CHECK_NOTHROW(tsnn::learningCurves(h));
  for (auto& r : h) r.trainLoss = kNaN;
  CHECK_NOTHROW(tsnn::learningCurves(h));
}

TEST_CASE("writeLearningCurves writes the PNG of learningCurves", "[io][plots]") {
  TempDir dir;
  const std::string path = dir.file("curves.png");
  tsnn::writeLearningCurves(path, history(5));
  CHECK(readBytes(path) == tsnn::encodePng(tsnn::learningCurves(history(5))));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK_THROWS_AS(tsnn::writeLearningCurves(dir.file("no/dir/c.png"), history(5)), tsnn::IoError);
  CHECK_THROWS_AS(tsnn::writeLearningCurves(dir.file("empty.png"), {}), tsnn::InvalidArgument);
  CHECK_FALSE(fs::exists(dir.file("empty.png")));
}

TEST_CASE("viridis runs from dark purple to yellow, brighter with t, clamped outside [0, 1]",
          "[io][plots]") {
  CHECK(tsnn::viridis(0) == Rgb{68, 1, 84});
  CHECK(tsnn::viridis(1) == Rgb{253, 231, 37});
  CHECK(tsnn::viridis(0.5) == Rgb{33, 145, 140});
  CHECK(tsnn::viridis(-3) == tsnn::viridis(0));
  CHECK(tsnn::viridis(7) == tsnn::viridis(1));
  CHECK(tsnn::viridis(kNaN) == tsnn::viridis(0));
  double previous = -1;
  for (int i = 0; i <= 1000; ++i) {
    const double l = luma(tsnn::viridis(i / 1000.0));
    INFO("t = " << i / 1000.0);
    CHECK(l >= previous - 0.5);  // byte rounding may wobble by less than one step
    previous = l;
  }
  CHECK(luma(tsnn::viridis(1)) - luma(tsnn::viridis(0)) > 150);
}

TEST_CASE("Heatmap cells take the colour of their count, the maximum the top colour",
          "[io][plots]") {
  const int channels = GENERATE(1, 3);
  const int h = 5;
  const int w = 7;
  const int scale = GENERATE(1, 4, 8);
  std::vector<long long> counts(static_cast<std::size_t>(channels * h * w));
  std::mt19937 rng(testSeed());
  std::uniform_int_distribution<long long> dist(3, 500);
  for (auto& v : counts) v = dist(rng);
  const long long lo = *std::min_element(counts.begin(), counts.end());
  const long long hi = *std::max_element(counts.begin(), counts.end());

  const Image img = tsnn::connectivityHeatmap(counts, channels, h, w, scale);
  const auto layout =
      tsnn::detail::heatmapLayout(channels, h, w, scale, std::to_string(lo), std::to_string(hi));
  CHECK(img.width == layout.imageWidth);
  CHECK(img.height == layout.imageHeight);
  CHECK(layout.channelStride > w * scale);  // panels side by side, not overlapping
  CHECK(layout.bar.left >
        layout.cellsLeft + channels * layout.channelStride - layout.channelStride + w * scale);

  // Every pixel of every cell, with the input in CHW order.
  std::size_t wrong = 0;
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const long long v = counts[static_cast<std::size_t>((c * h + y) * w + x)];
        const Rgb expected = tsnn::viridis(static_cast<double>(v - lo) / (hi - lo));
        for (int dy = 0; dy < scale; ++dy)
          for (int dx = 0; dx < scale; ++dx)
            wrong += img.at(layout.cellsLeft + c * layout.channelStride + x * scale + dx,
                            layout.cellsTop + y * scale + dy) != expected;
      }
  CHECK(wrong == 0);

  const auto cellColour = [&](std::size_t i) {
    const int c = static_cast<int>(i) / (h * w);
    const int y = static_cast<int>(i) / w % h;
    const int x = static_cast<int>(i) % w;
    return img.at(layout.cellsLeft + c * layout.channelStride + x * scale,
                  layout.cellsTop + y * scale);
  };
  const auto argmax =
      static_cast<std::size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  const auto argmin =
      static_cast<std::size_t>(std::min_element(counts.begin(), counts.end()) - counts.begin());
  CHECK(cellColour(argmax) == Rgb{253, 231, 37});
  CHECK(cellColour(argmin) == Rgb{68, 1, 84});
  // Brightness is ordered like the counts.
  std::vector<std::size_t> order(counts.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return counts[a] < counts[b]; });
  for (std::size_t k = 1; k < order.size(); ++k)
    CHECK(luma(cellColour(order[k])) >= luma(cellColour(order[k - 1])) - 0.5);

  // The colour bar: the maximum's colour on top, the minimum's at the bottom.
  CHECK(img.at(layout.bar.left, layout.bar.top) == tsnn::viridis(1));
  CHECK(img.at(layout.bar.right, layout.bar.bottom) == tsnn::viridis(0));
  // Its labels are drawn right of it.
  const tsnn::detail::PixelRect labels{layout.labelLeft, layout.bar.top, img.width - 1,
                                       layout.bar.bottom};
  CHECK(pixelsOf(img, tsnn::detail::kPlotInk, labels).size() > 10);
}

TEST_CASE("A heatmap of equal counts is uniform and one of different counts is not",
          "[io][plots]") {
  const std::vector<long long> flat(2 * 3 * 4, 17);
  Image img;
  REQUIRE_NOTHROW(img = tsnn::connectivityHeatmap(flat, 2, 3, 4, 5));
  const auto layout = tsnn::detail::heatmapLayout(2, 3, 4, 5, "17", "17");
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x)
        CHECK(img.at(layout.cellsLeft + c * layout.channelStride + x * 5,
                     layout.cellsTop + y * 5) == tsnn::viridis(0.5));
  auto bumped = flat;
  bumped[5] = 18;
  const Image other = tsnn::connectivityHeatmap(bumped, 2, 3, 4, 5);
  CHECK(other.rgb != img.rgb);
}

TEST_CASE("connectivityHeatmap checks the shape, the scale and the counts", "[io][plots]") {
  const std::vector<long long> counts(3 * 4 * 4, 1);
  CHECK_THROWS_AS(tsnn::connectivityHeatmap(counts, 3, 4, 5), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::connectivityHeatmap(counts, 3, 4, 5),
                    Catch::StartsWith("tsnn: connectivityHeatmap()") && Catch::Contains("48") &&
                        Catch::Contains("expected 60"));
  CHECK_THROWS_AS(tsnn::connectivityHeatmap(counts, 0, 4, 4), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::connectivityHeatmap({}, 1, 0, 0), tsnn::InvalidArgument);
  CHECK_THROWS_AS(tsnn::connectivityHeatmap(counts, 3, 4, 4, 0), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::connectivityHeatmap(counts, 3, 4, 4, 0), Catch::Contains("scale 0"));
  auto negative = counts;
  negative[9] = -2;
  CHECK_THROWS_AS(tsnn::connectivityHeatmap(negative, 3, 4, 4), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::connectivityHeatmap(negative, 3, 4, 4),
                    Catch::Contains("-2") && Catch::Contains("index 9"));
  const std::vector<long long> wide(3000, 1);
  CHECK_THROWS_AS(tsnn::connectivityHeatmap(wide, 1, 1, 3000, 8), tsnn::InvalidArgument);
  CHECK_NOTHROW(tsnn::connectivityHeatmap(counts, 3, 4, 4, 1));
}

TEST_CASE("writeConnectivityHeatmap writes the PNG of connectivityHeatmap", "[io][plots]") {
  TempDir dir;
  std::vector<long long> counts(28 * 28);
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = static_cast<long long>(i % 37);
  const std::string path = dir.file("heat.png");
  tsnn::writeConnectivityHeatmap(path, counts, 1, 28, 28);
  CHECK(readBytes(path) == tsnn::encodePng(tsnn::connectivityHeatmap(counts, 1, 28, 28)));
  CHECK_THROWS_AS(tsnn::writeConnectivityHeatmap(dir.file("x/y.png"), counts, 1, 28, 28),
                  tsnn::IoError);
}

TEMPLATE_TEST_CASE("outgoingConnections counts each input's connections like a dense count",
                   "[io][plots]", (tsnn::CsrMatrix<float, std::int32_t>),
                   (tsnn::CsrMatrix<double, std::int64_t>)) {
  using Matrix = TestType;
  using Index = typename Matrix::IndexType;
  using Scalar = typename Matrix::ScalarType;
  const int nOut = 23;
  const int nIn = 41;
  std::mt19937 rng(testSeed());
  std::bernoulli_distribution keep(0.3);
  // A random 0/1 mask, stored densely, and the CSR matrix of the same pattern.
  std::vector<std::vector<bool>> mask(nOut, std::vector<bool>(nIn));
  std::vector<Index> rowPtr = {0};
  std::vector<Index> colIdx;
  std::vector<Scalar> values;
  for (int i = 0; i < nOut; ++i) {
    for (int j = 0; j < nIn; ++j) {
      // Column 5 is never used; an input without connections must count 0.
      mask[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = j != 5 && keep(rng);
      if (mask[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]) {
        colIdx.push_back(static_cast<Index>(j));
        values.push_back(static_cast<Scalar>(0.5));
      }
    }
    rowPtr.push_back(static_cast<Index>(colIdx.size()));
  }
  const Matrix w(nOut, nIn, rowPtr, colIdx, values);

  const std::vector<long long> counts = tsnn::outgoingConnections(w);
  REQUIRE(counts.size() == static_cast<std::size_t>(nIn));
  long long sum = 0;
  for (int j = 0; j < nIn; ++j) {
    long long expected = 0;
    for (int i = 0; i < nOut; ++i)
      expected += mask[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] ? 1 : 0;
    INFO("input " << j);
    CHECK(counts[static_cast<std::size_t>(j)] == expected);
    sum += counts[static_cast<std::size_t>(j)];
  }
  CHECK(counts[5] == 0);
  CHECK(sum == static_cast<long long>(w.nonZeros()));

  // An empty matrix has no connections at all.
  CHECK(tsnn::outgoingConnections(Matrix(3, 4)) == std::vector<long long>(4, 0));
}
