// End-to-end drug-response training on synthetic data: the Combo model gets close to the
// generator's stated ceiling, the controls learn nothing, and training from CANDLE-format files
// gives exactly what training from the in-memory generator gives. Compiled with optimisation
// (see test/CMakeLists.txt): these tests train real models.
#include <catch2/catch.hpp>

#include <strata/data/combo_files.hpp>
#include <strata/data/prepare.hpp>
#include <strata/data/synthetic_drug_response.hpp>
#include <strata/models/combo.hpp>
#include <strata/train/trainer.hpp>

#include <filesystem>
#include <iostream>

using namespace strata;

namespace {

/// Narrow features (64 / 96 per entity) but the real entity counts; 4 latent factors.
synthetic_drug_response_options narrow(Index tuples, synthetic_control control = synthetic_control::none) {
  synthetic_drug_response_options o;
  o.cell_width = 64;
  o.drug_width = 96;
  o.latent = 4;
  o.tuples = tuples;
  o.control = control;
  return o;
}

struct outcome {
  double best_r2 = -1e9, last_r2 = 0.0;
  std::vector<float> weights;
};

outcome train(drug_response_data<float> data, split_scheme scheme, Index width, Index epochs, Index batch) {
  const split parts = make_split(data, scheme, 0.2, 1);
  const auto prepared = prepare_drug_response(std::move(data), parts);
  Model<Combo> model(make_combo({prepared.train.data().cells.width(), prepared.train.data().drugs.width(), width, 0.05}));
  model.build(prepared.train.input_width(), 1);
  trainer_options options;
  options.batch_size = batch;
  options.seed = 1;
  Trainer<Combo> trainer(std::move(model), MSE{}, Adam{1e-3}, Serial{}, options);
  outcome out;
  for (const auto& record : trainer.fit(prepared.train, epochs, &prepared.validation)) {
    out.best_r2 = std::max(out.best_r2, record.validation.at("r2"));
    out.last_r2 = record.validation.at("r2");
  }
  for (auto& p : trainer.model().parameters()) out.weights.insert(out.weights.end(), p.value->data(), p.value->data() + p.value->size());
  return out;
}

}  // namespace

TEST_CASE("On the random split the Combo model reaches 90% of the generator's ceiling") {
  const auto g = generate_drug_response<float>(narrow(40000));
  const outcome r = train(g.data, split_scheme::random, 128, 10, 128);
  std::cout << "random split: best validation R2 " << r.best_r2 << " (last " << r.last_r2 << "), ceiling " << g.ceiling << "\n";
  CHECK(r.best_r2 >= 0.9 * g.ceiling);
}

TEST_CASE("Cell-blind and drug-blind splits train and are reported") {
  const auto g = generate_drug_response<float>(narrow(20000));
  const outcome cells = train(g.data, split_scheme::cell_blind, 128, 3, 128);
  const outcome drugs = train(g.data, split_scheme::drug_blind, 128, 3, 128);
  std::cout << "cell-blind: validation R2 " << cells.last_r2 << "; drug-blind: " << drugs.last_r2 << " (ceiling "
            << g.ceiling << ")\n";
  CHECK(std::isfinite(cells.last_r2));
  CHECK(std::isfinite(drugs.last_r2));
  CHECK(cells.last_r2 < g.ceiling);
  CHECK(drugs.last_r2 < g.ceiling);
}

TEST_CASE("Both negative controls give |R2| < 0.05") {
  for (const auto control : {synthetic_control::scrambled_labels, synthetic_control::noise_drugs}) {
    const auto g = generate_drug_response<float>(narrow(20000, control));
    const outcome r = train(g.data, split_scheme::random, 128, 3, 128);
    std::cout << (control == synthetic_control::scrambled_labels ? "scrambled labels" : "noise drugs")
              << ": validation R2 " << r.last_r2 << "\n";
    CHECK(std::abs(r.last_r2) < 0.05);
  }
}

TEST_CASE("Training on CANDLE-format files equals training on the in-memory generator") {
  auto o = narrow(3000);
  o.missing_fraction = 0.01;
  o.empty_drug_columns = 3;
  const auto g = generate_drug_response<float>(o);
  const auto dir = std::filesystem::temp_directory_path() / "strata_candle_roundtrip";
  std::filesystem::create_directories(dir);
  const std::string cells = (dir / "cell_expression.tsv").string(), drugs = (dir / "drug_descriptors.tsv").string();
  write_entity_table(cells, g.data.cells, "Sample");
  write_entity_table(drugs, g.data.drugs, "NAME");
  write_combo_response((dir / "ComboDrugGrowth_Nov2017.csv").string(), g.data);
  write_response_tuples((dir / "response.csv").string(), g.data);

  drug_response_data<float> from_combo, from_plain;
  from_combo.cells = from_plain.cells = read_cell_table<float>(cells);
  from_combo.drugs = from_plain.drugs = read_drug_table<float>(drugs);
  from_combo.tuples = read_combo_response((dir / "ComboDrugGrowth_Nov2017.csv").string(), from_combo.cells, from_combo.drugs);
  from_plain.tuples = read_response_tuples((dir / "response.csv").string(), from_plain.cells, from_plain.drugs);
  std::filesystem::remove_all(dir);

  const outcome memory = train(g.data, split_scheme::random, 32, 2, 64);
  const outcome combo = train(std::move(from_combo), split_scheme::random, 32, 2, 64);
  const outcome plain = train(std::move(from_plain), split_scheme::random, 32, 2, 64);
  REQUIRE(memory.weights.size() == combo.weights.size());
  CHECK(memory.weights == combo.weights);
  CHECK(memory.weights == plain.weights);
  CHECK(memory.last_r2 == combo.last_r2);
}
