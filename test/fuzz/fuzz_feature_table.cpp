// Fuzz target: read_feature_table, precomputed molecule descriptors or fingerprints (an id
// column, an optional score column, every other column a feature), once lenient with a "score"
// label column (bad rows skipped and reported) and once strict without labels.
#include <strata/data/molecule_files.hpp>

#include "fuzz_support.hpp"

namespace {
void check(const strata::molecule_table& t, bool labelled) {
  strata_fuzz::require(t.features.cols() == t.size() && t.labels.cols() == t.size() &&
                           t.labels.rows() == (labelled ? 1 : 0),
                       "a molecule table's shape disagrees with its ids");
  strata_fuzz::require(t.size() + static_cast<strata::Index>(t.rejected.size()) == t.rows,
                       "kept and rejected rows do not add up to the rows read");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& file = strata_fuzz::input_file::instance();
  file.assign(data, size);
  strata::molecule_read_options lenient;
  lenient.score_column = "score";
  lenient.docking_score = true;
  strata_fuzz::expect_strata_errors_only([&] { check(strata::read_feature_table(file.path(), lenient), true); });
  strata::molecule_read_options strict;
  strict.strict = true;
  strata_fuzz::expect_strata_errors_only([&] { check(strata::read_feature_table(file.path(), strict), false); });
  return 0;
}
