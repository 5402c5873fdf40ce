// Multi-study single-drug data: the generator's studies measure the windows and pair counts they
// are given, overlap as documented, carry their stated ceiling, and go through Uno-layout files
// and back exactly; bad files and bad requests are clear errors.
#include <catch2/catch.hpp>

#include <strata/data/split.hpp>
#include <strata/data/study_files.hpp>
#include <strata/data/synthetic_studies.hpp>

#include "../support/small_studies.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

synthetic_studies_options small_studies() { return strata_test::small_studies("BIG", "SMALL", "OTHER"); }

std::string temp_dir(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("Each synthetic study measures its own windows of cells and drugs, single drugs, AUC-like responses") {
  const auto g = generate_studies<float>(small_studies());
  const auto& d = g.data;
  REQUIRE_NOTHROW(d.validate());
  CHECK(d.cells.size() == 40);
  CHECK(d.drugs.size() == 30);
  CHECK(d.studies == std::vector<std::string>{"BIG", "SMALL", "OTHER"});
  const auto o = small_studies();
  for (std::size_t s = 0; s < o.studies.size(); ++s) {
    const auto& st = o.studies[s];
    const auto study = d.study(st.name);
    CHECK(static_cast<Index>(study.tuples.size()) == st.pairs);
    CHECK(study.drugs_per_tuple == 1);
    std::set<std::pair<int, int>> pairs;
    for (const auto& t : study.tuples) {
      CHECK(t.cell >= st.first_cell);
      CHECK(t.cell < st.first_cell + st.cells);
      CHECK(t.drug1 >= st.first_drug);
      CHECK(t.drug1 < st.first_drug + st.drugs);
      CHECK(t.drug2 == t.drug1);
      pairs.insert({t.cell, t.drug1});
    }
    CHECK(pairs.size() == study.tuples.size());  // no pair measured twice in one study
  }
  // Clean responses lie in (0, 1), like a dose-response AUC.
  for (const double v : g.signal) {
    CHECK(v > 0.0);
    CHECK(v < 1.0);
  }
  // Overlaps follow from the windows: BIG [0,30)x[0,20), SMALL [10,30)x[15,25).
  const study_overlap big_small = d.overlap("BIG", "SMALL");
  CHECK(big_small.cells <= 20);
  CHECK(big_small.cells >= 15);  // nearly every window cell is measured at 500 of 600 pairs
  CHECK(big_small.drugs <= 5);
  CHECK(big_small.drugs >= 1);
  CHECK(d.overlap("BIG", "OTHER").cells == 0);
  CHECK_THROWS_WITH(d.study("CCLE"), Contains("no study 'CCLE'") && Contains("BIG, SMALL, OTHER"));
}

TEST_CASE("A study's stated ceiling is the R2 of its noiseless response, and the same pair differs between studies") {
  auto o = small_studies();
  o.studies = {{"A", 0, 40, 0, 30, 1200, 1.6, 0.0, 0.8}, {"B", 0, 40, 0, 30, 1200, 2.5, 0.6, 0.6}};
  const auto g = generate_studies<float>(o);
  const auto& d = g.data;
  for (Index s = 0; s < 2; ++s) {
    double mean = 0.0, residual = 0.0, total = 0.0;
    Index n = 0;
    for (std::size_t i = 0; i < d.tuples.size(); ++i)
      if (d.study_of[i] == s) mean += d.tuples[i].response, ++n;
    mean /= static_cast<double>(n);
    for (std::size_t i = 0; i < d.tuples.size(); ++i)
      if (d.study_of[i] == s) {
        residual += (d.tuples[i].response - g.signal[i]) * (d.tuples[i].response - g.signal[i]);
        total += (d.tuples[i].response - mean) * (d.tuples[i].response - mean);
      }
    const double r2 = 1.0 - residual / total;
    INFO("study " << s << ": R2 of the clean response " << r2 << ", stated " << g.ceilings[static_cast<std::size_t>(s)]);
    CHECK(std::abs(r2 - g.ceilings[static_cast<std::size_t>(s)]) < 0.05);
  }
  // Pairs both studies measured: related by a monotone map, not equal.
  std::map<std::pair<int, int>, double> in_a;
  for (std::size_t i = 0; i < d.tuples.size(); ++i)
    if (d.study_of[i] == 0) in_a[{d.tuples[i].cell, d.tuples[i].drug1}] = g.signal[i];
  Index shared = 0, concordant = 0, equal = 0;
  std::vector<std::pair<double, double>> both;
  for (std::size_t i = 0; i < d.tuples.size(); ++i)
    if (d.study_of[i] == 1) {
      const auto it = in_a.find({d.tuples[i].cell, d.tuples[i].drug1});
      if (it == in_a.end()) continue;
      both.emplace_back(it->second, g.signal[i]);
      equal += it->second == g.signal[i] ? 1 : 0;
    }
  for (std::size_t i = 1; i < both.size(); ++i, ++shared)
    concordant += ((both[i].first - both[i - 1].first) * (both[i].second - both[i - 1].second) >= 0) ? 1 : 0;
  CHECK(shared > 100);
  CHECK(concordant == shared);
  CHECK(equal == 0);
}

TEST_CASE("The generator is a pure function of its seed, and refuses impossible studies by name") {
  const auto a = generate_studies<float>(small_studies());
  const auto b = generate_studies<float>(small_studies());
  auto other = small_studies();
  other.seed = 2;
  const auto c = generate_studies<float>(other);
  REQUIRE(a.data.tuples.size() == b.data.tuples.size());
  bool same = true, differs = false;
  for (std::size_t i = 0; i < a.data.tuples.size(); ++i) {
    same = same && a.data.tuples[i].response == b.data.tuples[i].response;
    differs = differs || a.data.tuples[i].response != c.data.tuples[i].response;
  }
  CHECK(same);
  CHECK(differs);

  auto bad = small_studies();
  bad.studies[1].pairs = 201;
  CHECK_THROWS_WITH(generate_studies<float>(bad), Contains("'SMALL'") && Contains("201 pairs"));
  bad = small_studies();
  bad.studies[2].first_cell = 38;
  CHECK_THROWS_WITH(generate_studies<float>(bad), Contains("'OTHER'") && Contains("outside the pool of 40"));
  bad = small_studies();
  bad.studies[2].name = "BIG";
  CHECK_THROWS_WITH(generate_studies<float>(bad), Contains("'BIG'") && Contains("named twice"));
}

TEST_CASE("Multi-study files in Uno's layout read back exactly, and real files' extra columns are ignored") {
  const auto g = generate_studies<float>(small_studies());
  const std::string dir = temp_dir("strata_study_files");
  write_study_files(dir, g.data);
  response_read_report report;
  const auto back = read_study_files<float>(dir, {}, &report);
  CHECK(report.rows == static_cast<Index>(g.data.tuples.size()));
  CHECK(back.studies == g.data.studies);
  REQUIRE(back.tuples.size() == g.data.tuples.size());
  bool same = back.study_of == g.data.study_of;
  for (std::size_t i = 0; i < back.tuples.size(); ++i)
    same = same && back.tuples[i].cell == g.data.tuples[i].cell && back.tuples[i].drug1 == g.data.tuples[i].drug1 &&
           back.tuples[i].drug2 == back.tuples[i].drug1 && back.tuples[i].response == g.data.tuples[i].response;
  CHECK(same);
  CHECK(back.cells.features() == g.data.cells.features());

  // A file like the real one: more columns, STUDY beside SOURCE, a failed fit ("NA").
  write_text(dir + "/real.tsv",
             "SOURCE\tCELL\tDRUG\tSTUDY\tAUC\tIC50\nBIG\tCL-0001\tDRUG-0002\tfoo\t0.5\t1\n"
             "SMALL\tCL-0011\tDRUG-0016\tbar\tNA\t2\nSMALL\tCL-0012\tDRUG-0016\tbar\t0.25\t3\n");
  const auto real = read_study_responses<float>(dir + "/real.tsv", g.data.cells, g.data.drugs, {}, &report);
  CHECK(real.tuples.size() == 2);
  CHECK(report.invalid_rows == 1);
  CHECK(real.studies == std::vector<std::string>{"BIG", "SMALL"});
  CHECK(real.tuples[1].cell == 11);
  CHECK(real.tuples[1].response == 0.25f);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Bad multi-study files are errors that name the file, line and problem") {
  const auto g = generate_studies<float>(small_studies());
  const std::string dir = temp_dir("strata_study_bad");
  const auto read = [&](const std::string& text) {
    write_text(dir + "/r.tsv", text);
    return read_study_responses<float>(dir + "/r.tsv", g.data.cells, g.data.drugs);
  };
  CHECK_THROWS_WITH(read("CELL\tDRUG\tAUC\nCL-0001\tDRUG-0001\t0.5\n"), Contains("source"));
  CHECK_THROWS_WITH(read("SOURCE\tCELL\tDRUG\tAUC\nBIG\tCL-0001\tDRUG-0001\tabc\n"), Contains("r.tsv:2"));
  CHECK_THROWS_WITH(read("SOURCE\tCELL\tDRUG\tAUC\nBIG\tCL-9999\tDRUG-0001\t0.5\n"), Contains("CL-9999"));
  CHECK_THROWS_WITH(read("SOURCE\tCELL\tDRUG\tAUC\n\tCL-0001\tDRUG-0001\t0.5\n"), Contains("r.tsv:2") && Contains("empty"));
  CHECK_THROWS_WITH(read("SOURCE\tCELL\tDRUG\tAUC\nBIG\tCL-0001\tDRUG-0001\tNA\n"), Contains("no usable rows"));
  CHECK_THROWS_WITH(read_study_files<float>(dir + "/nowhere"), Contains("nowhere"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("Single-drug samples are the cell's features followed by the drug's") {
  drug_response_data<float> d;
  d.cells = EntityTable<float>({"c0", "c1"}, {"g0", "g1"}, (host_matrix<float>(2, 2) << 1, 2, 3, 4).finished());
  d.drugs = EntityTable<float>({"d0", "d1"}, {"x0", "x1", "x2"}, (host_matrix<float>(3, 2) << 5, 8, 6, 8, 7, 8).finished());
  d.tuples = {{1, 0, 0, 0.5f}};
  d.drugs_per_tuple = 1;
  const DrugResponseDataset<float> view(std::make_shared<const drug_response_data<float>>(d));
  CHECK(view.input_width() == 5);
  host_matrix<float> x, y;
  const Index first = 0;
  view.gather(&first, 1, x, y);
  CHECK(x.rows() == 5);
  CHECK(x(0, 0) == 2.0f);  // cell c1 is the second column: features (2, 4)
  CHECK(x(1, 0) == 4.0f);
  CHECK(x(2, 0) == 5.0f);
  CHECK(x(4, 0) == 7.0f);
  d.tuples = {{1, 0, 1, 0.5f}};
  CHECK_THROWS_WITH(d.validate(), Contains("names two drugs"));
}

TEST_CASE("Rotating folds of one study over shared tables partition its tuples, no fold empty") {
  // SMALL measures 20 of the 40 cells and 10 of the 30 drugs: folds are made of those alone.
  const auto small = generate_studies<float>(small_studies()).data.study("SMALL");
  for (const auto scheme : {split_scheme::random, split_scheme::cell_blind, split_scheme::drug_blind}) {
    const auto folds = k_fold_rotating(small, scheme, 10, 1);
    std::vector<int> tested(small.tuples.size(), 0);
    for (const auto& f : folds) {
      CHECK(f.train.size() + f.validation.size() + f.test.size() == small.tuples.size());
      CHECK(!f.test.empty());
      CHECK(!f.validation.empty());
      for (const Index i : f.test) ++tested[static_cast<std::size_t>(i)];
    }
    CHECK(std::all_of(tested.begin(), tested.end(), [](int n) { return n == 1; }));
  }
  CHECK_THROWS_WITH(k_fold_rotating(small, split_scheme::drug_blind, 11, 1), Contains("k must be in [2, 10]") && Contains("10 drugs"));
}
