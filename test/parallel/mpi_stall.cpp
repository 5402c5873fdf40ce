// Programs whose ranks disagree about the next collective, for the stall watchdog's tests
// (stall_is_reported.sh). Run under mpiexec with STRATA_STALL_TIMEOUT=2:
//   mpi_stall skip     rank 1 skips an all-reduce and waits in a barrier: both ranks stall
//   mpi_stall hang     rank 1 never reaches the all-reduce (it sleeps outside MPI)
//   mpi_stall trainer  on 4 ranks split in two pairs, rank 3 skips its pair's all-gather
//   mpi_stall slow     rank 1 joins the all-reduce 1 s late: no stall, the job ends with 0
#include <boost/mpi/environment.hpp>

#include <strata/parallel/mpi_communicator.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace strata;

int main(int argc, char** argv) {
  boost::mpi::environment environment(argc, argv, boost::mpi::threading::multiple);
  const std::string mode = argc > 1 ? argv[1] : "";
  MpiCommunicator world;
  std::vector<float> values(1000, 1.0f);
  world.all_reduce_sum(values.data(), values.size());  // one collective everyone joins
  world.barrier();
  if (mode == "skip") {
    if (world.rank() == 1) world.barrier();
    else world.all_reduce_sum(values.data(), values.size());
  } else if (mode == "hang") {
    if (world.rank() == 1) std::this_thread::sleep_for(std::chrono::hours(1));
    world.all_reduce_sum(values.data(), values.size());
  } else if (mode == "trainer") {
    MpiCommunicator pair = world.split(world.rank() / 2, world.rank() % 2);
    std::vector<float> all(2 * values.size());
    if (world.rank() != 3) pair.all_gather(values.data(), all.data(), {values.size(), values.size()});
    world.barrier();
  } else if (mode == "slow") {
    if (world.rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(1));
    world.all_reduce_sum(values.data(), values.size());
    if (world.rank() == 0) std::printf("slow: finished\n");
  } else {
    std::fprintf(stderr, "usage: mpi_stall skip|hang|trainer|slow\n");
    return 2;
  }
  return 0;
}
