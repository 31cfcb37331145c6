// A downstream program using tsnn::extras: a PNG file, learning curves (in another translation
// unit) and a confusion matrix. Exits 0 when both files are PNG files.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "tsnn/extras/confusion.hpp"
#include "tsnn/extras/png.hpp"
#include "tsnn/extras/progress.hpp"

void writeCurves(const std::string& path);

namespace {

bool isPng(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return b.size() > 8 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : ".";
  tsnn::Image img(4, 3, tsnn::Rgb{10, 200, 30});
  tsnn::writePng(dir + "/image.png", img);
  writeCurves(dir + "/curves.png");
  tsnn::ConfusionMatrix cm(2);
  cm.add(0, 0);
  cm.add(1, 0);
  tsnn::ProgressBar bar(stderr, false);
  const bool ok = isPng(dir + "/image.png") && isPng(dir + "/curves.png") && cm.accuracy() == 0.5;
  std::printf("tsnn extras: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
