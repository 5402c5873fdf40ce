// quickstart: the smallest complete Strata program, and the README's "A model is a type" block
// compiled (CTest checks that the README shows this file's code). It trains the two-subnetwork
// drug-response model (CANDLE Combo) for one epoch on a small synthetic NCI-ALMANAC-shaped data
// set and prints the validation R². Copy it to start your own program.
#include <strata/strata.hpp>
#include <strata/data/prepare.hpp>
#include <strata/data/split.hpp>
#include <strata/data/synthetic_drug_response.hpp>
#include <strata/train/trainer.hpp>

#include <cstring>
#include <iostream>

using namespace strata;

// ---8<--- README: A model is a type
using Layer   = Sequential<Dense<1000>, ReLU, Dropout>;        // one hidden layer
using Encoder = Repeat<3, Layer>;                              // three of them, own weights each
using Combo   = Sequential<Input<8579>,
                  Fork<Branch<Encoder, Slice<0, 921>>,         // cell expression
                       Shared<Encoder, Slice<921, 4750>,       // drug 1 and drug 2 through
                                       Slice<4750, 8579>>>,    //   ONE set of weights
                  Encoder, Dense<1>>;                          // growth-prediction stack

int train_combo(const DrugResponseDataset<float>& train_data, const DrugResponseDataset<float>& validation_data) {
  const Layer layer{Dense<1000>{}, ReLU{}, Dropout{0.05}};
  const Encoder encoder{layer};
  Model<Combo> model(Combo{Input<8579>{},
                           {Branch<Encoder, Slice<0, 921>>{{}, encoder},
                            Shared<Encoder, Slice<921, 4750>, Slice<4750, 8579>>{encoder, {}, {}}},
                           encoder, Dense<1>{}});
  model.build(8579, /*seed=*/1);                               // 13,760,001 parameters
  trainer_options options;
  options.batch_size = 64;
  options.warmup_steps = 20;                                   // ramp Adam's rate up over 20 steps
  Trainer trainer(std::move(model), MSE{}, Adam{1e-4}, Serial{}, options);
  const auto history = trainer.fit(train_data, /*epochs=*/1, &validation_data);
  std::cout << "validation R2 after one epoch: " << history.back().validation.at("r2") << "\n";
  return history.back().validation.at("r2") > 0.0 ? 0 : 1;   // it learned something
}
// ---8<---

int main(int argc, char** argv) {
  if (argc > 1) {
    std::cout << "quickstart: trains the Combo drug-response model for one epoch on synthetic data "
                 "(about 20 s on 2 cores).\nusage: quickstart   (no options; copy the source to change it)\n";
    return std::strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  try {
    synthetic_drug_response_options o;   // 60 cells x 921 features, 104 drugs x 3,829 descriptors
    o.tuples = 6000;
    o.empty_drug_columns = 0;           // keep every descriptor column: the widths above are fixed
    auto generated = generate_drug_response<float>(o);
    const split parts = make_split(generated.data, split_scheme::random, /*validation=*/0.2, /*seed=*/1);
    const auto prepared = prepare_drug_response(std::move(generated.data), parts);  // impute, scale
    return train_combo(prepared.train, prepared.validation);
  } catch (const std::exception& e) {
    std::cerr << "quickstart: " << e.what() << "\n";
    return 1;
  }
}
