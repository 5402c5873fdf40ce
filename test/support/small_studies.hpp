#pragma once
// Three small synthetic studies over pools of 40 cells and 30 drugs, for the tests of
// multi-study data and of transfer studies: a large one (cells [0,30) x drugs [0,20), 500
// pairs), a small one overlapping it (cells [10,30) x drugs [15,25), 150 pairs) and one that
// shares nothing with the small one (cells [35,40) x drugs [25,30), 20 pairs).
#include <strata/data/synthetic_studies.hpp>

#include <string>

namespace strata_test {

inline strata::synthetic_studies_options small_studies(const std::string& large, const std::string& small,
                                                       const std::string& apart) {
  strata::synthetic_studies_options o;
  o.cells = 40;
  o.drugs = 30;
  o.cell_width = 8;
  o.drug_width = 12;
  o.studies = {{large, 0, 30, 0, 20, 500, 1.6, 0.0, 0.9}, {small, 10, 20, 15, 10, 150, 2.0, 0.5, 0.8},
               {apart, 35, 5, 25, 5, 20, 1.0, 0.0, 0.7}};
  return o;
}

}  // namespace strata_test
