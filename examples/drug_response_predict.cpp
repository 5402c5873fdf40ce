// drug_response predict and export: using a trained Combo model file (written by training with
// --model-out or beside a checkpoint).
//
// predict reads (cell, drug 1, drug 2) tuples (a ComboDrugGrowth file or a plain cell,drug1,drug2
// CSV, with or without responses) and the raw cell and drug tables, scales the tables the way
// training did (columns matched by name), and streams the tuples through the model in pieces,
// writing one CSV row per tuple. With --mc-passes N it keeps dropout on for N passes (Monte-Carlo
// dropout, CANDLE's PermanentDropout) and writes mean, std, min and max per tuple; with
// --ensemble it averages several models, each scaling the tables its own way. With responses in
// the file it prints MSE, MAE, R2 and Pearson, and for a spread the calibration: coverage of
// mean +- 1.96 std and Spearman(std, |error|). --precision bf16 or int8 runs the Dense layers on
// oneDNN (int8 with the input ranges training stored in each model file; a file without them is
// calibrated on that member's inputs of the first piece).

#include <boost/program_options.hpp>

#include <strata/data/combo_files.hpp>
#include <strata/data/drug_response.hpp>
#include <strata/inference/uncertainty.hpp>
#include <strata/models/combo_model_file.hpp>
#include <strata/train/metrics.hpp>
#ifdef STRATA_EXAMPLE_NPZ
#include <strata/io/model_npz.hpp>
#endif
#ifdef STRATA_EXAMPLE_ONNX
#include <strata/io/onnx.hpp>
#endif
#ifdef STRATA_EXAMPLE_MPI
#include <strata/parallel/mpi_communicator.hpp>
#endif

#include "drug_response_commands.hpp"
#include "drug_response_files.hpp"
#include "example_support.hpp"
#include "precision_support.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace strata;

namespace examples {
namespace {

struct predict_settings {
  drug_response_files files;
  std::string model, ensemble, out = "predictions.csv", precision = "fp32";
  Index mc_passes = 0, batch = 4096, threads = 0;
  std::uint64_t seed = 1;
  bool all_passes = false, skip_unknown_ids = false;
};

/// Tuples predicted per piece: the memory a piece needs stays small whatever the file's length.
constexpr Index tuples_per_piece = 65536;

/// One model of what predicts, with the tables scaled its way.
struct member {
  loaded_combo_model<> loaded;
  std::shared_ptr<drug_response_data<float>> data;
};

std::vector<std::string> comma_list(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (const char c : text + ",") {
    if (c != ',') {
      item += c;
      continue;
    }
    if (!item.empty()) out.push_back(item);
    item.clear();
  }
  return out;
}

/// The next piece of tuples, whichever format the file has: a ComboDrugGrowth file is summarised
/// over doses as a whole (a combination's rows may be anywhere in it), then handed out in pieces;
/// a plain tuple file is read piece by piece.
class tuple_source {
 public:
  tuple_source(const drug_response_files& files, const EntityTable<float>& cells, const EntityTable<float>& drugs,
               const response_read_options& options) {
    if (files.combo_format()) {
      all_ = read_combo_response(files.response_file, cells, drugs, options, &report_);
      responses_ = true;
    } else {
      reader_ = std::make_unique<ResponseTupleReader<float>>(files.response_file, cells, drugs, options,
                                                             ResponseTupleReader<float>::responses::optional);
      responses_ = reader_->has_responses();
    }
  }

  bool has_responses() const { return responses_; }

  bool next(std::vector<response_tuple>& piece) {
    if (reader_) return reader_->next(tuples_per_piece, piece);
    const std::size_t n = std::min(all_.size() - handed_, static_cast<std::size_t>(tuples_per_piece));
    piece.assign(all_.begin() + static_cast<std::ptrdiff_t>(handed_), all_.begin() + static_cast<std::ptrdiff_t>(handed_ + n));
    handed_ += n;
    return n > 0;
  }

  /// What the file held (throws for unknown ids unless skipped, and for a file without tuples).
  response_read_report finish() { return reader_ ? reader_->finish() : report_; }

 private:
  std::unique_ptr<ResponseTupleReader<float>> reader_;
  std::vector<response_tuple> all_;
  std::size_t handed_ = 0;
  response_read_report report_;
  bool responses_ = false;
};

void check(const predict_settings& s) {
  if (s.model.empty() == s.ensemble.empty()) throw config_error("predict: give --model FILE or --ensemble FILE,FILE,...");
  if (s.mc_passes < 0) throw config_error("--mc-passes must be 0 (off) or a count of passes");
  if (s.mc_passes > 0 && !s.ensemble.empty())
    throw config_error("--mc-passes and --ensemble are two sources of spread: give one of them");
  if (s.all_passes && s.mc_passes == 0 && s.ensemble.empty())
    throw config_error("--all-passes needs --mc-passes or --ensemble");
  require_positive("batch", static_cast<double>(s.batch));
  if (s.out.empty()) throw config_error("--out must name a file");
  check_precision(s.precision);
}

int predict(predict_settings s) {
  check(s);
  use_threads(s.threads);
  s.files.locate();
  if (s.files.cell_file.empty() || s.files.drug_file.empty() || s.files.response_file.empty())
    throw config_error("predict: give --data-dir, or all of --cell-file, --drug-file and --tuples");

  const std::vector<std::string> paths = s.ensemble.empty() ? std::vector<std::string>{s.model} : comma_list(s.ensemble);
  if (paths.empty()) throw config_error("--ensemble names no file");
  const EntityTable<float> cells = read_cell_table<float>(s.files.cell_file);
  const EntityTable<float> drugs = read_drug_table<float>(s.files.drug_file);
  std::vector<member> members;
  for (const std::string& path : paths) {
    member m{load_combo_model(path), nullptr};
    auto data = std::make_shared<drug_response_data<float>>();
    data->cells = cells;
    data->drugs = drugs;
    try {
      prepare_tables(m.loaded.info, data->cells, data->drugs);
    } catch (const data_error& e) {
      throw data_error(std::string(e.what()) + " (model " + path + ")");
    }
    m.data = std::move(data);
    std::cout << "model: " << path << ", " << m.loaded.model.parameter_count() << " parameters, trained on: "
              << m.loaded.info.data << "\n";
    members.push_back(std::move(m));
  }

  response_read_options read_options;
  read_options.skip_unknown_ids = s.skip_unknown_ids;
  tuple_source source(s.files, cells, drugs, read_options);
  const bool spread = s.mc_passes > 0 || members.size() > 1;
  const Index count = s.mc_passes > 0 ? s.mc_passes : static_cast<Index>(members.size());
  spread_options options;
  options.batch = s.batch;
  options.seed = s.seed;
  options.keep_passes = s.all_passes;

  // --precision: the members' Dense layers on oneDNN from the first piece on (models outlive it).
  std::unique_ptr<precision_kernels> low_precision;
  constexpr Index calibration_size = 8192;
  std::vector<double> means, stds, targets;  // for the metrics and calibration at the end
  Index done = 0;
  const auto start = std::chrono::steady_clock::now();
  auto reported = start;
  std::cout << "predict: " << s.files.response_file << " -> " << s.out
            << (s.mc_passes > 0 ? detail::concat(" (Monte-Carlo dropout, ", s.mc_passes, " passes)")
                                : members.size() > 1 ? detail::concat(" (ensemble of ", members.size(), ")") : std::string())
            << "\n";
  detail::write_atomically(s.out, [&](std::ostream& out) {
    out << "cell,drug1,drug2" << (source.has_responses() ? ",response" : "")
        << (spread ? ",prediction_mean,prediction_std,prediction_min,prediction_max" : ",prediction");
    if (s.all_passes)
      for (Index k = 0; k < count; ++k) out << ",prediction_" << k + 1;
    out << "\n" << std::setprecision(9);
    std::vector<response_tuple> piece;
    while (source.next(piece)) {
      std::vector<DrugResponseDataset<float>> inputs;
      std::vector<const DrugResponseDataset<float>*> input_of;
      std::vector<Model<Combo>*> models;
      for (member& m : members) {
        m.data->tuples = piece;
        inputs.emplace_back(m.data);
        models.push_back(&m.loaded.model);
      }
      for (const auto& d : inputs) input_of.push_back(&d);
      if (!low_precision) {  // int8 without a stored calibration: each member's inputs of the first piece
        std::vector<dense_calibration> stored;
        for (const member& m : members) stored.push_back(m.loaded.info.calibration);
        std::vector<matrix_f> samples(members.size());
        low_precision = std::make_unique<precision_kernels>(s.precision, models, stored, [&](std::size_t k) -> const matrix_f& {
          return samples[k] = first_inputs(inputs[k], calibration_size);
        }, std::cout);
      }
      options.first_sample = done;
      const prediction_spread p = s.mc_passes > 0 ? mc_dropout_predict(*models.front(), inputs.front(), s.mc_passes, options)
                                                  : ensemble_predict(models, input_of, options);
      for (std::size_t i = 0; i < piece.size(); ++i) {
        const Index j = static_cast<Index>(i);
        const response_tuple& t = piece[i];
        out << quote_field(cells.id(t.cell), ',') << ',' << quote_field(drugs.id(t.drug1), ',') << ','
            << quote_field(drugs.id(t.drug2), ',');
        if (source.has_responses()) out << ',' << t.response;
        out << ',' << p.mean(0, j);
        if (spread) out << ',' << p.std(0, j) << ',' << p.min(0, j) << ',' << p.max(0, j);
        for (const matrix_d& pass : p.passes) out << ',' << pass(0, j);
        out << '\n';
        means.push_back(p.mean(0, j));
        stds.push_back(p.std(0, j));
        targets.push_back(t.response);
      }
      done += static_cast<Index>(piece.size());
      const auto now = std::chrono::steady_clock::now();
      if (now - reported > std::chrono::seconds(5)) {
        reported = now;
        std::cout << "predict: " << done << " tuples, "
                  << std::lround(static_cast<double>(done) / std::chrono::duration<double>(now - start).count())
                  << " tuples/s\n";
      }
    }
    const response_read_report report = source.finish();  // before the file is kept: unknown ids fail here
    if (report.unknown_rows > 0) std::cout << "skipped " << report.unknown_rows << " rows with unknown ids\n";
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "predicted " << done << " tuples in " << std::fixed << std::setprecision(1) << seconds << " s ("
            << std::setprecision(0) << static_cast<double>(done) / seconds << " tuples/s); wrote " << s.out << "\n"
            << std::defaultfloat;
  if (!source.has_responses() || done < 2) return 0;
  const Eigen::Map<const Eigen::VectorXd> m(means.data(), done), y(targets.data(), done);
  std::cout << std::setprecision(4) << "metrics: MSE " << mse(m, y) << ", MAE " << mae(m, y) << ", R2 " << r2(m, y)
            << ", Pearson " << pearson(m, y) << "\n";
  if (spread) {
    prediction_spread all;
    all.count = count;
    all.mean = m.transpose();
    all.std = Eigen::Map<const Eigen::VectorXd>(stds.data(), done).transpose();
    const calibration c = calibrate(all, y.transpose());
    std::cout << "calibration: " << std::setprecision(3) << 100 * c.coverage << "% of responses within mean +- "
              << c.z << " std (95% if calibrated), Spearman(std, |error|) " << c.spearman << "\n";
  }
  return 0;
}

bool world_is_one_process() {
#ifdef STRATA_EXAMPLE_MPI
  return MpiCommunicator{}.size() == 1;
#else
  return true;
#endif
}

}  // namespace

int drug_response_predict(int argc, char** argv) {
  predict_settings s;
  po::options_description options(
      "drug_response predict --model M [options]: predictions for (cell, drug 1, drug 2) tuples from a model file\n"
      "written by training (--model-out, or CHECKPOINT.model). Tables are scaled the way training scaled them, columns\n"
      "matched by name. Writes one CSV row per tuple; prints metrics when the file has responses.\n");
  options.add_options()
      ("model", po::value(&s.model), "model file written by drug_response (--model-out)")
      ("ensemble", po::value(&s.ensemble), "several model files, comma-separated: their mean and spread")
      ("mc-passes", option(s.mc_passes), "Monte-Carlo dropout: this many passes with dropout on (0: one plain pass)")
      ("all-passes", po::bool_switch(&s.all_passes), "also write every pass's (or member's) prediction")
      ("seed", option(s.seed), "seed of the Monte-Carlo dropout masks")
      ("data-dir", po::value(&s.files.data_dir), "directory with cell_expression.tsv, drug_descriptors.tsv and the tuples "
       "(ComboDrugGrowth_Nov2017.csv, response.csv or response.tsv)")
      ("cell-file", po::value(&s.files.cell_file), "cell expression TSV (overrides --data-dir)")
      ("drug-file", po::value(&s.files.drug_file), "drug descriptor TSV (overrides --data-dir)")
      ("tuples", po::value(&s.files.response_file), "ComboDrugGrowth_* file, or CSV/TSV with columns cell, drug1, drug2 "
       "and optionally response (overrides --data-dir)")
      ("skip-unknown-ids", po::bool_switch(&s.skip_unknown_ids), "drop tuples naming unknown cells/drugs instead of stopping")
      ("out", option(s.out), "CSV to write (whole or not at all)")
      ("batch", option(s.batch), "tuples per forward pass")
      ("threads", option(s.threads), "compute threads (0: OpenMP's default)")
      ("precision", option(s.precision), precision_help())
      ("help,h", "show this help");
  if (!parse_options(po::command_line_parser(argc, argv).options(options).run(), options)) return 0;
  if (!world_is_one_process()) throw config_error("predict runs on one process: run it without mpirun");
  return predict(s);
}

int drug_response_export(int argc, char** argv) {
  std::string model_path, npz, onnx;
  po::options_description options(
      "drug_response export --model M [--npz OUT.npz] [--onnx OUT.onnx]: a model file for other programs.\n"
      "--npz: the model's tensors as a NumPy .npz archive (Dense weights out x in, as torch.nn.Linear) and its architecture\n"
      "as OUT.json, which scripts/strata_torch.py and scripts/strata_numpy.py rebuild the model from; the JSON also says\n"
      "how inputs are made from raw tables (strata_numpy.combo_inputs). --onnx: an ONNX model (opset 17) for ONNX Runtime\n"
      "or TensorRT, input `input` (samples x [cell | drug 1 | drug 2] scaled features), output `prediction`.\n");
  options.add_options()
      ("model", po::value(&model_path), "model file written by drug_response (--model-out)")
      ("npz", po::value(&npz), "the .npz archive to write; the architecture goes beside it as .json")
      ("onnx", po::value(&onnx), "the ONNX model to write")
      ("help,h", "show this help");
  if (!parse_options(po::command_line_parser(argc, argv).options(options).run(), options)) return 0;
  if (model_path.empty() || (npz.empty() && onnx.empty()))
    throw config_error("export: give --model FILE and --npz FILE and/or --onnx FILE");
#ifndef STRATA_EXAMPLE_NPZ
  if (!npz.empty()) throw config_error("export: this build has no .npz support (install libzip-dev and rebuild)");
#endif
#ifndef STRATA_EXAMPLE_ONNX
  if (!onnx.empty()) throw config_error("export: this build has no ONNX support (install libonnx-dev libprotobuf-dev and rebuild)");
#endif
  loaded_combo_model<> loaded = load_combo_model(model_path);
#ifdef STRATA_EXAMPLE_NPZ
  if (!npz.empty()) {
    const std::string json = std::filesystem::path(npz).replace_extension(".json").string();
    save_npz(loaded.model, npz);
    write_architecture(loaded.model, json, {{"preprocessing", combo_preprocessing_json(loaded.info)}});
    std::cout << "wrote " << npz << " and " << json << "\n";
  }
#endif
#ifdef STRATA_EXAMPLE_ONNX
  if (!onnx.empty()) {
    onnx_options o;
    o.graph_name = "combo";
    o.doc = "Strata drug_response (Combo) model; trained on: " + loaded.info.data;
    export_onnx(loaded.model, onnx, o);
    std::cout << "wrote " << onnx << "\n";
  }
#endif
  return 0;
}

}  // namespace examples
