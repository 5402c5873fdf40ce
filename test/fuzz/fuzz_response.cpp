// Fuzz target: the CANDLE response readers, read_combo_response (ComboDrugGrowth layout:
// VALID filter, replicate means, minimum over doses), read_response_tuples (cell, drug1,
// drug2, response) and read_study_responses (Uno's SOURCE, CELL, DRUG, AUC), each with and
// without skip_unknown_ids, against small fixed tables whose ids need the NCI60. / NSC. prefixes
// and exact matches both.
#include <strata/data/combo_files.hpp>
#include <strata/data/study_files.hpp>

#include "fuzz_support.hpp"

namespace {
strata::EntityTable<float> table(std::vector<std::string> ids) {
  const auto n = static_cast<strata::Index>(ids.size());
  return strata::EntityTable<float>(std::move(ids), {"f0", "f1"}, strata::host_matrix<float>::Zero(2, n));
}

void check(const std::vector<strata::response_tuple>& tuples, const strata::EntityTable<float>& cells,
           const strata::EntityTable<float>& drugs) {
  strata_fuzz::require(!tuples.empty(), "a response read returned no tuples");
  for (const auto& t : tuples)
    strata_fuzz::require(t.cell >= 0 && t.cell < cells.size() && t.drug1 >= 0 && t.drug1 < drugs.size() && t.drug2 >= 0 &&
                             t.drug2 < drugs.size(),
                         "a response tuple names an entity the tables do not hold");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto cells = table({"NCI60.A549", "NCI60.MCF7", "HOP-62"});
  static const auto drugs = table({"NSC.740", "NSC.3088", "5-FU"});
  auto& file = strata_fuzz::input_file::instance();
  file.assign(data, size);
  for (const bool skip : {false, true}) {
    strata::response_read_options options;
    options.skip_unknown_ids = skip;
    strata::response_read_report report;
    strata_fuzz::expect_strata_errors_only(
        [&] { check(strata::read_combo_response(file.path(), cells, drugs, options, &report), cells, drugs); });
    strata_fuzz::expect_strata_errors_only(
        [&] { check(strata::read_response_tuples(file.path(), cells, drugs, options, &report), cells, drugs); });
    strata_fuzz::expect_strata_errors_only([&] {
      const auto studies = strata::read_study_responses(file.path(), cells, drugs, options, &report);
      check(studies.tuples, cells, drugs);
      studies.validate();
      strata_fuzz::require(!studies.studies.empty(), "a study read returned no study");
    });
  }
  return 0;
}
