// drug_response: the Combo two-subnetwork model (cell encoder; one drug encoder shared by both
// drugs; prediction stack) trained with MSE on NCI-ALMANAC-shaped data, from CANDLE files or
// from the built-in synthetic generator with a known R² ceiling (the default).
//
// The data stay as entity tables (cells, drugs) joined by index tuples; minibatches are gathered
// on a worker thread while the model trains. Feature statistics are fitted on the training split
// only and saved in the checkpoint with the weights, the optimizer state and the loop position,
// so `--resume` continues to the same weights, bit for bit, as an uninterrupted run.
//
// Under `mpirun -n P` (when built with MPI) the ranks train data-parallel: each global batch is
// split across them and gradients are summed; `--deterministic` makes the weights bit-identical
// for 1, 2 or 4 ranks (the rank counts that divide its 4 sample blocks). Only rank 0 prints and checkpoints.

#include <boost/program_options.hpp>

#include <strata/strata.hpp>
#include <strata/data/combo_files.hpp>
#include <strata/data/drug_response.hpp>
#include <strata/data/prepare.hpp>
#include <strata/data/split.hpp>
#include <strata/data/synthetic_drug_response.hpp>
#include <strata/models/combo.hpp>
#include <strata/models/combo_model_file.hpp>
#include <strata/train/callbacks.hpp>
#include <strata/train/trainer.hpp>

#include "drug_response_commands.hpp"
#include "drug_response_files.hpp"
#include "example_support.hpp"
#include "precision_support.hpp"

#ifdef STRATA_EXAMPLE_MPI
#include <strata/parallel/data_parallel.hpp>
#include <strata/parallel/mpi_communicator.hpp>
#endif

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <cstdlib>
#include <memory>
#include <sstream>

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace strata;

namespace {

#ifdef STRATA_EXAMPLE_MPI
using Strategy = DataParallel<MpiCommunicator>;
#else
using Strategy = Serial;
#endif

struct settings {
  examples::drug_response_files files;
  bool skip_unknown_ids = false;
  synthetic_drug_response_options synthetic;
  std::string split = "random", control = "none";
  double validation_fraction = 0.2;
  Index epochs = 3, batch = 256, width = 1000, train_samples = 48000, validation_samples = 6000, threads = 0;
  std::uint64_t warmup_steps = 200;
  double lr = 1e-3, dropout = 0.05;
  std::uint64_t seed = 1;
  std::string checkpoint, resume, metrics_out, write_candle, model_out, write_held_out;
  std::uint64_t checkpoint_every = 0;
  bool synthetic_flag = false, deterministic = false;
  bool use_synthetic() const { return files.none(); }
};

/// Everything that decides which samples are trained on and how: a checkpoint written under one
/// description cannot be resumed under another without silently changing the run.
std::string describe_run(const settings& s) {
  std::ostringstream d;
  if (s.use_synthetic())
    d << "synthetic seed " << s.synthetic.seed << " cells " << s.synthetic.cells << " drugs " << s.synthetic.drugs
      << " widths " << s.synthetic.cell_width << "/" << s.synthetic.drug_width << " tuples " << s.synthetic.tuples
      << " ceiling " << s.synthetic.ceiling << " control " << s.control;
  else
    d << "files " << s.files.cell_file << " | " << s.files.drug_file << " | " << s.files.response_file;
  d << "; split " << s.split << " " << s.validation_fraction << "; train samples " << s.train_samples << "; width "
    << s.width << "; dropout " << s.dropout << "; batch " << s.batch << "; seed " << s.seed << "; warmup "
    << s.warmup_steps << (s.deterministic ? "; deterministic" : "");
  return d.str();
}

drug_response_data<float> load_data(const settings& s, double& ceiling) {
  if (s.use_synthetic()) {
    const auto start = std::chrono::steady_clock::now();
    auto generated = generate_drug_response<float>(s.synthetic);
    ceiling = generated.ceiling;
    const auto precision = std::cout.precision();
    std::cout << "data: synthetic, " << generated.data.tuples.size() << " tuples, " << generated.data.cells.size()
              << " cells x " << generated.data.cells.width() << " features, " << generated.data.drugs.size()
              << " drugs x " << generated.data.drugs.width() << " features; best achievable R2 " << ceiling << " ("
              << std::fixed << std::setprecision(1)
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s)\n"
              << std::defaultfloat << std::setprecision(static_cast<int>(precision));
    return std::move(generated.data);
  }
  ceiling = NAN;
  drug_response_data<float> data;
  data.cells = read_cell_table<float>(s.files.cell_file);
  data.drugs = read_drug_table<float>(s.files.drug_file);
  response_read_options options;
  options.skip_unknown_ids = s.skip_unknown_ids;
  response_read_report report;
  const std::string& file = s.files.response_file;
  data.tuples = s.files.combo_format() ? read_combo_response(file, data.cells, data.drugs, options, &report)
                                       : read_response_tuples(file, data.cells, data.drugs, options, &report);
  std::cout << "data: " << file << ": " << report.rows << " rows -> " << data.tuples.size() << " tuples";
  if (report.invalid_rows > 0) std::cout << ", " << report.invalid_rows << " rows not VALID";
  if (report.unknown_rows > 0) {
    std::cout << ", " << report.unknown_rows << " rows with unknown ids skipped (e.g.";
    for (const auto& example : report.unknown_examples) std::cout << " " << example << ";";
    std::cout << ")";
  }
  std::cout << "; " << data.cells.size() << " cells x " << data.cells.width() << ", " << data.drugs.size() << " drugs x "
            << data.drugs.width() << "\n";
  return data;
}

/// Writes the raw tables and the validation tuples as CANDLE files (cell_expression.tsv,
/// drug_descriptors.tsv, response.csv) into `dir`: a held-out set to try `predict` on.
void write_held_out(const std::string& dir, const drug_response_data<float>& data, const std::vector<Index>& rows) {
  fs::create_directories(dir);
  drug_response_data<float> held{data.cells, data.drugs, {}};
  for (const Index r : rows) held.tuples.push_back(data.tuples[static_cast<std::size_t>(r)]);
  write_entity_table((fs::path(dir) / "cell_expression.tsv").string(), held.cells, "Sample");
  write_entity_table((fs::path(dir) / "drug_descriptors.tsv").string(), held.drugs, "NAME");
  write_response_tuples((fs::path(dir) / "response.csv").string(), held);
  std::cout << "wrote the " << held.tuples.size() << " validation tuples and the raw tables to " << dir
            << " (predict them with: drug_response predict --model MODEL --data-dir " << dir << ")\n";
}

/// Writes the inference model file after every epoch (on the root rank), so an interrupted run
/// leaves a model to predict with beside its checkpoint.
class ModelFileWriter : public callback {
 public:
  ModelFileWriter(Model<Combo>& model, combo_model_info info, std::string path)
      : model_(model), info_(std::move(info)), path_(std::move(path)) {}
  void on_train_begin(const train_info& info) override { root_ = info.is_root; }
  void on_epoch_end(const epoch_record&, training_control&) override { write(); }
  void write() {
    if (root_) save_combo_model(model_, info_, path_);
  }
  /// The last write, with int8 inference's input ranges measured on `sample` (training inputs).
  void finish(const matrix_f& sample) {
    if (!root_) return;
    info_.calibration = calibrate_dense_inputs(model_, sample);
    info_.calibration_samples = sample.cols();
    write();
  }

 private:
  Model<Combo>& model_;
  combo_model_info info_;
  std::string path_;
  bool root_ = true;
};

/// The training strategy: data-parallel over all MPI ranks when built with MPI, else serial.
Strategy make_strategy(const settings& s) {
#ifdef STRATA_EXAMPLE_MPI
  data_parallel_options options;
  options.deterministic = s.deterministic;
  return Strategy(MpiCommunicator{}, options);
#else
  if (s.deterministic) throw config_error("--deterministic needs a build with MPI (it is about rank counts)");
  return Strategy{};
#endif
}

/// Rejects option values that make no sense before any data is loaded.
void check_options(const settings& s) {
  examples::require_positive("epochs", static_cast<double>(s.epochs));
  examples::require_positive("batch", static_cast<double>(s.batch));
  examples::require_positive("width", static_cast<double>(s.width));
  examples::require_positive("lr", s.lr);
  if (!(s.validation_fraction > 0 && s.validation_fraction < 1))
    throw config_error(detail::concat("--validation-fraction must be in (0, 1), got ", s.validation_fraction));
  if (!(s.dropout >= 0 && s.dropout < 1)) throw config_error(detail::concat("--dropout must be in [0, 1), got ", s.dropout));
  if (s.train_samples < 0 || s.validation_samples < 0 || s.threads < 0)
    throw config_error("--train-samples, --validation-samples and --threads take 0 (all / default) or a positive count");
  if (s.synthetic_flag && !s.use_synthetic()) throw config_error("--synthetic and data files exclude each other");
  if (!s.metrics_out.empty()) {
    const auto ext = fs::path(s.metrics_out).extension().string();
    if (ext != ".csv" && ext != ".jsonl" && ext != ".json")
      throw config_error("--metrics-out " + s.metrics_out + ": use a .csv or .jsonl file");
  }
}

int run(settings s) {
  check_options(s);
  Strategy strategy = make_strategy(s);
  s.threads = examples::threads_per_rank(s.threads, strategy.ranks() > 1);
  examples::use_threads(s.threads);
  s.files.locate();
  if (!s.use_synthetic() && (s.files.cell_file.empty() || s.files.drug_file.empty() || s.files.response_file.empty()))
    throw config_error("give --data-dir, or all of --cell-file, --drug-file and --response-file");
  s.synthetic.control = parse_synthetic_control(s.control);
  if (s.synthetic.control != synthetic_control::none && !s.use_synthetic())
    throw config_error("--control applies to synthetic data only");
  const split_scheme scheme = parse_split_scheme(s.split);

  std::cout << "drug_response: Combo two-subnetwork model\n  " << describe_run(s) << "\n  epochs " << s.epochs
            << ", batch " << s.batch << ", Adam lr " << s.lr << ", threads " << Eigen::nbThreads();
  if (strategy.ranks() > 1)
    std::cout << " per rank; " << strategy.ranks() << " ranks, data-parallel"
              << (s.deterministic ? " (deterministic: bit-identical for 1, 2 or 4 ranks)" : "");
  std::cout << "\n";

  double ceiling = NAN;
  drug_response_data<float> data = load_data(s, ceiling);
  if (!s.write_candle.empty()) {
    if (!s.use_synthetic()) throw config_error("--write-candle writes synthetic data; do not give data files with it");
    fs::create_directories(s.write_candle);
    const fs::path dir(s.write_candle);
    if (strategy.is_root()) {
      write_entity_table((dir / "cell_expression.tsv").string(), data.cells, "Sample");
      write_entity_table((dir / "drug_descriptors.tsv").string(), data.drugs, "NAME");
      write_combo_response((dir / "ComboDrugGrowth_Nov2017.csv").string(), data);
    }
    std::cout << "wrote cell_expression.tsv, drug_descriptors.tsv and ComboDrugGrowth_Nov2017.csv to " << dir.string()
              << "\n";
    return 0;
  }
  split parts = make_split(data, scheme, s.validation_fraction, s.seed);
  const std::size_t all_train = parts.train.size(), all_validation = parts.validation.size();
  if (s.train_samples > static_cast<Index>(parts.train.size()) || s.validation_samples > static_cast<Index>(parts.validation.size()))
    std::cout << "note: fewer tuples available than requested; using all of them\n";
  if (s.train_samples > 0) parts.train = subsample(parts.train, s.train_samples, s.seed + 1);
  if (s.validation_samples > 0) parts.validation = subsample(parts.validation, s.validation_samples, s.seed + 2);
  if (parts.train.empty() || parts.validation.empty())
    throw data_error(detail::concat("the ", s.split, " split left ", parts.train.size(), " training and ",
                                    parts.validation.size(), " validation tuples"));
  std::cout << "split: " << to_string(scheme) << ", " << parts.train.size() << " of " << all_train << " training and "
            << parts.validation.size() << " of " << all_validation << " validation tuples\n";
  if (!s.write_held_out.empty() && strategy.is_root()) write_held_out(s.write_held_out, data, parts.validation);

  // Scale with statistics of the training entities, or with those saved in the checkpoint we
  // resume (the same numbers, but never refitted on anything else).
  const std::string description = describe_run(s);
  std::unique_ptr<StandardScaler> saved_cells, saved_drugs;
  if (!s.resume.empty()) {
    const checkpoint saved = checkpoint::read(s.resume);
    const auto it = saved.meta.find("run");
    if (it == saved.meta.end()) throw io_error("checkpoint '" + s.resume + "' was not written by drug_response");
    if (it->second != description)
      throw config_error("checkpoint '" + s.resume + "' belongs to another run:\n  it has:  " + it->second +
                         "\n  this is: " + description + "\nresume with the same data and options");
    saved_cells = std::make_unique<StandardScaler>();
    saved_drugs = std::make_unique<StandardScaler>();
    saved_cells->load(saved, "scaler/cell");
    saved_drugs->load(saved, "scaler/drug");
  }
  const prepared_drug_response<float> prepared =
      prepare_drug_response(std::move(data), parts, saved_cells.get(), saved_drugs.get());
  if (!prepared.dropped_cell_columns.empty() || !prepared.dropped_drug_columns.empty())
    std::cout << "data: dropped all-missing columns: " << prepared.dropped_cell_columns.size() << " cell, "
              << prepared.dropped_drug_columns.size() << " drug\n";
  const DrugResponseDataset<float>& train = prepared.train;
  const DrugResponseDataset<float>& validation = prepared.validation;
  const drug_response_data<float>* data_view = &train.data();

  combo_options shape{data_view->cells.width(), data_view->drugs.width(), s.width, s.dropout};
  Model<Combo> model(make_combo(shape));
  model.build(train.input_width(), s.seed);
  std::cout << "model: " << model.parameter_count() << " parameters (cell " << shape.cell_width << ", drugs 2 x "
            << shape.drug_width << " -> encoders of width " << s.width << " -> " << 3 * s.width << " -> 1)\n";

  trainer_options options;
  options.batch_size = s.batch;
  options.seed = s.seed;
  options.checkpoint_path = s.checkpoint;
  options.checkpoint_every = s.checkpoint_every;
  options.warmup_steps = s.warmup_steps;
  Trainer<Combo, MSE, Adam, Strategy> trainer(std::move(model), MSE{}, Adam{s.lr}, std::move(strategy), options);
  checkpoint extras;
  extras.meta["run"] = description;
  prepared.cell_scaler.save(extras, "scaler/cell");
  prepared.drug_scaler.save(extras, "scaler/drug");
  trainer.set_checkpoint_extras(std::move(extras));
  if (!s.resume.empty()) {
    trainer.load(s.resume);
    std::cout << "resumed " << s.resume << " at epoch " << trainer.epoch() + 1 << ", step " << trainer.step() << "\n";
  }
  trainer.add_callback(std::make_shared<ProgressPrinter>(std::cout));
  if (!s.metrics_out.empty()) trainer.add_callback(std::make_shared<MetricsLog>(s.metrics_out));
  std::shared_ptr<ModelFileWriter> model_file;
  const std::string model_path = !s.model_out.empty() ? s.model_out : s.checkpoint.empty() ? "" : s.checkpoint + ".model";
  if (!model_path.empty()) {
    combo_model_info info;
    info.shape = shape;
    info.seed = s.seed;
    info.cell_scaler = prepared.cell_scaler;
    info.drug_scaler = prepared.drug_scaler;
    info.dropped_cell_columns = prepared.dropped_cell_columns;
    info.dropped_drug_columns = prepared.dropped_drug_columns;
    info.data = description;
    model_file = std::make_shared<ModelFileWriter>(trainer.model(), std::move(info), model_path);
    trainer.add_callback(model_file);
  }

  const auto start = std::chrono::steady_clock::now();
  const auto history = trainer.fit(train, s.epochs, &validation);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::cout << "summary:";
  if (history.empty()) {
    std::cout << " nothing to train (the checkpoint is already at epoch " << trainer.epoch() << ")\n";
  } else {
    const auto& v = history.back().validation;
    double rate = 0.0;
    for (const auto& r : history) rate += r.samples_per_second / static_cast<double>(history.size());
    std::cout << std::setprecision(4) << " validation R2 " << v.at("r2") << ", MSE " << v.at("mse") << ", MAE " << v.at("mae") << ", Pearson "
              << v.at("pearson") << " after " << trainer.epoch() << " epochs";
    if (std::isfinite(ceiling)) std::cout << " (best achievable " << ceiling << ")";
    std::cout << "; " << std::fixed << std::setprecision(0) << rate << " samples/s; " << std::setprecision(1) << seconds
              << " s\n"
              << std::defaultfloat;
  }
  if (!s.checkpoint.empty()) std::cout << "checkpoint: " << s.checkpoint << "\n";
  if (model_file) {
    // Calibrated once, on training inputs: predict --precision int8 then quantises every file of
    // tuples alike. 4,096 samples: about a second of Combo inference.
    model_file->finish(examples::first_inputs(train, 4096));
    std::cout << "model: " << model_path << " (predict with: drug_response predict --model " << model_path << ")\n";
  }
  std::cout << "weights fnv1a64: " << std::hex << weights_checksum(trainer.model()) << std::dec << "\n";
  return 0;
}

/// Parses the options and trains; exceptions propagate to the caller.
int parse_and_run(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "predict") return examples::drug_response_predict(argc - 1, argv + 1);
  if (argc > 1 && std::string(argv[1]) == "export") return examples::drug_response_export(argc - 1, argv + 1);
  if (argc > 1 && std::string(argv[1]) == "train") {  // the default command, named
    --argc;
    ++argv;
  }
  settings s;
  po::options_description data("Data"), model("Model and training"), output("Checkpoints and output"),
      synth("Synthetic data (the default when no files are given)");
  data.add_options()
      ("data-dir", po::value(&s.files.data_dir), "directory with CANDLE Combo files: cell_expression.tsv (Sample column), "
       "drug_descriptors.tsv (NAME column), ComboDrugGrowth_Nov2017.csv or response.csv (cell,drug1,drug2,response)")
      ("cell-file", po::value(&s.files.cell_file), "cell expression TSV (overrides --data-dir)")
      ("drug-file", po::value(&s.files.drug_file), "drug descriptor TSV (overrides --data-dir)")
      ("response-file", po::value(&s.files.response_file), "response CSV (ComboDrugGrowth_* or cell,drug1,drug2,response)")
      ("skip-unknown-ids", po::bool_switch(&s.skip_unknown_ids), "drop response rows naming unknown cells/drugs instead of stopping")
      ("split", examples::option(s.split), "random | cell | drug (cell-/drug-blind hold out whole entities)")
      ("validation-fraction", examples::option(s.validation_fraction), "share of tuples held out")
      ("train-samples", examples::option(s.train_samples), "train on a random subsample of this many tuples (0: all)")
      ("validation-samples", examples::option(s.validation_samples), "validate on this many held-out tuples (0: all)");
  synth.add_options()
      ("synthetic", po::bool_switch(&s.synthetic_flag), "use the synthetic generator (the default without files)")
      ("cells", examples::option(s.synthetic.cells), "cell lines")
      ("drugs", examples::option(s.synthetic.drugs), "drugs")
      ("cell-width", examples::option(s.synthetic.cell_width), "features per cell")
      ("drug-width", examples::option(s.synthetic.drug_width), "features per drug")
      ("tuples", examples::option(s.synthetic.tuples), "(cell, drug, drug) tuples")
      ("ceiling", examples::option(s.synthetic.ceiling), "best achievable R2 (sets the noise)")
      ("control", examples::option(s.control), "none | scramble (permuted labels) | noise-drugs: negative controls, R2 ~ 0")
      ("write-candle", po::value(&s.write_candle), "write the synthetic data as CANDLE files into this directory and exit "
       "(then train on them with --data-dir)");
  model.add_options()
      ("epochs", examples::option(s.epochs), "train until this many epochs are complete")
      ("batch", examples::option(s.batch), "minibatch size")
      ("lr", examples::option(s.lr), "Adam learning rate (a resumed run continues with the checkpoint's)")
      ("warmup-steps", examples::option(s.warmup_steps), "ramp the learning rate up linearly over this many steps")
      ("width", examples::option(s.width), "width of every hidden layer")
      ("dropout", examples::option(s.dropout), "dropout rate after every hidden layer")
      ("seed", examples::option(s.seed), "seed for data, split, weights, dropout and shuffling")
      ("deterministic", po::bool_switch(&s.deterministic), "under mpirun: sum gradients in a fixed order over 4 sample "
       "blocks, so 1, 2 or 4 ranks give bit-identical weights")
      ("threads", examples::option(s.threads), "compute threads (0: OpenMP's default)");
  output.add_options()
      ("checkpoint", po::value(&s.checkpoint), "write a checkpoint here after every epoch (atomically)")
      ("checkpoint-every", examples::option(s.checkpoint_every), "also checkpoint every N steps (0: epoch ends only)")
      ("resume", po::value(&s.resume), "continue from this checkpoint (same data and options; --epochs is the total)")
      ("metrics-out", po::value(&s.metrics_out), "per-epoch metrics as .csv or .jsonl")
      ("write-held-out", po::value(&s.write_held_out), "write the validation tuples and the raw tables as CANDLE files "
       "into this directory (to try predict on)")
      ("model-out", po::value(&s.model_out), "write the model for prediction here after every epoch (default with "
       "--checkpoint: CHECKPOINT.model): weights, sizes, feature scaling with column names")
      ("help,h", "show this help");
  po::options_description all(
      "drug_response: trains the two-subnetwork Combo model (CANDLE Pilot 1) on NCI-ALMANAC-shaped data.\n"
      "Other commands: drug_response predict --help, drug_response export --help\n"
      "Defaults take about two minutes on 2 cores at the full feature widths (48,000 training tuples, 3 epochs).\n"
      "Full size: --train-samples 0 --validation-samples 0 --epochs 10\n");
  all.add(data).add(synth).add(model).add(output);
  if (!examples::parse_options(po::command_line_parser(argc, argv).options(all).run(), all)) return 0;
  s.synthetic.seed = s.seed;
  return run(s);
}

}  // namespace


int main(int argc, char** argv) {
  return examples::main_of("drug_response", argc, argv, [&] { return parse_and_run(argc, argv); });
}
