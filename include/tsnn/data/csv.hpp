#pragma once
/// \file
/// \brief Loader for labelled numeric CSV files (one sample per line, one column holding the
/// class label, every other column a feature).
///
/// Accepted format (a subset of RFC 4180, as written by pandas, R, numpy.savetxt and spreadsheets):
///   - fields are separated by CsvOptions::delimiter (',' by default);
///   - lines end with LF or CRLF; a UTF-8 byte order mark at the start of the file is ignored;
///   - lines that are empty or hold only spaces and tabs are skipped wherever they occur (as
///     pandas.read_csv does by default), so trailing blank lines are harmless;
///   - spaces and tabs around a field are ignored (unless the delimiter is one of them);
///   - a field may be enclosed in double quotes, inside which the delimiter is literal and "" is
///     one quote character (R's write.csv quotes header names). A quoted field must end on the
///     same line: line breaks inside quotes are not supported and are reported as an
///     unterminated quote. A quote inside an unquoted field, or text after a closing quote, is a
///     FormatError;
///   - with CsvOptions::header (the default) the first non-blank line names the columns; there is
///     no auto-detection, because a header of numeric names would be indistinguishable from data;
///   - every row has the same number of fields as the first row (header or data);
///   - every feature field is a finite decimal number ("3", "-2.5", "1e-3", "+4", ".5"), parsed
///     with std::from_chars, so the result does not depend on the C locale. Empty fields
///     (missing values), "nan", "inf", hexadecimal and magnitudes outside the range of double are
///     rejected, as is a value that is finite in double but overflows Scalar;
///   - the label field is a non-negative integer (an integral value written as "3.0" is
///     accepted); numClasses is the largest label + 1, so labels should be 0-based.
///
/// Every error message starts with "loadCsv(): '<path>' line L, column C" (1-based, counting
/// physical lines including the header and blank lines), so the offending cell can be found in
/// an editor.

#include <Eigen/Core>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tsnn/core/errors.hpp"
#include "tsnn/data/dataset.hpp"
#include "tsnn/io/file.hpp"

namespace tsnn::data {

/// \brief How loadCsv reads a file.
struct CsvOptions {
  /// Field separator. Must not be '"', '\r' or '\n'.
  char delimiter = ',';
  /// True when the first non-blank line holds column names rather than data. Not auto-detected.
  bool header = true;
  /// Name of the label column, looked up in the header (requires header = true). When empty, the
  /// column is chosen by labelIndex instead.
  std::string labelColumn;
  /// 0-based index of the label column, used when labelColumn is empty. Negative values count
  /// from the end: -1 (the default) is the last column, -2 the one before it.
  int labelIndex = -1;
};

}  // namespace tsnn::data

namespace tsnn::detail {

/// Outcome of parseDecimal.
enum class NumberParse { kOk, kNotANumber, kNotFinite, kOutOfRange };

/// Parses all of \p s as a decimal floating-point number with std::from_chars (locale
/// independent), also accepting one leading '+'. Hexadecimal is not accepted; "nan" and "inf"
/// parse but are reported as kNotFinite; magnitudes beyond double give kOutOfRange.
inline NumberParse parseDecimal(std::string_view s, double& value) {
  if (!s.empty() && s.front() == '+') {
    s.remove_prefix(1);
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) return NumberParse::kNotANumber;
  }
  if (s.empty()) return NumberParse::kNotANumber;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, value, std::chars_format::general);
  if (r.ptr != end) return NumberParse::kNotANumber;
  if (r.ec == std::errc::result_out_of_range) return NumberParse::kOutOfRange;
  if (r.ec != std::errc()) return NumberParse::kNotANumber;
  if (!std::isfinite(value)) return NumberParse::kNotFinite;
  return NumberParse::kOk;
}

/// Why parseDecimal refused \p s, as the end of an error message.
inline std::string describeNumberError(std::string_view s, NumberParse r) {
  std::string out = "'" + std::string(s) + "' ";
  switch (r) {
    case NumberParse::kNotFinite:
      return out + "is not a finite number";
    case NumberParse::kOutOfRange:
      return out + "is outside the range of double";
    default:
      return s.empty() ? std::string("the field is empty, expected a number")
                       : out + "is not a number";
  }
}

/// True for the characters trimmed around fields: space and tab, unless it is the delimiter.
inline bool csvBlank(char c, char delimiter) { return (c == ' ' || c == '\t') && c != delimiter; }

/// Splits one line (without its line end) into fields, undoing the quoting described in csv.hpp.
/// On failure returns false and sets \p error and \p column (1-based field number).
inline bool splitCsvLine(std::string_view line, char delim, std::vector<std::string>& fields,
                         std::size_t& count, std::string& error, std::size_t& column) {
  count = 0;
  std::size_t i = 0;
  const std::size_t n = line.size();
  for (;;) {
    if (count == fields.size()) fields.emplace_back();
    std::string& field = fields[count];
    field.clear();
    ++count;
    column = count;
    while (i < n && csvBlank(line[i], delim)) ++i;
    if (i < n && line[i] == '"') {
      ++i;
      for (;;) {
        if (i >= n) {
          error = "unterminated quoted field (quoted fields cannot contain line breaks)";
          return false;
        }
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += line[i++];
      }
      while (i < n && csvBlank(line[i], delim)) ++i;
      if (i < n && line[i] != delim) {
        error = "unexpected text after the closing quote of a quoted field";
        return false;
      }
    } else {
      const std::size_t start = i;
      while (i < n && line[i] != delim) {
        if (line[i] == '"') {
          error = "a quote inside an unquoted field (quote the whole field and double the quote)";
          return false;
        }
        ++i;
      }
      std::size_t stop = i;
      while (stop > start && csvBlank(line[stop - 1], delim)) --stop;
      field.assign(line.data() + start, stop - start);
    }
    if (i >= n) return true;
    ++i;  // skip the delimiter; a delimiter at the end of the line leaves one empty last field
  }
}

/// True when a line holds nothing but spaces and tabs.
inline bool csvLineBlank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t'; });
}

/// Lists names as 'a', 'b', 'c' for messages.
inline std::string csvQuotedList(const std::vector<std::string>& names, std::size_t count) {
  std::ostringstream os;
  for (std::size_t i = 0; i < count; ++i) os << (i ? ", '" : "'") << names[i] << "'";
  return os.str();
}

}  // namespace tsnn::detail

namespace tsnn::data {

/// \brief Loads a labelled dataset from a CSV file of numbers (format in the file comment).
/// \tparam Scalar floating-point type of the features.
/// \param path file to read.
/// \param options delimiter, header and label column; see CsvOptions.
/// \return N rows (one per non-blank data line, in file order) of the d = columns - 1 feature
///   columns in file order, labels from the label column, numClasses = max label + 1.
/// \throws InvalidArgument if the delimiter is '"', '\r' or '\n', or labelColumn is set while
///   header is false.
/// \throws IoError if the file cannot be opened or read (the message names the path).
/// \throws FormatError, naming the path, 1-based line and column, if a quote is malformed, a row
///   has a different number of fields than the first (expected and found counts), a feature is
///   not a finite number or overflows Scalar, a label is not a non-negative integer (or exceeds
///   2^31 - 2), the label column is not in the header (the message lists the header) or its
///   index is outside the row, a row has fewer than 2 columns, or there are no data rows.
template <class Scalar = float>
Dataset<Scalar> loadCsv(const std::string& path, const CsvOptions& options = {}) {
  using tsnn::detail::raise;
  constexpr const char* kCaller = "loadCsv()";
  const char delim = options.delimiter;
  if (delim == '"' || delim == '\r' || delim == '\n') {
    raise<InvalidArgument>(kCaller, ": delimiter ", static_cast<int>(delim),
                           " cannot be a quote or a line-end character");
  }
  if (!options.labelColumn.empty() && !options.header) {
    raise<InvalidArgument>(kCaller, ": labelColumn '", options.labelColumn,
                           "' needs header = true to be looked up");
  }

  const std::string text = tsnn::readFile(path, kCaller);
  std::string_view rest(text);
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);  // UTF-8 byte order mark

  std::vector<std::string> fields;
  std::vector<std::string> names;  // header names, when there is a header
  std::size_t count = 0;
  std::size_t columns = 0;  // fields per row, fixed by the first row
  std::size_t firstLine = 0;
  std::size_t labelCol = 0;
  std::vector<Scalar> values;
  std::vector<std::int32_t> labels;
  std::int32_t maxLabel = -1;
  bool first = true;
  std::string error;
  std::size_t column = 0;

  // " ('name')" after a column number, when the header named it.
  const auto colName = [&](std::size_t col) {
    return col >= 1 && col <= names.size() ? " ('" + names[col - 1] + "')" : std::string();
  };

  for (std::size_t lineNo = 1; !rest.empty(); ++lineNo) {
    const std::size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (tsnn::detail::csvLineBlank(line)) continue;

    if (!tsnn::detail::splitCsvLine(line, delim, fields, count, error, column)) {
      raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, ", column ", column, ": ", error);
    }
    if (first) {
      first = false;
      columns = count;
      firstLine = lineNo;
      if (columns < 2) {
        raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, ": found ", columns,
                           " column, expected at least 2 (one label and one feature; is the "
                           "delimiter '",
                           delim, "' right?)");
      }
      if (options.header) {
        names.assign(fields.begin(), fields.begin() + static_cast<std::ptrdiff_t>(count));
      }
      if (!options.labelColumn.empty()) {
        const auto it = std::find(names.begin(), names.end(), options.labelColumn);
        if (it == names.end()) {
          raise<FormatError>(kCaller, ": '", path, "' has no column named '", options.labelColumn,
                             "'; the header on line ", lineNo, " has ",
                             tsnn::detail::csvQuotedList(names, names.size()));
        }
        if (std::find(it + 1, names.end(), options.labelColumn) != names.end()) {
          raise<FormatError>(kCaller, ": '", path, "' has more than one column named '",
                             options.labelColumn, "' in the header on line ", lineNo);
        }
        labelCol = static_cast<std::size_t>(it - names.begin());
      } else {
        const long long idx = options.labelIndex < 0
                                  ? static_cast<long long>(columns) + options.labelIndex
                                  : static_cast<long long>(options.labelIndex);
        if (idx < 0 || idx >= static_cast<long long>(columns)) {
          raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, " has ", columns,
                             " columns, so labelIndex ", options.labelIndex,
                             " is out of range (expected ", -static_cast<long long>(columns),
                             " .. ", columns - 1, ")");
        }
        labelCol = static_cast<std::size_t>(idx);
      }
      if (options.header) continue;
    }

    if (count != columns) {
      raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, ": found ", count,
                         " fields, expected ", columns, " (as on line ", firstLine, ")");
    }
    for (std::size_t c = 0; c < columns; ++c) {
      const std::string& f = fields[c];
      double v = 0.0;
      const tsnn::detail::NumberParse r = tsnn::detail::parseDecimal(f, v);
      if (r != tsnn::detail::NumberParse::kOk) {
        raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, ", column ", c + 1,
                           colName(c + 1), ": ", tsnn::detail::describeNumberError(f, r),
                           c == labelCol ? " (this is the label column)" : "");
      }
      if (c == labelCol) {
        // numClasses = max + 1 must fit int, hence the bound 2^31 - 2.
        if (v < 0.0 || v != std::floor(v) || v > 2147483646.0) {
          raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, ", column ", c + 1,
                             colName(c + 1), ": label '", f,
                             "' is not a non-negative integer class index");
        }
        const auto label = static_cast<std::int32_t>(v);
        labels.push_back(label);
        maxLabel = std::max(maxLabel, label);
      } else {
        const auto s = static_cast<Scalar>(v);
        if (!std::isfinite(s)) {
          raise<FormatError>(kCaller, ": '", path, "' line ", lineNo, ", column ", c + 1,
                             colName(c + 1), ": '", f, "' overflows the feature type");
        }
        values.push_back(s);
      }
    }
  }

  if (labels.empty()) {
    raise<FormatError>(kCaller, ": '", path, "' has no data rows",
                       first ? " (the file is empty or blank)" : "");
  }
  Dataset<Scalar> ds;
  const auto n = static_cast<Eigen::Index>(labels.size());
  const auto d = static_cast<Eigen::Index>(columns - 1);
  ds.features = Eigen::Map<const MatrixRowMajor<Scalar>>(values.data(), n, d);
  ds.labels = std::move(labels);
  ds.numClasses = maxLabel + 1;
  return ds;
}

}  // namespace tsnn::data
