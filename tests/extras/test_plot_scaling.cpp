// End-to-end runs of the plot_scaling example on tables the test writes (here, beside the
// figure's own tests, because both need the extras).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/files.hpp"
#include "support/programs.hpp"
#include "tsnn/extras/png.hpp"
#include "tsnn/extras/scaling_plot.hpp"

namespace fs = std::filesystem;

#ifdef TSNN_PLOT_SCALING

namespace {

tsnn::test::Run runPlot(const std::string& args, const fs::path& dir) {
  return tsnn::test::runProgram(TSNN_PLOT_SCALING, args, dir);
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

constexpr const char* kHeader =
    "neurons_per_layer,connection_samples_per_second,peak_resident_kb\n";

}  // namespace

TEST_CASE("plot_scaling draws a table as scalingPlot does, kilobytes read as 1024 bytes",
          "[examples][plots]") {
  tsnn::test::TempDir tmp;
  const fs::path csv = tmp.path() / "t.csv", png = tmp.path() / "t.png";
  write(csv, std::string(kHeader) + "1000,6.48e9,234656\n1000000,1.80e9,6202148\n\n");
  const auto r = runPlot("--csv " + csv.string() + " --out " + png.string(), tmp.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("2 points") != std::string::npos);
  const std::vector<tsnn::ScalingPoint> expected{{1000, 6.48e9, 234656.0 * 1024},
                                                 {1e6, 1.80e9, 6202148.0 * 1024}};
  CHECK(tsnn::test::readBytes(png.string()) == tsnn::encodePng(tsnn::scalingPlot(expected)));
}

TEST_CASE("plot_scaling names the file, line and field of a bad table", "[examples][plots]") {
  tsnn::test::TempDir tmp;
  const fs::path csv = tmp.path() / "bad.csv", png = tmp.path() / "out.png";
  const std::string args = "--csv " + csv.string() + " --out " + png.string();
  write(csv, "width,speed,memory\n1000,1e9,100\n");
  auto r = runPlot(args, tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("the first line must be") != std::string::npos);
  write(csv, std::string(kHeader) + "1000,1e9,100\n1e4,fast,100\n");
  r = runPlot(args, tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("line 3 column 2: 'fast' is not a number") != std::string::npos);
  write(csv, std::string(kHeader) + "1000,1e9\n");
  r = runPlot(args, tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("line 2 has 2 fields, expected 3") != std::string::npos);
  write(csv, std::string(kHeader) + "1000,0,100\n");
  r = runPlot(args, tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("must be positive") != std::string::npos);
  CHECK_FALSE(fs::exists(png));
  r = runPlot("--csv " + (tmp.path() / "missing.csv").string() + " --out " + png.string(),
              tmp.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("cannot open") != std::string::npos);
  r = runPlot("--out " + png.string(), tmp.path());
  CHECK(r.status == 2);
}

#else

TEST_CASE("plot_scaling end-to-end tests need the examples", "[examples]") {
  WARN("built with TSNN_BUILD_EXAMPLES=OFF or without the extras: the example is not run");
}

#endif
