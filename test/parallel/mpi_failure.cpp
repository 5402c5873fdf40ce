// A data-parallel training job in which rank 1 hits bad input at its third step. With
// run_or_abort the whole job must end quickly with that rank's message and a non-zero exit.
#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/parallel/abort_on_error.hpp>
#include <strata/parallel/data_parallel.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#include <strata/train/trainer.hpp>

using namespace strata;

namespace {
/// Rank 1 cannot read sample 90 (in its half of the third batch).
struct flaky_dataset {
  using scalar = float;
  int rank = 0;
  Index size() const { return 4096; }
  Index input_width() const { return 4; }
  Index target_width() const { return 1; }
  void gather(const Index* idx, Index count, matrix_f& x, matrix_f& y) const {
    x.resize(4, count);
    y.resize(1, count);
    for (Index j = 0; j < count; ++j) {
      if (rank == 1 && idx[j] == 90) throw data_error("samples.csv:72:3: 'x7' is not a number");
      x.col(j).setConstant(static_cast<float>(idx[j] % 7));
      y(0, j) = static_cast<float>(idx[j] % 3);
    }
  }
};
}  // namespace

int main(int argc, char** argv) {
  // Multiple: the stall watchdog's thread asks the other ranks where they are when a collective
  // stalls (parallel/stall_watchdog.hpp); training itself calls MPI from the main thread only.
  boost::mpi::environment environment(argc, argv, boost::mpi::threading::multiple);
  MpiCommunicator world;
  return run_or_abort(world, [&] {
    using Net = Sequential<Dense<8>, ReLU, Dense<1>>;
    Model<Net> model;
    model.build(4, 1);
    trainer_options options;
    options.batch_size = 32;
    options.shuffle = false;
    Trainer<Net, MSE, Adam, DataParallel<MpiCommunicator>> trainer(std::move(model), MSE{}, Adam{}, DataParallel<MpiCommunicator>(world),
                                                                    options);
    flaky_dataset data{world.rank()};
    trainer.fit(data, 100);
    return 0;
  });
}
