// docking_surrogate: train a docking surrogate, screen a library with it, and measure what the
// pre-filter workflow keeps (Clyde et al. 2021: the surrogate ranks the library, only the top
// fraction σ is docked for real, and the best-scoring molecules must almost never be lost).
//
//   docking_surrogate train --synthetic 10000 --model-out fp.model
//   docking_surrogate screen --model fp.model --library-size 10000000 --top-fraction 0.01 --out top.csv
//   docking_surrogate evaluate-prefilter --model fp.model --library-size 1000000
//
// The synthetic library (data/synthetic_library.hpp) generates molecule i's features and true
// score from (seed, i) on the fly. Training molecules come from ids 2^40 and up, so they never
// overlap a screened range below that.
#include <boost/program_options.hpp>

#include <strata/data/synthetic_library.hpp>
#include <strata/inference/screen.hpp>
#include <strata/models/docking.hpp>
#include <strata/train/callbacks.hpp>
#include <strata/train/model_file.hpp>
#include <strata/train/trainer.hpp>

#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <sstream>

namespace po = boost::program_options;
using namespace strata;

namespace {

constexpr std::uint64_t training_ids = std::uint64_t{1} << 40;

struct settings {
  std::string command;
  // library
  std::uint64_t library_seed = 1, first = 0;
  Index library_size = 1000000;
  std::string features = "fingerprint";
  // training
  Index synthetic = 10000, epochs = 15, batch = 256;
  double lr = 1e-3, dropout = 0.1, validation_fraction = 0.1;
  std::uint64_t seed = 1;
  std::string model_out;
  // screening
  std::string model, out, fractions = "0.005,0.01,0.02,0.05,0.1";
  Index top_k = 0, screen_batch = 8192, threads = 0;
  double top_fraction = 0.0;
};

const char* model_kind(molecule_features f) { return f == molecule_features::descriptors ? "descriptor-mlp" : "fingerprint-mlp"; }

/// Runs `f(model)` with the model type the features call for.
template <class F>
void with_model(molecule_features features, double dropout, F&& f) {
  if (features == molecule_features::descriptors) {
    Model<DescriptorMLP> model(make_descriptor_mlp(dropout));
    f(model);
  } else {
    Model<FingerprintMLP> model(make_fingerprint_mlp(dropout));
    f(model);
  }
}

int train(const settings& s) {
  const molecule_features features = parse_molecule_features(s.features);
  if (s.model_out.empty()) throw config_error("train: give --model-out FILE");
  if (s.synthetic < 10) throw config_error("train: --synthetic needs at least 10 molecules");
  synthetic_library_options lo;
  lo.seed = s.library_seed;
  const SyntheticLibrary library(lo);
  const Index validation = std::max<Index>(1, static_cast<Index>(s.validation_fraction * static_cast<double>(s.synthetic)));
  const SyntheticLibraryDataset<float> train_set(library, features, training_ids, s.synthetic - validation);
  const SyntheticLibraryDataset<float> validation_set(library, features, training_ids + static_cast<std::uint64_t>(s.synthetic - validation), validation);
  std::cout << "train: " << model_kind(features) << " on " << train_set.size() << " synthetic molecules ("
            << to_string(features) << ", " << library.width(features) << " features), validating on " << validation << "\n";
  with_model(features, s.dropout, [&](auto& model) {
    using Spec = typename std::decay_t<decltype(model)>::spec_type;
    model.build(library.width(features), s.seed);
    std::cout << "model: " << model.parameter_count() << " parameters\n";
    trainer_options options;
    options.batch_size = s.batch;
    options.seed = s.seed;
    options.eval_batch_size = 8192;
    Trainer<Spec> trainer(std::move(model), MSE{}, Adam{s.lr}, Serial{}, options);
    trainer.add_callback(std::make_shared<ProgressPrinter>(std::cout));
    const auto history = trainer.fit(train_set, s.epochs, &validation_set);
    const auto& v = history.back().validation;
    std::cout << std::setprecision(4) << "validation: R2 " << v.at("r2") << ", MAE " << v.at("mae") << ", Spearman "
              << v.at("spearman") << "\n";
    save_model(trainer.model(), s.model_out,
               {{"kind", model_kind(features)}, {"features", to_string(features)}, {"label", "reg = max(-score, 0)"},
                {"library_seed", std::to_string(s.library_seed)}});
    std::cout << "model: " << s.model_out << "\n";
  });
  return 0;
}

/// Reads the model file's kind and features so screening builds the right model.
molecule_features features_of(const std::string& path) {
  const checkpoint file = checkpoint::read(path);
  const auto it = file.meta.find("features");
  if (it == file.meta.end() || file.meta.count("kind") == 0)
    throw io_error("model file '" + path + "' has no 'kind'/'features' entries: not written by docking_surrogate train");
  return parse_molecule_features(it->second);
}

/// Scores molecules first .. first + size - 1 of the library with the model in `s.model`,
/// calling `on_batch(first, predictions, truths)`.
template <class F>
double score_library(const settings& s, F&& on_batch) {
  const molecule_features features = features_of(s.model);
  synthetic_library_options lo;
  lo.seed = s.library_seed;
  const SyntheticLibrary library(lo);
  const SyntheticLibraryDataset<float> data(library, features, s.first, s.library_size);
  ScreenProgress progress(&std::cerr, static_cast<std::uint64_t>(s.library_size));
  with_model(features, s.dropout, [&](auto& model) {
    model.build(library.width(features), 0);
    load_model(model, s.model, model_kind(features));
    predict_stream(model, data, s.screen_batch, [&](Index begin, const matrix_f& predictions, const matrix_f& truths) {
      on_batch(begin, predictions, truths);
      progress.update(static_cast<std::uint64_t>(begin + predictions.cols()));
    });
  });
  return progress.seconds();
}

int screen(const settings& s) {
  if (s.model.empty()) throw config_error("screen: give --model FILE");
  if ((s.top_k > 0) == (s.top_fraction > 0)) throw config_error("screen: give exactly one of --top-k and --top-fraction");
  if (s.top_fraction >= 1) throw config_error("screen: --top-fraction must be below 1");
  const auto k = static_cast<std::size_t>(s.top_k > 0 ? s.top_k : std::max<Index>(1, static_cast<Index>(s.top_fraction * static_cast<double>(s.library_size))));
  TopK best(k);
  const double seconds = score_library(s, [&](Index begin, const matrix_f& predictions, const matrix_f&) {
    for (Index j = 0; j < predictions.cols(); ++j)
      best.offer({s.first + static_cast<std::uint64_t>(begin + j), predictions(0, j), 0.0});
  });
  std::cout << "screen: " << s.library_size << " molecules in " << std::fixed << std::setprecision(1) << seconds << " s ("
            << std::setprecision(0) << static_cast<double>(s.library_size) / seconds << " molecules/s), kept the top " << k
            << "\n" << std::defaultfloat;
  std::ofstream file;
  if (!s.out.empty()) {
    file.open(s.out);
    if (!file) throw io_error("screen: cannot write '" + s.out + "'");
  }
  std::ostream& out = s.out.empty() ? std::cout : file;
  out << "id,predicted_reg\n" << std::setprecision(6);
  for (const auto& m : best.sorted()) out << m.id << ',' << m.predicted << '\n';
  if (!s.out.empty()) std::cout << "wrote " << s.out << "\n";
  return 0;
}

int evaluate_prefilter(const settings& s) {
  if (s.model.empty()) throw config_error("evaluate-prefilter: give --model FILE");
  std::vector<double> fractions;
  std::stringstream list(s.fractions);
  for (std::string item; std::getline(list, item, ',');) fractions.push_back(std::stod(item));
  for (const double f : fractions)
    if (!(f > 0 && f < 1)) throw config_error(detail::concat("evaluate-prefilter: fraction ", f, " is not in (0, 1)"));
  std::vector<float> predicted(static_cast<std::size_t>(s.library_size)), truth(predicted.size());
  score_library(s, [&](Index begin, const matrix_f& predictions, const matrix_f& truths) {
    std::copy(predictions.data(), predictions.data() + predictions.cols(), predicted.begin() + begin);
    std::copy(truths.data(), truths.data() + truths.cols(), truth.begin() + begin);
  });
  // Rank by prediction and by truth (higher reg = better), ties by id.
  const auto order_by = [&](const std::vector<float>& v) {
    std::vector<std::uint32_t> order(v.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return v[a] != v[b] ? v[a] > v[b] : a < b; });
    return order;
  };
  const auto by_prediction = order_by(predicted), by_truth = order_by(truth);
  std::vector<std::uint32_t> predicted_rank(predicted.size());
  for (std::size_t r = 0; r < by_prediction.size(); ++r) predicted_rank[by_prediction[r]] = static_cast<std::uint32_t>(r);
  const auto n = static_cast<double>(s.library_size);
  std::ostringstream table;
  table << "sigma,speedup,top_0.1%_retained,top_0.1%_missed,top_1%_retained,top_1%_missed\n";
  std::cout << "pre-filter on " << s.library_size << " molecules (true top 0.1% = " << static_cast<Index>(0.001 * n)
            << ", top 1% = " << static_cast<Index>(0.01 * n) << ")\n"
            << "   sigma  speed-up  top 0.1% kept  missed  top 1% kept  missed\n";
  for (const double sigma : fractions) {
    const auto kept = static_cast<std::uint32_t>(std::llround(sigma * n));
    const auto retained = [&](double top) {
      const auto count = static_cast<std::size_t>(std::max(1.0, std::round(top * n)));
      std::size_t hits = 0;
      for (std::size_t r = 0; r < count; ++r) hits += predicted_rank[by_truth[r]] < kept;
      return std::pair<double, std::size_t>(static_cast<double>(hits) / static_cast<double>(count), count - hits);
    };
    const auto [r1, m1] = retained(0.001);
    const auto [r10, m10] = retained(0.01);
    std::cout << std::fixed << std::setprecision(3) << std::setw(8) << 100 * sigma << "%" << std::setprecision(1) << std::setw(9)
              << 1 / sigma << "x" << std::setprecision(3) << std::setw(14) << 100 * r1 << "%" << std::setw(8) << m1 << std::setw(12)
              << 100 * r10 << "%" << std::setw(8) << m10 << "\n";
    table << sigma << ',' << 1 / sigma << ',' << r1 << ',' << m1 << ',' << r10 << ',' << m10 << '\n';
  }
  std::cout << std::defaultfloat;
  if (!s.out.empty()) {
    std::ofstream file(s.out);
    if (!(file << table.str())) throw io_error("evaluate-prefilter: cannot write '" + s.out + "'");
    std::cout << "wrote " << s.out << "\n";
  }
  return 0;
}

int parse_and_run(int argc, char** argv) {
  settings s;
  po::options_description library("Library (synthetic: molecule i is a pure function of the seed and i)"), training("train"),
      screening("screen and evaluate-prefilter");
  library.add_options()
      ("library-seed", po::value(&s.library_seed)->default_value(s.library_seed), "seed of the synthetic library")
      ("features", po::value(&s.features)->default_value(s.features), "fingerprint (2,048 bits; fingerprint MLP) | counts | descriptors (1,613; descriptor MLP)");
  training.add_options()
      ("synthetic", po::value(&s.synthetic)->default_value(s.synthetic), "train on this many synthetic molecules (ids from 2^40)")
      ("validation-fraction", po::value(&s.validation_fraction)->default_value(s.validation_fraction), "share of them held out")
      ("epochs", po::value(&s.epochs)->default_value(s.epochs), "training epochs")
      ("batch", po::value(&s.batch)->default_value(s.batch), "minibatch size")
      ("lr", po::value(&s.lr)->default_value(s.lr), "Adam learning rate")
      ("dropout", po::value(&s.dropout)->default_value(s.dropout), "dropout after every hidden layer")
      ("seed", po::value(&s.seed)->default_value(s.seed), "seed of weights, dropout and shuffling")
      ("model-out", po::value(&s.model_out), "where to write the trained model");
  screening.add_options()
      ("model", po::value(&s.model), "model file written by train")
      ("library-size", po::value(&s.library_size)->default_value(s.library_size), "molecules to score")
      ("first", po::value(&s.first)->default_value(s.first), "id of the first molecule to score")
      ("top-k", po::value(&s.top_k)->default_value(s.top_k), "screen: keep the k best predictions")
      ("top-fraction", po::value(&s.top_fraction)->default_value(s.top_fraction), "screen: keep this fraction (sigma) of the library")
      ("fractions", po::value(&s.fractions)->default_value(s.fractions), "evaluate-prefilter: the sigmas to tabulate")
      ("out", po::value(&s.out), "screen: CSV of ids and predictions; evaluate-prefilter: CSV of the table")
      ("screen-batch", po::value(&s.screen_batch)->default_value(s.screen_batch), "molecules per forward pass")
      ("threads", po::value(&s.threads)->default_value(s.threads), "compute threads (0: all cores)")
      ("help,h", "show this help");
  po::options_description all(
      "docking_surrogate COMMAND [options]: docking surrogates and the pre-filter workflow\n"
      "commands: train | screen | evaluate-prefilter\n");
  all.add(library).add(training).add(screening);
  po::options_description hidden;
  hidden.add_options()("command", po::value(&s.command));
  po::options_description cmdline;
  cmdline.add(all).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1);
  po::variables_map vm;
  po::store(po::command_line_parser(argc, argv).options(cmdline).positional(positional).run(), vm);
  if (vm.count("help") || argc == 1) {
    std::cout << all << "\n";
    return 0;
  }
  po::notify(vm);
  if (s.threads > 0) {
    Eigen::setNbThreads(static_cast<int>(s.threads));
#ifdef _OPENMP
    omp_set_num_threads(static_cast<int>(s.threads));
#endif
  }
  if (s.library_size <= 0) throw config_error("--library-size must be positive");
  if (s.library_size > (Index{1} << 32) - 1 && s.command == "evaluate-prefilter")
    throw config_error("evaluate-prefilter keeps every score in memory: use at most 2^32 - 1 molecules");
  if (s.command == "train") return train(s);
  if (s.command == "screen") return screen(s);
  if (s.command == "evaluate-prefilter") return evaluate_prefilter(s);
  throw config_error("unknown command '" + s.command + "' (train, screen, evaluate-prefilter; see --help)");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return parse_and_run(argc, argv);
  } catch (const po::error& e) {
    std::cerr << "docking_surrogate: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "docking_surrogate: error: " << e.what() << "\n";
    return 1;
  }
}
