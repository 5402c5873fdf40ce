#pragma once
/// \file ensemble_transfer.hpp
/// Ensemble transfer learning across drug-screening studies (Zhu et al., Sci. Rep. 10:18040,
/// 2020), with the two baselines it is measured against, as one study run end to end:
///
///   ETL  K source models, one per rotating fold of the source study (source_folds, 10 by
///        default), each refined on the target's training folds with early stopping on the
///        target's validation fold; the prediction is the mean of the K refined models.
///   SCV  standard cross-validation on the target alone: one model trained from scratch.
///   ECV  ensemble cross-validation on the target alone: T-1 models from scratch around the
///        same test fold, member j validating on group i+1+j and training on the rest (the
///        first member is the SCV model); the prediction is their mean.
///
/// The target is cut into T rotating folds (data/split.hpp) by one of three schemes, the
/// paper's three applications: random pairs (drug repurposing), cell-blind (precision
/// oncology), drug-blind (new-drug development). For every (network, scheme, method) the table
/// reports R², MAE, Pearson and Spearman over the T test folds (mean and standard deviation),
/// and for ensembles the members' spread (mean standard deviation of their predictions).
///
/// Every member is a job with its own seed, derived from what it is (network, scheme, fold,
/// method, member), never from where it runs: the jobs are spread over the ranks of a
/// communicator (members side by side, workflows/job_sweep.hpp), the results gathered, and the
/// same seeds give the same table on 1, 2 or 4 ranks. With a work directory each finished member
/// is written there as it finishes, and a rerun of the same study (same data and settings,
/// checked) skips it: a killed run resumes member by member.
///
/// Features are standardised as the members that read them need: source models (and so ETL)
/// by statistics of the source study's entities, stored with each source model; SCV and ECV
/// by statistics of the target entities outside the test fold.
///
/// Everything that can be wrong with the input is found before the first member trains:
/// unknown or identical studies, studies that share no cell and no drug, a target with fewer
/// cells or drugs than folds, source model files of another architecture.

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <fstream>
#include <iomanip>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../data/prepare.hpp"
#include "../data/split.hpp"
#include "../data/studies.hpp"
#include "../io/warm_start.hpp"
#include "../loss/mse.hpp"
#include "../models/single_drug.hpp"
#include "../optim/adam.hpp"
#include "../train/metrics.hpp"
#include "../train/refinement.hpp"
#include "../train/trainer.hpp"
#include "job_sweep.hpp"

namespace strata {

/// The three ways of predicting the target that the study compares.
enum class transfer_method { scv, ecv, etl };

/// "SCV", "ECV" or "ETL".
inline const char* to_string(transfer_method m) {
  return m == transfer_method::scv ? "SCV" : m == transfer_method::ecv ? "ECV" : "ETL";
}

/// The metrics of the table, in its column order.
inline constexpr std::array<const char*, 4> transfer_metric_names{"r2", "mae", "pearson", "spearman"};

/// Settings of an ensemble transfer study.
struct ensemble_transfer_options {
  std::string source = "CTRP";  ///< the study source models train on
  std::string target = "CCLE";  ///< the study they are refined on and tested against
  Index source_folds = 10;      ///< K: source models (rotating folds of the source, random pairs)
  Index target_folds = 10;      ///< T: test folds of the target (ECV has T-1 members)
  std::vector<split_scheme> schemes{split_scheme::random, split_scheme::cell_blind, split_scheme::drug_blind};
  std::vector<single_drug_network> networks{single_drug_network::two_subnetwork, single_drug_network::concatenated};
  Index width = 64;                    ///< hidden width of both networks
  double dropout = 0.1;                ///< dropout after every hidden layer
  Index batch_size = 32;               ///< minibatch of every member
  double learning_rate = 2e-3;         ///< Adam's rate from scratch (source models, SCV, ECV)
  double refine_learning_rate = 5e-4;  ///< Adam's rate when refining (ETL)
  fit_to_best_options source_fit{12, 2, 0.0, "loss", false, {}, {}};  ///< source models
  fit_to_best_options target_fit{40, 3, 0.0, "loss", false, {}, {}};  ///< SCV and ECV members
  fit_to_best_options refine_fit{40, 3, 0.0, "loss", false, {}, {}};  ///< ETL refinement (thaw: gradual unfreezing)
  /// Parameter groups of a refined model, in order (Model::set_group: a layer-path pattern and
  /// its group): encoders at a tenth of the rate, or frozen (`lr_scale` 0), for instance.
  std::vector<std::pair<std::string, parameter_group>> refine_groups;
  std::uint64_t seed = 1;
  /// Model files to refine instead of training source models (one network only): the source
  /// members of an earlier study's work directory, or any file `save_transfer_source` wrote.
  std::vector<std::string> source_model_files;
  std::string work_directory;  ///< finished members are kept here and a rerun skips them ("" : none)
  /// Members trained at once by each rank, on threads of their own. Every member's math runs on
  /// one thread (core/math_threads.hpp): its numbers then do not depend on where or beside what
  /// it runs, and the table is the same for any number of ranks and concurrent members.
  Index concurrent_members = 1;
  /// Ranks that train one member together, data-parallel (deterministic mode): the world is cut
  /// into groups of this many ranks and the groups share the members. The table is then the same
  /// for any number of groups, but not the same as with groups of one rank (a data-parallel
  /// step adds its gradients in another order). Groups of more than one rank train one member
  /// at a time (concurrent_members is for groups of one).
  Index ranks_per_member = 1;

  /// Throws config_error for settings that make no sense (data-independent checks).
  void validate() const {
    if (source == target) throw config_error("ensemble transfer: the source and target are both '" + source + "'");
    if (source_model_files.empty() && source_folds < 3)
      throw config_error(detail::concat("ensemble transfer: source_folds must be at least 3 (rotating folds), got ", source_folds));
    if (target_folds < 3)
      throw config_error(detail::concat("ensemble transfer: target_folds must be at least 3 (test, validation, training), got ",
                                        target_folds));
    if (schemes.empty() || networks.empty()) throw config_error("ensemble transfer: no scheme or no network to compare");
    if (std::set<split_scheme>(schemes.begin(), schemes.end()).size() != schemes.size() ||
        std::set<single_drug_network>(networks.begin(), networks.end()).size() != networks.size())
      throw config_error("ensemble transfer: a scheme or network is listed twice");
    if (!source_model_files.empty() && networks.size() != 1)
      throw config_error("ensemble transfer: source model files are of one network; name exactly that one");
    if (width < 1 || batch_size < 1 || !(dropout >= 0.0 && dropout < 1.0))
      throw config_error(detail::concat("ensemble transfer: width ", width, " and batch ", batch_size,
                                        " must be positive and dropout in [0, 1), got ", dropout));
    if (!(learning_rate > 0.0) || !(refine_learning_rate > 0.0))
      throw config_error("ensemble transfer: learning rates must be positive");
    if (concurrent_members < 1 || ranks_per_member < 1)
      throw config_error(detail::concat("ensemble transfer: concurrent_members and ranks_per_member must be positive, got ",
                                        concurrent_members, " and ", ranks_per_member));
  }
};

/// One test fold's figures for one (network, scheme, method).
struct transfer_fold_result {
  single_drug_network network;
  split_scheme scheme;
  transfer_method method;
  Index fold = 0;
  Index test_samples = 0;
  Index members = 0;
  std::array<double, 4> metrics{};  ///< transfer_metric_names order
  double member_std = 0.0;          ///< mean over test samples of the members' standard deviation
};

/// One row of the study's table: a (network, scheme, method) over all test folds.
struct transfer_table_row {
  single_drug_network network;
  split_scheme scheme;
  transfer_method method;
  Index folds = 0, members = 0;
  std::array<double, 4> mean{}, std{};  ///< over test folds (sample standard deviation)
  double member_std = 0.0;              ///< mean of the folds' member_std
};

/// What a study produced (complete on the root rank).
struct ensemble_transfer_result {
  std::vector<transfer_fold_result> folds;
  std::vector<transfer_table_row> table;
  Index members = 0;          ///< members in the study
  Index members_resumed = 0;  ///< found finished in the work directory (this rank's share)
  double seconds = 0.0;
};

namespace detail {

/// One member of the study: what it is determines everything about it, its seed included.
struct transfer_job {
  bool source = false;  ///< a source model (else a target member)
  single_drug_network network = single_drug_network::two_subnetwork;
  split_scheme scheme = split_scheme::random;
  Index fold = 0;  ///< target test fold (target members)
  transfer_method method = transfer_method::ecv;  ///< ecv (SCV is ECV's member 0) or etl
  Index member = 0;

  std::string name() const {
    if (source) return concat("source-", to_string(network), "-", member);
    return concat("target-", to_string(network), "-", to_string(scheme), "-fold", fold, "-", to_string(method), "-", member);
  }
  std::uint64_t seed(std::uint64_t study_seed) const {
    const std::string n = name();
    return mix64(fnv1a64(n.data(), n.size()) ^ mix64(study_seed));
  }
};

/// The model type of a network, for `with_network`.
template <class Spec>
struct network_tag {
  using spec = Spec;
};

/// Calls f(network_tag<Spec>{}) with the model type of `n`.
template <class F>
decltype(auto) with_network(single_drug_network n, F&& f) {
  if (n == single_drug_network::two_subnetwork) return f(network_tag<TwoSubnetwork>{});
  return f(network_tag<Concatenated>{});
}

template <class Spec>
Spec make_network(const single_drug_options& o) {
  if constexpr (std::is_same_v<Spec, TwoSubnetwork>) return make_two_subnetwork(o);
  else return make_concatenated(o);
}

/// `data` with its features standardised: by `given` scalers, or by scalers fitted on the
/// entities of `fit_rows` (returned through `fitted`).
template <class T>
std::shared_ptr<const drug_response_data<T>> standardised(const drug_response_data<T>& data, const std::vector<Index>& fit_rows,
                                                          const std::pair<StandardScaler, StandardScaler>* given,
                                                          std::pair<StandardScaler, StandardScaler>* fitted = nullptr) {
  auto prepared = prepare_drug_response(data, split{fit_rows, {}}, given ? &given->first : nullptr,
                                        given ? &given->second : nullptr);
  if (fitted) *fitted = {prepared.cell_scaler, prepared.drug_scaler};
  return prepared.train.shared_data();
}

/// Mean of the members' predictions and the mean (over samples) of their standard deviation.
inline std::pair<Eigen::ArrayXd, double> ensemble_mean(const std::vector<const host_matrix<float>*>& members) {
  const Index n = members.front()->cols();
  Eigen::ArrayXd sum = Eigen::ArrayXd::Zero(n), squares = Eigen::ArrayXd::Zero(n);
  for (const auto* m : members) {
    const Eigen::ArrayXd p = m->row(0).transpose().cast<double>().array();
    sum += p;
    squares += p * p;
  }
  const double k = static_cast<double>(members.size());
  const Eigen::ArrayXd mean = sum / k;
  double spread = 0.0;
  if (members.size() > 1) {
    const Eigen::ArrayXd var = ((squares - k * mean * mean) / (k - 1.0)).max(0.0);
    spread = var.sqrt().mean();
  }
  return {mean, spread};
}

}  // namespace detail

/// Writes a source model (weights and the feature scalers its inputs need) as a model file that
/// an ensemble transfer study refines (`ensemble_transfer_options::source_model_files`).
template <class ModelT>
state_file transfer_source_file(ModelT& model, const StandardScaler& cell_scaler, const StandardScaler& drug_scaler) {
  state_file file;
  write_model_state(file, model);
  cell_scaler.save(file, "scaler/cell");
  drug_scaler.save(file, "scaler/drug");
  file.meta["kind"] = "transfer-source";
  return file;
}

/// An ensemble transfer study over multi-study data (see the file comment). Construction checks
/// the data and settings completely; `run` trains and evaluates.
template <class T = float>
class EnsembleTransferStudy {
 public:
  /// Progress: called on the rank that finishes a member, with a line saying which and how far.
  using progress_function = std::function<void(const std::string&)>;

  EnsembleTransferStudy(const multi_study_data<T>& data, ensemble_transfer_options options)
      : options_(std::move(options)) {
    options_.validate();
    source_ = data.study(options_.source);
    target_ = data.study(options_.target);
    const study_overlap shared = data.overlap(options_.source, options_.target);
    if (shared.cells == 0 && shared.drugs == 0)
      throw data_error("studies '" + options_.source + "' and '" + options_.target +
                       "' share no cell and no drug: a model of one says nothing about the other");
    overlap_ = shared;
    for (const split_scheme s : options_.schemes) {
      const auto target_units = count_units(target_, s);
      if (target_units < options_.target_folds)
        throw data_error(detail::concat("target study '", options_.target, "' has ", target_units,
                                        s == split_scheme::cell_blind ? " cells" : s == split_scheme::drug_blind ? " drugs" : " pairs",
                                        ": too few for ", options_.target_folds, " ", to_string(s), " folds"));
      target_folds_[s] = k_fold_rotating(target_, s, options_.target_folds, options_.seed);
      for (Index f = 0; f < options_.target_folds; ++f) {
        const three_way_split& parts = target_folds_[s][static_cast<std::size_t>(f)];
        if (parts.train.empty() || parts.validation.empty() || parts.test.empty())
          throw data_error(detail::concat("target study '", options_.target, "': ", to_string(s), " fold ", f, " has ",
                                          parts.train.size(), " training, ", parts.validation.size(), " validation and ",
                                          parts.test.size(), " test pairs; every part needs some"));
      }
    }
    if (options_.source_model_files.empty()) source_folds_ = k_fold_rotating(source_, split_scheme::random, options_.source_folds, options_.seed);
    shape_ = {target_.cells.width(), target_.drugs.width(), options_.width, options_.dropout};
    check_source_files();
    check_refine_groups();
    signature_ = make_signature();
    plan();
  }

  /// Members in the study (source models included).
  Index members() const { return static_cast<Index>(source_jobs_.size() + target_jobs_.size()); }
  /// Cells and drugs the two studies share.
  study_overlap overlap() const { return overlap_; }
  const drug_response_data<T>& source() const { return source_; }
  const drug_response_data<T>& target() const { return target_; }
  const ensemble_transfer_options& options() const { return options_; }

  /// Trains every member (spread over `world`'s ranks, results gathered) and evaluates. Every
  /// rank must call it; the result is complete on every rank.
  template <class Comm>
  ensemble_transfer_result run(Comm& world, const progress_function& progress = {}) {
    const auto start = std::chrono::steady_clock::now();
    JobSweep<Comm> sweep(world, {options_.concurrent_members, options_.ranks_per_member, options_.work_directory, signature_});
    ensemble_transfer_result result;
    result.members = members();
    const auto train_job = [&](const std::vector<job>& jobs) {
      return [&jobs, this](std::size_t i, auto strategy) { return train(jobs[i], std::move(strategy)); };
    };
    // Source models first: every rank may refine any of them.
    sources_ = sweep.run(names(source_jobs_), train_job(source_jobs_), progress, result.members_resumed);
    const auto targets = sweep.run(names(target_jobs_), train_job(target_jobs_), progress, result.members_resumed);
    evaluate(targets, result);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }

 private:
  using job = detail::transfer_job;

  static Index count_units(const drug_response_data<T>& d, split_scheme s) {
    if (s == split_scheme::random) return static_cast<Index>(d.tuples.size());
    std::set<std::int32_t> seen;
    for (const auto& t : d.tuples) seen.insert(s == split_scheme::cell_blind ? t.cell : t.drug1);
    return static_cast<Index>(seen.size());
  }

  /// Source model files: readable, with scalers, and of exactly the network's architecture.
  void check_source_files() {
    for (const auto& path : options_.source_model_files) {
      const state_file file = state_file::read(path);
      StandardScaler cells, drugs;
      cells.load(file, "scaler/cell");
      drugs.load(file, "scaler/drug");
      if (cells.width() != shape_.cell_width || drugs.width() != shape_.drug_width)
        throw io_error(detail::concat("source model '", path, "' reads ", cells.width(), " cell and ", drugs.width(),
                                      " drug features; the target has ", shape_.cell_width, " and ", shape_.drug_width));
      detail::with_network(options_.networks.front(), [&](auto tag) {
        using Spec = typename decltype(tag)::spec;
        Model<Spec> model(detail::make_network<Spec>(shape_));
        model.build(target_.sample_width(), 1);
        warm_start(model, file, "source model '" + path + "'", warm_start_options{{}, true});
      });
    }
  }

  /// Every refinement group's and thaw stage's pattern selects something in at least one network
  /// (layer paths differ between the networks); otherwise Model::set_group's message lists the
  /// layers.
  void check_refine_groups() const {
    std::vector<std::pair<std::string, parameter_group>> patterns = options_.refine_groups;
    for (const auto& stage : options_.refine_fit.thaw) patterns.emplace_back(stage.pattern, parameter_group{});
    for (const auto& [pattern, group] : patterns) {
      std::string refusal;
      bool selects = false;
      for (const auto n : options_.networks)
        detail::with_network(n, [&](auto tag) {
          using Spec = typename decltype(tag)::spec;
          Model<Spec> model(detail::make_network<Spec>(shape_));
          model.build(target_.sample_width(), 1);
          try {
            model.set_group(pattern, group);
            selects = true;
          } catch (const config_error& e) {
            refusal += detail::concat(refusal.empty() ? "" : "; ", to_string(n), ": ", e.what());
          }
        });
      if (!selects)
        throw config_error("refinement layer pattern '" + pattern + "' selects nothing in any network (" + refusal + ")");
    }
  }

  /// Whether layer-path `pattern` selects any parameter of `model`.
  template <class ModelT>
  static bool selects_any(ModelT& model, const std::string& pattern) {
    for (const auto& p : model.parameters())
      if (detail::selects(pattern, p.name)) return true;
    return false;
  }

  /// Puts a refined model's parameters in the refinement groups that select any of them.
  template <class ModelT>
  void apply_refine_groups(ModelT& model) const {
    for (const auto& [pattern, group] : options_.refine_groups)
      if (selects_any(model, pattern)) model.set_group(pattern, group);
  }

  /// A hash of the data and of every setting that changes a member: a work directory's members
  /// are reused only by the same study.
  std::uint64_t make_signature() const {
    const auto& o = options_;
    std::string text = detail::concat(std::setprecision(17), o.source, "|", o.target, "|", o.source_folds, "|", o.target_folds,
                                      "|", o.width, "|", o.dropout, "|", o.batch_size, "|", o.learning_rate, "|",
                                      o.refine_learning_rate, "|", o.seed, "|", o.ranks_per_member);
    for (const auto* f : {&o.source_fit, &o.target_fit, &o.refine_fit}) {
      text += detail::concat(std::setprecision(17), "|", f->max_epochs, ",", f->patience, ",", f->min_delta, ",", f->watched, ",",
                             f->higher_is_better);
      for (const auto& s : f->thaw) text += detail::concat(",", s.epoch, ":", s.pattern);
    }
    for (const auto& p : o.source_model_files) text += "|" + p;
    for (const auto& [pattern, g] : o.refine_groups) text += detail::concat(std::setprecision(17), "|", pattern, "=", g.lr_scale, g.weight_decay);
    std::uint64_t h = fnv1a64(text.data(), text.size());
    return hash_drug_response(target_, hash_drug_response(source_, h));
  }

  /// Source models: one per source fold, or one per given model file.
  Index source_count() const {
    return options_.source_model_files.empty() ? options_.source_folds : static_cast<Index>(options_.source_model_files.size());
  }

  void plan() {
    const Index sources = source_count();
    for (const auto n : options_.networks) {
      if (options_.source_model_files.empty())
        for (Index k = 0; k < sources; ++k) source_jobs_.push_back(job{true, n, split_scheme::random, 0, transfer_method::etl, k});
      for (const auto s : options_.schemes)
        for (Index f = 0; f < options_.target_folds; ++f) {
          for (Index j = 0; j + 1 < options_.target_folds; ++j) target_jobs_.push_back(job{false, n, s, f, transfer_method::ecv, j});
          for (Index k = 0; k < sources; ++k) target_jobs_.push_back(job{false, n, s, f, transfer_method::etl, k});
        }
    }
  }

  static std::vector<std::string> names(const std::vector<job>& jobs) {
    std::vector<std::string> out;
    for (const job& j : jobs) out.push_back(j.name());
    return out;
  }

  /// Trains one member with `strategy` and returns its result: a source model's file (weights
  /// and scalers), or a target member's test predictions.
  template <class Strategy>
  state_file train(const job& j, Strategy strategy) {
    return detail::with_network(j.network, [&](auto tag) {
      using Spec = typename decltype(tag)::spec;
      const std::uint64_t seed = j.seed(options_.seed);
      Model<Spec> model(detail::make_network<Spec>(shape_));
      model.build(target_.sample_width(), seed);
      std::shared_ptr<const drug_response_data<T>> data;
      std::vector<Index> train_rows, validation_rows, test_rows;
      std::pair<StandardScaler, StandardScaler> scalers;
      const fit_to_best_options* fit = &options_.target_fit;
      double rate = options_.learning_rate;
      if (j.source) {
        const three_way_split& parts = source_folds_[static_cast<std::size_t>(j.member)];
        std::vector<Index> everything(source_.tuples.size());
        std::iota(everything.begin(), everything.end(), Index{0});
        data = detail::standardised(source_, everything, nullptr, &scalers);
        train_rows = parts.train;
        validation_rows = parts.validation;
        fit = &options_.source_fit;
      } else {
        const auto folds = k_fold_rotating(target_, j.scheme, options_.target_folds, options_.seed,
                                           j.method == transfer_method::ecv ? j.member + 1 : 1);
        const three_way_split& parts = folds[static_cast<std::size_t>(j.fold)];
        train_rows = parts.train;
        validation_rows = parts.validation;
        test_rows = parts.test;
        if (j.method == transfer_method::etl) {
          const state_file source = source_file(j);
          scalers.first.load(source, "scaler/cell");
          scalers.second.load(source, "scaler/drug");
          data = detail::standardised(target_, {}, &scalers);
          warm_start(model, source, "source model " + std::to_string(j.member), warm_start_options{{}, true});
          apply_refine_groups(model);
          fit = &options_.refine_fit;
          rate = options_.refine_learning_rate;
        } else {
          std::vector<Index> outside_test = parts.train;
          outside_test.insert(outside_test.end(), parts.validation.begin(), parts.validation.end());
          data = detail::standardised(target_, outside_test, nullptr);
        }
      }
      const DrugResponseDataset<T> train_set(data, train_rows), validation_set(data, validation_rows);
      trainer_options to;
      to.batch_size = options_.batch_size;
      to.seed = seed;
      Trainer<Spec, MSE, Adam, Strategy> trainer(std::move(model), MSE{}, Adam{rate}, std::move(strategy), to);
      // Thaw stages whose layers this network has (layer paths differ between networks).
      fit_to_best_options fitting = *fit;
      fitting.thaw.clear();
      for (const auto& stage : fit->thaw)
        if (selects_any(trainer.model(), stage.pattern)) fitting.thaw.push_back(stage);
      const fit_to_best_outcome outcome = fit_to_best(trainer, train_set, validation_set, fitting);
      state_file out;
      if (j.source) {
        out = transfer_source_file(trainer.model(), scalers.first, scalers.second);
      } else {
        const host_matrix<T> predictions = trainer.predict(DrugResponseDataset<T>(data, test_rows));
        out.add("transfer/predictions", host_matrix<float>(predictions.template cast<float>()));
      }
      out.meta["transfer/best_epoch"] = std::to_string(outcome.best_epoch);
      out.meta["transfer/epochs"] = std::to_string(outcome.epochs_run);
      out.meta["summary"] = detail::concat("best validation loss ", outcome.best_value, " at epoch ", outcome.best_epoch);
      return out;
    });
  }

  /// The file of the source model an ETL member refines.
  state_file source_file(const job& j) const {
    if (!options_.source_model_files.empty()) return state_file::read(options_.source_model_files[static_cast<std::size_t>(j.member)]);
    job s{true, j.network, split_scheme::random, 0, transfer_method::etl, j.member};
    return sources_.at(s.name());
  }

  /// Scores every (network, scheme, fold, method) and summarises the folds.
  void evaluate(const std::map<std::string, state_file>& results, ensemble_transfer_result& out) const {
    const Index sources = source_count();
    std::map<std::string, host_matrix<float>> predictions;
    for (const auto& [name, file] : results) {
      const state_file::tensor* t = file.find("transfer/predictions");
      if (t == nullptr) throw io_error("member '" + name + "' holds no predictions");
      host_matrix<float> m;
      state_file::extract(*t, m);
      predictions.emplace(name, std::move(m));
    }
    for (const auto n : options_.networks)
      for (const auto s : options_.schemes)
        for (Index f = 0; f < options_.target_folds; ++f) {
          const three_way_split& parts = target_folds_.at(s)[static_cast<std::size_t>(f)];
          Eigen::ArrayXd truth(static_cast<Index>(parts.test.size()));
          for (std::size_t i = 0; i < parts.test.size(); ++i) truth(static_cast<Index>(i)) = target_.tuples[static_cast<std::size_t>(parts.test[i])].response;
          for (const auto m : {transfer_method::scv, transfer_method::ecv, transfer_method::etl}) {
            const Index count = m == transfer_method::scv ? 1 : m == transfer_method::ecv ? options_.target_folds - 1 : sources;
            std::vector<const host_matrix<float>*> members;
            for (Index k = 0; k < count; ++k) {
              const job j{false, n, s, f, m == transfer_method::etl ? transfer_method::etl : transfer_method::ecv, k};
              const host_matrix<float>& p = predictions.at(j.name());
              if (p.cols() != truth.size())
                throw io_error(detail::concat("member '", j.name(), "' predicts ", p.cols(), " samples, the fold has ", truth.size()));
              members.push_back(&p);
            }
            const auto [mean, spread] = detail::ensemble_mean(members);
            transfer_fold_result r{n, s, m, f, static_cast<Index>(truth.size()), count, {}, spread};
            for (std::size_t k = 0; k < transfer_metric_names.size(); ++k)
              r.metrics[k] = compute(parse_metric(transfer_metric_names[k]), mean.matrix(), truth.matrix());
            out.folds.push_back(r);
          }
        }
    for (const auto n : options_.networks)
      for (const auto s : options_.schemes)
        for (const auto m : {transfer_method::scv, transfer_method::ecv, transfer_method::etl}) {
          transfer_table_row row{n, s, m, 0, 0, {}, {}, 0.0};
          std::vector<const transfer_fold_result*> mine;
          for (const auto& r : out.folds)
            if (r.network == n && r.scheme == s && r.method == m) mine.push_back(&r);
          row.folds = static_cast<Index>(mine.size());
          row.members = mine.front()->members;
          for (std::size_t k = 0; k < transfer_metric_names.size(); ++k) {
            double sum = 0.0, squares = 0.0;
            for (const auto* r : mine) sum += r->metrics[k];
            row.mean[k] = sum / static_cast<double>(mine.size());
            for (const auto* r : mine) squares += (r->metrics[k] - row.mean[k]) * (r->metrics[k] - row.mean[k]);
            row.std[k] = mine.size() > 1 ? std::sqrt(squares / static_cast<double>(mine.size() - 1)) : 0.0;
          }
          for (const auto* r : mine) row.member_std += r->member_std / static_cast<double>(mine.size());
          out.table.push_back(row);
        }
  }

  ensemble_transfer_options options_;
  drug_response_data<T> source_, target_;
  study_overlap overlap_;
  std::map<split_scheme, std::vector<three_way_split>> target_folds_;
  std::vector<three_way_split> source_folds_;
  single_drug_options shape_;
  std::uint64_t signature_ = 0;
  std::vector<job> source_jobs_, target_jobs_;
  std::map<std::string, state_file> sources_;
};

/// A paired comparison over the test folds of one scheme: what `a` scores minus what `b`
/// scores, fold by fold (both see the same folds, so the pairing removes the folds' own spread).
struct paired_difference {
  double mean = 0.0, std = 0.0;  ///< of the per-fold differences (sample standard deviation)
  Index better = 0;              ///< folds where `a` is better (higher, or lower for MAE)
  Index folds = 0;
};

/// Compares (network_a, method_a) with (network_b, method_b) on `scheme` in metric number
/// `metric` (transfer_metric_names order). Throws config_error if the result lacks either.
inline paired_difference compare_folds(const ensemble_transfer_result& r, split_scheme scheme, single_drug_network network_a,
                                       transfer_method method_a, single_drug_network network_b, transfer_method method_b,
                                       std::size_t metric = 0) {
  std::map<Index, double> a, b;
  for (const auto& f : r.folds) {
    if (f.scheme != scheme) continue;
    if (f.network == network_a && f.method == method_a) a[f.fold] = f.metrics[metric];
    if (f.network == network_b && f.method == method_b) b[f.fold] = f.metrics[metric];
  }
  if (a.empty() || a.size() != b.size())
    throw config_error(detail::concat("compare_folds: the result has no ", to_string(scheme), " folds of ", to_string(network_a), " ",
                                      to_string(method_a), " and ", to_string(network_b), " ", to_string(method_b)));
  const bool lower_is_better = std::string(transfer_metric_names[metric]) == "mae";
  paired_difference d;
  std::vector<double> diff;
  for (const auto& [fold, value] : a) {
    diff.push_back(value - b.at(fold));
    d.better += (lower_is_better ? diff.back() < 0 : diff.back() > 0) ? 1 : 0;
  }
  d.folds = static_cast<Index>(diff.size());
  for (const double x : diff) d.mean += x / static_cast<double>(diff.size());
  for (const double x : diff) d.std += (x - d.mean) * (x - d.mean);
  d.std = diff.size() > 1 ? std::sqrt(d.std / static_cast<double>(diff.size() - 1)) : 0.0;
  return d;
}

/// The table as text, one line per (network, scheme, method): "mean +- std" per metric.
inline std::string transfer_table_text(const ensemble_transfer_result& r) {
  std::ostringstream out;
  out << std::left << std::setw(16) << "network" << std::setw(12) << "scheme" << std::setw(8) << "method" << std::setw(9)
      << "members";
  for (const char* m : transfer_metric_names) out << std::setw(18) << m;
  out << "member std\n";
  out << std::fixed << std::setprecision(4);
  for (const auto& row : r.table) {
    out << std::setw(16) << to_string(row.network) << std::setw(12) << to_string(row.scheme) << std::setw(8)
        << to_string(row.method) << std::setw(9) << row.members;
    for (std::size_t k = 0; k < transfer_metric_names.size(); ++k) {
      std::ostringstream cell;
      cell << std::fixed << std::setprecision(4) << row.mean[k] << " +- " << row.std[k];
      out << std::setw(18) << cell.str();
    }
    out << row.member_std << "\n";
  }
  return out.str();
}

/// Writes the table as CSV (one row per network, scheme and method; `<metric>_mean` and
/// `<metric>_std` columns) and, beside it, every fold's figures (`<path minus .csv>_folds.csv`).
inline void write_transfer_csv(const std::string& path, const ensemble_transfer_result& r) {
  detail::write_atomically(path, [&](std::ofstream& out) {
    out << "network,scheme,method,folds,members";
    for (const char* m : transfer_metric_names) out << "," << m << "_mean," << m << "_std";
    out << ",member_std\n" << std::setprecision(17);
    for (const auto& row : r.table) {
      out << to_string(row.network) << "," << to_string(row.scheme) << "," << to_string(row.method) << "," << row.folds << ","
          << row.members;
      for (std::size_t k = 0; k < transfer_metric_names.size(); ++k) out << "," << row.mean[k] << "," << row.std[k];
      out << "," << row.member_std << "\n";
    }
  });
  const std::string folds = (path.size() > 4 && path.compare(path.size() - 4, 4, ".csv") == 0 ? path.substr(0, path.size() - 4) : path) +
                            "_folds.csv";
  detail::write_atomically(folds, [&](std::ofstream& out) {
    out << "network,scheme,method,fold,test_samples,members";
    for (const char* m : transfer_metric_names) out << "," << m;
    out << ",member_std\n" << std::setprecision(17);
    for (const auto& f : r.folds) {
      out << to_string(f.network) << "," << to_string(f.scheme) << "," << to_string(f.method) << "," << f.fold << ","
          << f.test_samples << "," << f.members;
      for (const double v : f.metrics) out << "," << v;
      out << "," << f.member_std << "\n";
    }
  });
}

/// Writes the table as JSON: {"rows": [{"network", "scheme", "method", "folds", "members",
/// "<metric>": {"mean", "std"}, "member_std"}], "seconds"}.
inline void write_transfer_json(const std::string& path, const ensemble_transfer_result& r) {
  const auto number = [](double v) { return std::isfinite(v) ? detail::concat(std::setprecision(17), v) : std::string("null"); };
  detail::write_atomically(path, [&](std::ofstream& out) {
    out << "{\"rows\": [";
    for (std::size_t i = 0; i < r.table.size(); ++i) {
      const auto& row = r.table[i];
      out << (i ? ",\n  " : "\n  ") << "{\"network\": \"" << to_string(row.network) << "\", \"scheme\": \"" << to_string(row.scheme)
          << "\", \"method\": \"" << to_string(row.method) << "\", \"folds\": " << row.folds << ", \"members\": " << row.members;
      for (std::size_t k = 0; k < transfer_metric_names.size(); ++k)
        out << ", \"" << transfer_metric_names[k] << "\": {\"mean\": " << number(row.mean[k]) << ", \"std\": " << number(row.std[k]) << "}";
      out << ", \"member_std\": " << number(row.member_std) << "}";
    }
    out << "\n], \"members\": " << r.members << ", \"seconds\": " << r.seconds << "}\n";
  });
}

}  // namespace strata
