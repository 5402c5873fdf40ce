// Writes the binary seeds of the checkpoint-format fuzz targets, made by the library itself:
// a trainer checkpoint (with a feature scaler as extras), a model file, a drug-response model
// file and a scaler-only checkpoint, each in both of the targets' forms (fuzz_support.hpp: first byte 0 = the file,
// 1 = the payload to wrap). Usage: fuzz_make_seeds <corpus folder>; it writes
// <folder>/{checkpoint,model_file,trainer_restore}/seed-* (and npz/seed-* where libzip is found).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <strata/data/preprocess.hpp>
#include <strata/models/combo_model_file.hpp>
#include <strata/train/model_file.hpp>

#ifdef STRATA_FUZZ_SEEDS_NPZ
#include <strata/io/model_npz.hpp>
#endif

#include "fuzz_model.hpp"

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Writes `file_bytes` as `<folder>/<name>-file` (mode 0) and its payload as `<name>-payload` (mode 1).
void write_both(const std::filesystem::path& folder, const std::string& name, const std::string& file_bytes) {
  std::filesystem::create_directories(folder);
  const std::size_t header = 8 + 4 + 8, trailer = 8;
  std::ofstream(folder / (name + "-file"), std::ios::binary) << '\0' << file_bytes;
  std::ofstream(folder / (name + "-payload"), std::ios::binary)
      << '\1' << file_bytes.substr(header, file_bytes.size() - header - trailer);
}

strata::checkpoint scaler_checkpoint() {
  strata::host_matrix<float> features(2, 3);
  features << 1.0f, 2.0f, 4.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f;
  const strata::EntityTable<float> table({"a", "b", "c"}, {"f0", "f1"}, features);
  strata::StandardScaler scaler;
  scaler.fit(table, {0, 1, 2});
  strata::checkpoint file;
  file.meta["data"] = "fuzz seed";
  scaler.save(file, "cells");
  return file;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];

  auto trainer = strata_fuzz::make_tiny_trainer();
  trainer.set_checkpoint_extras(scaler_checkpoint());
  const std::string checkpoint_bytes = trainer.snapshot().to_bytes();
  write_both(out / "trainer_restore", "seed-trainer", checkpoint_bytes);
  write_both(out / "checkpoint", "seed-trainer", checkpoint_bytes);
  write_both(out / "checkpoint", "seed-scaler", scaler_checkpoint().to_bytes());

  auto model = strata_fuzz::tiny_model();
  const std::string model_path = (out / "model.tmp").string();
  strata::save_model(model, model_path, {{"kind", strata_fuzz::tiny_kind}, {"features", "f0,f1,f2"}});
  write_both(out / "model_file", "seed-model", read_all(model_path));
  std::remove(model_path.c_str());

  // A drug-response model file (models/combo_model_file.hpp), tiny: sizes, seed, scalers with
  // column names, dropped columns.
  strata::combo_model_info info;
  info.shape = {2, 2, 3, 0.1};
  info.seed = 5;
  const strata::EntityTable<float> cells({"c0", "c1"}, {"g0", "g1"}, strata::host_matrix<float>::Ones(2, 2));
  const strata::EntityTable<float> drugs({"d0", "d1"}, {"x0", "x1"}, strata::host_matrix<float>::Zero(2, 2));
  info.cell_scaler.fit(cells, {0, 1});
  info.drug_scaler.fit(drugs, {0, 1});
  info.dropped_drug_columns = {"empty"};
  info.data = "fuzz seed";
  strata::Model<strata::Combo> combo(strata::make_combo(info.shape));
  combo.build(6, info.seed);
  strata::save_combo_model(combo, info, model_path);
  write_both(out / "model_file", "seed-combo", read_all(model_path));
  std::remove(model_path.c_str());

#ifdef STRATA_FUZZ_SEEDS_NPZ
  // The tiny model's tensors as an .npz archive (mode 0) and its first array alone (mode 1).
  const strata::npz_archive arrays = strata::model_arrays(model);
  std::filesystem::create_directories(out / "npz");
  std::ofstream(out / "npz" / "seed-model-archive", std::ios::binary) << '\0' << arrays.to_bytes();
  std::ofstream(out / "npz" / "seed-weight-npy", std::ios::binary)
      << '\1' << strata::npz_archive::npy_bytes(arrays.arrays.begin()->second);
#endif
  return 0;
}
