// Fuzz target: NumPy .npz archives (libzip's container, Strata's .npy parser) and their import
// into a small built model. First byte 0: the rest is an archive, imported strictly and then
// partially; 1: the rest is one .npy array for the parser alone (deeper into its header grammar
// than mutations of a zip, whose CRCs reject most changed bytes, can reach).
#include <strata/io/model_npz.hpp>
#include <strata/io/model_state.hpp>

#include "fuzz_model.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 1) {
    return strata_fuzz::expect_strata_errors_only([&] {
      const strata::npy_array a = strata::npz_archive::parse_npy(bytes, "fuzz input");
      strata_fuzz::require(a.values.size() == static_cast<std::size_t>(a.rows() * a.cols()), "values and shape disagree");
    });
  }
  auto model = strata_fuzz::tiny_model();
  const std::uint64_t before = strata::weights_checksum(model);
  return strata_fuzz::expect_strata_errors_only([&] {
    const strata::npz_archive archive = strata::npz_archive::from_bytes(bytes, "fuzz input");
    for (const auto match : {strata::npz_match::strict, strata::npz_match::partial}) {
      try {
        const auto report = strata::import_arrays(model, archive, "fuzz input", match);
        strata_fuzz::require(!report.loaded.empty(), "an import succeeded without loading a tensor");
      } catch (const strata::error&) {
        strata_fuzz::require(strata::weights_checksum(model) == before, "a failed import changed the model");
        continue;
      }
      break;
    }
  });
}
