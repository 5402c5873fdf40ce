#pragma once
// --precision for the example programs that score with trained models: fp32 (the models' own
// products), or bf16 / int8 on oneDNN where the build found it (inference/low_precision.hpp).

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <strata/core/error.hpp>
#include <strata/core/tensor.hpp>
#ifdef STRATA_EXAMPLE_ONEDNN
#include <strata/inference/low_precision.hpp>
#endif

namespace examples {

/// The --precision help text.
inline const char* precision_help() {
  return "arithmetic of the Dense layers when scoring: fp32, bf16 or int8 (bf16 and int8 on oneDNN; int8 calibrates "
         "each layer's input range on the first molecules scored; a CPU without the instructions falls back to fp32)";
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
/// object lives (the models must outlive it). fp32 leaves the models as they are.
class precision_kernels {
 public:
  precision_kernels(const precision_kernels&) = delete;
  precision_kernels& operator=(const precision_kernels&) = delete;
  ~precision_kernels() {
    for (auto& unset : unset_) unset();
  }

  /// `models`: built models with their weights loaded; `sample`: inputs to calibrate int8 on.
  template <class M>
  precision_kernels(const std::string& name, const std::vector<M*>& models, const strata::matrix_f& sample, std::ostream& log) {
    check_precision(name);
    if (name == "fp32") return;
#ifdef STRATA_EXAMPLE_ONEDNN
    const strata::precision p = strata::parse_precision(name);
    if (const std::string why = strata::precision_unavailable(p); !why.empty()) {
      log << "precision: " << why << "; scoring in fp32\n";
      return;
    }
    for (M* model : models) {
      const strata::dense_calibration calibration = p == strata::precision::int8 ? strata::calibrate_dense_inputs(*model, sample) : strata::dense_calibration{};
      kernels_.push_back(std::make_unique<strata::OnednnInference>(*model, p, calibration));
      model->set_dense_kernels(kernels_.back().get());
      unset_.push_back([model] { model->set_dense_kernels(nullptr); });
    }
    log << "precision: " << name << " (oneDNN) for " << kernels_.front()->layers() << " Dense layers per model"
        << (p == strata::precision::int8 ? strata::detail::concat(", calibrated on ", sample.cols(), " molecules") : std::string()) << "\n";
#else
    (void)models;
    (void)sample;
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
