// Fuzz target: Trainer::load, a training checkpoint (weights, buffers, Adam state, loop
// position, run-time settings) restored into a small trainer. Structure-aware like
// fuzz_checkpoint.
#include "fuzz_model.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = strata_fuzz::checkpoint_input(data, size);
  auto trainer = strata_fuzz::make_tiny_trainer();
  return strata_fuzz::expect_strata_errors_only([&] {
    trainer.load(path);
    strata_fuzz::require(trainer.epoch() >= 0, "a checkpoint restored a negative epoch");
    trainer.model().for_each_setting([&](const std::string&, double& rate) {
      strata_fuzz::require(rate >= 0.0 && rate < 1.0, "a checkpoint set a dropout rate outside [0, 1)");
    });
  });
}
