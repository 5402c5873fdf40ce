#pragma once
/// \file learning_curve.hpp
/// Learning curves of drug-response models (Partin et al., BMC Bioinformatics 22:252, 2021):
/// how a model's test error falls as its training set grows.
///
///   * S splits of the data, each with its own fixed test and validation sets: split s tests on
///     group s of a k-fold cut (random pairs, cell-blind or drug-blind; data/split.hpp),
///     validates on group s+1 and draws its training sets from the rest (k = 10: 80/10/10);
///   * K training sizes (`log2_sizes`, `geometric_sizes`); the training set of size m is the
///     first m of a seeded order of the split's training pool, so the sets of one split are
///     nested, as the curve's points should differ by data, not by luck of the draw;
///   * for every (model, split, size) a fresh model, trained by a learner the caller gives
///     (any model type, optimizer and strategy; analysis/network_learner.hpp trains networks with
///     early stopping on the validation set), is scored on the test set in MAE, MSE, R² and
///     Spearman: one `curve_point` per metric, the tidy CSV of learning_curve_fit.hpp;
///   * features standardised by the training set's own cells and drugs (statistics of the test
///     entities never reach a model).
///
/// The jobs run on a `JobSweep` (workflows/job_sweep.hpp): spread over the ranks of a
/// communicator in groups (each group data-parallel, or several jobs at once on threads), the
/// largest sizes first so that the groups finish together, every job's seed derived from what it
/// is, so the scores are the same on any number of ranks; with a work directory a killed sweep
/// resumes without training a finished job again.
///
/// Everything that can be wrong is found before the first job trains: fewer than 3 sizes, a size
/// larger than a split's training pool, a split with no test or validation rows, model names
/// that cannot name files.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../core/parse.hpp"
#include "../data/prepare.hpp"
#include "../data/split.hpp"
#include "../train/metrics.hpp"
#include "../workflows/job_sweep.hpp"
#include "learning_curve_fit.hpp"

namespace strata {

/// The metrics every trained model is scored in, in the CSV's order.
inline const std::vector<std::string>& learning_curve_metrics() {
  static const std::vector<std::string> names{"mae", "mse", "r2", "spearman"};
  return names;
}

/// Powers of two from `smallest` up to `largest`, and `largest` itself when it is not one:
/// Partin et al.'s sizes. config_error unless 1 <= smallest < largest.
inline std::vector<Index> log2_sizes(Index smallest, Index largest) {
  if (smallest < 1 || largest <= smallest)
    throw config_error(detail::concat("learning curve sizes: need 1 <= smallest < largest, got ", smallest, " and ", largest));
  std::vector<Index> out{smallest};
  Index m = 1;
  while (m <= smallest) m *= 2;
  for (; m < largest; m *= 2) out.push_back(m);
  out.push_back(largest);
  return out;
}

/// `count` sizes spaced evenly in log between `smallest` and `largest` (both included), rounded
/// to whole samples. config_error unless 1 <= smallest < largest and the rounded sizes are
/// `count` distinct ones (count >= 2).
inline std::vector<Index> geometric_sizes(Index smallest, Index largest, Index count) {
  if (smallest < 1 || largest <= smallest || count < 2)
    throw config_error(detail::concat("learning curve sizes: need 1 <= smallest < largest and at least 2 sizes, got ", smallest,
                                      ", ", largest, " and ", count));
  std::vector<Index> out;
  const double ratio = std::log(static_cast<double>(largest) / static_cast<double>(smallest)) / static_cast<double>(count - 1);
  for (Index i = 0; i < count; ++i) {
    const auto m = i + 1 == count ? largest : static_cast<Index>(std::llround(static_cast<double>(smallest) * std::exp(ratio * static_cast<double>(i))));
    if (!out.empty() && m <= out.back())
      throw config_error(detail::concat("learning curve sizes: ", count, " sizes between ", smallest, " and ", largest,
                                        " are not all different once rounded; ask for fewer"));
    out.push_back(m);
  }
  return out;
}

/// The smallest training pool of splits 0..splits-1 of a `folds`-fold cut of `data` by `scheme`
/// (the rows outside a split's test and validation groups): no training size may exceed it.
template <class T>
Index smallest_training_pool(const drug_response_data<T>& data, split_scheme scheme, Index folds, Index splits, std::uint64_t seed) {
  const auto cut = k_fold_rotating(data, scheme, folds, seed);
  std::size_t n = cut.front().train.size();
  for (Index s = 0; s < splits && s < folds; ++s) n = std::min(n, cut[static_cast<std::size_t>(s)].train.size());
  return static_cast<Index>(n);
}

/// Settings of a learning curve.
struct learning_curve_options {
  std::vector<std::string> models;  ///< the learners' names (letters, digits, '-', '_', '.'): CSV and file names
  split_scheme scheme = split_scheme::random;
  Index folds = 10;   ///< the k of the k-fold cut the splits come from (test and validation each 1/k)
  Index splits = 5;   ///< S: splits 0..S-1 (at most folds)
  std::vector<Index> sizes;  ///< training sizes, ascending
  std::uint64_t seed = 1;    ///< of the folds, the training orders and every model
  sweep_options sweep;       ///< how the jobs run (its signature is made by the curve)
  /// The learners' own settings as text (widths, rates, epochs): part of the work directory's
  /// signature, so that results of other settings are never reused.
  std::string learner_settings;

  void validate() const {
    if (models.empty()) throw config_error("learning curve: no model to train");
    for (const auto& m : models) {
      if (m.empty() || m.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos)
        throw config_error("learning curve: model name '" + m + "' must be letters, digits, '-', '_' or '.'");
      if (std::count(models.begin(), models.end(), m) > 1) throw config_error("learning curve: model '" + m + "' is listed twice");
    }
    if (folds < 3) throw config_error(detail::concat("learning curve: folds must be at least 3 (test, validation, training), got ", folds));
    if (splits < 1 || splits > folds)
      throw config_error(detail::concat("learning curve: splits must be in [1, ", folds, "] (one test group each), got ", splits));
    if (sizes.size() < 3)
      throw config_error(detail::concat("learning curve: ", sizes.size(), " training sizes; a curve of three parameters needs at least 3"));
    for (std::size_t i = 0; i < sizes.size(); ++i)
      if (sizes[i] < 1 || (i > 0 && sizes[i] <= sizes[i - 1]))
        throw config_error("learning curve: sizes must be positive and ascending, without repeats");
    sweep.validate();
  }
};

/// What a learner is asked to do: train model `model` on `train` (early stopping on
/// `validation`) and predict `test`.
template <class T>
struct curve_task {
  std::string model;
  Index split = 0, size = 0;
  std::uint64_t seed = 0;  ///< the job's own seed (initialisation, shuffles, dropout)
  std::shared_ptr<const drug_response_data<T>> data;  ///< features standardised by the training set
  std::vector<Index> train, validation, test;          ///< rows of `data`

  DrugResponseDataset<T> train_set() const { return {data, train}; }
  DrugResponseDataset<T> validation_set() const { return {data, validation}; }
  DrugResponseDataset<T> test_set() const { return {data, test}; }
};

/// What a learner returns.
struct curve_outcome {
  host_matrix<float> predictions;  ///< 1 x test samples
  Index epochs = 0;                ///< epochs trained (0 when the learner has none)
};

/// A learning curve's scores.
struct learning_curve_result {
  std::vector<curve_point> points;  ///< model by model, split by split, size by size, metric by metric
  Index jobs = 0;
  Index resumed = 0;  ///< jobs read back from the work directory (this rank's share)
  double seconds = 0.0;
};

/// A learning curve over drug-response data (see the file comment). Construction checks data
/// and settings completely; `run` trains and scores.
template <class T = float>
class LearningCurve {
 public:
  using progress_function = std::function<void(const std::string&)>;

  LearningCurve(drug_response_data<T> data, learning_curve_options options) : data_(std::move(data)), options_(std::move(options)) {
    options_.validate();
    folds_ = k_fold_rotating(data_, options_.scheme, options_.folds, options_.seed);
    folds_.resize(static_cast<std::size_t>(options_.splits));
    for (Index s = 0; s < options_.splits; ++s) {
      const three_way_split& parts = folds_[static_cast<std::size_t>(s)];
      if (parts.test.size() < 2 || parts.validation.empty())
        throw data_error(detail::concat("learning curve: ", to_string(options_.scheme), " split ", s, " has ", parts.test.size(),
                                        " test and ", parts.validation.size(),
                                        " validation rows; every split needs both (and 2 test rows for R2 and Spearman)"));
      if (static_cast<Index>(parts.train.size()) < options_.sizes.back())
        throw data_error(detail::concat("learning curve: the largest size, ", options_.sizes.back(), ", is larger than split ", s,
                                        "'s training pool of ", parts.train.size(), " rows (", to_string(options_.scheme), ", ",
                                        options_.folds, " folds: the pool is the data less a test and a validation group)"));
      orders_.push_back(seeded_permutation(static_cast<Index>(parts.train.size()), options_.seed, 100 + static_cast<std::uint64_t>(s)));
    }
    signature_ = make_signature();
  }

  const learning_curve_options& options() const { return options_; }
  const drug_response_data<T>& data() const { return data_; }
  /// Split s's training pool, validation and test rows.
  const three_way_split& split_rows(Index s) const { return folds_.at(static_cast<std::size_t>(s)); }
  /// Jobs in the curve: models x splits x sizes.
  Index jobs() const { return static_cast<Index>(options_.models.size() * options_.sizes.size()) * options_.splits; }

  /// The task of (model, split, size): its training, validation and test rows and its data.
  curve_task<T> task(const std::string& model, Index s, Index size) const {
    const three_way_split& parts = split_rows(s);
    const std::vector<Index>& order = orders_[static_cast<std::size_t>(s)];
    curve_task<T> t;
    t.model = model;
    t.split = s;
    t.size = size;
    const std::string name = job_name(model, s, size);
    t.seed = mix64(fnv1a64(name.data(), name.size()) ^ mix64(options_.seed));
    for (Index i = 0; i < size; ++i) t.train.push_back(parts.train[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])]);
    std::sort(t.train.begin(), t.train.end());
    t.validation = parts.validation;
    t.test = parts.test;
    t.data = prepare_drug_response(data_, split{t.train, {}}).train.shared_data();
    return t;
  }

  /// Trains and scores every (model, split, size) over `world`'s ranks (every rank calls it;
  /// the result is complete on every rank). `learn(task, strategy)` trains task.model (its
  /// strategy is Serial, or DataParallel over the job's group of ranks) and returns a
  /// `curve_outcome`. Throws data_error when a learner's predictions are not one per test row.
  template <class Comm, class Learner>
  learning_curve_result run(Comm& world, Learner&& learn, const progress_function& progress = {}) const {
    const auto start = std::chrono::steady_clock::now();
    struct job {
      std::string model;
      Index split, size;
    };
    std::vector<job> jobs;  // largest sizes first: the groups then finish together
    for (auto size = options_.sizes.rbegin(); size != options_.sizes.rend(); ++size)
      for (const auto& model : options_.models)
        for (Index s = 0; s < options_.splits; ++s) jobs.push_back({model, s, *size});
    std::vector<std::string> names;
    for (const job& j : jobs) names.push_back(job_name(j.model, j.split, j.size));

    sweep_options so = options_.sweep;
    so.signature = signature_;
    JobSweep<Comm> sweep(world, so);
    learning_curve_result result;
    result.jobs = static_cast<Index>(jobs.size());
    const auto files = sweep.run(
        names,
        [&](std::size_t i, auto strategy) {
          const job& j = jobs[i];
          const auto begun = std::chrono::steady_clock::now();
          const curve_task<T> t = task(j.model, j.split, j.size);
          curve_outcome outcome = learn(t, std::move(strategy));
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count();
          if (outcome.predictions.rows() != 1 || outcome.predictions.cols() != static_cast<Index>(t.test.size()))
            throw data_error(detail::concat("learning curve: ", names[i], " predicted a ", outcome.predictions.rows(), " x ",
                                            outcome.predictions.cols(), " matrix for ", t.test.size(), " test rows"));
          state_file out;
          out.add("curve/predictions", outcome.predictions);
          out.meta["curve/epochs"] = std::to_string(outcome.epochs);
          out.meta["curve/seconds"] = detail::concat(std::setprecision(6), seconds);
          out.meta["summary"] = detail::concat("test MAE ", std::setprecision(4), score(j.split, outcome.predictions, metric::mae),
                                               ", ", outcome.epochs, " epochs");
          return out;
        },
        progress, result.resumed);

    for (const auto& model : options_.models)
      for (Index s = 0; s < options_.splits; ++s)
        for (const Index size : options_.sizes) {
          const std::string name = job_name(model, s, size);
          const state_file& f = files.at(name);
          const state_file::tensor* p = f.find("curve/predictions");
          if (p == nullptr) throw io_error("learning curve: job '" + name + "' holds no predictions");
          host_matrix<float> predictions;
          state_file::extract(*p, predictions);
          if (predictions.cols() != static_cast<Index>(split_rows(s).test.size()))
            throw io_error(detail::concat("learning curve: job '", name, "' holds ", predictions.cols(), " predictions for ",
                                          split_rows(s).test.size(), " test rows"));
          std::uint64_t epochs = 0;
          double seconds = 0.0;
          const auto epochs_text = f.meta.find("curve/epochs"), seconds_text = f.meta.find("curve/seconds");
          if (epochs_text == f.meta.end() || !detail::parse_unsigned(epochs_text->second, 1u << 30, epochs) ||
              seconds_text == f.meta.end() || !detail::parse_finite(seconds_text->second, seconds))
            throw io_error("learning curve: job '" + name + "' lacks its epochs or seconds");
          for (const auto& m : learning_curve_metrics())
            result.points.push_back({model, s, size, m, score(s, predictions, parse_metric(m)), static_cast<Index>(epochs), seconds});
        }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  }

 private:
  static std::string job_name(const std::string& model, Index s, Index size) {
    return detail::concat(model, "-split", s, "-size", size);
  }

  /// `predictions` of split s's test rows scored in `m`.
  double score(Index s, const host_matrix<float>& predictions, metric m) const {
    const std::vector<Index>& test = split_rows(s).test;
    Eigen::MatrixXd truth(1, static_cast<Index>(test.size()));
    for (std::size_t i = 0; i < test.size(); ++i) truth(0, static_cast<Index>(i)) = data_.tuples[static_cast<std::size_t>(test[i])].response;
    return compute(m, predictions.template cast<double>(), truth);
  }

  /// A hash of the data and of every setting that changes a job.
  std::uint64_t make_signature() const {
    const auto& o = options_;
    std::string text = detail::concat(to_string(o.scheme), "|", o.folds, "|", o.splits, "|", o.seed, "|", o.sweep.ranks_per_job, "|",
                                      o.learner_settings);
    for (const auto& m : o.models) text += "|" + m;
    for (const Index m : o.sizes) text += detail::concat(",", m);
    return hash_drug_response(data_, fnv1a64(text.data(), text.size()));
  }

  drug_response_data<T> data_;
  learning_curve_options options_;
  std::vector<three_way_split> folds_;
  std::vector<std::vector<Index>> orders_;
  std::uint64_t signature_ = 0;
};

}  // namespace strata
