// Catch2 runner for tests under mpiexec: MPI lives for the whole run, and only rank 0 prints
// the summary unless a rank fails (every rank's failures are printed).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/operations.hpp>
#include <boost/mpi/environment.hpp>

int main(int argc, char** argv) {
  // Multiple: the stall watchdog's thread asks the other ranks where they are when a collective
  // stalls (parallel/stall_watchdog.hpp); training itself calls MPI from the main thread only.
  boost::mpi::environment environment(argc, argv, boost::mpi::threading::multiple);
  const boost::mpi::communicator world;
  const int failed = Catch::Session().run(argc, argv);
  // Every rank must agree: one failing rank fails the test.
  int any = 0;
  boost::mpi::all_reduce(world, failed != 0 ? 1 : 0, any, boost::mpi::maximum<int>());
  return any;
}
