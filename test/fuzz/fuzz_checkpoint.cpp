// Fuzz target: the checkpoint format (checkpoint::read / from_bytes: magic, version, size,
// checksum, metadata, tensors), every tensor extracted in both precisions, a feature scaler
// loaded from it, and the round trip: what was read must write and read back the same.
// Structure-aware: the first byte chooses between the bytes as the file and the bytes as a
// payload behind a correct header and checksum (see fuzz_support.hpp).
#include <strata/data/preprocess.hpp>
#include <strata/train/checkpoint.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = strata_fuzz::checkpoint_input(data, size);
  return strata_fuzz::expect_strata_errors_only([&] {
    const strata::checkpoint file = strata::checkpoint::read(path);
    for (const auto& t : file.tensors) {
      strata::host_matrix<float> f;
      strata::host_matrix<double> d;
      strata::checkpoint::extract(t, f);
      strata::checkpoint::extract(t, d);
      strata_fuzz::require(f.rows() == t.rows && f.cols() == t.cols, "an extracted tensor has another shape");
    }
    const strata::checkpoint again = strata::checkpoint::from_bytes(file.to_bytes(), "round trip");
    strata_fuzz::require(again.meta == file.meta && again.tensors.size() == file.tensors.size(),
                         "a checkpoint does not read back what it wrote");
    for (std::size_t k = 0; k < file.tensors.size(); ++k)
      strata_fuzz::require(again.tensors[k].name == file.tensors[k].name && again.tensors[k].data == file.tensors[k].data,
                           "a tensor does not read back what was written");
    strata::StandardScaler scaler;
    scaler.load(file, "cells");
    strata_fuzz::require(scaler.mean().size() == scaler.scale().size(), "a loaded scaler's statistics differ in length");
  });
}
