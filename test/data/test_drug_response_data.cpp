// The drug-response data layer: entity tables joined by tuples, the synthetic generator and its
// stated ceiling, feature scaling, splits and the batch loader.
#include <catch2/catch.hpp>

#include <strata/data/drug_response.hpp>
#include <strata/data/loader.hpp>
#include <strata/data/preprocess.hpp>
#include <strata/data/split.hpp>
#include <strata/data/synthetic_drug_response.hpp>

#include <algorithm>
#include <cmath>
#include <set>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

/// Options of a small data set: 10 drugs, narrow features, every unordered drug pair for every cell.
synthetic_drug_response_options small_options(Index cells = 12, std::uint64_t seed = 3) {
  synthetic_drug_response_options o;
  o.cells = cells;
  o.drugs = 10;
  o.cell_width = 7;
  o.drug_width = 11;
  o.empty_drug_columns = 1;
  o.missing_fraction = 0.05;
  o.tuples = 1000000;
  o.seed = seed;
  return o;
}

synthetic_drug_response<float> small(synthetic_control control = synthetic_control::none, std::uint64_t seed = 3) {
  auto o = small_options(12, seed);
  o.control = control;
  return generate_drug_response<float>(o);
}

double r_squared(const std::vector<double>& prediction, const std::vector<response_tuple>& tuples) {
  double mean = 0.0, residual = 0.0, total = 0.0;
  for (const auto& t : tuples) mean += t.response;
  mean /= static_cast<double>(tuples.size());
  for (std::size_t i = 0; i < tuples.size(); ++i) {
    residual += (tuples[i].response - prediction[i]) * (tuples[i].response - prediction[i]);
    total += (tuples[i].response - mean) * (tuples[i].response - mean);
  }
  return 1.0 - residual / total;
}

bool same_values(const matrix_f& a, const matrix_f& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index i = 0; i < a.size(); ++i)
    if (!(a.data()[i] == b.data()[i] || (std::isnan(a.data()[i]) && std::isnan(b.data()[i])))) return false;
  return true;
}

/// A dataset of n samples whose feature is the sample index; gathering `poison` throws.
struct indexed_dataset {
  using scalar = float;
  Index n = 0, poison = -1;
  Index size() const { return n; }
  Index input_width() const { return 1; }
  Index target_width() const { return 1; }
  void gather(const Index* idx, Index count, matrix_f& x, matrix_f& y) const {
    x.resize(1, count);
    y.resize(1, count);
    for (Index j = 0; j < count; ++j) {
      if (idx[j] == poison) throw data_error(detail::concat("sample ", poison, " is unreadable"));
      x(0, j) = y(0, j) = static_cast<float>(idx[j]);
    }
  }
};

std::vector<std::vector<Index>> epoch_batches(BatchLoader<indexed_dataset>& loader, std::uint64_t epoch, Index first = 0) {
  std::vector<std::vector<Index>> out;
  loader.start_epoch(epoch, first);
  while (const auto* b = loader.next()) {
    std::vector<Index> ids;
    for (Index j = 0; j < b->count; ++j) ids.push_back(static_cast<Index>(b->x(0, j)));
    out.push_back(ids);
  }
  return out;
}

}  // namespace

TEST_CASE("A drug-response sample is its cell's features followed by both drugs' features") {
  auto data = std::make_shared<drug_response_data<float>>();
  data->cells = EntityTable<float>({"c0", "c1"}, {"g"}, (matrix_f(1, 2) << 10, 11).finished());
  data->drugs = EntityTable<float>({"d0", "d1", "d2"}, {"a", "b"}, (matrix_f(2, 3) << 1, 2, 3, 4, 5, 6).finished());
  data->tuples = {{1, 2, 0, 0.5f}, {0, 1, 1, -0.25f}};
  const DrugResponseDataset<float> all(data);
  REQUIRE(all.input_width() == 5);
  const Index order[] = {1, 0};
  matrix_f x, y;
  all.gather(order, 2, x, y);
  CHECK(x.col(0) == (Eigen::VectorXf(5) << 10, 2, 5, 2, 5).finished());
  CHECK(x.col(1) == (Eigen::VectorXf(5) << 11, 3, 6, 1, 4).finished());
  CHECK(y(0, 0) == -0.25f);
  CHECK(y(0, 1) == 0.5f);

  const DrugResponseDataset<float> second = all.subset({1});
  CHECK(second.size() == 1);
  CHECK(second.tuple(0).cell == 0);
  const Index bad[] = {2};
  CHECK_THROWS_WITH(all.gather(bad, 1, x, y), Contains("sample index 2 out of range"));
  CHECK_THROWS_AS(DrugResponseDataset<float>(data, {0, 5}), data_error);
}

TEST_CASE("The synthetic generator has the NCI-ALMANAC shapes and stays far under a gigabyte") {
  const auto g = generate_drug_response<float>(synthetic_drug_response_options{});
  CHECK(g.data.tuples.size() == 305626);
  CHECK(g.data.cells.size() == 60);
  CHECK(g.data.cells.width() == 921);
  CHECK(g.data.drugs.size() == 104);
  CHECK(g.data.drugs.width() == 3829);
  g.data.validate();
  const double bytes = static_cast<double>(g.data.cells.features().size() + g.data.drugs.features().size()) * sizeof(float) +
                       static_cast<double>(g.data.tuples.size() * sizeof(response_tuple));
  CHECK(bytes < 8e6);  // the dense 305,626 x 8,579 matrix would be 10.5 GB

  SECTION("the best achievable R2 is the stated ceiling") {
    CHECK(r_squared(g.signal, g.data.tuples) == Approx(0.92).margin(0.003));
  }
  SECTION("drug order carries no meaning: both orders occur") {
    const auto swapped = std::count_if(g.data.tuples.begin(), g.data.tuples.end(), [](const response_tuple& t) { return t.drug1 > t.drug2; });
    CHECK(swapped > 150000);
    CHECK(swapped < 155626);
  }
  SECTION("the split sizes are those of the Combo paper") {
    const split s = make_split(g.data, split_scheme::random, 0.2, 1);
    CHECK(s.train.size() == 244501);
    CHECK(s.validation.size() == 61125);
  }
}

TEST_CASE("Synthetic data is a pure function of the seed, and the cell alone predicts nothing") {
  const auto a = small(), b = small();
  REQUIRE(a.data.tuples.size() == 12 * 45);
  CHECK(same_values(a.data.cells.features(), b.data.cells.features()));
  CHECK(same_values(a.data.drugs.features(), b.data.drugs.features()));
  for (std::size_t i = 0; i < a.data.tuples.size(); ++i) CHECK(a.data.tuples[i].response == b.data.tuples[i].response);
  CHECK_FALSE(same_values(a.data.cells.features(), small(synthetic_control::none, 4).data.cells.features()));

  // Features of an entity do not depend on how many other entities there are.
  const auto f = generate_drug_response<float>(small_options(5));
  CHECK(same_values(f.data.cells.features(), a.data.cells.features().leftCols(5)));

  // Every cell's noiseless responses over all drug pairs average to the same value.
  std::vector<double> sum(12, 0.0);
  for (std::size_t i = 0; i < a.data.tuples.size(); ++i) sum[static_cast<std::size_t>(a.data.tuples[i].cell)] += a.signal[i];
  for (const double s : sum) CHECK(s / 45.0 == Approx(0.35).margin(1e-9));
}

TEST_CASE("The controls destroy the relation between inputs and response") {
  const auto clean = small(), scrambled = small(synthetic_control::scrambled_labels), noise = small(synthetic_control::noise_drugs);
  CHECK(scrambled.ceiling == 0.0);
  CHECK(noise.ceiling == 0.0);
  std::vector<float> x, y;
  for (const auto& t : clean.data.tuples) x.push_back(t.response);
  for (const auto& t : scrambled.data.tuples) y.push_back(t.response);
  CHECK(x != y);
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  CHECK(x == y);  // the same responses, permuted
  CHECK(r_squared(clean.signal, scrambled.data.tuples) < 0.05);
  // Noise drugs: the tuples show randomly drawn drugs whose features are noise.
  Index moved = 0;
  for (std::size_t i = 0; i < clean.data.tuples.size(); ++i) moved += clean.data.tuples[i].drug1 != noise.data.tuples[i].drug1;
  CHECK(moved > 400);
  CHECK_FALSE(same_values(clean.data.drugs.features(), noise.data.drugs.features()));
}

TEST_CASE("Missing values are imputed and features scaled with training statistics only") {
  EntityTable<float> table({"a", "b", "c", "d"}, {"x", "empty", "const"},
                           (matrix_f(3, 4) << 1, 3, NAN, 100, NAN, NAN, NAN, NAN, 5, 5, 5, 7).finished());
  const auto dropped = drop_all_nan_columns(table);
  REQUIRE(dropped == std::vector<std::string>{"empty"});
  REQUIRE(table.columns() == std::vector<std::string>{"x", "const"});

  StandardScaler scaler;
  scaler.fit(table, {0, 1, 2});  // entity d is not in training: its 100 and 7 do not count
  CHECK(scaler.mean()[0] == 2.0);
  CHECK(scaler.scale()[0] == 1.0);
  CHECK(scaler.mean()[1] == 5.0);
  CHECK(scaler.scale()[1] == 1.0);  // constant over training entities
  state_file file;
  scaler.save(file, "scaler/cell");
  StandardScaler restored;
  restored.load(file, "scaler/cell");
  CHECK(restored.mean() == scaler.mean());
  CHECK(restored.scale() == scaler.scale());
  CHECK_THROWS_WITH(restored.load(file, "scaler/drug"), Contains("no feature scaler 'scaler/drug'"));

  SECTION("a column no training entity has a value for becomes 0 everywhere") {
    EntityTable<float> sparse({"a", "b"}, {"x"}, (matrix_f(1, 2) << NAN, 4).finished());
    StandardScaler s;
    s.fit(sparse, {0});
    s.transform(sparse);
    CHECK(sparse.features()(0, 1) == 0.0f);
  }
  restored.transform(table);
  CHECK(table.features()(0, 0) == -1.0f);
  CHECK(table.features()(0, 1) == 1.0f);
  CHECK(table.features()(0, 2) == 0.0f);  // missing -> the mean
  CHECK(table.features()(0, 3) == 98.0f);
  CHECK(table.features()(1, 3) == 2.0f);
}

TEST_CASE("A saved scaler matches a later table's columns by name") {
  EntityTable<float> train({"a", "b", "c"}, {"x", "y", "gone"},
                           (matrix_f(3, 3) << 1, 2, 3, 10, 20, 30, NAN, NAN, NAN).finished());
  const auto dropped = drop_all_nan_columns(train);
  StandardScaler fitted;
  fitted.fit(train, {0, 1, 2});
  REQUIRE(fitted.columns() == std::vector<std::string>{"x", "y"});
  state_file file;
  fitted.save(file, "scaler/cell");
  StandardScaler scaler;
  scaler.load(file, "scaler/cell");
  REQUIRE(scaler.columns() == fitted.columns());

  // Reordered, with the column dropped in training still present: aligned, then scaled alike.
  EntityTable<float> later({"b", "z"}, {"gone", "y", "x"}, (matrix_f(3, 2) << 7, 7, 20, 40, 2, 5).finished());
  scaler.align(later, dropped);
  CHECK(later.columns() == std::vector<std::string>{"x", "y"});
  CHECK(later.features()(0, 1) == 5.0f);
  CHECK(later.features()(1, 1) == 40.0f);
  scaler.transform(later);
  EntityTable<float> same = train;
  scaler.transform(same);
  CHECK(later.features().col(0) == same.features().col(1));  // entity b, scaled as in training

  SECTION("missing and unknown columns are named, and the table is left as it was") {
    EntityTable<float> wrong({"a"}, {"y", "w"}, (matrix_f(2, 1) << 1, 2).finished());
    CHECK_THROWS_WITH(scaler.align(wrong, dropped, "the cell table"),
                      Contains("the cell table does not have the columns the model was trained on: missing 1 ('x'); "
                               "unknown 1 ('w')"));
    CHECK(wrong.columns() == std::vector<std::string>{"y", "w"});
  }
  SECTION("statistics saved before names were kept load, but cannot align") {
    file.meta.erase("scaler/cell/columns");
    StandardScaler old;
    old.load(file, "scaler/cell");
    CHECK(old.columns().empty());
    CHECK_THROWS_WITH(old.align(train), Contains("no column names"));
  }
  SECTION("a name list that disagrees with the statistics is refused") {
    file.meta["scaler/cell/columns"] = "x\n";
    StandardScaler bad;
    CHECK_THROWS_WITH(bad.load(file, "scaler/cell"), Contains("names 1 columns for 2 statistics"));
  }
}

TEST_CASE("Random, cell-blind and drug-blind splits keep what they promise apart") {
  const auto g = small();
  const auto& tuples = g.data.tuples;
  const auto check_partition = [&](const split& s) {
    std::vector<Index> all = s.train;
    all.insert(all.end(), s.validation.begin(), s.validation.end());
    std::sort(all.begin(), all.end());
    CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());
    CHECK(all.size() == tuples.size());
  };
  const split random = make_split(g.data, split_scheme::random, 0.2, 7);
  check_partition(random);
  CHECK(random.validation.size() == 108);
  CHECK(make_split(g.data, split_scheme::random, 0.2, 7).validation == random.validation);
  CHECK(make_split(g.data, split_scheme::random, 0.2, 8).validation != random.validation);

  const split cells = make_split(g.data, split_scheme::cell_blind, 0.2, 7);
  check_partition(cells);
  std::set<Index> train_cells;
  for (const Index i : cells.train) train_cells.insert(tuples[static_cast<std::size_t>(i)].cell);
  for (const Index i : cells.validation) CHECK(train_cells.count(tuples[static_cast<std::size_t>(i)].cell) == 0);
  CHECK(cells.validation.size() >= 108);

  const split drugs = make_split(g.data, split_scheme::drug_blind, 0.2, 7);
  check_partition(drugs);
  std::set<Index> train_drugs;
  for (const Index i : drugs.train) {
    train_drugs.insert(tuples[static_cast<std::size_t>(i)].drug1);
    train_drugs.insert(tuples[static_cast<std::size_t>(i)].drug2);
  }
  Index unseen = 0;
  for (const Index i : drugs.validation) {
    const auto& t = tuples[static_cast<std::size_t>(i)];
    unseen += train_drugs.count(t.drug1) == 0 || train_drugs.count(t.drug2) == 0;
  }
  CHECK(unseen == static_cast<Index>(drugs.validation.size()));
  CHECK_THROWS_WITH(make_split(g.data, split_scheme::random, 1.5, 7), Contains("fraction must be in (0, 1)"));
  CHECK_THROWS_WITH(parse_split_scheme("tissue"), Contains("unknown split 'tissue'"));
}

TEST_CASE("k-fold splits cover every tuple once (random, cell-blind) and hold out whole drugs") {
  const auto g = small();
  for (const split_scheme scheme : {split_scheme::random, split_scheme::cell_blind}) {
    std::vector<int> validated(g.data.tuples.size(), 0);
    for (const split& f : k_fold(g.data, scheme, 4, 2)) {
      CHECK(f.train.size() + f.validation.size() == g.data.tuples.size());
      for (const Index i : f.validation) ++validated[static_cast<std::size_t>(i)];
    }
    CHECK(std::all_of(validated.begin(), validated.end(), [](int v) { return v == 1; }));
  }
  for (const split& f : k_fold(g.data, split_scheme::drug_blind, 5, 2)) {
    std::set<Index> held;
    for (const Index i : f.validation) {
      const auto& t = g.data.tuples[static_cast<std::size_t>(i)];
      held.insert(t.drug1);
      held.insert(t.drug2);
    }
    std::set<Index> train_drugs;
    for (const Index i : f.train) {
      train_drugs.insert(g.data.tuples[static_cast<std::size_t>(i)].drug1);
      train_drugs.insert(g.data.tuples[static_cast<std::size_t>(i)].drug2);
    }
    // Every validation tuple has at least one drug that training never sees.
    for (const Index i : f.validation) {
      const auto& t = g.data.tuples[static_cast<std::size_t>(i)];
      CHECK((train_drugs.count(t.drug1) == 0 || train_drugs.count(t.drug2) == 0));
    }
  }
  CHECK_THROWS_WITH(k_fold(g.data, split_scheme::cell_blind, 13, 1), Contains("k must be in [2, 12]"));
}

TEST_CASE("Rotating k-fold: fold i tests group i, validates on group i+1, trains on the rest") {
  const auto g = small();
  for (const split_scheme scheme : {split_scheme::random, split_scheme::cell_blind, split_scheme::drug_blind}) {
    const auto folds = k_fold_rotating(g.data, scheme, 4, 2);
    const auto plain = k_fold(g.data, scheme, 4, 2);
    REQUIRE(folds.size() == 4);
    std::vector<int> tested(g.data.tuples.size(), 0);
    for (std::size_t f = 0; f < folds.size(); ++f) {
      const three_way_split& s = folds[f];
      CHECK(s.train.size() + s.validation.size() + s.test.size() == g.data.tuples.size());
      CHECK(s.test == plain[f].validation);  // the same seeded groups as k_fold
      for (const Index i : s.validation)     // validation: the next fold's group, less this fold's
        CHECK(std::binary_search(plain[(f + 1) % 4].validation.begin(), plain[(f + 1) % 4].validation.end(), i));
      CHECK_FALSE(s.validation.empty());
      for (const Index i : s.test) ++tested[static_cast<std::size_t>(i)];
      if (scheme == split_scheme::random) continue;
      // Blind schemes: no test or validation entity is trained on.
      std::set<Index> trained;
      for (const Index i : s.train) {
        const auto& t = g.data.tuples[static_cast<std::size_t>(i)];
        if (scheme == split_scheme::cell_blind) trained.insert(t.cell);
        else trained.insert({t.drug1, t.drug2});
      }
      for (const auto* part : {&s.test, &s.validation})
        for (const Index i : *part) {
          const auto& t = g.data.tuples[static_cast<std::size_t>(i)];
          if (scheme == split_scheme::cell_blind) CHECK(trained.count(t.cell) == 0);
          else CHECK((trained.count(t.drug1) == 0 || trained.count(t.drug2) == 0));
        }
    }
    if (scheme != split_scheme::drug_blind)  // every tuple is tested exactly once
      CHECK(std::all_of(tested.begin(), tested.end(), [](int v) { return v == 1; }));
  }
  CHECK_THROWS_WITH(k_fold_rotating(g.data, split_scheme::random, 2, 1), Contains("k must be at least 3"));
  CHECK_THROWS_WITH(k_fold_rotating(g.data, split_scheme::cell_blind, 13, 1), Contains("k must be in [2, 12]"));
}

TEST_CASE("Hold-outs, shards and subsamples are seeded and complete") {
  std::vector<Index> rows(103);
  std::iota(rows.begin(), rows.end(), Index{1000});
  const split h = hold_out(rows, 0.1, 5);
  CHECK(h.validation.size() == 10);
  CHECK(h.train.size() == 93);
  CHECK(std::is_sorted(h.train.begin(), h.train.end()));
  std::vector<Index> joined;
  for (Index p = 0; p < 4; ++p) {
    const auto part = shard(rows, p, 4);
    CHECK((part.size() == 25 || part.size() == 26));
    joined.insert(joined.end(), part.begin(), part.end());
  }
  CHECK(joined == rows);
  CHECK_THROWS_WITH(shard(rows, 4, 4), Contains("part 4 of 4 does not exist"));
  const auto sub = subsample(rows, 20, 9);
  CHECK(sub.size() == 20);
  CHECK(std::is_sorted(sub.begin(), sub.end()));
  CHECK(sub == subsample(rows, 20, 9));
}

TEST_CASE("The loader visits every sample once per epoch in a seeded order") {
  const indexed_dataset data{1000};
  BatchLoader<indexed_dataset> loader(data, loader_options{64, true, 11, true});
  CHECK(loader.batches() == 16);
  CHECK_THROWS_WITH(loader.next(), Contains("before start_epoch"));
  const auto e0 = epoch_batches(loader, 0), e1 = epoch_batches(loader, 1);
  REQUIRE(e0.size() == 16);
  CHECK(e0.back().size() == 1000 - 15 * 64);
  std::vector<Index> seen;
  for (const auto& b : e0) seen.insert(seen.end(), b.begin(), b.end());
  CHECK(seen != [] { std::vector<Index> v(1000); std::iota(v.begin(), v.end(), Index{0}); return v; }());
  std::sort(seen.begin(), seen.end());
  for (Index i = 0; i < 1000; ++i) CHECK(seen[static_cast<std::size_t>(i)] == i);
  CHECK(e0 != e1);

  SECTION("prefetching changes nothing but the timing") {
    BatchLoader<indexed_dataset> plain(data, loader_options{64, true, 11, false});
    CHECK(epoch_batches(plain, 1) == e1);
  }
  SECTION("an epoch can resume at any batch") {
    const auto tail = epoch_batches(loader, 1, 9);
    CHECK(tail == std::vector<std::vector<Index>>(e1.begin() + 9, e1.end()));
  }
  SECTION("ranks gather disjoint columns of the same global batches") {
    std::vector<std::vector<Index>> joined(16);
    for (int rank = 0; rank < 3; ++rank) {
      BatchLoader<indexed_dataset> shard_loader(data, loader_options{64, true, 11, true}, [rank](Index global) {
        const Index begin = rank * global / 3, end = (rank + 1) * global / 3;
        return std::pair<Index, Index>{begin, end - begin};
      });
      const auto mine = epoch_batches(shard_loader, 1);
      for (std::size_t b = 0; b < mine.size(); ++b) joined[b].insert(joined[b].end(), mine[b].begin(), mine[b].end());
    }
    CHECK(joined == e1);
  }
  SECTION("an error while gathering reaches the caller") {
    const indexed_dataset broken{1000, 500};
    BatchLoader<indexed_dataset> failing(broken, loader_options{64, false, 0, true});
    failing.start_epoch(0);
    const auto drain = [&] {
      while (failing.next() != nullptr) {
      }
    };
    CHECK_THROWS_WITH(drain(), Contains("sample 500 is unreadable"));
    CHECK_THROWS_WITH(failing.next(), Contains("could not be gathered"));  // never a stale batch
    failing.start_epoch(1);  // a new epoch starts clean
    CHECK(failing.next() != nullptr);
  }
}
