// Tests for tsnn/extras/scaling_plot.hpp: the decade axes and their labels, each point drawn at
// its logarithmic position in its panel, the refusals, and the PNG writer.

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "support/files.hpp"
#include "tsnn/extras/scaling_plot.hpp"

namespace fs = std::filesystem;
using tsnn::Image;
using tsnn::ScalingPoint;

namespace {

// The EPYC table's shape: widths 1k .. 2.5M, speeds falling, memory rising.
std::vector<ScalingPoint> table() {
  return {{1e3, 6.48e9, 234656.0 * 1024},
          {1e4, 5.68e9, 234692.0 * 1024},
          {1e5, 2.04e9, 974620.0 * 1024},
          {1e6, 1.80e9, 6202148.0 * 1024},
          {2.5e6, 1.42e9, 15269796.0 * 1024}};
}

}  // namespace

TEST_CASE("Decade axes span the powers of ten around the data, labelled in SI steps",
          "[extras][plots]") {
  const auto x = tsnn::detail::decadeAxis(1e3, 2.5e6);
  CHECK(x.lo == 1e3);
  CHECK(x.hi == 1e7);
  CHECK(x.labels == std::vector<std::string>{"1k", "10k", "100k", "1M", "10M"});
  REQUIRE(x.ticks.size() == 5);
  CHECK(x.ticks[3] == Approx(1e6).epsilon(1e-12));
  // Data within one decade still get a whole decade; exact powers are not widened.
  const auto y = tsnn::detail::decadeAxis(1.42e9, 6.48e9);
  CHECK(y.labels == std::vector<std::string>{"1G", "10G"});
  CHECK(tsnn::detail::decadeAxis(10, 10).labels == std::vector<std::string>{"10", "100"});
  CHECK(tsnn::detail::decadeAxis(0.22, 14.6).labels ==
        std::vector<std::string>{"0.1", "1", "10", "100"});
  CHECK(tsnn::detail::decadeLabel(-4) == "1e-4");
  CHECK(tsnn::detail::decadeLabel(12) == "1e12");
  CHECK(tsnn::detail::decadeLabel(11) == "100G");
}

TEST_CASE("scalingPlot draws each point at its logarithmic position in its panel",
          "[extras][plots]") {
  const auto points = table();
  const Image img = tsnn::scalingPlot(points);
  CHECK(img.width == 960);
  CHECK(img.height == 400);
  const auto panels = tsnn::detail::scalingPanels(points, 960, 400);
  const auto& speed = panels[0].map;
  const auto& memory = panels[1].map;
  REQUIRE(speed.logX);
  REQUIRE(memory.logY);
  // The speed panel's y axis: 1e9 to 1e10; a point at 10^9.5 sits half-way between the frame's
  // inset ends.
  CHECK(speed.y.lo == 1e9);
  CHECK(speed.y.hi == 1e10);
  const int mid = speed.py(std::sqrt(1e9 * 1e10));
  CHECK(std::abs(mid - (speed.py(1e9) + speed.py(1e10)) / 2) <= 1);
  for (const ScalingPoint& p : points) {
    INFO("width " << p.neuronsPerLayer);
    CHECK(img.at(speed.px(p.neuronsPerLayer), speed.py(p.connectionSamplesPerSecond)) ==
          tsnn::kPlotTrainColor);
    CHECK(img.at(memory.px(p.neuronsPerLayer), memory.py(p.peakResidentBytes / 1073741824.0)) ==
          tsnn::kPlotTestColor);
  }
  // Width 1e4 lies one decade right of 1e3: a quarter of the four-decade axis.
  const double quarter = (speed.px(1e7) - speed.px(1e3)) / 4.0;
  CHECK(std::abs(speed.px(1e4) - speed.px(1e3) - quarter) <= 1);
  // A faster run moves its marker up, not elsewhere.
  auto faster = points;
  faster[2].connectionSamplesPerSecond = 4e9;
  const Image img2 = tsnn::scalingPlot(faster);
  CHECK(img2.at(speed.px(1e5), speed.py(4e9)) == tsnn::kPlotTrainColor);
  CHECK(img.at(speed.px(1e5), speed.py(4e9)) != tsnn::kPlotTrainColor);
}

TEST_CASE("scalingPlot refuses what a logarithmic axis cannot show", "[extras][plots]") {
  CHECK_THROWS_WITH(tsnn::scalingPlot({}), Catch::StartsWith("tsnn: scalingPlot(): no points"));
  auto bad = table();
  bad[1].connectionSamplesPerSecond = 0;
  CHECK_THROWS_WITH(tsnn::scalingPlot(bad),
                    Catch::StartsWith("tsnn: scalingPlot(): point 1 has 0;"));
  bad = table();
  bad[4].peakResidentBytes = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(tsnn::scalingPlot(bad), Catch::Contains("point 4 has nan"));
  bad = table();
  bad[0].neuronsPerLayer = -5;
  CHECK_THROWS_AS(tsnn::scalingPlot(bad), tsnn::InvalidArgument);
  CHECK_THROWS_WITH(tsnn::scalingPlot(table(), 300, 400), Catch::Contains("figure size 300 x 400"));
}

TEST_CASE("writeScalingPlot writes the PNG of scalingPlot", "[extras][plots]") {
  tsnn::test::TempDir dir;
  const std::string path = dir.file("scaling.png");
  tsnn::writeScalingPlot(path, table());
  CHECK(tsnn::test::readBytes(path) == tsnn::encodePng(tsnn::scalingPlot(table())));
  CHECK_THROWS_AS(tsnn::writeScalingPlot(dir.file("no/dir/s.png"), table()), tsnn::IoError);
  CHECK_FALSE(fs::exists(dir.file("no/dir/s.png")));
}
