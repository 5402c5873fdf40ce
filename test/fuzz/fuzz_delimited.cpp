// Fuzz target: DelimitedReader (CSV/TSV with a detected delimiter, quoting, BOM, CRLF, blank
// lines) and parse_number on every field, the layer under every text reader of Strata.
#include <strata/data/delimited.hpp>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace strata;
  auto& file = strata_fuzz::input_file::instance();
  file.assign(data, size);
  return strata_fuzz::expect_strata_errors_only([&] {
    DelimitedReader reader(file.path());
    const auto& header = reader.header();
    (void)reader.column_list();
    if (!header.empty()) strata_fuzz::require(reader.find_column(header.front()) == 0, "find_column missed the first column");
    delimited_row row;
    while (reader.next(row)) {
      strata_fuzz::require(row.fields.size() == header.size() && row.columns.size() == header.size(),
                           "a row has a different number of fields than the header");
      for (std::size_t f = 0; f < row.fields.size(); ++f) {
        const auto field = static_cast<Index>(f);
        strata_fuzz::require(row.columns[f] >= 1 && (f == 0 || row.columns[f] > row.columns[f - 1]),
                             "field positions are not increasing");
        (void)reader.where(row, field);
        try {
          (void)reader.number(row, field);  // every field, not just up to the first non-number
        } catch (const data_error&) {
        }
      }
    }
  });
}
