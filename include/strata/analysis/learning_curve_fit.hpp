#pragma once
/// \file learning_curve_fit.hpp
/// What a learning curve's scores say (Partin et al., BMC Bioinformatics 22:252, 2021): given
/// every trained model's test score (`curve_point`: one model, split and training size), a
/// model's curve is
///   * the median over splits at every size, with the splits' range (the spread a plot shows);
///   * the power law ε(m) = α m^β + γ fitted to the medians (analysis/power_law_fit.hpp), with its
///     goodness of fit;
///   * bootstrap percentile intervals of α, β and γ: the splits resampled with replacement, the
///     medians recomputed and refitted (resamples whose fit does not converge are counted, not
///     used);
///   * what the fit predicts: the score at twice the largest size, and the size at which the
///     error is 10% below the fitted error at the largest size (none when the asymptote γ lies
///     above it);
///   * the extrapolation check against the last-value baseline (LCDB, Mohr, Viering et al. 2022).
/// A fit that did not converge is reported with its reason; then nothing that depends on it is
/// given (the fields stay NaN). Scores are read from, and written to, the tidy CSV
/// `model,split,size,metric,score,epochs,seconds`.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../data/delimited.hpp"
#include "../io/atomic_file.hpp"
#include "power_law_fit.hpp"

namespace strata {

/// One test score of one trained model: a row of the tidy CSV.
struct curve_point {
  std::string model;
  Index split = 0;
  Index size = 0;  ///< training samples
  std::string metric;
  double score = NAN;
  Index epochs = 0;     ///< epochs trained (0 for learners without epochs)
  double seconds = 0.0; ///< training time (not part of any result: the one column that differs between runs)
};

/// A confidence interval [low, high] (NaN when nothing was there to make one).
struct interval {
  double low = NAN, high = NAN;
};

/// How a model's curve is summarised.
struct curve_summary_options {
  power_law_fit_options fit;  ///< weights and the smallest size fitted
  Index bootstrap = 200;      ///< resamples of the splits for the intervals (0: none)
  double confidence = 0.95;   ///< of the intervals
  double improvement = 0.10;  ///< the error reduction whose size is asked (10% lower)
  std::uint64_t seed = 1;     ///< of the resamples

  void validate() const {
    if (bootstrap < 0) throw config_error(detail::concat("learning curve: bootstrap resamples must be >= 0, got ", bootstrap));
    if (!(confidence > 0.0 && confidence < 1.0))
      throw config_error(detail::concat("learning curve: the confidence must be in (0, 1), got ", confidence));
    if (!(improvement > 0.0 && improvement < 1.0))
      throw config_error(detail::concat("learning curve: the improvement must be in (0, 1), got ", improvement));
  }
};

/// One model's learning curve in one metric (see the file comment).
struct curve_summary {
  std::string model, metric;
  Index splits = 0;
  std::vector<double> sizes, median, low, high;  ///< per size (ascending): median, smallest and largest score over splits
  power_law_fit fit;                             ///< on the medians
  double fitted_from = NAN;                      ///< the smallest size fitted (options.fit.min_size and above)
  interval alpha, beta, gamma;                   ///< bootstrap percentile intervals
  Index bootstrap_runs = 0, bootstrap_converged = 0;
  double at_double = NAN;        ///< the fitted score at twice the largest size
  double improvement = NAN;      ///< the error reduction asked about (curve_summary_options::improvement)
  double target = NAN;           ///< the fitted error at the largest size, lowered by the improvement
  double size_for_target = NAN;  ///< the size at which the curve reaches `target` (NaN: never)
  std::optional<extrapolation_check> check;  ///< with at least 4 sizes fitted
};

namespace detail {

/// The median of `v` (not empty).
inline double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// The q-quantile of `sorted` (ascending, not empty), linearly interpolated.
inline double quantile_of(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(at));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

inline interval percentile_interval(std::vector<double> values, double confidence) {
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  return {quantile_of(values, 0.5 * (1.0 - confidence)), quantile_of(values, 0.5 * (1.0 + confidence))};
}

}  // namespace detail

/// Whether `metric` is an error a learning curve can be fitted to (one that falls with data):
/// mae, mse or rmse.
inline bool is_curve_error(const std::string& metric) { return metric == "mae" || metric == "mse" || metric == "rmse"; }

/// Summarises `model`'s curve in `metric` (an error: mae, mse, rmse) from `points` (any number
/// of models and metrics; the others are ignored). Throws config_error for another metric or
/// fewer than 3 sizes to fit, data_error when the model has no such scores, a score is not
/// finite (or, binomial weights, outside (0, 1) at a fitted size), or the sizes were not all
/// scored on the same splits (a bootstrap over splits needs every split at every size).
inline curve_summary summarise_learning_curve(const std::vector<curve_point>& points, const std::string& model,
                                              const std::string& metric, const curve_summary_options& options = {}) {
  options.validate();
  if (!is_curve_error(metric))
    throw config_error("learning curve: '" + metric + "' is not an error that falls with data (fit mae, mse or rmse)");
  std::map<Index, std::map<Index, double>> by_size;  // size -> split -> score
  for (const curve_point& p : points) {
    if (p.model != model || p.metric != metric) continue;
    if (!std::isfinite(p.score))
      throw data_error(detail::concat("learning curve: ", model, "'s ", metric, " at size ", p.size, " on split ", p.split,
                                      " is not finite (", p.score, "): the training diverged or predicted nothing usable"));
    if (options.fit.weights == curve_weights::binomial && static_cast<double>(p.size) >= options.fit.min_size &&
        !(p.score > 0.0 && p.score < 1.0))
      throw data_error(detail::concat("learning curve: binomial weights need errors in (0, 1); ", model, "'s ", metric, " at size ",
                                      p.size, " on split ", p.split, " is ", p.score));
    if (!by_size[p.size].emplace(p.split, p.score).second)
      throw data_error(detail::concat("learning curve: ", model, "'s ", metric, " at size ", p.size, " on split ", p.split,
                                      " is given twice"));
  }
  if (by_size.empty()) throw data_error("learning curve: no " + metric + " scores of model '" + model + "'");
  std::vector<Index> splits;
  for (const auto& [split, score] : by_size.begin()->second) splits.push_back(split);
  for (const auto& [size, scores] : by_size) {
    std::vector<Index> here;
    for (const auto& [split, score] : scores) here.push_back(split);
    if (here != splits)
      throw data_error(detail::concat("learning curve: ", model, "'s size ", size, " was scored on ", here.size(),
                                      " splits, size ", by_size.begin()->first, " on ", splits.size(),
                                      "; every size needs the same splits"));
  }

  curve_summary out;
  out.model = model;
  out.metric = metric;
  out.splits = static_cast<Index>(splits.size());
  // Medians over a list of splits (with repeats: a resample).
  const auto medians = [&](const std::vector<Index>& chosen) {
    std::vector<double> m;
    for (const auto& [size, scores] : by_size) {
      std::vector<double> v;
      for (const Index s : chosen) v.push_back(scores.at(s));
      m.push_back(detail::median_of(std::move(v)));
    }
    return m;
  };
  for (const auto& [size, scores] : by_size) {
    out.sizes.push_back(static_cast<double>(size));
    double lo = scores.begin()->second, hi = lo;
    for (const auto& [split, score] : scores) lo = std::min(lo, score), hi = std::max(hi, score);
    out.low.push_back(lo);
    out.high.push_back(hi);
  }
  out.median = medians(splits);
  out.fit = fit_power_law(out.sizes, out.median, options.fit);
  Index fitted = 0;
  for (const double s : out.sizes)
    if (s >= options.fit.min_size) {
      if (fitted++ == 0) out.fitted_from = s;
    }
  if (fitted >= 4) out.check = check_extrapolation(out.sizes, out.median, options.fit);
  if (!out.fit.converged) return out;

  const double largest = out.sizes.back();
  out.at_double = out.fit.curve(2.0 * largest);
  out.improvement = options.improvement;
  out.target = (1.0 - options.improvement) * out.fit.curve(largest);
  out.size_for_target = out.fit.curve.size_for(out.target);

  const random_stream rng(options.seed, purpose::user, 0x6C63);  // "lc": the bootstrap's own stream
  std::vector<double> alphas, betas, gammas;
  const auto n = static_cast<std::uint64_t>(splits.size());
  for (Index b = 0; b < options.bootstrap; ++b) {
    std::vector<Index> chosen;
    for (std::uint64_t k = 0; k < n; ++k)
      chosen.push_back(splits[static_cast<std::size_t>(rng.below(n, static_cast<std::uint64_t>(b) * n + k))]);
    const power_law_fit f = fit_power_law(out.sizes, medians(chosen), options.fit);
    ++out.bootstrap_runs;
    if (!f.converged) continue;
    ++out.bootstrap_converged;
    alphas.push_back(f.curve.alpha);
    betas.push_back(f.curve.beta);
    gammas.push_back(f.curve.gamma);
  }
  out.alpha = detail::percentile_interval(alphas, options.confidence);
  out.beta = detail::percentile_interval(betas, options.confidence);
  out.gamma = detail::percentile_interval(gammas, options.confidence);
  return out;
}

/// The first size in [low, high] at which curves `a` and `b` cross (where their difference
/// changes sign: found on a grid of 400 steps evenly spaced in log, so two crossings within one
/// step cancel, and refined by bisection); NaN when they do not cross there. Partin et al. found
/// that such crossings decide which model to prefer for a given data size. config_error unless
/// 0 < low < high.
inline double crossing_size(const power_law& a, const power_law& b, double low, double high) {
  if (!(low > 0.0 && high > low && std::isfinite(high)))
    throw config_error(detail::concat("crossing_size: need 0 < low < high, got ", low, " and ", high));
  const auto gap = [&](double m) { return a(m) - b(m); };
  const int steps = 400;
  double prev = low;
  for (int i = 1; i <= steps; ++i) {
    const double m = low * std::pow(high / low, static_cast<double>(i) / steps);
    if ((gap(prev) < 0.0) != (gap(m) < 0.0)) {
      double lo = prev, hi = m;
      for (int k = 0; k < 60; ++k) {
        const double mid = std::sqrt(lo * hi);
        ((gap(lo) < 0.0) == (gap(mid) < 0.0) ? lo : hi) = mid;
      }
      return std::sqrt(lo * hi);
    }
    prev = m;
  }
  return NAN;
}

/// The models of `points`, in order of first appearance.
inline std::vector<std::string> curve_models(const std::vector<curve_point>& points) {
  std::vector<std::string> out;
  for (const auto& p : points)
    if (std::find(out.begin(), out.end(), p.model) == out.end()) out.push_back(p.model);
  return out;
}

/// Writes `points` as the tidy CSV `model,split,size,metric,score,epochs,seconds` (scores to
/// the last bit, so the same runs give the same file apart from the seconds).
inline void write_curve_points_csv(const std::string& path, const std::vector<curve_point>& points) {
  detail::write_atomically(path, [&](std::ofstream& out) {
    out << "model,split,size,metric,score,epochs,seconds\n";
    for (const auto& p : points)
      out << p.model << "," << p.split << "," << p.size << "," << p.metric << "," << std::setprecision(17) << p.score << ","
          << p.epochs << "," << std::setprecision(4) << p.seconds << "\n";
  });
}

/// Reads a tidy CSV that `write_curve_points_csv` (or anything else writing those columns, in
/// any order, with others beside them; epochs and seconds may be absent) wrote. Throws io_error
/// for a file that cannot be read and data_error, with file:line:column, for a missing column
/// or a malformed row.
inline std::vector<curve_point> read_curve_points_csv(const std::string& path) {
  DelimitedReader in(path, ',');
  const Index model = in.column("model"), split = in.column("split"), size = in.column("size"), metric = in.column("metric"),
              score = in.column("score"), epochs = in.find_column("epochs"), seconds = in.find_column("seconds");
  std::vector<curve_point> points;
  delimited_row row;
  while (in.next(row)) {
    const auto whole = [&](Index field, Index low) {
      const double x = in.number(row, field);
      if (!(x == std::floor(x) && x >= static_cast<double>(low) && x < 9e15))
        throw data_error(detail::concat(in.where(row, field), ": '", row.fields[static_cast<std::size_t>(field)],
                                        "' is not a whole number >= ", low));
      return static_cast<Index>(x);
    };
    curve_point p;
    p.model = std::string(trim_spaces(row.fields[static_cast<std::size_t>(model)]));
    p.metric = std::string(trim_spaces(row.fields[static_cast<std::size_t>(metric)]));
    if (p.model.empty()) throw data_error(in.where(row, model) + ": no model name");
    if (p.metric.empty()) throw data_error(in.where(row, metric) + ": no metric name");
    p.split = whole(split, 0);
    p.size = whole(size, 1);
    p.score = in.number(row, score);  // NaN stays NaN: the summary names it
    if (epochs >= 0) p.epochs = whole(epochs, 0);
    if (seconds >= 0) {
      p.seconds = in.number(row, seconds);
      if (!(p.seconds >= 0.0)) throw data_error(in.where(row, seconds) + ": not a time in seconds");
    }
    points.push_back(std::move(p));
  }
  if (points.empty()) throw data_error("'" + path + "' holds no scores");
  return points;
}

/// The summaries as a table: one line per (model, metric), α β γ with their intervals,
/// goodness of fit, the prediction at twice the largest size, the size for a lower error and the
/// extrapolation check.
inline std::string curve_summary_text(const std::vector<curve_summary>& curves) {
  std::ostringstream out;
  const auto num = [](double v, int digits = 4) {
    return std::isfinite(v) ? detail::concat(std::setprecision(digits), v) : std::string("-");
  };
  const auto with = [&](double v, const interval& i) { return num(v) + " [" + num(i.low, 3) + ", " + num(i.high, 3) + "]"; };
  for (const auto& c : curves) {
    out << c.model << " (" << c.metric << ", median of " << c.splits << " splits at " << c.sizes.size() << " sizes, "
        << static_cast<Index>(c.sizes.front()) << " to " << static_cast<Index>(c.sizes.back()) << "):\n";
    if (!c.fit.converged) {
      out << "  no fit: " << c.fit.failure << "\n";
    } else {
      out << "  " << c.metric << "(m) = alpha m^beta + gamma: alpha " << with(c.fit.curve.alpha, c.alpha) << ", beta "
          << with(c.fit.curve.beta, c.beta) << ", gamma " << with(c.fit.curve.gamma, c.gamma) << " (" << c.bootstrap_converged
          << "/" << c.bootstrap_runs << " bootstrap fits)\n"
          << "  fit on " << c.fit.points << " sizes from " << num(c.fitted_from, 10) << ": R2 " << num(c.fit.r2, 5) << ", RMSE "
          << num(c.fit.rmse) << ", MAE " << num(c.fit.mae) << "\n"
          << "  at 2 x " << static_cast<Index>(c.sizes.back()) << ": " << num(c.at_double) << "; " << c.metric << " "
          << num(c.target) << " (" << 100.0 * c.improvement
          << "% below the fit at the largest size) needs "
          << (std::isfinite(c.size_for_target) ? detail::concat(std::setprecision(3), c.size_for_target, " samples")
                                                : detail::concat("more than any size (the asymptote is ", num(c.fit.curve.gamma), ")"))
          << "\n";
    }
    if (c.check) {
      const extrapolation_check& x = *c.check;
      out << "  extrapolation to " << static_cast<Index>(x.size) << " (fit without it): observed " << num(x.observed);
      if (x.fit.converged)
        out << ", curve " << num(x.predicted) << " (error " << num(std::abs(x.predicted - x.observed), 3) << "), last value "
            << num(x.last_value) << " (error " << num(std::abs(x.last_value - x.observed), 3) << "): "
            << (x.curve_wins() ? "the curve wins" : "the last value wins") << "\n";
      else
        out << "; no fit without it (" << x.fit.failure << ")\n";
    }
  }
  return out.str();
}

/// Writes the summaries as CSV, one row per (model, metric); empty fields where nothing was
/// fitted (and the reason in `failure`).
inline void write_curve_fits_csv(const std::string& path, const std::vector<curve_summary>& curves) {
  const auto num = [](double v) { return std::isfinite(v) ? detail::concat(std::setprecision(17), v) : std::string(); };
  detail::write_atomically(path, [&](std::ofstream& out) {
    out << "model,metric,splits,sizes,smallest,largest,fitted_from,converged,failure,alpha,alpha_low,alpha_high,beta,beta_low,beta_high,"
           "gamma,gamma_low,gamma_high,bootstrap_converged,bootstrap_runs,r2,rmse,mae,at_double,target,size_for_target,"
           "check_size,check_observed,check_predicted,check_last_value,curve_wins\n";
    for (const auto& c : curves) {
      const bool ok = c.fit.converged;
      out << c.model << "," << c.metric << "," << c.splits << "," << c.sizes.size() << "," << num(c.sizes.front()) << ","
          << num(c.sizes.back()) << "," << num(c.fitted_from) << "," << (ok ? 1 : 0) << ",\"" << c.fit.failure << "\","
          << (ok ? num(c.fit.curve.alpha) : "") << "," << num(c.alpha.low) << "," << num(c.alpha.high) << ","
          << (ok ? num(c.fit.curve.beta) : "") << "," << num(c.beta.low) << "," << num(c.beta.high) << ","
          << (ok ? num(c.fit.curve.gamma) : "") << "," << num(c.gamma.low) << "," << num(c.gamma.high) << ","
          << c.bootstrap_converged << "," << c.bootstrap_runs << "," << num(c.fit.r2) << "," << num(c.fit.rmse) << ","
          << num(c.fit.mae) << "," << num(c.at_double) << "," << num(c.target) << "," << num(c.size_for_target) << ",";
      if (c.check)
        out << num(c.check->size) << "," << num(c.check->observed) << "," << num(c.check->predicted) << ","
            << num(c.check->last_value) << "," << (c.check->curve_wins() ? 1 : 0);
      else
        out << ",,,,";
      out << "\n";
    }
  });
}

}  // namespace strata
