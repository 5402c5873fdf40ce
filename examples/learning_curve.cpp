// learning_curve: how a drug-response model's test error falls as its training set grows
// (Partin et al., BMC Bioinformatics 22:252, 2021), fitted by the power law
// error(m) = alpha m^beta + gamma and extrapolated.
//
//   learning_curve                              mNN and sNN on the synthetic CTRP study
//   learning_curve --studies DIR --study GDSC   Uno-layout (CANDLE) files
//   mpirun -n 4 learning_curve                  the (model, split, size) jobs on 4 ranks
//   learning_curve --fit-only OUT.csv           refit scores written before (other weights, say)
//
// mNN is the multi-input network (cell and drug features through encoders of their own, then
// joined); sNN the single-input network of the same widths on the concatenated features; GBT
// (builds that found libxgboost-dev) gradient-boosted trees on the same features. For
// every model, split (fixed test and validation sets) and training size a fresh model trains
// with early stopping; the test MAE, MSE, R2 and Spearman go to the tidy CSV OUT.csv, the fits
// (median over splits, bootstrap intervals over splits, the prediction at twice the largest
// size, the size needed for a 10% lower error, the extrapolation check against the last value)
// to OUT_fit.csv. `scripts/strata_plots.py learning-curve OUT.csv` draws them. The same seeds
// give the same CSV (apart from its seconds column) on any number of ranks; with --work-dir a
// killed run trains only what is missing.

#include <boost/program_options.hpp>

#include <strata/analysis/learning_curve.hpp>
#include <strata/analysis/network_learner.hpp>
#include <strata/models/single_drug.hpp>
#include <strata/optim/adam.hpp>

#include "example_support.hpp"
#include "study_support.hpp"

#ifdef STRATA_EXAMPLE_MPI
#include <strata/parallel/mpi_communicator.hpp>
#endif
#ifdef STRATA_EXAMPLE_XGBOOST
#include <strata/analysis/xgboost_learner.hpp>
#endif

#include <algorithm>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <thread>

namespace po = boost::program_options;
using namespace strata;

namespace {

#ifdef STRATA_EXAMPLE_XGBOOST
using xgboost_settings = xgboost_options;
#else
struct xgboost_settings {  // the options exist without XGBoost too, so --help is the same
  Index max_rounds = 1000, patience = 20, max_depth = 6;
  double learning_rate = 0.1;
};
#endif

struct settings {
  synthetic_studies_options synthetic;
  std::string studies_dir, study = "CTRP", scheme = "random", models = "mNN,sNN", metric = "mae", weights = "relative",
              out = "learning_curve", fit_only, work_dir;
  Index folds = 10, splits = 5, min_size = 128, max_size = 0, size_count = 0;
  Index width = 64, batch = 32, epochs = 100, patience = 10, plateau_patience = 0, threads = 0, ranks_per_job = 1;
  // Sizes below 1,024 are not fitted: below it the curve is in its small-data region, which a
  // power law does not describe (Partin et al. leave out the first sizes for the same reason).
  double dropout = 0.1, learning_rate = 1e-3, plateau_factor = 0.3, min_fit_size = 1024.0;
  curve_summary_options summary;
  xgboost_settings trees;
  std::uint64_t seed = 1;
  bool skip_unknown_ids = false;
};

/// A setting that runs in well under a minute: small, narrow synthetic studies.
void make_quick(settings& s) {
  s.synthetic.cells = 160;
  s.synthetic.drugs = 120;
  s.synthetic.cell_width = 24;
  s.synthetic.drug_width = 32;
  s.synthetic.studies = {{"CTRP", 0, 160, 0, 120, 12000, 1.6, 0.0, 0.85}};
  s.splits = 3;
  s.min_size = 64;
  s.max_size = 4096;
  s.width = 32;
  s.epochs = 30;
  s.summary.bootstrap = 50;
  s.min_fit_size = 256.0;
}

curve_weights parse_weights(const std::string& name) {
  if (name == "relative") return curve_weights::relative_size;
  if (name == "binomial") return curve_weights::binomial;
  if (name == "none") return curve_weights::none;
  throw config_error("--weights: unknown weighting '" + name + "' (expected relative, binomial or none)");
}

/// The fit metric must be an error that falls with data.
void check_fit_metric(const std::string& m) {
  if (m != "mae" && m != "mse")
    throw config_error("--metric: a learning curve is fitted to an error that falls with data: mae or mse, not '" + m + "'");
}

/// Median score per size of every model, side by side, with the range over splits.
void print_medians(const std::vector<curve_summary>& curves) {
  std::cout << "\nmedian test " << curves.front().metric << " over splits [smallest, largest]:\n" << std::left << std::setw(9) << "size";
  for (const auto& c : curves) std::cout << std::setw(30) << c.model;
  std::cout << "\n";
  for (std::size_t k = 0; k < curves.front().sizes.size(); ++k) {
    std::cout << std::setw(9) << static_cast<Index>(curves.front().sizes[k]);
    for (const auto& c : curves) {
      const auto at = std::find(c.sizes.begin(), c.sizes.end(), curves.front().sizes[k]);
      if (at == c.sizes.end()) {
        std::cout << std::setw(30) << "-";
        continue;
      }
      const auto i = static_cast<std::size_t>(at - c.sizes.begin());
      std::cout << std::setw(30)
                << detail::concat(std::fixed, std::setprecision(4), c.median[i], " [", c.low[i], ", ", c.high[i], "]");
    }
    std::cout << "\n";
  }
}

/// Summaries, the table, crossings of the fitted curves, and the fit CSV.
std::vector<curve_summary> report(const std::vector<curve_point>& points, const settings& s, bool write) {
  std::vector<curve_summary> curves;
  for (const auto& model : curve_models(points)) curves.push_back(summarise_learning_curve(points, model, s.metric, s.summary));
  print_medians(curves);
  std::cout << "\n" << curve_summary_text(curves);
  for (std::size_t a = 0; a < curves.size(); ++a)
    for (std::size_t b = a + 1; b < curves.size(); ++b) {
      if (!curves[a].fit.converged || !curves[b].fit.converged) continue;
      const double low = std::max(curves[a].fitted_from, curves[b].fitted_from), high = 2.0 * curves[a].sizes.back();
      const double m = crossing_size(curves[a].fit.curve, curves[b].fit.curve, low, high);
      std::cout << "fitted curves of " << curves[a].model << " and " << curves[b].model
                << (std::isfinite(m) ? detail::concat(" cross at about ", static_cast<Index>(m), " samples")
                                     : detail::concat(" do not cross between ", static_cast<Index>(low), " and ", static_cast<Index>(high)))
                << "\n";
    }
  if (write) {
    write_curve_fits_csv(s.out + "_fit.csv", curves);
    std::cout << "wrote " << s.out << "_fit.csv\n";
  }
  return curves;
}

int run(settings& s) {
#ifdef STRATA_EXAMPLE_MPI
  MpiCommunicator world;
#else
  SerialCommunicator world;
#endif
  check_fit_metric(s.metric);
  s.summary.fit.weights = parse_weights(s.weights);
  s.summary.fit.min_size = s.min_fit_size;
  s.summary.seed = s.seed;
  if (!s.fit_only.empty()) {
    report(read_curve_points_csv(s.fit_only), s, world.rank() == 0 && !s.out.empty());
    return 0;
  }
  // Jobs run side by side, each on one thread: the scores then do not depend on how many
  // ranks or threads share the work.
  const Index threads = examples::threads_per_rank(s.threads, world.size() > 1);
  learning_curve_options o;
  o.models = examples::comma_list(s.models);
  o.scheme = parse_split_scheme(s.scheme);
  o.folds = s.folds;
  o.splits = s.splits;
  o.seed = s.seed;
  o.sweep.concurrent_jobs = threads > 0 ? threads : std::max<Index>(1, static_cast<Index>(std::thread::hardware_concurrency()));
  o.sweep.ranks_per_job = s.ranks_per_job;
  o.sweep.work_directory = s.work_dir;
  examples::use_threads(1);
  for (const auto& m : o.models) {
#ifndef STRATA_EXAMPLE_XGBOOST
    if (m == "GBT") throw config_error("--models: GBT needs XGBoost, and this build found none (apt-get install libxgboost-dev, rebuild)");
#endif
    if (m != "mNN" && m != "sNN" && m != "GBT") throw config_error("--models: unknown model '" + m + "' (expected mNN, sNN or GBT)");
  }

  const multi_study_data<float> all = examples::load_studies(s.studies_dir, s.synthetic, s.skip_unknown_ids);
  drug_response_data<float> data = all.study(s.study);
  const Index pool = smallest_training_pool(data, o.scheme, o.folds, o.splits, o.seed);
  Index largest = s.max_size;
  if (largest == 0)
    for (largest = 1; 2 * largest <= pool;) largest *= 2;  // the largest power of two every split holds
  if (largest <= s.min_size)
    throw config_error(detail::concat("--min-size ", s.min_size, " must be below the largest size, ", largest,
                                      " (the smallest training pool holds ", pool, " pairs)"));
  o.sizes = s.size_count > 0 ? geometric_sizes(s.min_size, largest, s.size_count) : log2_sizes(s.min_size, largest);
  // What the fit will refuse is refused now, before hours of training.
  s.summary.validate();
  const auto fitted = std::count_if(o.sizes.begin(), o.sizes.end(), [&](Index m) { return static_cast<double>(m) >= s.min_fit_size; });
  if (fitted < 3)
    throw config_error(detail::concat("--min-fit-size ", s.min_fit_size, " leaves ", fitted, " of the sizes ", o.sizes.front(), " to ",
                                      o.sizes.back(), " to fit; a curve of three parameters needs at least 3"));
  if (s.plateau_patience > 0 && s.plateau_patience >= s.patience)
    throw config_error(detail::concat("--plateau-patience ", s.plateau_patience, " must be below --patience ", s.patience,
                                      ": early stopping would end every run before the rate is lowered"));

  const single_drug_options shape{data.cells.width(), data.drugs.width(), s.width, s.dropout};
  trainer_options training;
  training.batch_size = s.batch;
  fit_to_best_options fitting{s.epochs, s.patience, 0.0, "loss", false, {}, std::nullopt};
  if (s.plateau_patience > 0)
    fitting.plateau = ReduceLROnPlateau(plateau_mode::min, s.plateau_factor, static_cast<std::uint64_t>(s.plateau_patience));
  o.learner_settings = detail::concat(std::setprecision(17), s.width, "|", s.dropout, "|", s.batch, "|", s.learning_rate, "|", s.epochs,
                                      "|", s.patience, "|", s.plateau_patience, "|", s.plateau_factor, "|", s.trees.max_rounds, "|", s.trees.patience, "|", s.trees.max_depth, "|",
                                      s.trees.learning_rate);
  const NetworkLearner<TwoSubnetwork, Adam> mnn([shape] { return make_two_subnetwork(shape); }, Adam{s.learning_rate}, training, fitting);
  const NetworkLearner<Concatenated, Adam> snn([shape] { return make_concatenated(shape); }, Adam{s.learning_rate}, training, fitting);

  const LearningCurve<float> curve(std::move(data), o);
  std::cout << "study " << s.study << ": " << curve.data().tuples.size() << " pairs; " << o.splits << " " << to_string(o.scheme)
            << " splits of " << o.folds << " folds (training pools of at least " << pool << " pairs)\n"
            << curve.jobs() << " jobs (" << o.models.size() << " models x " << o.splits << " splits x " << o.sizes.size()
            << " sizes, " << o.sizes.front() << " to " << o.sizes.back() << ") on " << world.size()
            << (world.size() == 1 ? " rank" : " ranks")
            << (o.sweep.ranks_per_job > 1 ? detail::concat(", each job data-parallel on ", o.sweep.ranks_per_job, " ranks")
                                          : detail::concat(", ", o.sweep.concurrent_jobs, " at a time on each"))
            << (o.sweep.work_directory.empty() ? "" : ", finished jobs kept in " + o.sweep.work_directory) << "\n";
#ifdef STRATA_EXAMPLE_XGBOOST
  const XGBoostLearner gbt(s.trees);
#endif
  const auto result = curve.run(
      world,
      [&](const curve_task<float>& task, auto strategy) {
#ifdef STRATA_EXAMPLE_XGBOOST
        if (task.model == "GBT") return gbt(task, std::move(strategy));
#endif
        return task.model == "mNN" ? mnn(task, std::move(strategy)) : snn(task, std::move(strategy));
      },
      [](const std::string& line) { std::cout << "  " << line << "\n" << std::flush; });
  const bool write = world.rank() == 0 && !s.out.empty();
  if (write) {
    write_curve_points_csv(s.out + ".csv", result.points);
    std::cout << "wrote " << s.out << ".csv\n";
  }
  report(result.points, s, write);
  std::cout << "wall time " << std::fixed << std::setprecision(1) << result.seconds << " s on " << world.size()
            << (world.size() == 1 ? " rank" : " ranks")
            << (result.resumed > 0 ? detail::concat(" (", result.resumed, " jobs kept on rank 0)") : "") << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::main_of("learning_curve", argc, argv, [&]() -> int {
    settings s;
    // --quick changes the defaults, so it is seen first: options given beside it still win.
    for (int i = 1; i < argc; ++i)
      if (std::string(argv[i]) == "--quick") make_quick(s);
    bool quick = false;  // seen above; declared so that --help lists it
    po::options_description data("Data"), curve("Curve"), training("Training"), fit("Fit"), output("Output and running");
    examples::add_study_data_options(data, s.studies_dir, s.skip_unknown_ids, s.synthetic.seed);
    data.add_options()
        ("study", examples::option(s.study), "the study whose responses the models learn")
        ("quick", po::bool_switch(&quick), "a small setting that runs in well under a minute");
    curve.add_options()
        ("models", examples::option(s.models), "mNN (multi-input), sNN (single-input), GBT (boosted trees, with XGBoost), comma-separated")
        ("scheme", examples::option(s.scheme), "splits: random, cell or drug (cell- or drug-blind)")
        ("folds", examples::option(s.folds), "split s tests on fold s and validates on fold s+1 of this many")
        ("splits", examples::option(s.splits), "splits (each with its own test and validation set)")
        ("min-size", examples::option(s.min_size), "the smallest training size")
        ("max-size", examples::option(s.max_size), "the largest (0: the largest power of two every split's training pool holds)")
        ("sizes", examples::option(s.size_count), "this many sizes evenly spaced in log (0: powers of two)")
        ("seed", examples::option(s.seed), "seed of splits, training orders and models");
    training.add_options()
        ("width", examples::option(s.width), "hidden width of both networks")
        ("dropout", examples::option(s.dropout), "dropout after every hidden layer")
        ("batch", examples::option(s.batch), "minibatch size")
        ("lr", examples::option(s.learning_rate), "Adam's learning rate")
        ("epochs", examples::option(s.epochs), "most epochs per model")
        ("patience", examples::option(s.patience), "early stopping: epochs without a better validation loss")
        ("plateau-patience", examples::option(s.plateau_patience), "lower the rate after this many epochs without a better validation loss (0: never)")
        ("plateau-factor", examples::option(s.plateau_factor), "the factor it is lowered by")
        ("gbt-rounds", examples::option(s.trees.max_rounds), "GBT: most boosting rounds")
        ("gbt-patience", examples::option(s.trees.patience), "GBT: rounds without a better validation MSE before stopping")
        ("gbt-depth", examples::option(s.trees.max_depth), "GBT: depth of each tree")
        ("gbt-lr", examples::option(s.trees.learning_rate), "GBT: learning rate (shrinkage)");
    fit.add_options()
        ("metric", examples::option(s.metric), "the error fitted: mae or mse")
        ("weights", examples::option(s.weights), "least-squares weights: relative (m / max m), binomial (m / (e (1 - e))) or none")
        ("min-fit-size", examples::option(s.min_fit_size), "sizes below this are not fitted")
        ("bootstrap", examples::option(s.summary.bootstrap), "resamples of the splits for the confidence intervals")
        ("confidence", examples::option(s.summary.confidence), "of the intervals")
        ("fit-only", po::value(&s.fit_only), "fit the scores of this CSV (an earlier OUT.csv) instead of training");
    output.add_options()
        ("out", examples::option(s.out), "write OUT.csv (every score) and OUT_fit.csv (the fits)")
        ("work-dir", po::value(&s.work_dir), "keep finished jobs here; a rerun skips them")
        ("ranks-per-job", examples::option(s.ranks_per_job), "ranks that train one job together, data-parallel")
        ("threads", examples::option(s.threads), "jobs at once per process, one thread each (0: all cores, shared among ranks)")
        ("help", "show this help");
    po::options_description all("learning_curve: test error against training size, fitted by a power law");
    all.add(data).add(curve).add(training).add(fit).add(output);
    if (!examples::parse_options(po::parse_command_line(argc, argv, all), all)) return 0;
    return run(s);
  });
}
