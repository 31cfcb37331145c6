#pragma once
// The examples' command lines, on CLI11: the validators behind every range check (their messages
// name the value; CLI11 puts the flag in front), a strict reader for the TOML files of --config,
// and the one place that turns a parse into an exit status: 0 after --help, 2 for a bad flag,
// value or settings file. Values are converted here, not by CLI11: CLI11 reads integers with
// strtoll base 0 (so "010" would be 8) and reals with strtold (rounding twice on the way to a
// double), while these programs promise that a flag means the decimal number it spells.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tsnn/core/errors.hpp"

namespace example {

/// A bad flag, value or combination of flags found after parsing: one line, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {

// The whole of \p text as a base-10 integer; false for anything else (empty, junk, overflow).
inline bool parseDecimal(const std::string& text, long long& out) {
  errno = 0;
  char* end = nullptr;
  out = std::strtoll(text.c_str(), &end, 10);
  return !text.empty() && *end == '\0' && errno != ERANGE;
}

// The whole of \p text as a finite double (strtod's syntax); false for anything else.
inline bool parseFinite(const std::string& text, double& out) {
  errno = 0;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && *end == '\0' && errno != ERANGE && std::isfinite(out);
}

}  // namespace detail

/// Text of a value a validator has accepted, as the program's settings hold it.
inline double toReal(const std::string& text) { return std::strtod(text.c_str(), nullptr); }
inline long long toInteger(const std::string& text) {
  return std::strtoll(text.c_str(), nullptr, 10);
}

/// The shortest text that strtod reads back as \p x ("0.01", not "0.01000000000000000021").
inline std::string shortestText(double x) {
  char buf[40];
  // Whole numbers as integers ("20", not "2e+01"), which %g would give for two digits.
  if (x == std::floor(x) && std::abs(x) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", x);
    return buf;
  }
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

/// A base-10 integer (optional sign, nothing else), rewritten in canonical form ("+010" -> "10")
/// so that a CLI::Range after it, which reads with base 0, sees the number the user wrote.
inline CLI::Validator decimalInteger() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        long long x;
        if (!detail::parseDecimal(text, x)) return "'" + text + "' is not an integer";
        text = std::to_string(x);
        return {};
      },
      "");
}

/// A finite number in [lo, hi], or [lo, hi) when \p hiOpen.
inline CLI::Validator realIn(double lo, double hi, bool hiOpen = false) {
  return CLI::Validator(
      [lo, hi, hiOpen](std::string& text) -> std::string {
        double x;
        if (!detail::parseFinite(text, x)) return "'" + text + "' is not a finite number";
        if (x < lo || x > hi || (hiOpen && x == hi)) {
          std::ostringstream os;
          os << text << " is outside [" << lo << ", " << hi << (hiOpen ? ")" : "]");
          return os.str();
        }
        return {};
      },
      "");
}

/// A comma-separated list of one or more integers, each in [lo, hi].
inline CLI::Validator integerList(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        std::stringstream ss(text);
        std::string item;
        int count = 0;
        // getline drops a trailing empty item ("3,"), so count the separators too.
        const auto commas = static_cast<int>(std::count(text.begin(), text.end(), ','));
        while (std::getline(ss, item, ',')) {
          long long x;
          if (!detail::parseDecimal(item, x))
            return "item '" + item + "' of " + text + " is not an integer";
          if (x < lo || x > hi)
            return "item " + item + " of " + text + " is outside [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]";
          ++count;
        }
        if (count == 0) return "empty list";
        if (count != commas + 1) return text + " has an empty item";
        return {};
      },
      "");
}

/// The list as numbers (the text has passed integerList).
inline std::vector<long long> toIntegers(const std::string& text) {
  std::vector<long long> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(toInteger(item));
  return out;
}

/// The names that \p parse accepts (a library parser that throws tsnn::InvalidArgument for any
/// other), so that the library stays the one list of them; \p names is for the message.
inline CLI::Validator acceptedBy(std::function<void(const std::string&)> parse, std::string names) {
  return CLI::Validator(
      [parse, names](std::string& text) -> std::string {
        try {
          parse(text);
          return {};
        } catch (const tsnn::InvalidArgument&) {
          return "'" + text + "' is not one of " + names;
        }
      },
      "");
}

/// CLI11's TOML reader, made strict: a settings file that says something this program would
/// not do is an error, not a silent default. Beyond CLI11's own checks (unknown keys, with
/// allow_config_extras(false)), it refuses sections, a key given twice, and a flag that is
/// neither true nor false. A TOML array (hidden = [64, 64]) reads as the comma list that the
/// command line takes; a flag set to false is dropped, since leaving a flag out is how the
/// command line says false (flags take no value there: --nesterov=yes is an error). CLI11 merges
/// a key repeated on the next line into an array, so that case fails as a bad value instead.
class StrictToml : public CLI::ConfigTOML {
 public:
  explicit StrictToml(const CLI::App* app) : m_app(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> out;
    std::set<std::string> seen;
    for (CLI::ConfigItem& item : CLI::ConfigTOML::from_config(input)) {
      if (!item.parents.empty())
        throw CLI::ConfigError("[" + item.parents.front() + "]: sections are not settings");
      if (!seen.insert(item.name).second) throw CLI::ConfigError(item.name + ": given twice");
      if (item.inputs.size() > 1) {
        std::string joined;
        for (const auto& v : item.inputs) joined += (joined.empty() ? "" : ",") + v;
        item.inputs = {joined};
      }
      const CLI::Option* opt = m_app->get_option_no_throw("--" + item.name);
      if (opt && opt->get_expected_min() == 0) {
        const std::string v = item.inputs.empty() ? "" : item.inputs.front();
        if (v == "false") continue;
        if (v != "true")
          throw CLI::ConfigError(item.name + ": '" + v + "' is neither true nor false");
      }
      out.push_back(std::move(item));
    }
    return out;
  }

 private:
  const CLI::App* m_app;
};

/// Gives \p app the examples' conventions; call it before adding options. A flag given twice
/// takes its last value, as the examples always did; --help and -h print to stdout and are not
/// settings; --config, where a program declares it, reads TOML strictly (StrictToml).
inline void prepareApp(CLI::App& app) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.config_formatter(std::make_shared<StrictToml>(&app));
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.get_help_ptr()->configurable(false);
}

/// Declares --name META with text default \p def (shown by --help, written by --write-config);
/// once its validators accept a value, \p store puts it into the program's settings. \p store is
/// applied to \p def here, so the settings hold the default until the flag is given. An empty
/// default is written to a settings file as "".
inline CLI::Option* addValue(CLI::App& app, const std::string& name, const std::string& meta,
                             const std::string& def, const std::string& help,
                             const std::function<void(const std::string&)>& store) {
  store(def);
  CLI::Option* opt = app.add_option_function<std::string>(name, store, help);
  opt->type_name(meta);
  if (def.empty())
    opt->run_callback_for_default();
  else
    opt->default_str(def);
  return opt;
}

/// Declares --name META, an integer in [lo, hi] (a decimal integer, checked by CLI::Range) with
/// text default \p def, stored into \p target.
template <class Int>
CLI::Option* addInteger(CLI::App& app, const std::string& name, const std::string& meta,
                        Int& target, const std::string& def, long long lo, long long hi,
                        const std::string& help) {
  return addValue(app, name, meta, def, help,
                  [&target](const std::string& v) { target = static_cast<Int>(toInteger(v)); })
      ->transform(decimalInteger())
      ->check(CLI::Range(lo, hi).description(""));
}

/// Declares --name META, a finite real in [lo, hi] (or [lo, hi) when \p hiOpen) with text
/// default \p def, stored into \p target.
inline CLI::Option* addReal(CLI::App& app, const std::string& name, const std::string& meta,
                            double& target, const std::string& def, double lo, double hi,
                            bool hiOpen, const std::string& help) {
  return addValue(app, name, meta, def, help,
                  [&target](const std::string& v) { target = toReal(v); })
      ->check(realIn(lo, hi, hiOpen));
}

/// The text an option has after parsing: its (last) value, else its default.
inline std::string optionText(const CLI::App& app, const std::string& name) {
  const CLI::Option* opt = app.get_option(name);
  return opt->count() > 0 ? opt->reduced_results().back() : opt->get_default_str();
}

/// Parses \p argc / \p argv into \p app, whose options \p declare adds and binds to \p settings.
/// Returns -1 when the program should go on, else its exit status: 0 after --help (printed to
/// stdout), 2 after a bad flag, value or settings file (one line "program: message" on stderr).
/// A settings file given with --config is also parsed alone, by a fresh app: so every key in it
/// is checked, also one that a flag overrides, and its errors are reported with the file's name
/// (CLI11's messages name the key but not the file it came from).
template <class Settings, class Declare>
int parseCommandLine(CLI::App& app, Settings& settings, const Declare& declare, int argc,
                     char** argv) {
  prepareApp(app);
  declare(app, settings);
  auto fail = [&](std::string message) {
    for (char& c : message)
      if (c == '\n') c = ' ';
    std::fprintf(stderr, "%s: %s\n", app.get_name().c_str(), message.c_str());
    return 2;
  };
  std::string error;
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    error = e.what();
  }
  const CLI::Option* config = app.get_config_ptr();
  if (config && config->count() > 0) {
    const std::string file = config->reduced_results().back();
    std::ifstream in(file);
    if (in) {  // else CLI11's error names the file
      CLI::App probe(app.get_description(), app.get_name());
      Settings scratch;
      prepareApp(probe);
      declare(probe, scratch);
      try {
        probe.parse_from_stream(in);
      } catch (const CLI::ParseError& e) {
        return fail(file + ": " + e.what());
      }
    }
  }
  return error.empty() ? -1 : fail(error);
}

}  // namespace example
