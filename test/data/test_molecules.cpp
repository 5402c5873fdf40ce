// SMILES input through RDKit (built only when RDKit is installed): Morgan fingerprints against
// RDKit's published bit positions, molecule files with bad rows, and a fingerprint model that
// learns TPSA of real NCI molecules (Debian's rdkit-data).
#include <catch2/catch.hpp>

#include <strata/chem/morgan.hpp>
#include <strata/data/molecule_files.hpp>
#include <strata/models/docking.hpp>
#include <strata/train/trainer.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

std::set<Index> set_bits(const std::vector<float>& fp) {
  std::set<Index> bits;
  for (std::size_t i = 0; i < fp.size(); ++i)
    if (fp[i] != 0.0f) bits.insert(static_cast<Index>(i));
  return bits;
}

std::string write_file(const std::string& name, const std::string& text) {
  std::ofstream(name) << text;
  return name;
}

}  // namespace

TEST_CASE("Morgan fingerprints (radius 2, 2,048 bits) match RDKit's known bit positions") {
  const MorganFeaturizer bits;
  std::vector<float> fp(2048);
  REQUIRE(bits.featurize("CCO", fp.data()));  // ethanol
  CHECK(set_bits(fp) == std::set<Index>{80, 222, 294, 807, 1057, 1410});
  REQUIRE(bits.featurize("c1ccccc1", fp.data()));  // benzene: three environments
  CHECK(set_bits(fp) == std::set<Index>{389, 1088, 1873});
  REQUIRE(bits.featurize("CC(=O)Oc1ccccc1C(=O)O", fp.data()));  // aspirin
  CHECK(set_bits(fp).size() == 24);
  CHECK(set_bits(fp).count(1873) == 1);

  morgan_options o;
  o.counts = true;
  const MorganFeaturizer counts(o);
  REQUIRE(counts.featurize("c1ccccc1", fp.data()));
  CHECK(fp[389] == 6.0f);  // six equivalent aromatic carbons
  CHECK(fp[1088] == 6.0f);
  CHECK(std::accumulate(fp.begin(), fp.end(), 0.0f) == 18.0f);

  CHECK_FALSE(bits.featurize("C1CC", fp.data()));  // unclosed ring
  CHECK_FALSE(bits.featurize("not a smiles", fp.data()));
  CHECK(set_bits(fp).empty());
}

TEST_CASE("SMILES files: bad molecules are counted with their lines, strict mode stops") {
  const MorganFeaturizer featurizer;
  const std::string smi = write_file("strata_test.smi", "CCO ethanol\n# a comment\nC1CC broken\n\nc1ccccc1 benzene\nCC(\n");
  const molecule_table t = read_smiles_file(smi, featurizer);
  CHECK(t.rows == 4);
  CHECK(t.ids == std::vector<std::string>{"ethanol", "benzene"});
  CHECK(t.features.cols() == 2);
  CHECK(t.labels.rows() == 0);
  REQUIRE(t.rejected.size() == 2);
  CHECK(t.rejected[0].line == 3);
  CHECK(t.rejected[0].reason == "invalid SMILES 'C1CC'");
  CHECK(t.rejected[1].line == 6);
  CHECK_THAT(t.rejection_summary(), Contains("2 of 4 rows skipped (line 3: invalid SMILES 'C1CC'; line 6:"));
  // Streamed in chunks of two rows, the same molecules come out in the same order.
  SmilesReader reader(smi, featurizer);
  molecule_table chunk;
  std::vector<std::string> streamed;
  Index rows = 0, skipped = 0;
  while (reader.next(2, chunk)) {
    rows += chunk.rows;
    skipped += static_cast<Index>(chunk.rejected.size());
    for (Index j = 0; j < chunk.size(); ++j) {
      streamed.push_back(chunk.ids[static_cast<std::size_t>(j)]);
      CHECK(chunk.features.col(j) == t.features.col(static_cast<Index>(streamed.size()) - 1));
    }
  }
  CHECK(streamed == t.ids);
  CHECK(rows == 4);
  CHECK(skipped == 2);
  molecule_read_options strict;
  strict.strict = true;
  CHECK_THROWS_WITH(read_smiles_file(smi, featurizer, strict), Contains("strata_test.smi:3: invalid SMILES 'C1CC' (strict mode"));

  const std::string csv = write_file("strata_test_scores.csv", "TITLE,SMILES,dock\nm1,CCO,-7.5\nm2,CC(,-9\nm3,c1ccccc1,\nm4,CCN,2.5\nm5, ,-4\n");
  molecule_read_options scored;
  scored.score_column = "dock";
  scored.docking_score = true;
  const molecule_table s = read_smiles_file(csv, featurizer, scored);
  std::vector<float> fp(2048);
  CHECK(s.ids == std::vector<std::string>{"m1", "m4"});
  CHECK(s.labels(0, 0) == 7.5f);  // reg = max(-score, 0)
  CHECK(s.labels(0, 1) == 0.0f);
  REQUIRE(s.rejected.size() == 3);
  CHECK(s.rejected[0].reason == "invalid SMILES 'CC('");
  CHECK(s.rejected[1].reason == "missing score in column 'dock'");
  CHECK(s.rejected[2].reason == "missing SMILES");  // a blank cell is not an empty molecule
  CHECK_FALSE(featurizer.featurize("", fp.data()));
  molecule_read_options wrong;
  wrong.score_column = "score";
  CHECK_THROWS_WITH(read_smiles_file(csv, featurizer, wrong), Contains("no column 'score' (columns: TITLE, SMILES, dock)"));
  CHECK_THROWS_WITH(read_smiles_file("no/such.smi", featurizer), Contains("cannot open 'no/such.smi'"));
  // A file without molecules still has the fingerprint's width (2,048 x 0), not 0 x 0.
  const std::string empty = write_file("strata_test_empty.smi", "# nothing here\n");
  const molecule_table none = read_smiles_file(empty, featurizer);
  CHECK(none.features.rows() == 2048);
  CHECK(none.features.cols() == 0);
  CHECK(none.size() == 0);
  std::remove(empty.c_str());
  std::remove(smi.c_str());
  std::remove(csv.c_str());
}

TEST_CASE("A fingerprint model learns TPSA of real molecules (NCI first 5K, 80/20)") {
  const std::string smi = "/usr/share/RDKit/Data/NCI/first_5k.tpsa.csv";
  if (!std::filesystem::exists(smi)) {
    WARN("rdkit-data is not installed: skipping the TPSA test");
    return;
  }
  // The Debian file has a comment line and no header: give it one.
  std::ifstream in(smi);
  std::ofstream out("strata_tpsa.csv");
  out << "smiles,tpsa\n";
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') out << line << "\n";
  out.close();
  morgan_options o;
  o.counts = true;  // TPSA adds up polar atom contributions: counts carry them
  molecule_read_options labelled;
  labelled.score_column = "tpsa";
  const molecule_table t = read_smiles_file("strata_tpsa.csv", MorganFeaturizer(o), labelled);
  std::remove("strata_tpsa.csv");
  INFO(t.rejection_summary());
  CHECK(t.size() >= 4990);

  // Standardised labels; a fixed 80/20 split by position.
  const Index n = t.size(), n_train = n * 4 / 5;
  const float mean = t.labels.mean();
  const float sd = std::sqrt((t.labels.array() - mean).square().mean());
  const matrix_f y = (t.labels.array() - mean) / sd;
  const MatrixDataset<float> train(t.features.leftCols(n_train), y.leftCols(n_train));
  const MatrixDataset<float> test(t.features.rightCols(n - n_train), y.rightCols(n - n_train));
  Model<FingerprintMLP> model(make_fingerprint_mlp(0.1));
  model.build(2048, 7);
  trainer_options options;
  options.batch_size = 64;
  options.seed = 3;
  Trainer<FingerprintMLP> trainer(std::move(model), MSE{}, Adam{1e-3}, Serial{}, options);
  trainer.fit(train, 25);
  const double r2 = trainer.evaluate(test).metrics.at("r2");
  std::printf("TPSA from Morgan counts: held-out R2 %.4f (%ld training, %ld test molecules)\n", r2, static_cast<long>(n_train),
              static_cast<long>(n - n_train));
  CHECK(r2 >= 0.9);
}
