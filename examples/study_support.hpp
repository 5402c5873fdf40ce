#pragma once
// The multi-study drug-response data of the example programs that study single-drug response
// (transfer_drug_response, learning_curve): Uno-layout files when a directory is given,
// otherwise the synthetic studies; what was loaded is printed.

#include <boost/program_options.hpp>

#include <strata/data/study_files.hpp>
#include <strata/data/synthetic_studies.hpp>

#include <cstdint>
#include <iostream>
#include <string>

#include "example_support.hpp"

namespace examples {

/// The options that choose the data: --studies DIR, --skip-unknown-ids and --synthetic-seed.
inline void add_study_data_options(boost::program_options::options_description& options, std::string& directory,
                                   bool& skip_unknown_ids, std::uint64_t& synthetic_seed) {
  options.add_options()
      ("studies", boost::program_options::value(&directory), "read Uno-layout files from DIR (default: the synthetic studies)")
      ("skip-unknown-ids", boost::program_options::bool_switch(&skip_unknown_ids),
       "drop response rows naming cells or drugs no table has")
      ("synthetic-seed", option(synthetic_seed), "seed of the synthetic studies");
}

/// Reads the studies in `directory` (cell_features.tsv, drug_features.tsv,
/// combined_single_response_agg), or generates `synthetic` when it is empty.
inline strata::multi_study_data<float> load_studies(const std::string& directory, const strata::synthetic_studies_options& synthetic,
                                                    bool skip_unknown_ids) {
  if (directory.empty()) {
    const auto g = strata::generate_studies<float>(synthetic);
    std::cout << "synthetic studies (seed " << synthetic.seed << "): " << g.data.cells.size() << " cells x " << g.data.cells.width()
              << " features, " << g.data.drugs.size() << " drugs x " << g.data.drugs.width() << " features\n";
    for (std::size_t k = 0; k < synthetic.studies.size(); ++k) {
      const auto& st = synthetic.studies[k];
      std::cout << "  " << st.name << ": " << st.pairs << " pairs of " << st.cells << " cells x " << st.drugs
                << " drugs, best achievable R2 " << g.ceilings[k] << "\n";
    }
    return g.data;
  }
  strata::response_read_options read;
  read.skip_unknown_ids = skip_unknown_ids;
  strata::response_read_report report;
  auto data = strata::read_study_files<float>(directory, read, &report);
  std::cout << "read " << directory << ": " << data.cells.size() << " cells, " << data.drugs.size() << " drugs, " << report.tuples
            << " responses of " << data.studies.size() << " studies (" << report.invalid_rows << " rows without a response, "
            << report.unknown_rows << " with unknown ids skipped)\n";
  return data;
}

}  // namespace examples
