// Fuzz target: load_model, a model file (checkpoint format, kind and input-width entries,
// run-time settings) read into a small built model; and load_combo_model, a drug-response model
// file (sizes, seed, scalers with column names) that builds the model it describes; and
// warm_start, partial then strict, into the small model (a source model for transfer learning),
// which a refused start must leave unchanged. Structure-aware like fuzz_checkpoint.
#include <strata/io/warm_start.hpp>
#include <strata/models/combo_model_file.hpp>
#include <strata/train/model_file.hpp>

#include "fuzz_model.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = strata_fuzz::checkpoint_input(data, size);
  auto model = strata_fuzz::tiny_model();
  return strata_fuzz::expect_strata_errors_only([&] {
    const auto meta = strata::load_model(model, path, strata_fuzz::tiny_kind);
    strata_fuzz::require(meta.count("kind") == 1, "a model file loaded without a kind entry");
    model.for_each_setting([&](const std::string&, double& rate) {
      strata_fuzz::require(rate >= 0.0 && rate < 1.0, "a model file set a dropout rate outside [0, 1)");
    });
  }) | strata_fuzz::expect_strata_errors_only([&] {
    for (const bool strict : {false, true}) {
      auto target = strata_fuzz::tiny_model();
      const auto before = strata::weights_checksum(target);
      try {
        const auto report = strata::warm_start(target, path, strata::warm_start_options{{}, strict});
        strata_fuzz::require(!report.loaded.empty(), "a warm start succeeded without loading a tensor");
      } catch (const strata::error&) {
        strata_fuzz::require(strata::weights_checksum(target) == before, "a refused warm start changed the model");
        throw;
      }
    }
  }) | strata_fuzz::expect_strata_errors_only([&] {
    const auto loaded = strata::load_combo_model(path);
    strata_fuzz::require(loaded.info.cell_scaler.columns().size() == static_cast<std::size_t>(loaded.info.shape.cell_width),
                         "a drug-response model loaded with cell columns that do not match its width");
  });
}
