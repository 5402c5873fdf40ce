// Fuzz target: the CANDLE entity tables (read_cell_table: id column "Sample", float;
// read_drug_table: id column "NAME", double), then the preparation a training run applies to
// them (all-NaN columns dropped, a StandardScaler fitted and applied).
#include <numeric>

#include <strata/data/combo_files.hpp>
#include <strata/data/preprocess.hpp>

#include "fuzz_support.hpp"

namespace {
template <class T>
void read_and_prepare(strata::EntityTable<T> table) {
  using strata::Index;
  strata_fuzz::require(table.size() > 0, "an entity table has no entities");
  strata_fuzz::require(table.features().rows() == table.width() && table.features().cols() == table.size() &&
                           static_cast<Index>(table.columns().size()) == table.width(),
                       "an entity table's shape disagrees with its ids and columns");
  for (Index e = 0; e < table.size(); ++e)
    strata_fuzz::require(table.find(table.id(e)) == e, "an entity's id does not find it");
  strata::drop_all_nan_columns(table);
  std::vector<Index> all(static_cast<std::size_t>(table.size()));
  std::iota(all.begin(), all.end(), Index{0});
  strata::StandardScaler scaler;
  scaler.fit(table, all);
  scaler.transform(table);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& file = strata_fuzz::input_file::instance();
  file.assign(data, size);
  strata_fuzz::expect_strata_errors_only([&] { read_and_prepare(strata::read_cell_table<float>(file.path())); });
  strata_fuzz::expect_strata_errors_only([&] { read_and_prepare(strata::read_drug_table<double>(file.path())); });
  return 0;
}
