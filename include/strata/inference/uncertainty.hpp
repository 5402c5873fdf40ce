#pragma once
/// \file uncertainty.hpp
/// Predictions with uncertainty, as CANDLE users know them: several predictions of every sample,
/// summarised per sample and output as mean, standard deviation, min and max (CANDLE Combo's
/// PredGrowthMean/Std/Min/Max). Two sources of the several predictions:
///   - Monte-Carlo dropout (`mc_dropout_predict`): evaluation-mode passes with dropout kept on,
///     fresh masks each pass (CANDLE's PermanentDropout); every other layer evaluates as usual.
///   - Ensembles (`ensemble_predict`): one evaluation pass of each of several models.
/// Both stream the data in batches, keeping O(outputs x samples) statistics (every pass too only
/// when asked). `calibrate` scores a spread against known responses: the coverage of
/// mean +- z std and the Spearman correlation of std with the absolute error.
///
/// The standard deviation is the population one (NumPy's np.std, which CANDLE's infer uses).
/// Masks are a pure function of (model seed, layer, pass, sample), so results are reproducible
/// for a given `seed` and batch size, and agree across batch sizes to the GEMM's rounding.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "../graph/model.hpp"
#include "../train/metrics.hpp"

namespace strata {

/// How a spread of predictions is computed.
struct spread_options {
  Index batch = 4096;        ///< samples per forward pass
  std::uint64_t seed = 0;    ///< chooses the Monte-Carlo dropout masks (one stream per seed)
  bool keep_passes = false;  ///< also keep every pass's (or member's) predictions
  /// Position of the data's first sample in a longer stream that is predicted piece by piece:
  /// Monte-Carlo masks depend on the sample's position, so each piece must say where it starts
  /// for the result to equal one call over the whole stream.
  Index first_sample = 0;
};

/// Several predictions of every sample, summarised: `outputs x samples` each, in double.
struct prediction_spread {
  Index count = 0;              ///< predictions per sample (passes or ensemble members)
  matrix_d mean, std, min, max;
  std::vector<matrix_d> passes;  ///< every pass's predictions, when `keep_passes`
  matrix_d targets;              ///< the dataset's targets, `targets x samples`
};

/// Calibration of a spread against known responses.
struct calibration {
  double z = 1.96;             ///< half-width of the interval, in standard deviations
  double coverage = NAN;       ///< share of responses inside mean +- z std (0.95 if well calibrated, Gaussian)
  double spearman = NAN;       ///< Spearman correlation of std with |mean - response| (> 0: std ranks errors)
};

namespace detail {
/// Runs `count` predictions of every sample: `input(k)` is the dataset prediction k reads (the
/// same samples and targets for every k; e.g. one per ensemble member when members scale
/// features differently), and `predict(k, x, first, out)` writes the k-th prediction of its host
/// batch `x` (whose first sample is `first` in the stream) into `out`.
template <class T, class Input, class Predict>
prediction_spread spread_of(Input&& input, Index outputs, Index count, const spread_options& options, const char* who,
                            Predict&& predict) {
  if (count <= 0) throw config_error(concat(who, ": the number of predictions per sample must be positive, got ", count));
  if (options.batch <= 0) throw config_error(concat(who, ": batch must be positive, got ", options.batch));
  const auto& data = input(Index{0});
  const Index n = data.size();
  for (Index k = 1; k < count; ++k)
    if (input(k).size() != n)
      throw shape_error(concat(who, ": prediction ", k, " reads ", input(k).size(), " samples, prediction 0 reads ", n));
  prediction_spread s;
  s.count = count;
  s.mean = matrix_d::Zero(outputs, n);
  s.std = matrix_d::Zero(outputs, n);  // the sum of squared deviations until the end (Welford)
  s.min = matrix_d::Constant(outputs, n, std::numeric_limits<double>::infinity());
  s.max = matrix_d::Constant(outputs, n, -std::numeric_limits<double>::infinity());
  s.targets.resize(data.target_width(), n);
  if (options.keep_passes) s.passes.assign(static_cast<std::size_t>(count), matrix_d(outputs, n));
  host_matrix<T> x, y, out;
  std::vector<Index> indices;
  for (Index first = 0; first < n; first += options.batch) {
    const Index m = std::min(options.batch, n - first);
    indices.resize(static_cast<std::size_t>(m));
    std::iota(indices.begin(), indices.end(), first);
    const void* gathered = nullptr;  // the dataset `x` holds this batch of
    for (Index k = 0; k < count; ++k) {
      const auto& source = input(k);
      if (gathered != &source) {
        source.gather(indices.data(), m, x, y);
        if (gathered == nullptr) s.targets.middleCols(first, m) = y.template cast<double>();
        gathered = &source;
      }
      predict(k, x, options.first_sample + first, out);
      if (out.rows() != outputs || out.cols() != m)
        throw shape_error(concat(who, ": prediction ", k, " is ", shape_string(out.rows(), out.cols()), ", expected ",
                                 shape_string(outputs, m)));
      const matrix_d p = out.template cast<double>();
      auto mean = s.mean.middleCols(first, m);
      const matrix_d delta = p - mean;
      mean += delta / static_cast<double>(k + 1);
      s.std.middleCols(first, m) += delta.cwiseProduct(p - mean);
      s.min.middleCols(first, m) = s.min.middleCols(first, m).cwiseMin(p);
      s.max.middleCols(first, m) = s.max.middleCols(first, m).cwiseMax(p);
      if (options.keep_passes) s.passes[static_cast<std::size_t>(k)].middleCols(first, m) = p;
    }
  }
  s.std = (s.std / static_cast<double>(count)).cwiseMax(0.0).cwiseSqrt();
  return s;
}

/// Throws unless `model` is built and reads `data`'s features.
template <class ModelT, class Dataset>
void require_reads(ModelT& model, const Dataset& data, const char* who) {
  if (!model.built()) throw config_error(concat(who, ": the model is not built"));
  if (data.input_width() != model.input_width())
    throw shape_error(concat(who, ": the model reads ", model.input_width(), " features, the data has ", data.input_width()));
}
}  // namespace detail

/// Monte-Carlo dropout: `passes` evaluation-mode predictions of every sample of `data` with the
/// model's dropout layers active (masks from `options.seed`, pass and sample).
template <class Spec, class B, class Dataset>
prediction_spread mc_dropout_predict(Model<Spec, B>& model, const Dataset& data, Index passes, const spread_options& options = {}) {
  using T = typename B::scalar;
  detail::require_reads(model, data, "mc_dropout_predict");
  typename B::matrix device_x;
  const std::uint64_t base = mix64(options.seed + 0x4D43'44524F50ull);  // the passes' own steps, far from training's
  return detail::spread_of<T>([&](Index) -> const Dataset& { return data; }, model.output_width(), passes, options,
                              "mc_dropout_predict",
                              [&](Index k, const host_matrix<T>& x, Index first, host_matrix<T>& out) {
                                B::upload(x, device_x);
                                pass_info pass;
                                pass.phase = mode::eval;
                                pass.sample_dropout = true;
                                pass.step = base + static_cast<std::uint64_t>(k);
                                pass.first_sample = static_cast<std::uint64_t>(first);
                                B::download(model.forward(device_x, pass), out);
                              });
}

/// An ensemble's predictions: one evaluation-mode pass of each model, member k reading
/// `inputs[k]` (the same samples, each member's own features: members trained on different
/// splits scale features with different statistics). Members are of one architecture type and
/// agree in output width.
template <class Spec, class B, class Dataset>
prediction_spread ensemble_predict(const std::vector<Model<Spec, B>*>& members, const std::vector<const Dataset*>& inputs,
                                   const spread_options& options = {}) {
  using T = typename B::scalar;
  if (members.empty()) throw config_error("ensemble_predict: the ensemble has no model");
  if (inputs.size() != members.size())
    throw config_error(detail::concat("ensemble_predict: ", members.size(), " members but ", inputs.size(), " inputs"));
  for (std::size_t k = 0; k < members.size(); ++k) {
    detail::require_reads(*members[k], *inputs[k], "ensemble_predict");
    if (members[k]->output_width() != members.front()->output_width())
      throw shape_error(detail::concat("ensemble_predict: members predict ", members.front()->output_width(), " and ",
                                       members[k]->output_width(), " outputs"));
  }
  typename B::matrix device_x;
  return detail::spread_of<T>([&](Index k) -> const Dataset& { return *inputs[static_cast<std::size_t>(k)]; },
                              members.front()->output_width(), static_cast<Index>(members.size()), options,
                              "ensemble_predict", [&](Index k, const host_matrix<T>& x, Index first, host_matrix<T>& out) {
                                B::upload(x, device_x);
                                pass_info pass;
                                pass.phase = mode::eval;
                                pass.first_sample = static_cast<std::uint64_t>(first);
                                B::download(members[static_cast<std::size_t>(k)]->forward(device_x, pass), out);
                              });
}

/// The same with every member reading `data`.
template <class Spec, class B, class Dataset>
prediction_spread ensemble_predict(const std::vector<Model<Spec, B>*>& members, const Dataset& data,
                                   const spread_options& options = {}) {
  return ensemble_predict(members, std::vector<const Dataset*>(members.size(), &data), options);
}

/// How well `spread` (mean and std) describes `targets` (`outputs x samples`, e.g.
/// `spread.targets`): coverage of mean +- z std, and Spearman(std, |mean - target|) over every
/// output of every sample (NaN with fewer than 2; 0 when the std or the error is constant, as
/// the `spearman` metric).
inline calibration calibrate(const prediction_spread& spread, const matrix_d& targets, double z = 1.96) {
  if (targets.rows() != spread.mean.rows() || targets.cols() != spread.mean.cols())
    throw shape_error(detail::concat("calibrate: targets are ", shape_string(targets.rows(), targets.cols()),
                                     ", predictions ", shape_string(spread.mean.rows(), spread.mean.cols())));
  if (!(z > 0.0)) throw config_error(detail::concat("calibrate: z must be positive, got ", z));
  calibration c;
  c.z = z;
  const Index n = targets.size();
  if (n == 0) return c;
  const matrix_d error = (spread.mean - targets).cwiseAbs();
  c.coverage = static_cast<double>((error.array() <= z * spread.std.array()).count()) / static_cast<double>(n);
  const Eigen::Map<const Eigen::MatrixXd> s(spread.std.data(), 1, n), e(error.data(), 1, n);
  if (n >= 2) c.spearman = spearman(s, e);
  return c;
}

}  // namespace strata
