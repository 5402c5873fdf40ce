// Fuzz target: SMILES files through read_smiles_file (SmilesReader) and RDKit: the first input
// byte chooses the format (.smi, .csv or .tsv, by the file name's extension as the reader does)
// and the options (a "score" label column, docking-score labels, strict mode); the rest is the
// file. Fingerprints are 64 bits wide to keep each run cheap.
#include <strata/data/molecule_files.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const strata::MorganFeaturizer featurizer(strata::morgan_options{2, 64, false});
  const auto in = strata_fuzz::split_mode(data, size);
  static const char* const extensions[] = {".smi", ".csv", ".tsv", ".CSV"};
  const std::string extension = extensions[in.mode % 4];
  strata::molecule_read_options options;
  if (extension != ".smi" && (in.mode & 4)) options.score_column = "score";
  options.docking_score = (in.mode & 8) != 0;
  options.strict = (in.mode & 16) != 0;
  auto& file = strata_fuzz::input_file::instance();
  file.assign(in.data, in.size);
  return strata_fuzz::expect_strata_errors_only([&] {
    const strata::molecule_table t = strata::read_smiles_file(file.path(extension), featurizer, options);
    strata_fuzz::require(t.features.cols() == t.size() && t.features.rows() == featurizer.width() &&
                             t.labels.cols() == t.size(),
                         "a molecule table's shape disagrees with its ids");
    strata_fuzz::require(t.size() + static_cast<strata::Index>(t.rejected.size()) == t.rows,
                         "kept and rejected rows do not add up to the rows read");
  });
}
