#pragma once
/// \file
/// \brief Loader for the LIBSVM / SVMlight sparse text format, into a dense Dataset.
///
/// Format, one sample per line:
///
///     <label> [qid:<int>] <index>:<value> <index>:<value> ... [# comment]
///
///   - tokens are separated by spaces or tabs; lines end with LF or CRLF;
///   - everything from '#' to the end of the line is a comment; lines that are blank or only a
///     comment are skipped;
///   - indices are 1-based integers, strictly increasing within a line; feature index k becomes
///     column k - 1; absent features are 0;
///   - values are finite decimal numbers (parsed with std::from_chars, locale independent);
///   - a qid:<int> token (SVMlight's ranking query id) is skipped: query ids mean nothing to a
///     classifier. It is accepted only directly after the label, where SVMlight puts it;
///   - labels are integers, written "3", "+1" or "3.0". When the set of labels in the file is
///     exactly {-1, +1} (the binary SVM convention) they are mapped to -1 -> 0 and +1 -> 1;
///     otherwise every label must be >= 0 and is used as the class index as it is, with
///     numClasses = max label + 1. (Files whose classes are numbered from 1, as several LIBSVM
///     multi-class sets are, therefore get an unused class 0.)
///
/// Every error message starts with "loadLibsvm(): '<path>' line L" (1-based, counting every
/// physical line) and quotes the offending token.

#include <Eigen/Core>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/data/csv.hpp"  // parseDecimal, shared with the CSV loader
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/file.hpp"

namespace tsnn::data {

/// \brief Largest feature index loadLibsvm accepts: 2^31 - 1.
inline constexpr long long kLibsvmMaxIndex = 2147483647LL;

/// \brief Loads a LIBSVM / SVMlight file (format in the file comment) as a dense dataset.
/// \tparam Scalar floating-point type of the features.
/// \param path file to read.
/// \param dim number of features d; 0 means the largest index that occurs in the file. A test
///   set whose last features happen to be all zero needs the training set's dim here.
/// \return N x d features (row i = the i-th non-blank line), labels mapped as described above,
///   numClasses = max mapped label + 1.
/// \throws InvalidArgument if dim < 0 or dim > kLibsvmMaxIndex.
/// \throws IoError if the file cannot be opened or read.
/// \throws FormatError naming the path, line and token if a label is not an integer (or is
///   negative outside the {-1, +1} convention, or beyond 2^31 - 2 in magnitude), a token is not
///   index:value, an index is not an integer in [1, kLibsvmMaxIndex], indices do not strictly
///   increase, an index exceeds a given dim, a value is not finite or overflows Scalar, or a qid
///   token is misplaced or malformed; also if there are no samples, or dim is 0 and no line has
///   a feature.
template <class Scalar = float>
Dataset<Scalar> loadLibsvm(const std::string& path, long long dim = 0) {
  using tsnn::detail::raise;
  constexpr const char* kCaller = "loadLibsvm()";
  if (dim < 0 || dim > kLibsvmMaxIndex) {
    raise<InvalidArgument>(kCaller, ": dim is ", dim, ", expected 0 (infer from the file) to ",
                           kLibsvmMaxIndex);
  }
  const std::string text = tsnn::readFile(path, kCaller);
  std::string_view rest(text);

  struct Entry {
    Eigen::Index row;
    Eigen::Index col;
    Scalar value;
  };
  std::vector<Entry> entries;
  std::vector<long long> rawLabels;
  long long maxIndex = 0;
  // The first negative label, reported only if the labels turn out not to be exactly {-1, +1}.
  std::size_t negLine = 0;
  std::string negToken;
  bool anyOther = false;  // a label other than -1 and +1

  const auto isSpace = [](char c) { return c == ' ' || c == '\t'; };

  for (std::size_t lineNo = 1; !rest.empty(); ++lineNo) {
    const std::size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = line.substr(0, line.find('#'));

    const auto row = static_cast<Eigen::Index>(rawLabels.size());
    std::size_t pos = 0;
    std::size_t tokenNo = 0;
    long long prevIndex = 0;
    for (;;) {
      while (pos < line.size() && isSpace(line[pos])) ++pos;
      if (pos >= line.size()) break;
      std::size_t stop = pos;
      while (stop < line.size() && !isSpace(line[stop])) ++stop;
      const std::string_view tok = line.substr(pos, stop - pos);
      pos = stop;
      const auto fail = [&](const auto&... what) {
        raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, ", token '", tok,
                           "': ", what...);
      };

      if (tokenNo++ == 0) {
        double v = 0.0;
        const auto r = tsnn::detail::parseDecimal(tok, v);
        if (r != tsnn::detail::NumberParse::kOk) {
          fail(tsnn::detail::describeNumberError(tok, r), " (expected an integer label)");
        }
        if (v != std::floor(v) || std::fabs(v) > 2147483646.0) {
          fail("the label is not an integer class index");
        }
        const auto label = static_cast<long long>(v);
        if (label < 0 && negLine == 0) {
          negLine = lineNo;
          negToken = std::string(tok);
        }
        if (label != -1 && label != 1) anyOther = true;
        rawLabels.push_back(label);
        continue;
      }

      const std::size_t colon = tok.find(':');
      if (colon == std::string_view::npos) fail("expected index:value");
      const std::string_view key = tok.substr(0, colon);
      const std::string_view val = tok.substr(colon + 1);
      if (key == "qid") {
        long long qid = 0;
        const auto r = std::from_chars(val.data(), val.data() + val.size(), qid);
        if (r.ec != std::errc() || r.ptr != val.data() + val.size()) {
          fail("the query id is not an integer");
        }
        if (tokenNo != 2) fail("qid must directly follow the label");
        continue;
      }
      long long index = 0;
      const auto r = std::from_chars(key.data(), key.data() + key.size(), index);
      if (r.ptr != key.data() + key.size() || key.empty() ||
          (r.ec != std::errc() && r.ec != std::errc::result_out_of_range)) {
        fail("the index is not an integer");
      }
      if (r.ec == std::errc::result_out_of_range || index < 1 || index > kLibsvmMaxIndex) {
        fail("index ", key, " is outside [1, ", kLibsvmMaxIndex, "] (indices are 1-based)");
      }
      if (index <= prevIndex) {
        fail("index ", index, " does not follow the previous index ", prevIndex,
             " (indices must strictly increase)");
      }
      if (dim > 0 && index > dim) fail("index ", index, " exceeds the given dim ", dim);
      prevIndex = index;
      double v = 0.0;
      const auto pr = tsnn::detail::parseDecimal(val, v);
      if (pr != tsnn::detail::NumberParse::kOk) fail(tsnn::detail::describeNumberError(val, pr));
      const auto s = static_cast<Scalar>(v);
      if (!std::isfinite(s)) fail("'", val, "' overflows the feature type");
      maxIndex = std::max(maxIndex, index);
      entries.push_back({row, static_cast<Eigen::Index>(index - 1), s});
    }
  }

  if (rawLabels.empty()) raise<FormatError>(kCaller, ": '", path, "' has no samples");
  const long long d = dim > 0 ? dim : maxIndex;
  if (d == 0) {
    raise<FormatError>(kCaller, ": '", path,
                       "' has no features on any line; pass dim to load it anyway");
  }
  const auto n = static_cast<Eigen::Index>(rawLabels.size());
  if (n > std::numeric_limits<Eigen::Index>::max() / d) {
    raise<FormatError>(kCaller, ": '", path, "': ", n, " samples x ", d,
                       " features is too large for a dense matrix");
  }

  // -1/+1 labels are the binary SVM convention; map them only when nothing else occurs, so that
  // a multi-class file with a stray -1 is reported rather than silently merged.
  const bool svmBinary = !anyOther && negLine != 0 &&
                         std::find(rawLabels.begin(), rawLabels.end(), 1LL) != rawLabels.end();
  if (negLine != 0 && !svmBinary) {
    raise<FormatError>(kCaller, ": '", path, "' line ", negLine, ", token '", negToken,
                       "': negative label; labels must be >= 0 (-1 and +1 are mapped to 0 and 1 "
                       "only when they are the only two labels in the file)");
  }

  Dataset<Scalar> ds;
  ds.labels.resize(rawLabels.size());
  long long maxLabel = 0;
  for (std::size_t i = 0; i < rawLabels.size(); ++i) {
    const long long y = svmBinary ? (rawLabels[i] + 1) / 2 : rawLabels[i];
    ds.labels[i] = static_cast<std::int32_t>(y);
    maxLabel = std::max(maxLabel, y);
  }
  ds.numClasses = static_cast<int>(maxLabel + 1);
  ds.features.setZero(n, static_cast<Eigen::Index>(d));
  for (const Entry& e : entries) ds.features(e.row, e.col) = e.value;
  return ds;
}

}  // namespace tsnn::data
