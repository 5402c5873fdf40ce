#pragma once
/// \file power_law_fit.hpp
/// Learning curves: how a model's test error falls with its training size m, fitted by the
/// power law ε(m) = α m^β + γ (Partin et al., BMC Bioinformatics 22:252, 2021) with weighted
/// nonlinear least squares (Eigen's Levenberg–Marquardt, the MINPACK algorithm that R's
/// minpack.lm::nlsLM, used by the paper, also wraps). What a fit reports:
///   * α, β, γ, and whether the solver converged (a fit that did not, or whose curve is not
///     finite over the sizes, is `converged == false` with the reason, never a result);
///   * goodness of fit on the points fitted: R², RMSE, MAE;
///   * the score at any size (`power_law::operator()`), e.g. twice the largest;
///   * the size at which the curve reaches a given score (`size_for`), e.g. 10% below the error
///     at the largest size; none when the asymptote γ lies above it.
/// `extrapolation_check` fits all but the largest size and compares the curve's prediction of
/// the largest with the "last value" baseline (the score at the second largest size), which
/// LCDB (Mohr, Viering et al. 2022) found hard to beat.
///
/// The fit works in m / max(m), where the three parameters have like magnitudes, and starts from
/// several points (γ at 0 or, bounded, a hundredth of the smallest score; half and nine tenths of the smallest score, β and α from the log-log
/// line through the rest), keeping the best converged fit: learning curves are flat at one end
/// and a single start can stop in the flat valley.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <unsupported/Eigen/NonLinearOptimization>

#include "../core/error.hpp"

namespace strata {

/// ε(m) = α m^β + γ.
struct power_law {
  double alpha = 0.0, beta = 0.0, gamma = 0.0;

  /// The curve's score at training size `m`.
  double operator()(double m) const { return alpha * std::pow(m, beta) + gamma; }

  /// The size at which a falling curve (α > 0, β < 0) reaches `score`, a score between γ and the
  /// curve's values; NaN when it never does, and for a curve that does not fall.
  double size_for(double score) const {
    const double ratio = (score - gamma) / alpha;
    if (!(alpha > 0.0 && beta < 0.0 && ratio > 0.0)) return std::numeric_limits<double>::quiet_NaN();
    const double m = std::pow(ratio, 1.0 / beta);
    return std::isfinite(m) ? m : std::numeric_limits<double>::quiet_NaN();
  }
};

/// How points are weighted in the least squares.
enum class curve_weights {
  relative_size,  ///< m / max(m), as minpack.lm in Partin et al.'s nls_lm.R
  binomial,       ///< m / (ε (1 - ε)), their fit.R: an error rate's binomial variance (ε in (0, 1))
  none            ///< every point alike
};

/// Choices of a fit.
struct power_law_fit_options {
  curve_weights weights = curve_weights::relative_size;
  double min_size = 0.0;         ///< points of smaller sizes are left out, as the paper leaves out the first sizes
  /// γ >= 0 (fitted as the square of a free parameter): an error cannot fall below zero, and
  /// without the bound a curve that looks straight on a log axis can be fitted by the useless
  /// limit β -> 0, α -> +inf, γ -> -inf. Off for scores that may be negative.
  bool nonnegative_asymptote = true;
  Eigen::Index max_evaluations = 4000;  ///< of the residuals, per start
};

/// A fitted learning curve and how well it fits (see the file comment).
struct power_law_fit {
  bool converged = false;
  std::string failure;  ///< why not, when not converged
  power_law curve;
  double r2 = NAN, rmse = NAN, mae = NAN;  ///< on the points fitted, unweighted
  Eigen::Index points = 0;                 ///< points fitted
};

namespace detail {

/// Weighted residuals sqrt(w_i) (a x_i^b + g - e_i) over x = m / max(m), and their Jacobian;
/// g = p[2], or p[2]² when the asymptote is bounded below by zero.
struct power_law_residuals {
  using Scalar = double;
  const Eigen::ArrayXd& x;
  const Eigen::ArrayXd& e;
  const Eigen::ArrayXd& root_w;
  bool squared_gamma;

  double gamma(const Eigen::VectorXd& p) const { return squared_gamma ? p[2] * p[2] : p[2]; }
  int inputs() const { return 3; }
  int values() const { return static_cast<int>(x.size()); }
  int operator()(const Eigen::VectorXd& p, Eigen::VectorXd& r) const {
    r = (root_w * (p[0] * x.pow(p[1]) + gamma(p) - e)).matrix();
    return r.allFinite() ? 0 : -1;
  }
  int df(const Eigen::VectorXd& p, Eigen::MatrixXd& j) const {
    const Eigen::ArrayXd xb = x.pow(p[1]);
    j.resize(x.size(), 3);
    j.col(0) = (root_w * xb).matrix();
    j.col(1) = (root_w * p[0] * xb * x.log()).matrix();
    j.col(2) = (root_w * (squared_gamma ? 2.0 * p[2] : 1.0)).matrix();
    return j.allFinite() ? 0 : -1;
  }
};

}  // namespace detail

/// Fits ε(m) = α m^β + γ to `scores` at `sizes` (each point once: the median over splits, say).
/// Throws config_error for inputs no fit can use: sizes and scores of different lengths, a size
/// that is not positive, a score that is not finite, fewer than 3 points at or above min_size,
/// or (binomial weights) a score outside (0, 1). A fit the solver cannot make is returned with
/// `converged == false` and the reason.
inline power_law_fit fit_power_law(const std::vector<double>& sizes, const std::vector<double>& scores,
                                   const power_law_fit_options& options = {}) {
  if (sizes.size() != scores.size())
    throw config_error(detail::concat("fit_power_law: ", sizes.size(), " sizes but ", scores.size(), " scores"));
  std::vector<double> m, e;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (!(sizes[i] > 0.0) || !std::isfinite(sizes[i]))
      throw config_error(detail::concat("fit_power_law: size ", sizes[i], " is not a positive number"));
    if (!std::isfinite(scores[i]))
      throw config_error(detail::concat("fit_power_law: the score at size ", sizes[i], " is not finite"));
    if (sizes[i] < options.min_size) continue;
    if (options.weights == curve_weights::binomial && !(scores[i] > 0.0 && scores[i] < 1.0))
      throw config_error(detail::concat("fit_power_law: binomial weights need scores in (0, 1); size ", sizes[i], " has ", scores[i]));
    m.push_back(sizes[i]);
    e.push_back(scores[i]);
  }
  if (m.size() < 3)
    throw config_error(detail::concat("fit_power_law: ", m.size(), " points at sizes >= ", options.min_size,
                                      "; a curve of three parameters needs at least 3"));
  const auto n = static_cast<Eigen::Index>(m.size());
  const double largest = *std::max_element(m.begin(), m.end());
  const Eigen::ArrayXd size = Eigen::Map<const Eigen::ArrayXd>(m.data(), n), error = Eigen::Map<const Eigen::ArrayXd>(e.data(), n);
  const Eigen::ArrayXd x = size / largest;
  Eigen::ArrayXd weight = Eigen::ArrayXd::Ones(n);
  if (options.weights == curve_weights::relative_size) weight = x;
  if (options.weights == curve_weights::binomial) weight = size / (error * (1.0 - error));
  weight /= weight.maxCoeff();
  const Eigen::ArrayXd root_w = weight.sqrt();

  power_law_fit best;
  best.points = n;
  best.failure = "no start converged";
  double best_cost = std::numeric_limits<double>::infinity();
  const double low = error.minCoeff();
  for (const double g0 : {options.nonnegative_asymptote ? 0.01 * std::max(low, 0.0) : 0.0, 0.5 * low, 0.9 * low}) {
    if (options.nonnegative_asymptote && g0 < 0.0) continue;
    // β and α from the least-squares line through (log x, log(ε - γ)).
    const Eigen::ArrayXd lifted = (error - g0).max(1e-12 * std::max(1.0, std::abs(low)));
    const Eigen::ArrayXd lx = x.log(), ly = lifted.log();
    const double mx = lx.mean(), my = ly.mean();
    const double sxx = (lx - mx).square().sum();
    const double b0 = sxx > 0 ? ((lx - mx) * (ly - my)).sum() / sxx : -0.5;
    Eigen::VectorXd p(3);
    p << std::exp(my - b0 * mx), b0, options.nonnegative_asymptote ? std::sqrt(g0) : g0;
    detail::power_law_residuals f{x, error, root_w, options.nonnegative_asymptote};
    Eigen::LevenbergMarquardt<detail::power_law_residuals> solver(f);
    solver.parameters.maxfev = options.max_evaluations;
    const auto status = solver.minimize(p);
    using namespace Eigen::LevenbergMarquardtSpace;
    const bool stopped_well = status == RelativeReductionTooSmall || status == RelativeErrorTooSmall ||
                              status == RelativeErrorAndReductionTooSmall || status == CosinusTooSmall ||
                              status == FtolTooSmall || status == XtolTooSmall || status == GtolTooSmall;
    if (!stopped_well) {
      if (!best.converged)
        best.failure = status == TooManyFunctionEvaluation ? detail::concat("no convergence in ", options.max_evaluations, " evaluations")
                                                           : detail::concat("the solver stopped (status ", static_cast<int>(status), ")");
      continue;
    }
    const power_law curve{p[0] * std::pow(largest, -p[1]), p[1], f.gamma(p)};
    const Eigen::ArrayXd fitted = size.unaryExpr([&](double s) { return curve(s); });
    if (!p.allFinite() || !fitted.allFinite()) {
      if (!best.converged) best.failure = "the fitted curve is not finite over the sizes";
      continue;
    }
    const double cost = (weight * (fitted - error).square()).sum();
    if (cost < best_cost) {
      best_cost = cost;
      best.converged = true;
      best.failure.clear();
      best.curve = curve;
      const Eigen::ArrayXd residual = fitted - error;
      const double total = (error - error.mean()).square().sum();
      best.r2 = total > 0 ? 1.0 - residual.square().sum() / total : NAN;
      best.rmse = std::sqrt(residual.square().mean());
      best.mae = residual.abs().mean();
    }
  }
  return best;
}

/// The extrapolation check: the curve fitted to all sizes but the largest predicts the largest;
/// the baseline predicts the score at the second largest size ("last value").
struct extrapolation_check {
  power_law_fit fit;        ///< on all sizes but the largest
  double size = NAN;        ///< the largest size
  double observed = NAN;    ///< its score
  double predicted = NAN;   ///< the curve's prediction (NaN when the fit did not converge)
  double last_value = NAN;  ///< the baseline's prediction
  /// Whether the curve's prediction is closer to the observed score than the baseline's.
  bool curve_wins() const { return fit.converged && std::abs(predicted - observed) < std::abs(last_value - observed); }
};

/// Runs the extrapolation check on `sizes` and `scores` (one point per size; at least 4 sizes at
/// or above min_size, so that 3 remain to fit).
inline extrapolation_check check_extrapolation(const std::vector<double>& sizes, const std::vector<double>& scores,
                                               const power_law_fit_options& options = {}) {
  if (sizes.size() != scores.size() || sizes.size() < 4)
    throw config_error(detail::concat("check_extrapolation: needs at least 4 (size, score) points, got ", sizes.size(), " and ",
                                      scores.size()));
  std::vector<std::size_t> order(sizes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return sizes[a] < sizes[b]; });
  std::vector<double> fit_sizes, fit_scores;
  for (std::size_t k = 0; k + 1 < order.size(); ++k) {
    fit_sizes.push_back(sizes[order[k]]);
    fit_scores.push_back(scores[order[k]]);
  }
  extrapolation_check out;
  out.size = sizes[order.back()];
  out.observed = scores[order.back()];
  out.last_value = fit_scores.back();
  out.fit = fit_power_law(fit_sizes, fit_scores, options);
  if (out.fit.converged) out.predicted = out.fit.curve(out.size);
  return out;
}

}  // namespace strata
