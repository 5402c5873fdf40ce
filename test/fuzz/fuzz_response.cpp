// Fuzz target: the CANDLE response readers, read_combo_response (ComboDrugGrowth layout:
// VALID filter, replicate means, minimum over doses), read_response_tuples (cell, drug1,
// drug2, response) and read_study_responses (Uno's SOURCE, CELL, DRUG, AUC), each with and
// without skip_unknown_ids, against small fixed tables whose ids need the NCI60. / NSC. prefixes
// and exact matches both; and learning-curve scores (read_curve_points_csv, what
// `learning_curve --fit-only` reads), each model's curve summarised and fitted.
#include <strata/analysis/learning_curve_fit.hpp>
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
  strata_fuzz::expect_strata_errors_only([&] {
    const auto points = strata::read_curve_points_csv(file.path());
    strata::curve_summary_options few;
    few.bootstrap = 3;
    for (const auto& model : strata::curve_models(points))
      for (const char* metric : {"mae", "mse"}) {
        try {
          const auto c = strata::summarise_learning_curve(points, model, metric, few);
          strata_fuzz::require(c.sizes.size() == c.median.size() && c.median.size() == c.low.size(),
                               "a curve summary's columns differ in length");
          (void)strata::curve_summary_text({c});
        } catch (const strata::data_error&) {  // no such scores, or not one per split and size
        }
      }
  });
  return 0;
}
