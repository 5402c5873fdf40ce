// A small two-subnetwork model trained end to end on synthetic data: cell features and two
// drugs' features go through encoders (one encoder shared by both drugs), are concatenated and
// pass through a prediction stack; trained with MSE, as the drug-response model is.
//
// The synthetic task: every cell and drug has hidden latent factors; their features are noisy
// nonlinear maps of those factors, and the response is a function of the factors that is
// symmetric in the two drugs, plus noise. The model must recover the factors from the features.

#include <boost/program_options.hpp>

#include <strata/strata.hpp>
#include <strata/data/dataset.hpp>
#include <strata/train/callbacks.hpp>
#include <strata/train/trainer.hpp>

#include <cmath>
#include <iostream>

namespace po = boost::program_options;
using namespace strata;

namespace {
using Layer = Sequential<Dense<>, ReLU, Dropout>;
using Encoder = Repeat<2, Layer>;
using TwoSubnetwork = Sequential<Fork<Branch<Encoder>, Shared<Encoder, Slice<>, Slice<>>>, Repeat<2, Layer>, Dense<1>>;

TwoSubnetwork make_model(Index cell_width, Index drug_width, Index width, double dropout) {
  const Encoder encoder{Layer{Dense<>{width}, ReLU{}, Dropout{dropout}}};
  return TwoSubnetwork{{Branch<Encoder>{Slice<>{0, cell_width}, encoder},
                        Shared<Encoder, Slice<>, Slice<>>{encoder, Slice<>{cell_width, cell_width + drug_width},
                                                          Slice<>{cell_width + drug_width, cell_width + 2 * drug_width}}},
                       encoder, Dense<1>{}};
}

struct synthetic_task {
  Index cells = 40, drugs = 60, latent = 4, cell_width = 64, drug_width = 96;
  double noise = 0.1;
  std::uint64_t seed = 1;

  /// Entity features: tanh of a random projection of the entity's latent factors, plus noise.
  matrix_f features(Index count, Index width, std::uint64_t salt, matrix_f& factors) const {
    const random_stream rng(seed, purpose::data, salt);
    factors.resize(latent, count);
    for (Index i = 0; i < factors.size(); ++i) factors.data()[i] = static_cast<float>(rng.normal(static_cast<std::uint64_t>(i)));
    matrix_f projection(width, latent);
    const random_stream prng = rng.substream(1);
    for (Index i = 0; i < projection.size(); ++i) projection.data()[i] = static_cast<float>(prng.normal(static_cast<std::uint64_t>(i)));
    matrix_f f = (projection * factors).array().tanh().matrix();
    const random_stream nrng = rng.substream(2);
    for (Index i = 0; i < f.size(); ++i) f.data()[i] += static_cast<float>(0.1 * nrng.normal(static_cast<std::uint64_t>(i)));
    return f;
  }

  /// `samples` random (cell, drug1, drug2) tuples, features concatenated.
  MatrixDataset<float> make(Index samples, std::uint64_t salt) const {
    matrix_f cell_factors, drug_factors;
    const matrix_f cell = features(cells, cell_width, 1, cell_factors);
    const matrix_f drug = features(drugs, drug_width, 2, drug_factors);
    const random_stream rng(seed, purpose::data, 100 + salt);
    matrix_f x(cell_width + 2 * drug_width, samples), y(1, samples);
    for (Index j = 0; j < samples; ++j) {
      const auto s = static_cast<std::uint64_t>(4 * j);
      const Index c = static_cast<Index>(rng.below(static_cast<std::uint64_t>(cells), s));
      const Index d1 = static_cast<Index>(rng.below(static_cast<std::uint64_t>(drugs), s + 1));
      const Index d2 = static_cast<Index>(rng.below(static_cast<std::uint64_t>(drugs), s + 2));
      x.col(j) << cell.col(c), drug.col(d1), drug.col(d2);
      // Symmetric in the two drugs: each drug's effect on this cell, combined by a sum and a product.
      const float e1 = std::tanh(cell_factors.col(c).dot(drug_factors.col(d1)) / 2);
      const float e2 = std::tanh(cell_factors.col(c).dot(drug_factors.col(d2)) / 2);
      y(0, j) = e1 + e2 - 0.5f * e1 * e2 + static_cast<float>(noise * rng.normal(s + 3));
    }
    return {x, y};
  }
};
}  // namespace

int main(int argc, char** argv) try {
  Index epochs = 10, batch = 128, samples = 20000, width = 128;
  double lr = 1e-3, dropout = 0.05;
  std::uint64_t seed = 1;
  std::string metrics_log;
  po::options_description options(
      "two_subnetwork_demo: trains a two-subnetwork (cell + shared drug encoder) model on synthetic data\n\nOptions");
  options.add_options()("help,h", "show this help")
      ("epochs", po::value(&epochs)->default_value(epochs), "training epochs")
      ("batch", po::value(&batch)->default_value(batch), "minibatch size")
      ("lr", po::value(&lr)->default_value(lr), "Adam learning rate")
      ("width", po::value(&width)->default_value(width), "width of every hidden layer")
      ("dropout", po::value(&dropout)->default_value(dropout), "dropout rate")
      ("samples", po::value(&samples)->default_value(samples), "training samples (validation: a quarter of that)")
      ("seed", po::value(&seed)->default_value(seed), "seed for data, weights, dropout and shuffling")
      ("metrics-log", po::value(&metrics_log), "write per-epoch metrics to this .csv or .jsonl file");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, options), vm);
  if (vm.count("help")) {
    std::cout << options << "\n";
    return 0;
  }
  po::notify(vm);
  if (epochs <= 0 || batch <= 0 || samples <= 0 || width <= 0) throw config_error("epochs, batch, samples and width must be positive");

  synthetic_task task;
  task.seed = seed;
  const auto train = task.make(samples, 1);
  const auto validation = task.make(samples / 4, 2);

  Model<TwoSubnetwork> model(make_model(task.cell_width, task.drug_width, width, dropout));
  model.build(train.input_width(), seed);
  std::cout << "two-subnetwork model: " << model.parameter_count() << " parameters; " << train.size()
            << " training and " << validation.size() << " validation samples of " << train.input_width()
            << " features\n";

  trainer_options settings;
  settings.batch_size = batch;
  settings.seed = seed;
  Trainer<TwoSubnetwork> trainer(std::move(model), MSE{}, Adam{lr}, Serial{}, settings);
  trainer.add_callback(std::make_shared<ProgressPrinter>(std::cout));
  if (!metrics_log.empty()) trainer.add_callback(std::make_shared<MetricsLog>(metrics_log));
  const auto history = trainer.fit(train, epochs, &validation);
  const auto& last = history.back().validation;
  std::cout << "final validation: R2 " << last.at("r2") << ", MAE " << last.at("mae") << ", Spearman "
            << last.at("spearman") << "\n";
  return 0;
} catch (const po::error& e) {
  std::cerr << "two_subnetwork_demo: " << e.what() << " (see --help)\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "two_subnetwork_demo: error: " << e.what() << "\n";
  return 1;
}
