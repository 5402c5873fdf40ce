#pragma once
// --precision for the example programs that score with trained models: fp32, bf16 or int8, the
// Dense layers on oneDNN's matmul where the build found it (inference/low_precision.hpp; fp32
// too: weights laid out once and each ReLU fused into the product before it, faster than the
// models' own products), else fp32 on the models' own products.

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <strata/core/error.hpp>
#include <strata/core/tensor.hpp>
#include <strata/inference/calibration.hpp>
#ifdef STRATA_EXAMPLE_ONEDNN
#include <strata/inference/low_precision.hpp>
#endif

namespace examples {

/// The inputs of a dataset's first `count` samples (fewer when it holds fewer): what int8
/// calibration measures.
template <class Dataset>
strata::matrix_f first_inputs(const Dataset& data, strata::Index count) {
  const strata::Index n = std::min(count, static_cast<strata::Index>(data.size()));
  std::vector<strata::Index> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), strata::Index{0});
  strata::matrix_f x, unused;
  data.gather(rows.data(), n, x, unused);
  return x;
}

/// The --precision help text.
inline const char* precision_help() {
  return "arithmetic of the Dense layers when scoring: fp32, bf16 or int8 (on oneDNN where the build has it; int8 uses the input "
         "ranges training stored in the model file, or calibrates on the first 8,192 inputs scored when the file has none; "
         "a CPU without the instructions falls back to fp32)";
}

/// Refuses an unknown precision, or a low one in a build without oneDNN, before any work.
inline void check_precision(const std::string& name) {
  if (name != "fp32" && name != "bf16" && name != "int8")
    throw strata::config_error("unknown --precision '" + name + "' (fp32, bf16 or int8)");
#ifndef STRATA_EXAMPLE_ONEDNN
  if (name != "fp32")
    throw strata::config_error("--precision " + name + " needs oneDNN, which this build did not find (apt-get install libdnnl-dev, then rebuild)");
#endif
}

/// The Dense kernels of several models in one precision, set on the models for as long as this
/// object lives (the models must outlive it). Without oneDNN, fp32 leaves the models as they are.
class precision_kernels {
 public:
  precision_kernels(const precision_kernels&) = delete;
  precision_kernels& operator=(const precision_kernels&) = delete;
  ~precision_kernels() {
    for (auto& unset : unset_) unset();
  }

  /// `models`: built models with their weights loaded; `stored[k]`: the calibration model k's
  /// file holds (empty: none; `stored` may be empty); int8 calibrates a model without one on
  /// `sample_of(k)` (called only then: models that read their inputs their own way, as ensemble
  /// members that scale features differently, each get their own sample).
  template <class M, class SampleOf>
  precision_kernels(const std::string& name, const std::vector<M*>& models, const std::vector<strata::dense_calibration>& stored,
                    SampleOf&& sample_of, std::ostream& log) {
    check_precision(name);
#ifdef STRATA_EXAMPLE_ONEDNN
    strata::precision p = strata::parse_precision(name);
    if (const std::string why = strata::precision_unavailable(p); !why.empty()) {
      log << "precision: " << why << "; scoring in fp32\n";
      p = strata::precision::fp32;
    }
    std::size_t from_files = 0;
    strata::Index calibrated = 0;
    for (std::size_t k = 0; k < models.size(); ++k) {
      M* model = models[k];
      strata::dense_calibration calibration;
      if (p == strata::precision::int8 && k < stored.size() && !stored[k].empty()) {
        calibration = stored[k];
        ++from_files;
      } else if (p == strata::precision::int8) {
        const strata::matrix_f& sample = sample_of(k);
        calibration = strata::calibrate_dense_inputs(*model, sample);
        calibrated = sample.cols();
      }
      kernels_.push_back(std::make_unique<strata::OnednnInference>(*model, p, calibration));
      model->set_dense_kernels(kernels_.back().get());
      unset_.push_back([model] { model->set_dense_kernels(nullptr); });
    }
    log << "precision: " << strata::to_string(p) << " (oneDNN) for " << kernels_.front()->layers() << " Dense layers per model";
    if (const std::size_t sparse = kernels_.front()->sparse_layers(); sparse > 0)
      log << " and " << sparse << " sparse first layer" << (sparse > 1 ? "s" : "") << " (int8 with AVX512_VNNI, scaled per sample)";
    if (from_files > 0) log << ", calibration from the model file" << (models.size() > 1 ? "s" : "");
    if (from_files < models.size() && p == strata::precision::int8)
      log << (from_files > 0 ? ", else" : "") << ", calibrated on the first " << calibrated
          << " inputs (the model file holds no calibration)";
    log << "\n";
#else
    (void)models;
    (void)stored;
    (void)sample_of;
    (void)log;
#endif
  }

 private:
  std::vector<std::function<void()>> unset_;
#ifdef STRATA_EXAMPLE_ONEDNN
  std::vector<std::unique_ptr<strata::OnednnInference>> kernels_;
#endif
};

}  // namespace examples
