#pragma once
/// \file error.hpp
/// One exception hierarchy for everything Strata reports. Every message names what went wrong
/// and where (a layer, a file position, a parameter), so a user can act on it without a debugger.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "config.hpp"

namespace strata {

/// Root of every exception Strata throws.
class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

/// Widths or sizes that do not fit together (at model build time or in a batch).
class shape_error : public error {
 public:
  using error::error;
};

/// Input data that is malformed, inconsistent or out of range.
class data_error : public error {
 public:
  using error::error;
};

/// A file that cannot be opened, read or written, or whose content is corrupt.
class io_error : public error {
 public:
  using error::error;
};

/// A non-finite value (NaN or infinity) where a finite one was required.
class numeric_error : public error {
 public:
  using error::error;
};

/// A configuration or hyperparameter that makes no sense (negative rate, zero batch, ...).
class config_error : public error {
 public:
  using error::error;
};

namespace detail {
/// Builds a message from any streamable pieces: `concat("layer ", name, " has ", n, " rows")`.
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

/// Formats a `rows×cols` shape for messages.
inline std::string shape_string(Index rows, Index cols) {
  return detail::concat(rows, "x", cols);
}

}  // namespace strata
