#pragma once
// What the example programs share: option checks, thread settings and turning errors into a
// message and an exit code. (Program plumbing, not library: it lives beside the examples.)
#include <boost/program_options.hpp>
#ifdef STRATA_EXAMPLE_MPI
#include <boost/mpi/environment.hpp>
#include <strata/parallel/abort_on_error.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#endif

#include <strata/core/config.hpp>
#include <strata/core/error.hpp>
#include <strata/core/math_threads.hpp>


#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>


namespace examples {

/// `v` as people write it: the shortest decimal that reads back as the same number (0.2, not
/// 0.20000000000000001, which is what program_options prints for a double by default).
template <class T>
std::string shown(const T& v) {
  std::ostringstream out;
  if constexpr (std::is_floating_point_v<T>) {
    for (int digits = 1; digits <= 17; ++digits) {
      out.str("");
      out << std::setprecision(digits) << v;
      if (static_cast<T>(std::strtod(out.str().c_str(), nullptr)) == v) break;
    }
  } else {
    out << v;
  }
  return out.str();
}

/// An option stored in `v` whose `--help` shows v's current value as its default.
template <class T>
boost::program_options::typed_value<T>* option(T& v) {
  return boost::program_options::value(&v)->default_value(v, shown(v));
}

/// The items of a comma-separated list ("a,b,c"), empty items dropped.
inline std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream list(text);
  for (std::string item; std::getline(list, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

/// Throws config_error "--OPTION must be positive, got V" unless v > 0.
inline void require_positive(const char* option, double v) {
  if (!(v > 0)) throw strata::config_error(strata::detail::concat("--", option, " must be positive, got ", v));
}

/// Compute threads per process: `requested`, or when 0 and several ranks share this node, the
/// node's cores divided among them (0 stays 0: OpenMP's default).
inline strata::Index threads_per_rank(strata::Index requested, bool under_mpi) {
  if (requested != 0 || !under_mpi) return requested;
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const long ranks_here = local != nullptr ? std::max(1L, std::atol(local)) : 1L;
  return std::max<strata::Index>(1, static_cast<strata::Index>(std::thread::hardware_concurrency()) / ranks_here);
}

/// Sets Eigen's, OpenMP's and (GEMM through OpenBLAS) OpenBLAS's thread counts (0: leave the
/// defaults). OpenBLAS keeps its own thread pool, which OpenMP settings do not limit.
inline void use_threads(strata::Index threads) {
  if (threads > 0) strata::set_math_threads(static_cast<int>(threads));
}

/// Runs `body()`; an exception becomes "PROGRAM: error: ..." on stderr and exit code 1, a bad
/// option "PROGRAM: ... (see --help)" and exit code 2.
template <class Body>
int run_reporting_errors(const char* program, Body&& body) {
  try {
    return body();
  } catch (const boost::program_options::error& e) {
    std::cerr << program << ": " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return 1;
  }
}

/// Stores the parsed command line in the options' variables; prints `shown` and returns false
/// when --help was given.
inline bool parse_options(const boost::program_options::parsed_options& parsed,
                          const boost::program_options::options_description& shown) {
  boost::program_options::variables_map vm;
  boost::program_options::store(parsed, vm);
  if (vm.count("help")) {
    std::cout << shown << "\n";
    return false;
  }
  boost::program_options::notify(vm);
  return true;
}

/// The examples' main: under mpirun (builds with STRATA_EXAMPLE_MPI) MPI lives for the whole run
/// (with MPI_THREAD_MULTIPLE, so that the stall watchdog's thread can ask the other ranks where
/// they are when a collective stalls; training calls MPI from the main thread only), only rank 0 prints, and a failure on any rank ends
/// the whole job rather than leaving the others waiting; otherwise errors become a message and
/// an exit code (run_reporting_errors).
template <class Body>
int main_of(const char* program, int argc, char** argv, Body&& body) {
#ifdef STRATA_EXAMPLE_MPI
  // Errors are handled here, before the environment ends, so it need not abort on them.
  boost::mpi::environment environment(argc, argv, boost::mpi::threading::multiple, /*abort_on_exception=*/false);
  strata::MpiCommunicator world;
  if (world.rank() != 0) std::cout.setstate(std::ios::badbit);
  if (world.size() > 1) return strata::run_or_abort(world, body);
#else
  (void)argc;
  (void)argv;
#endif
  return run_reporting_errors(program, body);
}

}  // namespace examples
