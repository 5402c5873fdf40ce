// The ensemble transfer study: its table has every (network, scheme, method) with honest
// figures, ETL really refines the source models, members give the same bits however many run at
// once, a rerun with a work directory trains nothing twice, and bad input stops it before any
// training. (The 1/2/4-rank equality and a resume after SIGKILL are checked on the example,
// test/examples/transfer_workflow.sh.)
#include <catch2/catch.hpp>

#include <strata/data/synthetic_studies.hpp>
#include <strata/parallel/communicator.hpp>
#include <strata/workflows/ensemble_transfer.hpp>

#include "../support/small_studies.hpp"

#include <filesystem>

using namespace strata;
using Catch::Matchers::Contains;

namespace {

multi_study_data<float> tiny_studies() {
  return generate_studies<float>(strata_test::small_studies("SRC", "TGT", "FAR")).data;
}

ensemble_transfer_options tiny_options() {
  ensemble_transfer_options o;
  o.source = "SRC";
  o.target = "TGT";
  o.source_folds = 3;
  o.target_folds = 3;
  o.networks = {single_drug_network::two_subnetwork};
  o.width = 8;
  o.batch_size = 16;
  o.source_fit.max_epochs = 2;
  o.target_fit.max_epochs = 3;
  o.refine_fit.max_epochs = 3;
  return o;
}

std::string temp_dir(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  return dir.string();
}

bool same_figures(const ensemble_transfer_result& a, const ensemble_transfer_result& b) {
  if (a.folds.size() != b.folds.size()) return false;
  for (std::size_t i = 0; i < a.folds.size(); ++i)
    if (a.folds[i].metrics != b.folds[i].metrics || a.folds[i].member_std != b.folds[i].member_std) return false;
  return true;
}

}  // namespace

TEST_CASE("A transfer study reports every network, scheme and method over its test folds") {
  const auto data = tiny_studies();
  auto options = tiny_options();
  options.networks = {single_drug_network::two_subnetwork, single_drug_network::concatenated};
  EnsembleTransferStudy<float> study(data, options);
  CHECK(study.members() == 2 * 3 + 2 * 3 * 3 * (2 + 3));  // source models + (ECV T-1 + ETL K) per fold
  SerialCommunicator world;
  Index lines = 0;
  const auto result = study.run(world, [&](const std::string&) { ++lines; });
  CHECK(lines == study.members());
  REQUIRE(result.table.size() == 2 * 3 * 3);
  REQUIRE(result.folds.size() == 2 * 3 * 3 * 3);
  for (const auto& row : result.table) {
    CHECK(row.folds == 3);
    CHECK(row.members == (row.method == transfer_method::scv ? 1 : row.method == transfer_method::ecv ? 2 : 3));
    for (std::size_t k = 0; k < 4; ++k) CHECK(std::isfinite(row.mean[k]));
    CHECK(row.mean[1] > 0.0);  // MAE
    CHECK((row.method == transfer_method::scv) == (row.member_std == 0.0));
  }
  // Test folds partition the target in every scheme: the folds' test samples add up to it.
  for (const auto scheme : options.schemes) {
    Index tested = 0;
    for (const auto& f : result.folds)
      if (f.scheme == scheme && f.method == transfer_method::scv && f.network == single_drug_network::two_subnetwork)
        tested += f.test_samples;
    CHECK(tested == static_cast<Index>(study.target().tuples.size()));
  }
  // Paired comparisons: a method against itself differs by nothing; across networks every fold counts.
  const auto same = compare_folds(result, split_scheme::random, single_drug_network::two_subnetwork, transfer_method::etl,
                                  single_drug_network::two_subnetwork, transfer_method::etl);
  CHECK(same.mean == 0.0);
  CHECK(same.better == 0);
  CHECK(same.folds == 3);
  const auto nets = compare_folds(result, split_scheme::cell_blind, single_drug_network::two_subnetwork, transfer_method::scv,
                                  single_drug_network::concatenated, transfer_method::scv, 1);
  double expected = 0.0;
  for (const auto& f : result.folds)
    if (f.scheme == split_scheme::cell_blind && f.method == transfer_method::scv)
      expected += (f.network == single_drug_network::two_subnetwork ? 1.0 : -1.0) * f.metrics[1] / 3.0;
  CHECK(nets.mean == Approx(expected).margin(1e-12));
  CHECK_THROWS_WITH(compare_folds(ensemble_transfer_result{}, split_scheme::random, single_drug_network::two_subnetwork,
                                  transfer_method::etl, single_drug_network::concatenated, transfer_method::etl),
                    Contains("no random folds"));
  const std::string text = transfer_table_text(result);
  CHECK_THAT(text, Contains("two-subnetwork  cell-blind  ETL"));
  CHECK_THAT(text, Contains("concatenated    drug-blind  ECV"));
}

TEST_CASE("ETL refines the source models: with no refinement step it predicts what they predict") {
  // With a refinement of zero learning rate the refined members are the source models (the
  // trainer still runs, so early stopping keeps epoch 0): ETL differs from a study whose members
  // start from scratch, and its spread comes from the K source models.
  const auto data = tiny_studies();
  auto frozen = tiny_options();
  frozen.schemes = {split_scheme::random};
  frozen.refine_learning_rate = 1e-30;
  SerialCommunicator world;
  const auto a = EnsembleTransferStudy<float>(data, frozen).run(world);
  auto trained = frozen;
  trained.refine_learning_rate = 5e-3;
  const auto b = EnsembleTransferStudy<float>(data, trained).run(world);
  const auto etl = [](const ensemble_transfer_result& r) {
    for (const auto& row : r.table)
      if (row.method == transfer_method::etl) return row;
    FAIL("no ETL row");
    return r.table.front();
  };
  CHECK(etl(a).mean[0] != etl(b).mean[0]);
  CHECK(etl(a).member_std > 0.0);
  // The baselines do not depend on the refinement settings.
  CHECK(a.table.front().mean == b.table.front().mean);
}

TEST_CASE("Members give the same bits however many train at once") {
  const auto data = tiny_studies();
  auto options = tiny_options();
  options.schemes = {split_scheme::cell_blind};
  SerialCommunicator world;
  const auto one = EnsembleTransferStudy<float>(data, options).run(world);
  options.concurrent_members = 3;
  const auto three = EnsembleTransferStudy<float>(data, options).run(world);
  CHECK(same_figures(one, three));
}

TEST_CASE("With a work directory a rerun trains nothing twice, and refuses another study's members") {
  const auto data = tiny_studies();
  auto options = tiny_options();
  options.schemes = {split_scheme::drug_blind};
  options.work_directory = temp_dir("strata_transfer_work");
  SerialCommunicator world;
  EnsembleTransferStudy<float> study(data, options);
  const auto first = study.run(world);
  CHECK(first.members_resumed == 0);
  // A killed run leaves some members: remove a few and rerun.
  Index removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(options.work_directory))
    if (entry.path().filename().string().find("ETL-1") != std::string::npos) {
      std::filesystem::remove(entry.path());
      ++removed;
    }
  REQUIRE(removed == 3);
  const auto second = EnsembleTransferStudy<float>(data, options).run(world);
  CHECK(second.members_resumed == study.members() - removed);
  CHECK(same_figures(first, second));

  auto other = options;
  other.width = 9;
  CHECK_THROWS_WITH(EnsembleTransferStudy<float>(data, other).run(world), Contains("result of a different sweep"));
  std::filesystem::remove_all(options.work_directory);
}

TEST_CASE("Bad input stops a transfer study before any member trains") {
  const auto data = tiny_studies();
  const auto refused = [&](auto change) {
    auto o = tiny_options();
    change(o);
    return [o, &data] { EnsembleTransferStudy<float> study(data, o); };
  };
  CHECK_THROWS_WITH(refused([](auto& o) { o.target = "FAR"; })(), Contains("share no cell and no drug"));
  CHECK_THROWS_WITH(refused([](auto& o) { o.target = "NOPE"; })(), Contains("no study 'NOPE'") && Contains("SRC, TGT, FAR"));
  CHECK_THROWS_WITH(refused([](auto& o) { o.target = "SRC"; })(), Contains("source and target are both 'SRC'"));
  CHECK_THROWS_WITH(refused([](auto& o) { o.target_folds = 11; })(), Contains("has 10 drugs: too few for 11 drug-blind folds"));
  CHECK_THROWS_WITH(refused([](auto& o) { o.source_folds = 2; })(), Contains("source_folds must be at least 3"));
  auto grouped = tiny_options();
  grouped.ranks_per_member = 2;
  SerialCommunicator world;
  CHECK_THROWS_WITH(EnsembleTransferStudy<float>(data, grouped).run(world), Contains("cannot form groups of 2"));

  // Source model files of another architecture (or width) are refused by name.
  Model<Concatenated> other(make_concatenated({8, 12, 8, 0.1}));
  other.build(20, 1);
  StandardScaler cells, drugs;
  cells.fit(data.cells, {0, 1, 2});
  drugs.fit(data.drugs, {0, 1, 2});
  const std::string path = temp_dir("strata_transfer_source.model");
  transfer_source_file(other, cells, drugs).write(path);
  CHECK_THROWS_WITH(refused([&](auto& o) { o.source_model_files = {path}; })(),
                    Contains("strata_transfer_source.model") && Contains("another architecture"));
  Model<TwoSubnetwork> wider(make_two_subnetwork({8, 12, 16, 0.1}));
  wider.build(20, 1);
  transfer_source_file(wider, cells, drugs).write(path);
  CHECK_THROWS_WITH(refused([&](auto& o) { o.source_model_files = {path}; })(), Contains("does not fit this model"));
  Model<TwoSubnetwork> right(make_two_subnetwork({8, 12, 8, 0.1}));
  right.build(20, 1);
  transfer_source_file(right, cells, drugs).write(path);
  CHECK_NOTHROW(refused([&](auto& o) { o.source_model_files = {path}; })());
  std::filesystem::remove(path);
}
