#pragma once
// A small strict command-line parser shared by the examples: every flag is declared with a help
// text and a default, values are parsed completely (no trailing junk, finite numbers), and any
// unknown flag or bad value is an error that names the flag and the value.

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Parser {
 public:
  explicit Parser(std::string program, std::string about)
      : m_program(std::move(program)), m_about(std::move(about)) {}

  /// Declares --name taking a value (shown as META in the help).
  void option(const std::string& name, const std::string& meta, const std::string& def,
              const std::string& help) {
    m_specs.push_back({name, meta, def, help, true});
    m_values[name] = def;
  }
  /// Declares a boolean --name that takes no value.
  void flag(const std::string& name, const std::string& help) {
    m_specs.push_back({name, "", "", help, false});
  }

  /// Parses argv. Returns false if --help was given (the help has been printed to stdout).
  bool parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        printHelp();
        return false;
      }
      if (arg.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + arg + "'");
      std::string name = arg.substr(2), value;
      bool hasValue = false;
      const auto eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        hasValue = true;
      }
      const Spec* spec = find(name);
      if (!spec) throw UsageError("unknown flag '--" + name + "' (see --help)");
      if (!spec->takesValue) {
        if (hasValue) throw UsageError("flag '--" + name + "' takes no value");
        m_set[name] = true;
        continue;
      }
      if (!hasValue) {
        if (i + 1 >= argc) throw UsageError("flag '--" + name + "' needs a value");
        value = argv[++i];
      }
      m_values[name] = value;
      m_set[name] = true;
    }
    return true;
  }

  bool given(const std::string& name) const { return m_set.count(name) > 0; }
  std::string str(const std::string& name) const { return m_values.at(name); }

  long long integer(const std::string& name, long long lo, long long hi) const {
    const std::string v = str(name);
    errno = 0;
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno == ERANGE)
      throw UsageError("--" + name + ": '" + v + "' is not an integer");
    if (x < lo || x > hi)
      throw UsageError("--" + name + ": " + v + " is outside [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "]");
    return x;
  }

  /// A finite number in [lo, hi] (or [lo, hi) when hiOpen).
  double real(const std::string& name, double lo, double hi, bool hiOpen = false) const {
    const std::string v = str(name);
    errno = 0;
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x))
      throw UsageError("--" + name + ": '" + v + "' is not a finite number");
    if (x < lo || x > hi || (hiOpen && x == hi)) {
      std::ostringstream os;
      os << "--" << name << ": " << v << " is outside [" << lo << ", " << hi << (hiOpen ? ")" : "]");
      throw UsageError(os.str());
    }
    return x;
  }

  /// A comma-separated list of integers, each in [lo, hi].
  std::vector<long long> integers(const std::string& name, long long lo, long long hi) const {
    std::vector<long long> out;
    std::stringstream ss(str(name));
    std::string item;
    while (std::getline(ss, item, ',')) {
      errno = 0;
      char* end = nullptr;
      const long long x = std::strtoll(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || errno == ERANGE)
        throw UsageError("--" + name + ": '" + item + "' is not an integer");
      if (x < lo || x > hi)
        throw UsageError("--" + name + ": " + item + " is outside [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "]");
      out.push_back(x);
    }
    if (out.empty()) throw UsageError("--" + name + ": empty list");
    return out;
  }

  void printHelp() const {
    std::printf("usage: %s [flags]\n\n%s\n\nflags:\n", m_program.c_str(), m_about.c_str());
    for (const auto& s : m_specs) {
      std::string left = "  --" + s.name + (s.takesValue ? " " + s.meta : "");
      if (left.size() < 28) left.resize(28, ' ');
      std::printf("%s %s", left.c_str(), s.help.c_str());
      if (s.takesValue && !s.def.empty()) std::printf(" (default: %s)", s.def.c_str());
      std::printf("\n");
    }
    std::printf("  --help                     show this help\n");
  }

 private:
  struct Spec {
    std::string name, meta, def, help;
    bool takesValue;
  };
  const Spec* find(const std::string& name) const {
    for (const auto& s : m_specs)
      if (s.name == name) return &s;
    return nullptr;
  }
  std::string m_program, m_about;
  std::vector<Spec> m_specs;
  std::map<std::string, std::string> m_values;
  std::map<std::string, bool> m_set;
};

}  // namespace cli
