#pragma once
// Running the example programs from tests: a run that captures exit status, standard output and
// standard error, and reading back the text files they write (scratch directories and whole-file
// reads are in support/files.hpp).

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/files.hpp"

namespace tsnn::test {

namespace fs = std::filesystem;

struct Run {
  int status;
  std::string out, err;
};

/// Runs `program args` with no input, stdout and stderr captured through files in \p dir.
inline Run runProgram(const std::string& program, const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  const std::string cmd = "\"" + program + "\" " + args + " >\"" + out.string() + "\" 2>\"" +
                          err.string() + "\" </dev/null";
  const int raw = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

/// The number after the last \p key in \p text ("final test accuracy 0.9133 ..."), or NaN.
inline double numberAfter(const std::string& text, const std::string& key) {
  const auto at = text.rfind(key);
  if (at == std::string::npos) return std::nan("");
  return std::stod(text.substr(at + key.size()));
}

/// The lines of a text file, without their line ends.
inline std::vector<std::string> readLines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// The comma-separated cells of \p line.
inline std::vector<std::string> splitCells(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
  return cells;
}

}  // namespace tsnn::test
