// CANDLE Combo text files: every kind of bad input is reported with the file and, where there is
// one, line:column; real-file variations (CRLF, byte-order mark, quotes, blank lines) read the
// same as clean files; ComboDrugGrowth rows are summarised as the benchmark defines (replicates
// averaged, minimum over doses, / 100); and what the writers write reads back bit for bit.
#include <catch2/catch.hpp>

#include <strata/data/combo_files.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace strata;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

namespace {

/// A fresh directory under the system temporary directory for one test, removed afterwards.
class scratch_directory {
 public:
  scratch_directory()
      : root_(std::filesystem::temp_directory_path() /
              ("strata_combo_files_" + std::to_string(std::random_device{}()) + "_" +
               std::to_string(std::random_device{}()))) {
    std::filesystem::create_directories(root_);
  }
  ~scratch_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  scratch_directory(const scratch_directory&) = delete;
  scratch_directory& operator=(const scratch_directory&) = delete;

  /// Where a file called `name` goes.
  std::string path(const std::string& name) const { return (root_ / name).string(); }

  /// Writes `content` byte for byte to a file called `name`; returns its path.
  std::string file(const std::string& name, const std::string& content) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    REQUIRE(out.good());
    return p;
  }

 private:
  std::filesystem::path root_;
};

bool same_bits(float a, float b) {
  std::uint32_t x = 0, y = 0;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return x == y;
}

/// Equal ids, column names and features (NaN where the other has NaN, identical bits elsewhere).
template <class T>
void require_same_table(const EntityTable<T>& read, const EntityTable<T>& written) {
  REQUIRE(read.ids() == written.ids());
  REQUIRE(read.columns() == written.columns());
  REQUIRE(read.features().rows() == written.features().rows());
  REQUIRE(read.features().cols() == written.features().cols());
  for (Index i = 0; i < written.features().size(); ++i) {
    const T a = read.features().data()[i], b = written.features().data()[i];
    INFO("feature " << i << ": read " << a << ", written " << b);
    REQUIRE(std::isnan(a) == std::isnan(b));
    if (!std::isnan(b)) REQUIRE(std::memcmp(&a, &b, sizeof(T)) == 0);
  }
}

void require_same_tuples(const std::vector<response_tuple>& read, const std::vector<response_tuple>& written) {
  REQUIRE(read.size() == written.size());
  for (std::size_t i = 0; i < written.size(); ++i) {
    INFO("tuple " << i << ": read response " << read[i].response << ", written " << written[i].response);
    REQUIRE(read[i].cell == written[i].cell);
    REQUIRE(read[i].drug1 == written[i].drug1);
    REQUIRE(read[i].drug2 == written[i].drug2);
    REQUIRE(same_bits(read[i].response, written[i].response));
  }
}

/// Two cells and two drugs named as CANDLE's tables name them.
EntityTable<float> small_cells() {
  matrix_f features(2, 2);
  features << 1, 2, 3, 4;
  return EntityTable<float>({"NCI60.A549", "NCI60.HOP-62"}, {"g1", "g2"}, features);
}
EntityTable<float> small_drugs() {
  matrix_f features(1, 2);
  features << 5, 6;
  return EntityTable<float>({"NSC.740", "NSC.3088"}, {"d1"}, features);
}

const std::string combo_header = "CELLNAME,NSC1,CONC1,NSC2,CONC2,PERCENTGROWTH,VALID\n";

}  // namespace

// --- Bad input: each names the file and, where there is one, line:column ------------------------

TEST_CASE("a missing file is an io_error naming the path and the reason", "[combo_files]") {
  const scratch_directory dir;
  const std::string missing = dir.path("no_such_table.tsv");
  REQUIRE_THROWS_AS(read_cell_table(missing), io_error);
  REQUIRE_THROWS_WITH(read_cell_table(missing),
                      Contains("cannot open '" + missing + "': ") && Contains("No such file or directory"));
}

TEST_CASE("an empty file, or one holding only a byte-order mark and blank lines, is reported as empty",
          "[combo_files]") {
  const scratch_directory dir;
  const std::string empty = dir.file("empty.tsv", "");
  REQUIRE_THROWS_AS(read_cell_table(empty), data_error);
  REQUIRE_THROWS_WITH(read_cell_table(empty), Equals(empty + ": the file is empty"));
  const std::string blank = dir.file("blank.tsv", "\xEF\xBB\xBF  \r\n\n \t \n");
  REQUIRE_THROWS_WITH(read_cell_table(blank), Equals(blank + ": the file is empty"));
}

TEST_CASE("a row with too few fields is reported one past the end of its line (blank lines counted)",
          "[combo_files]") {
  const scratch_directory dir;
  // Line 4 is "B\t3": three characters, so the missing third field would start at column 4.
  const std::string p = dir.file("short.tsv", "Sample\tg1\tg2\nA\t1\t2\n\nB\t3\n");
  REQUIRE_THROWS_AS(read_cell_table(p), data_error);
  REQUIRE_THROWS_WITH(read_cell_table(p), Equals(p + ":4:4: expected 3 fields (as in the header), found 2"));
}

TEST_CASE("a row with too many fields is reported where the first extra field starts", "[combo_files]") {
  const scratch_directory dir;
  // Line 3 is "B,2,3": the extra field "3" starts at column 5.
  const std::string p = dir.file("long.csv", "Sample,g1\nA,1\nB,2,3\n");
  REQUIRE_THROWS_AS(read_cell_table(p), data_error);
  REQUIRE_THROWS_WITH(read_cell_table(p), Equals(p + ":3:5: expected 2 fields (as in the header), found 3"));
  // A trailing delimiter is an extra (empty) field too, starting just past it.
  const std::string trailing = dir.file("trailing.csv", "Sample,g1\nA,1,\n");
  REQUIRE_THROWS_WITH(read_cell_table(trailing),
                      Equals(trailing + ":2:5: expected 2 fields (as in the header), found 3"));
}

TEST_CASE("a non-numeric feature value is reported with its text at file:line:column", "[combo_files]") {
  const scratch_directory dir;
  // Line 2 is "A\t1.5\tabc": "abc" starts at column 7.
  const std::string p = dir.file("text.tsv", "Sample\tg1\tg2\nA\t1.5\tabc\n");
  REQUIRE_THROWS_AS(read_cell_table(p), data_error);
  REQUIRE_THROWS_WITH(read_cell_table(p), Equals(p + ":2:7: 'abc' is not a number"));
}

TEST_CASE("a value beyond the range of float is a positioned error, not an infinity", "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("huge.tsv", "Sample\tg1\nA\t1e39\n");
  REQUIRE_THROWS_WITH(read_cell_table(p), Equals(p + ":2:3: '1e39' is beyond the range of float"));
  REQUIRE(read_entity_table<double>(p, "Sample").features()(0, 0) == 1e39);
  const std::string plain = dir.file("huge.csv", "cell,drug1,drug2,response\nA549,740,740,-4e38\n");
  REQUIRE_THROWS_WITH(read_response_tuples(plain, small_cells(), small_drugs()),
                      Equals(plain + ":2:14: '-4e38' gives a response beyond the range of float"));
}

TEST_CASE("parse_number takes decimal and scientific forms, gives NaN for missing markers, rejects the rest",
          "[combo_files]") {
  REQUIRE(parse_number("12", "f.csv", 1, 1) == 12.0);
  REQUIRE(parse_number("  -0.5 ", "f.csv", 1, 1) == -0.5);
  REQUIRE(parse_number("3.1e-07", "f.csv", 1, 1) == 3.1e-07);
  REQUIRE(parse_number("+.5E+2", "f.csv", 1, 1) == 50.0);
  REQUIRE(parse_number("7.", "f.csv", 1, 1) == 7.0);
  for (const char* missing : {"", "  ", "NA", "NaN", "nan", "N/A", "null", "NULL", " NA "})
    REQUIRE(std::isnan(parse_number(missing, "f.csv", 1, 1)));
  REQUIRE_THROWS_WITH(parse_number("1.2.3", "f.csv", 4, 9), Equals("f.csv:4:9: '1.2.3' is not a number"));
  REQUIRE_THROWS_WITH(parse_number("5x", "f.csv", 2, 3), Equals("f.csv:2:3: '5x' is not a number"));
  REQUIRE_THROWS_WITH(parse_number(" abc ", "f.csv", 2, 3), Equals("f.csv:2:3: 'abc' is not a number"));
  for (const char* not_decimal : {"0x10", "inf", "-infinity", "1e", "e5", ".", "-", "1 2", "nan(1)"})
    REQUIRE_THROWS_AS(parse_number(not_decimal, "f.csv", 1, 1), data_error);
  REQUIRE_THROWS_WITH(parse_number("1e999", "f.csv", 1, 1), Equals("f.csv:1:1: '1e999' is too large for a double"));
}

TEST_CASE("a duplicate entity id names both lines", "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("twice.tsv", "Sample\tg1\nA\t1\nB\t2\nA\t3\n");
  REQUIRE_THROWS_AS(read_cell_table(p), data_error);
  REQUIRE_THROWS_WITH(read_cell_table(p), Equals(p + ":4:1: id 'A' already appeared on line 2"));
  const std::string empty_id = dir.file("empty_id.tsv", "g1\tSample\n1\tA\n2\t \n");
  REQUIRE_THROWS_WITH(read_cell_table(empty_id), Equals(empty_id + ":3:3: empty id in column 'Sample'"));
}

TEST_CASE("a missing required column is named, with the columns the file has", "[combo_files]") {
  const scratch_directory dir;
  const std::string table = dir.file("no_sample.tsv", "Cell\tg1\nA\t1\n");
  REQUIRE_THROWS_AS(read_cell_table(table), data_error);
  REQUIRE_THROWS_WITH(read_cell_table(table), Equals(table + ": no column 'Sample' (columns: Cell, g1)"));

  const std::string combo = dir.file("no_growth.csv", "CELLNAME,NSC1,CONC1,NSC2,CONC2,VALID\nA549,740,1,,,Y\n");
  REQUIRE_THROWS_WITH(read_combo_response(combo, small_cells(), small_drugs()),
                      Equals(combo + ": no column 'PERCENTGROWTH' (columns: CELLNAME, NSC1, CONC1, NSC2, CONC2, "
                                     "VALID)"));

  const std::string plain = dir.file("no_response.csv", "cell,drug1,drug2,value\nA549,740,740,0.5\n");
  REQUIRE_THROWS_WITH(read_response_tuples(plain, small_cells(), small_drugs()),
                      Contains(plain + ": no column 'response' (nor 'growth'; case ignored; columns: cell, drug1, "
                                       "drug2, value)"));
}

TEST_CASE("a long column list in an error shows the first ten columns and the count", "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("wide.csv", "c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,c12\n");
  const DelimitedReader reader(p);
  REQUIRE_THROWS_WITH(reader.column("Sample"),
                      Equals(p + ": no column 'Sample' (columns: c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, ... (12 in "
                                 "all))"));
}

TEST_CASE("a missing response is a positioned error in both response formats", "[combo_files]") {
  const scratch_directory dir;
  // Line 3 is "A549,740,3088,NA": the response starts at column 15.
  const std::string plain = dir.file("nan.csv", "cell,drug1,drug2,response\nA549,740,740,0.5\nA549,740,3088,NA\n");
  REQUIRE_THROWS_AS(read_response_tuples(plain, small_cells(), small_drugs()), data_error);
  REQUIRE_THROWS_WITH(read_response_tuples(plain, small_cells(), small_drugs()),
                      Equals(plain + ":3:15: response is missing ('NA') but every row needs one"));

  // Line 2 is "A549,740,1e-6,3088,1e-6,,Y": PERCENTGROWTH (empty) starts at column 25.
  const std::string combo = dir.file("nan_combo.csv", combo_header + "A549,740,1e-6,3088,1e-6,,Y\n");
  REQUIRE_THROWS_WITH(read_combo_response(combo, small_cells(), small_drugs()),
                      Equals(combo + ":2:25: PERCENTGROWTH is missing ('') but every row needs one"));

  // Text where a dose belongs is positioned too; in a VALID=N row nothing is parsed at all.
  const std::string dose = dir.file("dose.csv", combo_header + "A549,740,abc,,,5,N\nA549,740,high,,,5,Y\n");
  REQUIRE_THROWS_WITH(read_combo_response(dose, small_cells(), small_drugs()),
                      Equals(dose + ":3:10: 'high' is not a number"));
}

// --- Unknown ids ---------------------------------------------------------------------------------

TEST_CASE("response rows naming ids no table has fail the read with the count and examples", "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("unknown.csv", combo_header +
                                                    "A549,740,1e-6,3088,1e-6,40,Y\n"  // line 2: known
                                                    "FOO,740,1e-6,3088,1e-6,40,Y\n"   // line 3: unknown cell
                                                    "BAR,740,1e-6,3088,1e-6,40,N\n"   // line 4: invalid, not counted
                                                    "A549,123,1e-6,,,40,Y\n");        // line 5: unknown drug
  REQUIRE_THROWS_AS(read_combo_response(p, small_cells(), small_drugs()), data_error);
  REQUIRE_THROWS_WITH(read_combo_response(p, small_cells(), small_drugs()),
                      Equals(p + ": 2 rows name ids that no table has, e.g. line 3: cell 'FOO'; line 5: drug '123' "
                                 "(pass skip_unknown_ids / --skip-unknown-ids to drop them)"));

  const std::string plain = dir.file("unknown_plain.tsv", "Cell\tDrug1\tDrug2\tGrowth\nZZZ\t740\t999\t0.5\n");
  REQUIRE_THROWS_WITH(read_response_tuples(plain, small_cells(), small_drugs()),
                      Equals(plain + ": 1 row names ids that no table has, e.g. line 2: cell 'ZZZ', drug '999' "
                                     "(pass skip_unknown_ids / --skip-unknown-ids to drop them)"));
}

TEST_CASE("skip_unknown_ids drops rows naming unknown ids and reports them", "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("unknown.csv", combo_header +
                                                    "A549,740,1e-6,3088,1e-6,40,Y\n"
                                                    "FOO,740,1e-6,3088,1e-6,40,Y\n"
                                                    "BAR,740,1e-6,3088,1e-6,40,N\n"
                                                    "A549,123,1e-6,,,40,Y\n");
  response_read_options options;
  options.skip_unknown_ids = true;
  response_read_report report;
  const auto tuples = read_combo_response(p, small_cells(), small_drugs(), options, &report);
  REQUIRE(tuples.size() == 1);
  REQUIRE(tuples[0].cell == 0);
  REQUIRE(tuples[0].drug1 == 0);
  REQUIRE(tuples[0].drug2 == 1);
  REQUIRE(tuples[0].response == 0.4f);
  REQUIRE(report.rows == 4);
  REQUIRE(report.invalid_rows == 1);
  REQUIRE(report.unknown_rows == 2);
  REQUIRE(report.tuples == 1);
  REQUIRE(report.unknown_examples == std::vector<std::string>{"line 3: cell 'FOO'", "line 5: drug '123'"});

  const std::string plain =
      dir.file("unknown_plain.csv", "cell,drug1,drug2,response\nA549,740,740,0.5\nZZZ,740,740,1\n");
  response_read_report plain_report;
  const auto plain_tuples = read_response_tuples(plain, small_cells(), small_drugs(), options, &plain_report);
  REQUIRE(plain_tuples.size() == 1);
  REQUIRE(plain_report.rows == 2);
  REQUIRE(plain_report.unknown_rows == 1);
  REQUIRE(plain_report.tuples == 1);
}

TEST_CASE("response ids resolve exactly first, then with the NCI60. and NSC. prefixes", "[combo_files]") {
  const EntityTable<float> cells = small_cells(), drugs = small_drugs();
  REQUIRE(resolve_entity_id(cells, "NCI60.HOP-62", cell_id_prefix) == 1);
  REQUIRE(resolve_entity_id(cells, "HOP-62", cell_id_prefix) == 1);
  REQUIRE(resolve_entity_id(drugs, "3088", drug_id_prefix) == 1);
  REQUIRE(resolve_entity_id(drugs, "NSC.3088", drug_id_prefix) == 1);
  REQUIRE(resolve_entity_id(drugs, "3089", drug_id_prefix) == EntityTable<float>::npos);
  matrix_f features(1, 2);
  features << 0, 0;
  const EntityTable<float> both({"NSC.740", "740"}, {"d"}, features);
  REQUIRE(resolve_entity_id(both, "740", drug_id_prefix) == 1);
}

// --- File variations -------------------------------------------------------------------------

TEST_CASE("CRLF line endings read the same values as LF", "[combo_files]") {
  const scratch_directory dir;
  const std::string lf = dir.file("lf.tsv", "Sample\tg1\tg2\nA\t1.5\tNA\nB\t-2e-3\t7\n");
  const std::string crlf = dir.file("crlf.tsv", "Sample\tg1\tg2\r\nA\t1.5\tNA\r\nB\t-2e-3\t7\r\n");
  const EntityTable<float> from_lf = read_cell_table(lf), from_crlf = read_cell_table(crlf);
  require_same_table(from_crlf, from_lf);
  REQUIRE(from_crlf.ids() == std::vector<std::string>{"A", "B"});
  REQUIRE(from_crlf.columns() == std::vector<std::string>{"g1", "g2"});
  REQUIRE(from_crlf.features()(1, 1) == 7.0f);

  const std::string combo = dir.file("crlf.csv", "CELLNAME,NSC1,CONC1,NSC2,CONC2,PERCENTGROWTH,VALID\r\n"
                                                 "A549,740,1e-6,,,40,Y\r\n");
  const auto tuples = read_combo_response(combo, small_cells(), small_drugs());
  REQUIRE(tuples.size() == 1);
  REQUIRE(tuples[0].response == 0.4f);
}

TEST_CASE("a UTF-8 byte-order mark is skipped, so the first column name is found", "[combo_files]") {
  const scratch_directory dir;
  const std::string plain = dir.file("plain.tsv", "Sample\tg1\nA\t1\n");
  const std::string bom = dir.file("bom.tsv", "\xEF\xBB\xBFSample\tg1\nA\t1\n");
  const EntityTable<float> table = read_cell_table(bom);
  require_same_table(table, read_cell_table(plain));
  REQUIRE(table.columns() == std::vector<std::string>{"g1"});
  // Columns count from after the mark: the quote opening "g1 is the 8th character of line 1.
  const std::string open_quote = dir.file("bom_quote.csv", "\xEF\xBB\xBF" "Sample,\"g1\nA,1\n");
  REQUIRE_THROWS_WITH(read_cell_table(open_quote), Contains(open_quote + ":1:8: the quoted field starting here"));
}

TEST_CASE("quoted CSV fields may hold the delimiter and doubled quotes", "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("quoted.csv", "\"Sample\",g1\n\"A,1\",2\n\"say \"\"hi\"\"\",\"3\"\n");
  const EntityTable<float> table = read_cell_table(p);
  REQUIRE(table.ids() == std::vector<std::string>{"A,1", "say \"hi\""});
  REQUIRE(table.features()(0, 1) == 3.0f);
  const std::string open = dir.file("open_quote.csv", "Sample,g1\n\"A,2\n");
  REQUIRE_THROWS_WITH(read_cell_table(open),
                      Equals(open + ":2:1: the quoted field starting here has no closing quote on this line (fields "
                                    "spanning lines are not supported)"));
}

TEST_CASE("the delimiter is detected from the header: tab if it holds one, else comma", "[combo_files]") {
  const scratch_directory dir;
  const DelimitedReader tsv(dir.file("a.tsv", "Sample\tx,y\n"));
  REQUIRE(tsv.delimiter() == '\t');
  REQUIRE(tsv.header() == std::vector<std::string>{"Sample", "x,y"});
  const DelimitedReader csv(dir.file("a.csv", " Sample , x y \n"));
  REQUIRE(csv.delimiter() == ',');
  REQUIRE(csv.header() == std::vector<std::string>{"Sample", "x y"});
  const DelimitedReader forced(dir.file("b.csv", "Sample;g1\n"), ';');
  REQUIRE(forced.header() == std::vector<std::string>{"Sample", "g1"});
}

// --- ComboDrugGrowth semantics ---------------------------------------------------------------

TEST_CASE("ComboDrugGrowth replicates are averaged and the minimum over doses, / 100, is the response",
          "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("growth.csv",
                                 "COMBODRUGSEQ,NSC1,CONC1,NSC2,CONC2,PERCENTGROWTH,VALID,PANEL,CELLNAME\n"
                                 "1,740,1e-6,3088,1e-6,40,Y,Lung,A549\n"      // replicates 40 and 50 -> 45
                                 "2,740,1e-6,3088,1e-6,50,Y,Lung,A549\n"
                                 "3,740,1e-5,3088,1e-5,30,Y,Lung,A549\n"      // the lowest dose mean
                                 "4,740,1e-5,3088,1e-5,-500,N,Lung,A549\n"    // invalid: ignored
                                 "5,740,1e-6,3088,1e-5,35,Y,Lung,A549\n"
                                 "6,740,1e-6,3088,1e-6,10,Y,Lung,HOP-62\n"    // replicates 10 and 20 -> 15
                                 "7,740,1e-5,3088,1e-5,40,Y,Lung,HOP-62\n"
                                 "8,740,1e-6,3088,1e-6,20,Y,Lung,HOP-62\n"
                                 "9,3088,1e-6,,,80,Y,Lung,A549\n"             // single agent: drug2 = drug1
                                 "10,3088,1e-5,,,70,Y,Lung,A549\n");
  response_read_report report;
  const auto tuples = read_combo_response(p, small_cells(), small_drugs(), {}, &report);
  REQUIRE(tuples.size() == 3);
  // In order of first appearance of (cell, NSC1, NSC2).
  REQUIRE(tuples[0].cell == 0);
  REQUIRE(tuples[0].drug1 == 0);
  REQUIRE(tuples[0].drug2 == 1);
  REQUIRE(tuples[0].response == static_cast<float>(30.0 / 100.0));
  REQUIRE(tuples[1].cell == 1);
  REQUIRE(tuples[1].response == static_cast<float>(15.0 / 100.0));
  REQUIRE(tuples[2].cell == 0);
  REQUIRE(tuples[2].drug1 == 1);
  REQUIRE(tuples[2].drug2 == 1);
  REQUIRE(tuples[2].response == static_cast<float>(70.0 / 100.0));
  REQUIRE(report.rows == 10);
  REQUIRE(report.invalid_rows == 1);
  REQUIRE(report.unknown_rows == 0);
  REQUIRE(report.tuples == 3);
}

TEST_CASE("a plain tuple file reads one tuple per row, an empty drug2 meaning a single drug", "[combo_files]") {
  const scratch_directory dir;
  const std::string p = dir.file("tuples.tsv", "CellName\tdrug1\tdrug2\tresponse\textra\n"
                                               "NCI60.HOP-62\tNSC.3088\t740\t-0.25\tx\n"
                                               "A549\t740\t\t1.5\ty\n");
  const auto tuples = read_response_tuples(p, small_cells(), small_drugs());
  REQUIRE(tuples.size() == 2);
  REQUIRE(tuples[0].cell == 1);
  REQUIRE(tuples[0].drug1 == 1);
  REQUIRE(tuples[0].drug2 == 0);
  REQUIRE(tuples[0].response == -0.25f);
  REQUIRE(tuples[1].cell == 0);
  REQUIRE(tuples[1].drug1 == 0);
  REQUIRE(tuples[1].drug2 == 0);
  REQUIRE(tuples[1].response == 1.5f);
}

TEST_CASE("a tuple file streams in pieces, with or without responses", "[combo_files]") {
  const scratch_directory dir;
  std::string rows = "cell,drug1,drug2\n";
  for (int k = 0; k < 7; ++k) rows += k % 2 ? "A549,740,\n" : "NCI60.HOP-62,NSC.3088,740\n";
  const std::string p = dir.file("tuples.csv", rows + "FOO,740,740\n");
  const auto cells = small_cells();
  const auto drugs = small_drugs();
  using reader_t = ResponseTupleReader<float>;
  REQUIRE_THROWS_WITH(reader_t(p, cells, drugs), Contains("no column 'response'"));  // required unless optional

  response_read_options skip;
  skip.skip_unknown_ids = true;
  reader_t reader(p, cells, drugs, skip, reader_t::responses::optional);
  CHECK_FALSE(reader.has_responses());
  std::vector<response_tuple> piece;
  std::vector<std::size_t> sizes;
  std::vector<std::int32_t> cell_order;
  while (reader.next(3, piece)) {
    sizes.push_back(piece.size());
    for (const auto& t : piece) {
      cell_order.push_back(t.cell);
      CHECK(t.response == 0.0f);
    }
  }
  CHECK(sizes == std::vector<std::size_t>{3, 3, 1});
  CHECK(cell_order == std::vector<std::int32_t>{1, 0, 1, 0, 1, 0, 1});
  const response_read_report report = reader.finish();
  CHECK(report.rows == 8);
  CHECK(report.tuples == 7);
  CHECK(report.unknown_rows == 1);

  reader_t strict(p, cells, drugs, {}, reader_t::responses::optional);
  while (strict.next(100, piece)) {
  }
  CHECK_THROWS_WITH(strict.finish(), Contains("line 9: cell 'FOO'"));
}

// --- Writers ---------------------------------------------------------------------------------

TEST_CASE("tables, ComboDrugGrowth files and plain tuple files written by Strata read back exactly",
          "[combo_files]") {
  const scratch_directory dir;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  drug_response_data<float> data;
  matrix_f cell_features(3, 3);
  cell_features << 0.1f, 1e-7f, -123.456f,  //
      nan, std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),  //
      -0.0f, 16777217.0f, 1.0f / 3.0f;
  data.cells = EntityTable<float>({"NCI60.A549", "NCI60.HOP-62", "NCI60.786-0"}, {"gene 1", "gene,2", "g3"},
                                  cell_features);
  matrix_f drug_features(2, 4);
  drug_features << 2.5f, nan, -1e-30f, 3.4e38f,  //
      0.3f, 7.0f, nan, -std::numeric_limits<float>::min();
  data.drugs = EntityTable<float>({"NSC.740", "NSC.3088", "NSC.123127", "NSC.757441"}, {"MW", "nHBDon"}, drug_features);
  data.tuples = {{0, 0, 1, 0.1f},         {1, 2, 2, -0.75f}, {2, 3, 0, 1e-7f},  {0, 1, 0, -123.456f},
                 {1, 0, 3, 1.23456789f}, {2, 1, 1, -0.0f},  {0, 3, 3, 3e-39f}, {2, 2, 3, 1.7f}};

  const std::string cells_path = dir.path("cells.tsv"), drugs_path = dir.path("drugs.tsv"),
                    combo_path = dir.path("ComboDrugGrowth.csv"), tuples_path = dir.path("tuples.csv");
  write_entity_table(cells_path, data.cells, "Sample");
  write_entity_table(drugs_path, data.drugs, "NAME");
  write_combo_response(combo_path, data);
  write_response_tuples(tuples_path, data);
  for (const std::string& p : {cells_path, drugs_path, combo_path, tuples_path})
    REQUIRE_FALSE(std::filesystem::exists(p + ".tmp"));

  const EntityTable<float> cells = read_cell_table(cells_path), drugs = read_drug_table(drugs_path);
  require_same_table(cells, data.cells);
  require_same_table(drugs, data.drugs);

  response_read_report report;
  require_same_tuples(read_combo_response(combo_path, cells, drugs, {}, &report), data.tuples);
  REQUIRE(report.rows == 4 * static_cast<Index>(data.tuples.size()));
  REQUIRE(report.invalid_rows == static_cast<Index>(data.tuples.size()));
  require_same_tuples(read_response_tuples(tuples_path, cells, drugs), data.tuples);

  // The growth file names drugs by their bare NSC number, as NCI-ALMANAC does.
  std::ifstream combo(combo_path);
  std::string header, first_row;
  std::getline(combo, header);
  std::getline(combo, first_row);
  REQUIRE(first_row == "1,740,1e-08,M,3088,1e-08,M,10.000000149011612,Y,unspecified,NCI60.A549");

  // A CSV table and a double table round-trip as well.
  const std::string csv_path = dir.path("cells.csv");
  write_entity_table(csv_path, data.cells, "Sample", ',');
  require_same_table(read_cell_table(csv_path), data.cells);
  host_matrix<double> precise(1, 2);
  precise << 0.1, -1.0 / 3.0;
  const EntityTable<double> doubles({"a", "b"}, {"x"}, precise);
  write_entity_table(dir.path("doubles.tsv"), doubles, "id");
  require_same_table(read_entity_table<double>(dir.path("doubles.tsv"), "id"), doubles);
}

TEST_CASE("writers refuse data the format cannot hold and leave no file behind", "[combo_files]") {
  const scratch_directory dir;
  drug_response_data<float> data;
  data.cells = small_cells();
  data.drugs = small_drugs();
  data.tuples = {{0, 0, 1, 0.5f}, {0, 0, 1, 0.25f}};
  const std::string combo = dir.path("twice.csv");
  REQUIRE_THROWS_WITH(write_combo_response(combo, data),
                      Equals(combo + ": tuples 0 and 1 are both cell 'NCI60.A549' with drugs 'NSC.740' and "
                                     "'NSC.3088'; the format keeps one response per combination"));
  REQUIRE_FALSE(std::filesystem::exists(combo));

  data.tuples = {{0, 0, 5, 0.5f}};
  const std::string bad = dir.path("bad.csv");
  REQUIRE_THROWS_WITH(write_response_tuples(bad, data), Contains(bad + ": cannot write: drug-response tuple 0"));

  EntityTable<float> infinite = small_cells();
  infinite.features()(1, 0) = std::numeric_limits<float>::infinity();
  const std::string table = dir.path("inf.tsv");
  REQUIRE_THROWS_WITH(write_entity_table(table, infinite, "Sample"),
                      Equals(table + ": entity 'NCI60.A549', column 'g2' is infinite; the text format holds finite "
                                     "numbers and NA only"));
  REQUIRE_FALSE(std::filesystem::exists(table));
  REQUIRE_FALSE(std::filesystem::exists(table + ".tmp"));

  const std::string nowhere = dir.path("missing_dir/cells.tsv");
  REQUIRE_THROWS_AS(write_entity_table(nowhere, small_cells(), "Sample"), io_error);
  REQUIRE_THROWS_WITH(write_entity_table(nowhere, small_cells(), "Sample"),
                      Contains("cannot open '" + nowhere + ".tmp' for writing: No such file or directory"));
}
