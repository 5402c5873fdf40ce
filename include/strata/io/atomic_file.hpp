#pragma once
/// \file atomic_file.hpp
/// Files written whole or not at all: content goes to `<path>.tmp`, which is renamed to `<path>`
/// only once it is complete, so a crash or a full disk never leaves a half-written file where a
/// reader (a resuming job, the next program of a workflow) would find it. Also the one way the
/// binary formats read a whole file.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "../core/error.hpp"

namespace strata {
namespace detail {

/// Writes a file by letting `write_content` fill a stream for `path + ".tmp"`, then renaming it
/// to `path`, so readers never see a half-written file. io_error (naming the file and the
/// reason) if any step fails; the temporary file is removed on every failure.
template <class WriteContent>
void write_atomically(const std::string& path, WriteContent&& write_content) {
  const std::string temporary = path + ".tmp";
  const auto reason = [] { return errno ? std::strerror(errno) : "unknown reason"; };
  std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
  if (!out) throw io_error(concat("cannot open '", temporary, "' for writing: ", reason()));
  try {
    write_content(out);
    out.close();
    if (!out) throw io_error(concat("writing '", temporary, "' failed: ", reason()));
  } catch (...) {
    if (out.is_open()) out.close();
    std::remove(temporary.c_str());
    throw;
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string why = reason();
    std::remove(temporary.c_str());
    throw io_error(concat("cannot rename '", temporary, "' to '", path, "': ", why));
  }
}

/// Writes `bytes` to `path` whole or not at all (write_atomically).
inline void write_bytes_atomically(const std::string& path, const std::string& bytes) {
  write_atomically(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

/// The whole content of file `path`; io_error naming it and `what` it should be if it cannot be
/// opened.
inline std::string read_whole_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(concat("cannot open '", path, "' (", what, ")"));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace detail
}  // namespace strata
