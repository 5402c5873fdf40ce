#pragma once
/// \file abort_on_error.hpp
/// `run_or_abort(comm, f)`: runs a rank's work and turns an exception on any one rank into the end
/// of the whole job. Without it, a rank that throws (a bad file, a NaN, a shape error) leaves the
/// others waiting in their next collective forever; with it, the failing rank prints its message
/// (prefixed by its rank) and aborts the job, so mpirun exits non-zero within seconds.

#include <exception>
#include <iostream>
#include <string>

namespace strata {

/// Returns f()'s exit code; on an exception prints "rank R/P: error: what" to stderr and calls
/// `comm.abort(1)` (which never returns).
template <class Comm, class F>
int run_or_abort(Comm& comm, F&& f) {
  std::string what = "unknown exception";
  try {
    return f();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  // One write of the whole line: std::cerr is unbuffered, and mpirun's own abort banner could
  // otherwise land between the pieces of a line written piece by piece.
  const std::string line = "rank " + std::to_string(comm.rank()) + "/" + std::to_string(comm.size()) + ": error: " + what + "\n";
  std::cerr.write(line.data(), static_cast<std::streamsize>(line.size()));
  std::cerr.flush();
  comm.abort(1);
}

}  // namespace strata
