// docking_surrogate: train a docking surrogate, screen a library with it, and measure what the
// pre-filter workflow keeps (Clyde et al. 2021: the surrogate ranks the library, only the top
// fraction σ is docked for real, and the best-scoring molecules must almost never be lost).
//
//   docking_surrogate train --synthetic 10000 --model-out fp.model
//   docking_surrogate screen --model fp.model --library-size 10000000 --top-fraction 0.01 --out top.csv
//   docking_surrogate evaluate-prefilter --model fp.model --library-size 1000000
//   docking_surrogate evaluate-prefilter --model fp.model --library-size 1000000 --precision int8
//     (scores the library in int8 and in fp32: the Spearman of the two and both pre-filters)
//   docking_surrogate train --input ml.target.csv --score-column dock --docking-score --model-out t.model
//   docking_surrogate screen --model t.model --library compounds.smi --top-k 1000 --out top.csv
//
// The synthetic library (data/synthetic_library.hpp) generates molecule i's features and true
// score from (seed, i) on the fly. Training molecules come from ids 2^40 and up, so they never
// overlap a screened range below that.
#include <boost/program_options.hpp>

#include <strata/chem/morgan.hpp>
#include <strata/data/molecule_files.hpp>
#include <strata/data/split.hpp>
#include <strata/data/synthetic_library.hpp>
#include <strata/inference/calibration.hpp>
#include <strata/inference/screen.hpp>
#include <strata/inference/uncertainty.hpp>
#ifdef STRATA_EXAMPLE_NPZ
#include <strata/graph/architecture.hpp>
#include <strata/io/model_npz.hpp>
#endif
#ifdef STRATA_EXAMPLE_ONNX
#include <strata/io/onnx.hpp>
#endif
#include <strata/models/docking.hpp>
#include <strata/train/callbacks.hpp>
#include <strata/train/metrics.hpp>
#include <strata/train/model_file.hpp>
#include <strata/train/trainer.hpp>

#include "example_support.hpp"
#include "precision_support.hpp"

#ifdef STRATA_EXAMPLE_MPI
#include <strata/parallel/data_parallel.hpp>
#endif


#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <numeric>
#include <sstream>

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace strata;

namespace {

constexpr std::uint64_t training_ids = std::uint64_t{1} << 40;

// Training is data-parallel under mpirun (each global batch split across the ranks); screening
// runs on one process.
#ifdef STRATA_EXAMPLE_MPI
using Strategy = DataParallel<MpiCommunicator>;
int world_size() { return MpiCommunicator{}.size(); }
#else
using Strategy = Serial;
int world_size() { return 1; }
#endif

struct settings {
  std::string command;
  // library
  std::uint64_t library_seed = 1, first = 0;
  Index library_size = 1000000;
  // Morgan counts by default: a binary fingerprint cannot tell one copy of a substructure from
  // three, and on the synthetic library the molecules it then misranks are exactly top binders
  // (10 M molecules, 1% for training: 3 of the top 0.1% lost at sigma = 10% with bits, 0 with counts).
  std::string features = "counts";
  // files (SMILES as .smi or CSV, or precomputed feature tables)
  std::string input, library, smiles_column, id_column, score_column, model_type;
  bool feature_table = false, docking_score = false, strict = false;
  // training
  Index synthetic = 10000, epochs = 15, batch = 256;
  double lr = 1e-3, dropout = 0.1, validation_fraction = 0.1;
  std::uint64_t seed = 1;
  std::string model_out;
  // screening
  std::string model, ensemble, out, fractions = "0.005,0.01,0.02,0.05,0.1";
  std::string npz, onnx;  // export
  Index mc_passes = 0;  // Monte-Carlo dropout passes per molecule (0: one plain pass)
  // 1,024 per pass: at 8,192 the first layer's 1,024 x batch output (32 MiB) no longer stays in
  // cache and screening is ~10% slower on 2 cores (bench_docking: 167k vs 114k predictions/s).
  Index top_k = 0, screen_batch = 1024, threads = 0;
  std::string precision = "fp32";
  double top_fraction = 0.0;
};

/// What a model reads: "fingerprint", "counts", "descriptors" (synthetic or SMILES-derived) or
/// "table" (precomputed feature columns).
std::string features_name(const settings& s) { return s.feature_table ? "table" : s.features; }

/// The model type for the features unless --model-type says otherwise.
std::string model_kind(const settings& s, const std::string& features) {
  if (!s.model_type.empty()) {
    if (s.model_type != "fingerprint-mlp" && s.model_type != "descriptor-mlp")
      throw config_error("--model-type must be fingerprint-mlp or descriptor-mlp, not '" + s.model_type + "'");
    return s.model_type;
  }
  return features == "fingerprint" || features == "counts" ? "fingerprint-mlp" : "descriptor-mlp";
}

/// Runs `f(models)` with `count` models of `kind` (a vector of unique_ptr: built models stay put).
template <class F>
void with_models(const std::string& kind, double dropout, std::size_t count, F&& f) {
  const auto run = [&](auto make) {
    using M = Model<decltype(make())>;
    std::vector<std::unique_ptr<M>> models;
    for (std::size_t k = 0; k < count; ++k) models.push_back(std::make_unique<M>(make()));
    f(models);
  };
  if (kind == "descriptor-mlp") run([&] { return make_descriptor_mlp(dropout); });
  else run([&] { return make_fingerprint_mlp(dropout); });
}

/// Runs `f(model)` with the model of `kind`.
template <class F>
void with_model(const std::string& kind, double dropout, F&& f) {
  with_models(kind, dropout, 1, [&](auto& models) { f(*models.front()); });
}

molecule_read_options read_options(const settings& s, bool scores) {
  molecule_read_options o;
  o.smiles_column = s.smiles_column;
  o.id_column = s.id_column;
  o.score_column = scores ? s.score_column : std::string();
  o.docking_score = s.docking_score;
  o.strict = s.strict;
  return o;
}

/// Reads a molecule file: SMILES featurised as `features`, or a feature table.
molecule_table load_file(const settings& s, const std::string& path, const std::string& features, bool scores) {
  if (scores && s.score_column.empty()) throw config_error("give --score-column: the column of " + path + " to learn or check");
  molecule_table t;
  if (features == "table") {
    t = read_feature_table(path, read_options(s, scores));
  } else {
    if (features == "descriptors") throw config_error("descriptors come from the synthetic library or a --feature-table file, not from SMILES");
    morgan_options m;
    m.counts = features == "counts";
    t = read_smiles_file(path, MorganFeaturizer(m), read_options(s, scores));
  }
  std::cout << "data: " << path << ": " << t.size() << " molecules x " << t.features.rows() << " features";
  if (!t.rejected.empty()) std::cout << "; " << t.rejection_summary();
  std::cout << "\n";
  if (t.size() == 0) throw data_error(path + ": no usable molecules (" + t.rejection_summary() + ")");
  return t;
}

/// Columns `rows` of a table as a dataset.
MatrixDataset<float> columns(const molecule_table& t, const std::vector<Index>& rows) {
  matrix_f x(t.features.rows(), static_cast<Index>(rows.size())), y(1, static_cast<Index>(rows.size()));
  for (std::size_t j = 0; j < rows.size(); ++j) {
    x.col(static_cast<Index>(j)) = t.features.col(rows[j]);
    y(0, static_cast<Index>(j)) = t.labels(0, rows[j]);
  }
  return {x, y};
}

/// Molecules scored to calibrate int8 inference (the first of the library, or of the training set).
constexpr Index calibration_size = 8192;


template <class Dataset>
void train_and_save(const settings& s, const std::string& kind, const std::string& features, const Dataset& train_set,
                    const Dataset& validation_set) {
  with_model(kind, s.dropout, [&](auto& model) {
    using Spec = typename std::decay_t<decltype(model)>::spec_type;
    model.build(train_set.input_width(), s.seed);
    std::cout << "model: " << kind << ", " << model.parameter_count() << " parameters; " << train_set.size()
              << " training and " << validation_set.size() << " validation molecules\n";
    trainer_options options;
    options.batch_size = s.batch;
    options.seed = s.seed;
    options.eval_batch_size = 8192;
    Trainer<Spec, MSE, Adam, Strategy> trainer(std::move(model), MSE{}, Adam{s.lr}, Strategy{}, options);
    trainer.add_callback(std::make_shared<ProgressPrinter>(std::cout));
    const auto history = trainer.fit(train_set, s.epochs, &validation_set);
    const auto& v = history.back().validation;
    std::cout << std::setprecision(4) << "validation: R2 " << v.at("r2") << ", MAE " << v.at("mae") << ", Spearman "
              << v.at("spearman") << "\n";
    if (trainer.strategy().is_root()) {
      state_file contents;
      contents.meta = {{"kind", kind}, {"features", features},
                       {"label", s.input.empty() || s.docking_score ? "reg = max(-score, 0)" : s.score_column},
                       {"library_seed", std::to_string(s.library_seed)}};
      // int8 screening's input ranges, measured once on training molecules: every later screen
      // (every shard of a library) quantises alike.
      const matrix_f sample = examples::first_inputs(train_set, calibration_size);
      store_calibration(contents, calibrate_dense_inputs(trainer.model(), sample), sample.cols());
      save_model_file(trainer.model(), s.model_out, std::move(contents));
    }
    std::cout << "model: " << s.model_out << "\n";
  });
}

int train(const settings& s) {
  if (s.model_out.empty()) throw config_error("train: give --model-out FILE");
  const std::string features = features_name(s);
  const std::string kind = model_kind(s, features);
  if (!s.input.empty()) {
    const molecule_table t = load_file(s, s.input, features, true);
    std::vector<Index> all(static_cast<std::size_t>(t.size()));
    std::iota(all.begin(), all.end(), Index{0});
    const split parts = hold_out(all, s.validation_fraction, s.seed);
    if (parts.train.empty() || parts.validation.empty())
      throw data_error(detail::concat(s.input, ": ", t.size(), " molecules are too few to hold out a validation share"));
    train_and_save(s, kind, features, columns(t, parts.train), columns(t, parts.validation));
    return 0;
  }
  if (s.synthetic < 10) throw config_error("train: --synthetic needs at least 10 molecules");
  if (s.feature_table) throw config_error("train: --feature-table needs --input FILE");
  const molecule_features f = parse_molecule_features(features);
  synthetic_library_options lo;
  lo.seed = s.library_seed;
  const SyntheticLibrary library(lo);
  const Index validation = std::max<Index>(1, static_cast<Index>(s.validation_fraction * static_cast<double>(s.synthetic)));
  const SyntheticLibraryDataset<float> train_set(library, f, training_ids, s.synthetic - validation);
  const SyntheticLibraryDataset<float> validation_set(library, f, training_ids + static_cast<std::uint64_t>(s.synthetic - validation), validation);
  std::cout << "train: synthetic molecules (" << to_string(f) << ", " << library.width(f) << " features)\n";
  train_and_save(s, kind, features, train_set, validation_set);
  return 0;
}

/// The model file's kind and features (so screening builds the right model and reads the
/// library the same way).
std::pair<std::string, std::string> model_description(const std::string& path) {
  const checkpoint file = checkpoint::read(path);
  const auto kind = file.meta.find("kind"), features = file.meta.find("features");
  if (kind == file.meta.end() || features == file.meta.end())
    throw io_error("model file '" + path + "' has no 'kind'/'features' entries: not written by docking_surrogate train");
  return {kind->second, features->second};
}

/// What was screened.
struct screened_library {
  Index size = 0;  ///< molecules scored
  double seconds = 0.0;
};

/// Data rows of a molecule file (non-blank lines, less the header of a CSV, less .smi comments):
/// what a SMILES screen sizes its progress line and --top-fraction by before reading it.
Index count_rows(const std::string& path, bool csv) {
  std::ifstream in(path);
  if (!in) throw io_error("cannot open '" + path + "'");
  Index rows = 0;
  for (std::string line; std::getline(in, line);)
    if (line.find_first_not_of(" \t\r") != std::string::npos && line[line.find_first_not_of(" \t\r")] != '#') ++rows;
  return csv && rows > 0 ? rows - 1 : rows;
}

/// The model files that score: --ensemble's list, else --model.
std::vector<std::string> scoring_models(const settings& s) {
  std::vector<std::string> paths = examples::comma_list(s.ensemble);
  if (!s.ensemble.empty() && !s.model.empty()) throw config_error("give --model FILE or --ensemble FILE,FILE,..., not both");
  if (s.ensemble.empty()) paths.push_back(s.model);
  if (paths.empty() || paths.front().empty()) throw config_error(s.command + ": give --model FILE (or --ensemble)");
  if (s.mc_passes < 0) throw config_error("--mc-passes must be 0 (off) or a count of passes");
  if (s.mc_passes > 0 && paths.size() > 1) throw config_error("--mc-passes and --ensemble are two sources of spread: give one");
  return paths;
}

/// Scores the library with the model in `s.model` (or the --ensemble, or --mc-passes passes of
/// it): `on_start(size)` once, then `on_batch(first, predictions, truths, name, spread)` per pass,
/// name(j) naming the pass's j-th molecule; predictions are the mean, and `spread` (null for one
/// plain pass) their spread, column for column. A SMILES library (--library FILE) streams in
/// chunks, the synthetic one (molecules first .. first + size - 1) is generated pass by pass:
/// memory does not grow with either.
template <class Start, class F>
screened_library score_library(const settings& s, bool need_truth, Start&& on_start, F&& on_batch) {
  examples::check_precision(s.precision);
  const std::vector<std::string> paths = scoring_models(s);
  const auto [kind, features] = model_description(paths.front());
  for (const std::string& path : paths)
    if (model_description(path) != std::make_pair(kind, features))
      throw config_error("the ensemble mixes models: " + paths.front() + " and " + path + " differ in kind or features");
  const bool spread = s.mc_passes > 0 || paths.size() > 1;
  screened_library result;
  if (!s.library.empty() && (features == "table") != s.feature_table)
    throw config_error("the model reads " + features + " features; " +
                       (s.feature_table ? "--feature-table gives a feature table" : "the library is read as SMILES"));
  if (s.library.empty() && features == "table") throw config_error("the model reads a feature table: give --library FILE --feature-table");
  with_models(kind, s.dropout, paths.size(), [&](auto& models) {
    auto& model = *models.front();
    using M = std::decay_t<decltype(model)>;
    std::vector<M*> members;
    for (auto& m : models) members.push_back(m.get());
    // Scores `data`, whose first molecule is number `offset` of the library.
    const auto score = [&](const auto& data, Index offset, const auto& name_at) {
      if (!spread) {
        predict_stream(model, data, s.screen_batch, [&](Index begin, const matrix_f& predictions, const matrix_f& truths) {
          on_batch(offset + begin, predictions, truths, [&](Index j) { return name_at(begin + j); },
                   static_cast<const prediction_spread*>(nullptr));
        });
        return;
      }
      spread_options options;
      options.batch = s.screen_batch;
      options.seed = s.seed;
      options.first_sample = offset;
      const prediction_spread p = s.mc_passes > 0 ? mc_dropout_predict(model, data, s.mc_passes, options)
                                                  : ensemble_predict(members, data, options);
      const matrix_f mean = p.mean.template cast<float>(), truths = p.targets.template cast<float>();
      on_batch(offset, mean, truths, name_at, &p);
    };
    std::vector<dense_calibration> stored(paths.size());  // int8 input ranges training kept in the files
    const auto prepare = [&](Index width) {
      for (std::size_t k = 0; k < paths.size(); ++k) {
        members[k]->build(width, 0);
        stored[k] = stored_calibration(load_model_file(*members[k], paths[k], kind), paths[k]);
      }
    };
    // --precision: the models' Dense layers on oneDNN from here on; int8 uses the files'
    // calibration, else calibrates on `sample`, the first molecules to be scored.
    std::unique_ptr<examples::precision_kernels> low_precision;
    const auto set_precision = [&](const auto& make_sample) {
      matrix_f sample;  // made only when needed, once for all members
      low_precision = std::make_unique<examples::precision_kernels>(s.precision, members, stored, [&](std::size_t) -> const matrix_f& {
        if (sample.size() == 0) sample = make_sample();
        return sample;
      }, std::cerr);
    };
    if (s.library.empty()) {  // the synthetic library
      synthetic_library_options lo;
      lo.seed = s.library_seed;
      const SyntheticLibrary library(lo);
      const molecule_features f = parse_molecule_features(features);
      using library_data = SyntheticLibraryDataset<float>;
      const library_data::labels labels = need_truth ? library_data::labels::computed : library_data::labels::skipped;
      const library_data data(library, f, s.first, s.library_size, labels);
      prepare(data.input_width());
      set_precision([&] { return examples::first_inputs(data, calibration_size); });
      on_start(data.size());
      ScreenProgress progress(&std::cerr, static_cast<std::uint64_t>(data.size()));
      const std::uint64_t first = s.first;
      const auto name_of = [&](Index i) { return std::to_string(first + static_cast<std::uint64_t>(i)); };
      if (!spread) {
        predict_stream(model, data, s.screen_batch, [&](Index begin, const matrix_f& predictions, const matrix_f& truths) {
          on_batch(begin, predictions, truths, [&](Index j) { return name_of(begin + j); },
                   static_cast<const prediction_spread*>(nullptr));
          progress.update(static_cast<std::uint64_t>(begin + predictions.cols()));
        });
      } else {
        constexpr Index piece = 65536;  // the spread of a piece at a time: memory stays flat
        for (Index begin = 0; begin < data.size(); begin += piece) {
          const Index n = std::min(piece, data.size() - begin);
          const library_data part(library, f, first + static_cast<std::uint64_t>(begin), n, labels);
          score(part, begin, name_of);
          progress.update(static_cast<std::uint64_t>(begin + n));
        }
      }
      result.size = data.size();
      result.seconds = progress.seconds();
    } else if (s.feature_table) {  // precomputed features: read whole
      // A named score column is never a feature, whether or not it is needed here.
      molecule_table table = load_file(s, s.library, features, need_truth || !s.score_column.empty());
      if (!need_truth) table.labels = matrix_f::Zero(1, table.size());
      prepare(table.features.rows());
      set_precision([&] { return matrix_f(table.features.leftCols(std::min(calibration_size, table.size()))); });
      on_start(table.size());
      ScreenProgress progress(nullptr, 0);
      score(table.dataset(), 0, [&](Index i) { return table.ids[static_cast<std::size_t>(i)]; });
      result.size = table.size();
      result.seconds = progress.seconds();
    } else {  // SMILES, streamed
      if (need_truth && s.score_column.empty()) throw config_error("give --score-column: the column of " + s.library + " to check against");
      morgan_options m;
      m.counts = features == "counts";
      const MorganFeaturizer featurizer(m);
      SmilesReader reader(s.library, featurizer, read_options(s, need_truth));
      const std::string extension = s.library.size() >= 4 ? detail::lowercase(s.library.substr(s.library.size() - 4)) : "";
      const Index rows = count_rows(s.library, extension == ".csv" || extension == ".tsv");  // as SmilesReader decides
      prepare(featurizer.width());
      on_start(rows);
      ScreenProgress progress(&std::cerr, static_cast<std::uint64_t>(rows));
      molecule_table chunk, skipped;
      Index rows_done = 0;
      while (reader.next(std::max<Index>(s.screen_batch, 4096), chunk)) {  // 4,096 x 2,048 floats: 32 MiB
        if (!low_precision) set_precision([&] { return matrix_f(chunk.features.leftCols(std::min(calibration_size, chunk.size()))); });
        rows_done += chunk.rows;
        skipped.rows += chunk.rows;
        for (auto& r : chunk.rejected) skipped.rejected.push_back(std::move(r));
        score(chunk.as_dataset(), result.size, [&](Index i) { return chunk.ids[static_cast<std::size_t>(i)]; });
        result.size += chunk.size();
        progress.update(static_cast<std::uint64_t>(rows_done));
      }
      result.seconds = progress.seconds();
      std::cout << "data: " << s.library << ": " << result.size << " molecules scored";
      if (!skipped.rejected.empty()) std::cout << "; " << skipped.rejection_summary();
      std::cout << "\n";
    }
  });
  return result;
}

int screen(const settings& s) {
  if ((s.top_k > 0) == (s.top_fraction > 0)) throw config_error("screen: give exactly one of --top-k and --top-fraction");
  if (s.top_fraction >= 1) throw config_error("screen: --top-fraction must be below 1");
  std::unique_ptr<TopK> best;
  const auto screened = score_library(
      s, false,
      [&](Index n) {
        const Index k = s.top_k > 0 ? s.top_k : std::max<Index>(1, static_cast<Index>(std::llround(s.top_fraction * static_cast<double>(n))));
        best = std::make_unique<TopK>(static_cast<std::size_t>(k));
      },
      [&](Index begin, const matrix_f& predictions, const matrix_f&, const auto& name, const prediction_spread* spread) {
        for (Index j = 0; j < predictions.cols(); ++j)
          if (best->admits(predictions(0, j), static_cast<std::uint64_t>(begin + j))) {
            scored_molecule m{static_cast<std::uint64_t>(begin + j), predictions(0, j), 0.0, name(j)};
            if (spread) m.spread = {spread->std(0, j), spread->min(0, j), spread->max(0, j)};
            best->offer(m);
          }
      });
  std::cout << "screen: " << screened.size << " molecules in " << std::fixed << std::setprecision(1) << screened.seconds << " s ("
            << std::setprecision(0) << static_cast<double>(screened.size) / screened.seconds << " molecules/s), kept the top "
            << best->capacity() << "\n" << std::defaultfloat;
  std::ofstream file;
  if (!s.out.empty()) {
    file.open(s.out);
    if (!file) throw io_error("screen: cannot write '" + s.out + "'");
  }
  std::ostream& out = s.out.empty() ? std::cout : file;
  const bool spread = s.mc_passes > 0 || !s.ensemble.empty();
  out << (spread ? "id,predicted_reg,predicted_std,predicted_min,predicted_max\n" : "id,predicted_reg\n") << std::setprecision(9);
  for (const auto& m : best->sorted()) {
    out << m.name << ',' << m.predicted;
    if (spread) out << ',' << m.spread.std << ',' << m.spread.min << ',' << m.spread.max;
    out << '\n';
  }
  if (!s.out.empty()) std::cout << "wrote " << s.out << "\n";
  return 0;
}

int evaluate_prefilter(const settings& s) {
  std::vector<double> fractions;
  for (const std::string& item : examples::comma_list(s.fractions)) fractions.push_back(std::stod(item));
  for (const double f : fractions)
    if (!(f > 0 && f < 1)) throw config_error(detail::concat("evaluate-prefilter: fraction ", f, " is not in (0, 1)"));
  // Every molecule's prediction (in the settings' precision) and docking score.
  const auto score_all = [](const settings& how, std::vector<float>& predicted, std::vector<float>& truth) {
    const auto screened = score_library(
        how, true,
        [&](Index n) {
          predicted.resize(static_cast<std::size_t>(n));
          truth.resize(predicted.size());
        },
        [&](Index begin, const matrix_f& predictions, const matrix_f& truths, const auto&, const prediction_spread*) {
          if (static_cast<std::size_t>(begin + predictions.cols()) > predicted.size()) {  // never fewer than the rows counted, but be safe
            predicted.resize(static_cast<std::size_t>(begin + predictions.cols()));
            truth.resize(predicted.size());
          }
          std::copy(predictions.data(), predictions.data() + predictions.cols(), predicted.begin() + begin);
          std::copy(truths.data(), truths.data() + truths.cols(), truth.begin() + begin);
        });
    predicted.resize(static_cast<std::size_t>(screened.size));  // rows counted less rows skipped
    truth.resize(predicted.size());
    if (screened.size > static_cast<Index>(std::numeric_limits<std::uint32_t>::max()))
      throw config_error("evaluate-prefilter ranks at most 2^32 - 1 molecules");
    return screened.size;
  };
  std::vector<float> predicted, truth;
  const Index size = score_all(s, predicted, truth);
  // Rank by prediction and by truth (higher reg = better, NaN last), ties by id.
  const auto order_by = [&](const std::vector<float>& v) {
    const auto key = [&](std::uint32_t i) { return std::isnan(v[i]) ? -HUGE_VALF : v[i]; };
    std::vector<std::uint32_t> order(v.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return key(a) != key(b) ? key(a) > key(b) : a < b; });
    return order;
  };
  const auto rank_of = [&](const std::vector<float>& v) {
    const auto order = order_by(v);
    std::vector<std::uint32_t> rank(v.size());
    for (std::size_t r = 0; r < order.size(); ++r) rank[order[r]] = static_cast<std::uint32_t>(r);
    return rank;
  };
  const auto by_truth = order_by(truth);
  const auto predicted_rank = rank_of(predicted);
  const auto n = static_cast<double>(size);
  // Of the true top `top`, the share (and count missed) among the predicted top `sigma`.
  const auto retained = [&](const std::vector<std::uint32_t>& rank, double top, double sigma) {
    const auto kept = static_cast<std::uint32_t>(std::llround(sigma * n));
    const auto count = static_cast<std::size_t>(std::max(1.0, std::round(top * n)));
    std::size_t hits = 0;
    for (std::size_t r = 0; r < count; ++r) hits += rank[by_truth[r]] < kept;
    return std::pair<double, std::size_t>(static_cast<double>(hits) / static_cast<double>(count), count - hits);
  };
  // A low precision is asked what a user of it wants to know: does it rank the library as fp32
  // does? The library is scored again in fp32, and the rankings and the pre-filter compared.
  const bool compare = s.precision != "fp32";
  std::vector<std::uint32_t> exact_rank;
  double rho = NAN;
  if (compare) {
    settings reference = s;
    reference.precision = "fp32";
    std::vector<float> exact, unused;
    if (score_all(reference, exact, unused) != size) throw config_error("evaluate-prefilter: the fp32 pass scored another number of molecules");
    const auto as_column = [](const std::vector<float>& v) {
      return Eigen::Map<const Eigen::VectorXf>(v.data(), static_cast<Index>(v.size())).cast<double>().eval();
    };
    rho = spearman(as_column(predicted), as_column(exact));
    exact_rank = rank_of(exact);
  }
  std::ostringstream table;
  table << "sigma,speedup,top_0.1%_retained,top_0.1%_missed,top_1%_retained,top_1%_missed"
        << (compare ? ",fp32_top_0.1%_retained,fp32_top_1%_retained,spearman_vs_fp32" : "") << '\n';
  std::cout << "pre-filter on " << size << " molecules (true top 0.1% = " << static_cast<Index>(0.001 * n)
            << ", top 1% = " << static_cast<Index>(0.01 * n) << ")" << (compare ? ", " + s.precision + " and fp32" : "") << "\n"
            << "   sigma  speed-up  top 0.1% kept  missed  top 1% kept  missed" << (compare ? "  fp32: top 0.1%  top 1%" : "") << "\n";
  for (const double sigma : fractions) {
    const auto [r1, m1] = retained(predicted_rank, 0.001, sigma);
    const auto [r10, m10] = retained(predicted_rank, 0.01, sigma);
    std::cout << std::fixed << std::setprecision(3) << std::setw(8) << 100 * sigma << "%" << std::setprecision(1) << std::setw(9)
              << 1 / sigma << "x" << std::setprecision(3) << std::setw(14) << 100 * r1 << "%" << std::setw(8) << m1 << std::setw(12)
              << 100 * r10 << "%" << std::setw(8) << m10;
    table << sigma << ',' << 1 / sigma << ',' << r1 << ',' << m1 << ',' << r10 << ',' << m10;
    if (compare) {
      const double f1 = retained(exact_rank, 0.001, sigma).first, f10 = retained(exact_rank, 0.01, sigma).first;
      std::cout << std::setw(15) << 100 * f1 << "%" << std::setw(9) << 100 * f10 << "%";
      table << ',' << f1 << ',' << f10 << ',' << rho;
    }
    std::cout << "\n";
    table << '\n';
  }
  std::cout << std::defaultfloat;
  if (compare) std::cout << s.precision << " against fp32 on " << size << " molecules: Spearman " << std::setprecision(6) << rho << "\n";
  if (!s.out.empty()) {
    std::ofstream file(s.out);
    if (!(file << table.str())) throw io_error("evaluate-prefilter: cannot write '" + s.out + "'");
    std::cout << "wrote " << s.out << "\n";
  }
  return 0;
}

/// Writes the model as .npz + JSON (NumPy, PyTorch) and/or ONNX (deployment).
int export_model(const settings& s) {
  if (s.model.empty() || (s.npz.empty() && s.onnx.empty()))
    throw config_error("export: give --model FILE and --npz FILE and/or --onnx FILE");
#ifndef STRATA_EXAMPLE_NPZ
  if (!s.npz.empty()) throw config_error("export: this build has no .npz support (install libzip-dev and rebuild)");
#endif
#ifndef STRATA_EXAMPLE_ONNX
  if (!s.onnx.empty()) throw config_error("export: this build has no ONNX support (install libonnx-dev libprotobuf-dev and rebuild)");
#endif
  const auto [kind, features] = model_description(s.model);
  const checkpoint file = checkpoint::read(s.model);
  std::uint64_t width = 0;
  const auto w = file.meta.find("input_width");
  if (w == file.meta.end() || !detail::parse_unsigned(w->second, std::uint64_t{1} << 31, width) || width == 0)
    throw io_error("model file '" + s.model + "' has no valid 'input_width' entry");
  with_model(kind, s.dropout, [&](auto& model) {
    model.build(static_cast<Index>(width), 0);
    load_model(model, s.model, kind);
#ifdef STRATA_EXAMPLE_NPZ
    if (!s.npz.empty()) {
      const std::string json = fs::path(s.npz).replace_extension(".json").string();
      save_npz(model, s.npz);
      write_architecture(model, json, {{"features", detail::json_quoted(features)}});
      std::cout << "wrote " << s.npz << " and " << json << "\n";
    }
#endif
#ifdef STRATA_EXAMPLE_ONNX
    if (!s.onnx.empty()) {
      onnx_options o;
      o.graph_name = kind;
      o.doc = "Strata docking surrogate (" + kind + " on " + features + " features); predicts reg = max(-score, 0)";
      export_onnx(model, s.onnx, o);
      std::cout << "wrote " << s.onnx << "\n";
    }
#endif
  });
  return 0;
}

int parse_and_run(int argc, char** argv) {
  settings s;
  po::options_description library("Library (synthetic: molecule i is a pure function of the seed and i)"), training("train"),
      screening("screen, evaluate-prefilter and export");
  library.add_options()
      ("library-seed", examples::option(s.library_seed), "seed of the synthetic library")
      ("features", examples::option(s.features), "counts (2,048 Morgan bits, counted; fingerprint MLP) | fingerprint (bits only) | descriptors (1,613, synthetic only; descriptor MLP)");
  po::options_description files("Molecule files: .smi (SMILES id) or CSV/TSV with a SMILES column; or --feature-table");
  files.add_options()
      ("input", po::value(&s.input), "train: molecule file with a score column (instead of --synthetic)")
      ("library", po::value(&s.library), "screen/evaluate-prefilter: molecule file (instead of the synthetic library)")
      ("feature-table", po::bool_switch(&s.feature_table), "the files hold precomputed features: an id column, the score column, every other column a feature")
      ("smiles-column", po::value(&s.smiles_column), "CSV column of SMILES (default: the one named smiles, any case)")
      ("id-column", po::value(&s.id_column), "CSV column of ids (default: TITLE, id or name if present, else the line)")
      ("score-column", po::value(&s.score_column), "CSV column to learn (train) or to check against (evaluate-prefilter)")
      ("docking-score", po::bool_switch(&s.docking_score), "the score is a docking score: learn reg = max(-score, 0)")
      ("strict", po::bool_switch(&s.strict), "stop at the first invalid SMILES or malformed row (default: report and skip)")
      ("model-type", po::value(&s.model_type), "fingerprint-mlp | descriptor-mlp (default: by the features)");
  training.add_options()
      ("synthetic", examples::option(s.synthetic), "train on this many synthetic molecules (ids from 2^40)")
      ("validation-fraction", examples::option(s.validation_fraction), "share of them held out")
      ("epochs", examples::option(s.epochs), "training epochs")
      ("batch", examples::option(s.batch), "minibatch size")
      ("lr", examples::option(s.lr), "Adam learning rate")
      ("dropout", examples::option(s.dropout), "dropout after every hidden layer")
      ("seed", examples::option(s.seed), "seed of weights, dropout and shuffling")
      ("model-out", po::value(&s.model_out), "where to write the trained model");
  screening.add_options()
      ("model", po::value(&s.model), "model file written by train")
      ("ensemble", po::value(&s.ensemble), "several model files (comma-separated): rank by their mean, report their spread")
      ("mc-passes", examples::option(s.mc_passes), "Monte-Carlo dropout: rank by the mean of this many passes with dropout "
       "on, report their std, min and max (0: one plain pass; masks from --seed)")
      ("library-size", examples::option(s.library_size), "molecules to score")
      ("first", examples::option(s.first), "id of the first molecule to score")
      ("top-k", examples::option(s.top_k), "screen: keep the k best predictions")
      ("top-fraction", examples::option(s.top_fraction), "screen: keep this fraction (sigma) of the library")
      ("fractions", examples::option(s.fractions), "evaluate-prefilter: the sigmas to tabulate")
      ("out", po::value(&s.out), "screen: CSV of ids and predictions; evaluate-prefilter: CSV of the table")
      ("screen-batch", examples::option(s.screen_batch), "molecules per forward pass")
      ("threads", examples::option(s.threads), "compute threads (0: all cores)")
      ("precision", examples::option(s.precision),
       (std::string(examples::precision_help()) + "; evaluate-prefilter then scores in fp32 too and compares the two").c_str())
      ("npz", po::value(&s.npz), "export: write the model's tensors here (.npz) and its architecture beside it (.json)")
      ("onnx", po::value(&s.onnx), "export: write the model as ONNX (opset 17) here")
      ("help,h", "show this help");
  po::options_description all(
      "docking_surrogate COMMAND [options]: docking surrogates and the pre-filter workflow\n"
      "commands: train | screen | evaluate-prefilter | export\n");
  all.add(library).add(files).add(training).add(screening);
  po::options_description hidden;
  hidden.add_options()("command", po::value(&s.command));
  po::options_description cmdline;
  cmdline.add(all).add(hidden);
  po::positional_options_description positional;
  positional.add("command", 1);
  if (argc == 1) {
    std::cout << all << "\n";
    return 0;
  }
  if (!examples::parse_options(po::command_line_parser(argc, argv).options(cmdline).positional(positional).run(), all)) return 0;
  examples::use_threads(s.threads);
  if (s.library_size <= 0) throw config_error("--library-size must be positive");
  if (s.library.empty() && s.command != "train" && s.first + static_cast<std::uint64_t>(s.library_size) > training_ids)
    throw config_error("--first + --library-size reach id 2^40, where the training molecules start: screen below it");
  if (s.library_size > (Index{1} << 32) - 1 && s.command == "evaluate-prefilter" && s.library.empty())
    throw config_error("evaluate-prefilter keeps every score in memory: use at most 2^32 - 1 molecules");
  if (s.command != "train" && world_size() > 1)
    throw config_error(s.command + " runs on one process: run it without mpirun (training is the data-parallel part)");
  if (s.command == "train") return train(s);
  if (s.command == "screen") return screen(s);
  if (s.precision != "fp32" && s.command != "screen" && s.command != "evaluate-prefilter")
    throw config_error("--precision is for screen and evaluate-prefilter, not " + s.command);
  if (s.command == "evaluate-prefilter") return evaluate_prefilter(s);
  if (s.command == "export") return export_model(s);
  throw config_error("unknown command '" + s.command + "' (train, screen, evaluate-prefilter, export; see --help)");
}

}  // namespace

int main(int argc, char** argv) {
  return examples::main_of("docking_surrogate", argc, argv, [&] { return parse_and_run(argc, argv); });
}
