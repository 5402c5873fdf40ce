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
#include <strata/train/callbacks.hpp>
#include <strata/train/trainer.hpp>

#include "example_support.hpp"

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
  std::string data_dir, cell_file, drug_file, response_file;
  bool skip_unknown_ids = false;
  synthetic_drug_response_options synthetic;
  std::string split = "random", control = "none";
  double validation_fraction = 0.2;
  Index epochs = 3, batch = 256, width = 1000, train_samples = 48000, validation_samples = 6000, threads = 0;
  std::uint64_t warmup_steps = 200;
  double lr = 1e-3, dropout = 0.05;
  std::uint64_t seed = 1;
  std::string checkpoint, resume, metrics_out, write_candle;
  std::uint64_t checkpoint_every = 0;
  bool synthetic_flag = false, deterministic = false;
  bool use_synthetic() const { return data_dir.empty() && cell_file.empty() && drug_file.empty() && response_file.empty(); }
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
    d << "files " << s.cell_file << " | " << s.drug_file << " | " << s.response_file;
  d << "; split " << s.split << " " << s.validation_fraction << "; train samples " << s.train_samples << "; width "
    << s.width << "; dropout " << s.dropout << "; batch " << s.batch << "; seed " << s.seed << "; warmup "
    << s.warmup_steps << (s.deterministic ? "; deterministic" : "");
  return d.str();
}

/// Finds the CANDLE files in `dir` unless given one by one.
void locate_files(settings& s) {
  if (s.data_dir.empty()) return;
  const auto pick = [&](std::string& file, std::initializer_list<const char*> names, const char* what) {
    if (!file.empty()) return;
    for (const char* n : names)
      if (fs::exists(fs::path(s.data_dir) / n)) {
        file = (fs::path(s.data_dir) / n).string();
        return;
      }
    std::ostringstream list;
    for (const char* n : names) list << " " << n;
    throw io_error("--data-dir " + s.data_dir + ": no " + what + " file (looked for" + list.str() + ")");
  };
  if (!fs::is_directory(s.data_dir)) throw io_error("--data-dir " + s.data_dir + ": not a directory");
  pick(s.cell_file, {"cell_expression.tsv", "cell_expression.txt"}, "cell expression");
  pick(s.drug_file, {"drug_descriptors.tsv", "drug_descriptors.txt"}, "drug descriptor");
  pick(s.response_file, {"ComboDrugGrowth_Nov2017.csv", "response.csv", "response.tsv"}, "response");
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
  data.cells = read_cell_table<float>(s.cell_file);
  data.drugs = read_drug_table<float>(s.drug_file);
  response_read_options options;
  options.skip_unknown_ids = s.skip_unknown_ids;
  response_read_report report;
  const bool combo_format = fs::path(s.response_file).filename().string().rfind("ComboDrugGrowth", 0) == 0;
  data.tuples = combo_format ? read_combo_response(s.response_file, data.cells, data.drugs, options, &report)
                             : read_response_tuples(s.response_file, data.cells, data.drugs, options, &report);
  std::cout << "data: " << s.response_file << ": " << report.rows << " rows -> " << data.tuples.size() << " tuples";
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
  locate_files(s);
  if (!s.use_synthetic() && (s.cell_file.empty() || s.drug_file.empty() || s.response_file.empty()))
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
  std::cout << "weights fnv1a64: " << std::hex << weights_checksum(trainer.model()) << std::dec << "\n";
  return 0;
}

/// Parses the options and trains; exceptions propagate to the caller.
int parse_and_run(int argc, char** argv) {
  settings s;
  po::options_description data("Data"), model("Model and training"), output("Checkpoints and output"),
      synth("Synthetic data (the default when no files are given)");
  data.add_options()
      ("data-dir", po::value(&s.data_dir), "directory with CANDLE Combo files: cell_expression.tsv (Sample column), "
       "drug_descriptors.tsv (NAME column), ComboDrugGrowth_Nov2017.csv or response.csv (cell,drug1,drug2,response)")
      ("cell-file", po::value(&s.cell_file), "cell expression TSV (overrides --data-dir)")
      ("drug-file", po::value(&s.drug_file), "drug descriptor TSV (overrides --data-dir)")
      ("response-file", po::value(&s.response_file), "response CSV (ComboDrugGrowth_* or cell,drug1,drug2,response)")
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
      ("help,h", "show this help");
  po::options_description all(
      "drug_response: trains the two-subnetwork Combo model (CANDLE Pilot 1) on NCI-ALMANAC-shaped data.\n"
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
