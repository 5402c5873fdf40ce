#pragma once
/// \file delimited.hpp
/// Reading CSV and TSV text files one row at a time, with error messages that point at the
/// offending spot as `file:line:column: what`. Drug-response inputs (expression tables,
/// descriptor tables, response files) arrive as such files, often hand-edited or exported from
/// spreadsheets, so the reader copes with the usual variations (UTF-8 byte-order mark, CRLF line
/// ends, blank lines, quoted fields) and a mistake deep inside a large file can be found at once.

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/config.hpp"
#include "../core/error.hpp"

namespace strata {

/// Passed as a reader's delimiter to choose it from the header line: tab if the header holds a
/// tab, comma otherwise.
inline constexpr char detect_delimiter = '\0';

/// `path:line:column`, the prefix of every positioned error message.
inline std::string file_position(const std::string& path, Index line, Index column) {
  return detail::concat(path, ':', line, ':', column);
}

/// `text` without leading and trailing spaces, tabs and carriage returns.
inline std::string_view trim_spaces(std::string_view text) {
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
  };
  std::size_t begin = 0, end = text.size();
  while (begin < end && is_space(text[begin])) ++begin;
  while (end > begin && is_space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

/// True for the spellings data files use for a value that was not measured: the empty field,
/// "NA", "NaN", "nan", "N/A", "null" and "NULL" (surrounding spaces ignored).
inline bool is_missing_marker(std::string_view field) {
  const std::string_view text = trim_spaces(field);
  return text.empty() || text == "NA" || text == "NaN" || text == "nan" || text == "N/A" || text == "null" ||
         text == "NULL";
}

namespace detail {
/// True when `text` is a plain decimal number: an optional sign, digits with at most one point
/// (at least one digit in all), and an optional exponent `e`/`E` with an optional sign and digits.
/// `strtod` alone would also take hexadecimal, "inf" and "nan(...)", which no data file means.
inline bool is_decimal_number(std::string_view text) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i - start;
  };
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  std::size_t mantissa_digits = digits();
  if (i < text.size() && text[i] == '.') {
    ++i;
    mantissa_digits += digits();
  }
  if (mantissa_digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == text.size();
}
}  // namespace detail

/// The value of one field read from `path` at `line`:`column` (used only for the message).
/// Accepts decimal and scientific forms ("12", "-0.5", "3.1e-07") with surrounding spaces, and
/// returns NaN for a missing marker (see `is_missing_marker`). Anything else ("abc", "1.2.3",
/// "5x", "0x10", "inf") throws data_error "PATH:LINE:COL: 'abc' is not a number"; a number too
/// large for a double throws too, rather than turning silently into infinity.
inline double parse_number(std::string_view field, const std::string& path, Index line, Index column) {
  if (is_missing_marker(field)) return std::numeric_limits<double>::quiet_NaN();
  const std::string text(trim_spaces(field));
  if (!detail::is_decimal_number(text))
    throw data_error(detail::concat(file_position(path, line, column), ": '", text, "' is not a number"));
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size())
    throw data_error(detail::concat(file_position(path, line, column), ": '", text, "' is not a number"));
  // ERANGE also reports underflow, where strtod returns the nearest tiny value: that is kept.
  if (errno == ERANGE && std::isinf(value))
    throw data_error(detail::concat(file_position(path, line, column), ": '", text, "' is too large for a double"));
  return value;
}

/// Formats `text` as one field of a line delimited by `delimiter`, quoting it (with inner quotes
/// doubled) when it holds the delimiter, a quote or a line break, so `DelimitedReader` reads it
/// back unchanged.
inline std::string quote_field(const std::string& text, char delimiter) {
  if (text.find_first_of(std::string{delimiter, '"', '\n', '\r'}) == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

/// One data row of a delimited file: its fields (quotes removed, spaces kept) and where they are.
struct delimited_row {
  /// The fields in file order, as many as the header has columns.
  std::vector<std::string> fields;
  /// For each field, the 1-based character position in its line where the field starts (its
  /// opening quote, if quoted), for error messages.
  std::vector<Index> columns;
  /// 1-based line number in the file (blank lines counted).
  Index line = 0;
};

/// Reads a CSV or TSV file: a header line of column names, then rows of as many fields, one row
/// per line. A UTF-8 byte-order mark is skipped, LF and CRLF line ends are both accepted, blank
/// lines (nothing but spaces) are skipped but counted, and a field that starts with a double quote
/// runs to the matching quote (`""` inside stands for one quote; fields spanning lines are not
/// supported). Rows are read lazily, so a file of millions of rows never sits in memory at once.
class DelimitedReader {
 public:
  /// Opens `path` and reads its header. Throws io_error "cannot open 'PATH': reason" if the file
  /// cannot be read and data_error "PATH: the file is empty" if it holds no header line.
  explicit DelimitedReader(std::string path, char delimiter = detect_delimiter)
      : path_(std::move(path)), delimiter_(delimiter), in_(path_, std::ios::binary) {
    if (!in_) {
      const int reason = errno;
      throw io_error(detail::concat("cannot open '", path_, "': ", reason ? std::strerror(reason) : "unknown reason"));
    }
    std::string line;
    if (!next_line(line)) throw data_error(detail::concat(path_, ": the file is empty"));
    if (delimiter_ == detect_delimiter) delimiter_ = line.find('\t') != std::string::npos ? '\t' : ',';
    std::vector<Index> columns;
    split(line, header_, columns);
    for (std::string& name : header_) name = std::string(trim_spaces(name));
    header_line_ = line_;
  }

  /// The file this reader reads, as given.
  const std::string& path() const { return path_; }
  /// The delimiter in use (given or detected).
  char delimiter() const { return delimiter_; }
  /// Column names from the header line, spaces trimmed.
  const std::vector<std::string>& header() const { return header_; }
  /// The 1-based line number of the header (later than 1 if blank lines precede it).
  Index header_line() const { return header_line_; }

  /// Index of the first column called exactly `name`, or -1.
  Index find_column(const std::string& name) const {
    for (std::size_t c = 0; c < header_.size(); ++c)
      if (header_[c] == name) return static_cast<Index>(c);
    return -1;
  }

  /// Index of the column called `name`; throws data_error "PATH: no column 'NAME' (columns: a,
  /// b, ...)" naming the columns there are, so a misspelt or wrongly cased name is obvious.
  Index column(const std::string& name) const {
    const Index found = find_column(name);
    if (found < 0) throw data_error(detail::concat(path_, ": no column '", name, "' (columns: ", column_list(), ")"));
    return found;
  }

  /// The header's column names for messages: the first ten, then how many more there are.
  std::string column_list() const {
    constexpr std::size_t shown = 10;
    std::string list;
    for (std::size_t c = 0; c < header_.size() && c < shown; ++c) list += (c ? ", " : "") + header_[c];
    if (header_.size() > shown) list += detail::concat(", ... (", header_.size(), " in all)");
    return list;
  }

  /// Reads the next data row into `row`; false at the end of the file. Throws data_error
  /// "PATH:LINE:COL: expected N fields (as in the header), found M" for a row of the wrong length,
  /// COL being where the first extra field starts or, for a short row, one past the line's end.
  bool next(delimited_row& row) {
    std::string line;
    if (!next_line(line)) return false;
    row.line = line_;
    split(line, row.fields, row.columns);
    if (row.fields.size() != header_.size()) {
      const Index column = row.fields.size() > header_.size() ? row.columns[header_.size()]
                                                              : static_cast<Index>(line.size()) + 1;
      throw data_error(detail::concat(file_position(path_, line_, column), ": expected ", header_.size(),
                                      " fields (as in the header), found ", row.fields.size()));
    }
    return true;
  }

  /// `path:line:column` of field `field` of `row`, for messages about its content.
  std::string where(const delimited_row& row, Index field) const {
    return file_position(path_, row.line, row.columns[static_cast<std::size_t>(field)]);
  }

  /// Field `field` of `row` as a number (see `parse_number`); NaN for a missing marker.
  double number(const delimited_row& row, Index field) const {
    const auto f = static_cast<std::size_t>(field);
    return parse_number(row.fields[f], path_, row.line, row.columns[f]);
  }

 private:
  /// Reads the next non-blank line into `line` without its line end (and, on the first line,
  /// without a byte-order mark); false at the end of the file.
  bool next_line(std::string& line) {
    while (std::getline(in_, line)) {
      ++line_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
      if (!trim_spaces(line).empty()) return true;
    }
    if (in_.bad()) {
      const int reason = errno;
      throw io_error(detail::concat(path_, ": reading failed after line ", line_, ": ",
                                    reason ? std::strerror(reason) : "unknown reason"));
    }
    return false;
  }

  /// Splits `line` into `fields`, recording where each starts in `columns`.
  void split(const std::string& line, std::vector<std::string>& fields, std::vector<Index>& columns) const {
    fields.clear();
    columns.clear();
    const std::size_t length = line.size();
    std::size_t at = 0;
    for (;;) {
      columns.push_back(static_cast<Index>(at) + 1);
      std::string field;
      if (at < length && line[at] == '"') {
        const std::size_t opening = at++;
        bool closed = false;
        while (at < length) {
          if (line[at] == '"') {
            if (at + 1 < length && line[at + 1] == '"') {
              field += '"';
              at += 2;
              continue;
            }
            closed = true;
            ++at;
            break;
          }
          field += line[at++];
        }
        if (!closed)
          throw data_error(detail::concat(file_position(path_, line_, static_cast<Index>(opening) + 1),
                                          ": the quoted field starting here has no closing quote on this line",
                                          " (fields spanning lines are not supported)"));
        // Text between the closing quote and the delimiter is kept as written: lenient, as
        // spreadsheet exports sometimes put spaces there.
        while (at < length && line[at] != delimiter_) field += line[at++];
      } else {
        const std::size_t found = line.find(delimiter_, at);
        const std::size_t stop = found == std::string::npos ? length : found;
        field.assign(line, at, stop - at);
        at = stop;
      }
      fields.push_back(std::move(field));
      if (at >= length) break;
      ++at;  // past the delimiter; a delimiter ending the line starts one more (empty) field
    }
  }

  std::string path_;
  char delimiter_;
  std::ifstream in_;
  std::vector<std::string> header_;
  Index header_line_ = 0;
  Index line_ = 0;
};

}  // namespace strata
