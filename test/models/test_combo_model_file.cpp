// A drug-response model file: what training writes is what prediction rebuilds (sizes, seed,
// weights, feature scaling with column names), and a damaged or foreign file is refused by name.
#include <catch2/catch.hpp>

#include <strata/data/drug_response.hpp>
#include <strata/models/combo_model_file.hpp>

#include "../support/eval_predictions.hpp"
#include "../support/temporary_path.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
EntityTable<float> table(const std::string& prefix, Index entities, Index width, float offset) {
  std::vector<std::string> ids, columns;
  for (Index e = 0; e < entities; ++e) ids.push_back(prefix + std::to_string(e));
  for (Index c = 0; c < width; ++c) columns.push_back(prefix + "_feature_" + std::to_string(c));
  matrix_f f(width, entities);
  for (Index i = 0; i < f.size(); ++i) f.data()[i] = offset + static_cast<float>((i * 37) % 11);
  return {ids, columns, f};
}

}  // namespace

TEST_CASE("A Combo model file rebuilds the model that predicts the same from raw tables") {
  const EntityTable<float> raw_cells = table("c", 4, 6, 1.0f), raw_drugs = table("d", 5, 3, -2.0f);
  combo_model_info info;
  info.shape = {6, 3, 8, 0.1};
  info.seed = 42;
  info.cell_scaler.fit(raw_cells, {0, 1, 2});
  info.drug_scaler.fit(raw_drugs, {0, 1, 2, 3});
  info.dropped_drug_columns = {"d_empty"};
  info.data = "four cells, five drugs";
  Model<Combo> model(make_combo(info.shape));
  model.build(12, info.seed);
  const testing::temporary_path file{"strata_combo_model_"};
  save_combo_model(model, info, file.path);

  const auto prepared = [&](const combo_model_info& how, EntityTable<float> cells, EntityTable<float> drugs) {
    auto data = std::make_shared<drug_response_data<float>>();
    prepare_tables(how, cells, drugs);
    data->cells = std::move(cells);
    data->drugs = std::move(drugs);
    data->tuples = {{0, 1, 2, 0.5f}, {3, 4, 4, -1.0f}, {2, 0, 1, 0.0f}};
    return DrugResponseDataset<float>(data);
  };
  loaded_combo_model<> loaded = load_combo_model(file.path);
  CHECK(loaded.model.parameter_count() == (6 + 3) * 8 + 9 * 8 * 8 + 10 * 8 + 1);  // as load_combo_model counts
  CHECK(loaded.info.shape.width == 8);
  CHECK(loaded.info.shape.dropout == 0.1);
  CHECK(loaded.info.seed == 42);
  CHECK(loaded.info.data == info.data);
  CHECK(loaded.info.dropped_drug_columns == info.dropped_drug_columns);
  CHECK(loaded.info.cell_scaler.columns() == raw_cells.columns());
  CHECK(loaded.info.drug_scaler.mean() == info.drug_scaler.mean());
  CHECK(testing::eval_predictions(loaded.model, prepared(loaded.info, raw_cells, raw_drugs)) ==
        testing::eval_predictions(model, prepared(info, raw_cells, raw_drugs)));

  // The JSON for programs outside Strata says the same.
  const std::string json = combo_preprocessing_json(loaded.info);
  CHECK_THAT(json, Contains("\"columns\": [\"c_feature_0\", \"c_feature_1\"") && Contains("\"dropped\": [\"d_empty\"]") &&
                       Contains("\"id_column\": \"NAME\""));

  SECTION("int8 inference's calibration, when training measured one, comes back exactly") {
    CHECK(loaded.info.calibration.empty());  // none was stored
    combo_model_info calibrated = info;
    const DrugResponseDataset<float> data = prepared(info, raw_cells, raw_drugs);
    const Index rows[] = {0, 1, 2};
    matrix_f x, y;
    data.gather(rows, 3, x, y);
    calibrated.calibration = calibrate_dense_inputs(model, x);
    calibrated.calibration_samples = 3;
    REQUIRE(calibrated.calibration.size() == 10);  // two encoders, the stack, the output
    const testing::temporary_path with{"strata_combo_model_"};
    save_combo_model(model, calibrated, with.path);
    const loaded_combo_model<> back = load_combo_model(with.path);
    CHECK(back.info.calibration_samples == 3);
    REQUIRE(back.info.calibration.size() == calibrated.calibration.size());
    for (const auto& [path, range] : calibrated.calibration)
      CHECK(back.info.calibration.at(path).largest_magnitude == range.largest_magnitude);
  }
  SECTION("a damaged or foreign file is refused, naming the entry") {
    struct damage {
      const char* key;
      const char* value;  // nullptr: the entry removed
      const char* says;
    };
    for (const damage& d : std::initializer_list<damage>{
             {"combo/width", "8x", "malformed 'combo/width' = '8x'"},
             {"combo/dropout", "1.5", "malformed 'combo/dropout'"},
             {"kind", "docking/fingerprint-mlp", "holds a docking/fingerprint-mlp model, not a drug_response/combo model"},
             {"kind", nullptr, "it is not a model file"},
             {"combo/cell_width", "7", "feature scalers for 6 cell and 3 drug columns but a model for 7 and 3"},
             // sizes the file's values cannot fill: refused before anything is allocated
             {"combo/width", "2000000000", "describes a model of"},
             {"combo/width", "9", "model file"}}) {
      state_file contents = state_file::read(file.path);
      if (d.value == nullptr) contents.meta.erase(d.key);
      else contents.meta[d.key] = d.value;
      const testing::temporary_path damaged{"strata_combo_model_"};
      contents.write(damaged.path);
      CHECK_THROWS_WITH(load_combo_model(damaged.path), Contains(d.says));
    }
  }
}
