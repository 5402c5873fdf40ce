#pragma once
/// \file parse.hpp
/// Strict conversions of text fields from files (checkpoint entries, tournament state): the
/// whole field or nothing. `std::stoull` alone would take "12abc" as 12 and wrap "-1" around to
/// 2^64 - 1; `std::stod` would take "0.5x" and "nan". Callers turn a false into an error that
/// names the file and the field.

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace strata::detail {

/// Sets `value` and returns true when `text` is a whole unsigned decimal number (digits only:
/// no sign, no spaces) no greater than `limit`.
inline bool parse_unsigned(const std::string& text, std::uint64_t limit, std::uint64_t& value) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno == ERANGE || end != text.c_str() + text.size() || v > limit) return false;
  value = static_cast<std::uint64_t>(v);
  return true;
}

/// Sets `value` and returns true when all of `text` is one finite number as `strtod` reads it
/// (no leading spaces, nothing after it, not NaN or infinite).
inline bool parse_finite(const std::string& text, double& value) {
  if (text.empty() || text.front() == ' ' || text.front() == '\t') return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  value = v;
  return true;
}

}  // namespace strata::detail
