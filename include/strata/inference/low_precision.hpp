#pragma once
/// \file low_precision.hpp
/// A trained model's Dense layers evaluated on oneDNN in fp32, bf16 or int8 (component
/// Strata::onednn; the kernel is backend/onednn_dense.hpp):
///
///     OnednnInference fast(model, precision::int8, calibrate_dense_inputs(model, sample));
///     model.set_dense_kernels(&fast);   // every evaluation pass from here on
///
/// In int8 a SparseInputDense first layer evaluates in int8 too, by its own kernel (per-sample
/// input scales: no calibration; layers/sparse_int8.hpp), where the build has AVX512_VNNI.
/// Everything else in the model (activations, normalisation) evaluates as before, in fp32 (a
/// ReLU right after a Dense layer runs inside its matmul, as a post-op, and a Dense layer after a
/// slice reads the slice's rows in place); only the dense products change arithmetic. int8 needs the range
/// of each Dense layer's input, measured by fp32 passes over a sample of the data the model will
/// score (`calibrate_dense_inputs`, inference/calibration.hpp, which also keeps it in a model
/// file); inputs beyond the measured range saturate.

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "../backend/onednn_dense.hpp"
#include "../graph/model.hpp"
#include "../layers/sparse_int8.hpp"
#include "calibration.hpp"

namespace strata {

namespace detail {
/// "model/0:Dense" for a parameter named "model/0:Dense.weight"; "" for any other parameter.
inline bool ends_with(const std::string& name, const std::string& suffix) {
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline std::string dense_weight_path(const std::string& name) {
  if (!ends_with(name, ":Dense.weight")) return "";
  return name.substr(0, name.size() - std::string(".weight").size());
}
}  // namespace detail

/// Every whole Dense layer of a model on oneDNN in one precision (a dense_kernels set: hand it
/// to Model::set_dense_kernels). It copies the weights when made: after they change, make a new
/// one. Layers split by model parallelism keep their own products. int8 needs a calibration
/// covering every Dense layer. bf16 and int8 are refused (config_error) on CPUs without their
/// instructions (precision_unavailable). One model and one thread at a time.
class OnednnInference : public dense_kernels {
 public:
  template <class Spec>
  OnednnInference(Model<Spec>& model, precision p, const dense_calibration& calibration = {}) : precision_(p) {
    for (auto& parameter : model.parameters()) {
      if (p == precision::int8 && sparse_int8_available && detail::ends_with(parameter.name, ":SparseInputDense.weight"))
        ++sparse_layers_;
      const std::string path = detail::dense_weight_path(parameter.name);
      if (path.empty() || parameter.split.split()) continue;
      const auto& w = *parameter.value;
      const float* bias = nullptr;
      for (auto& other : model.parameters())
        if (other.name == path + ".bias") bias = other.value->data();
      input_range range;
      if (p == precision::int8) {
        const auto found = calibration.find(path);
        if (found == calibration.end())
          throw config_error("OnednnInference: int8 needs the input range of layer '" + path +
                             "', which the calibration lacks (calibrate_dense_inputs on a sample of the data)");
        range = found->second;
        if (!(range.largest_magnitude > 0.0f)) range.largest_magnitude = 1.0f;  // all-zero inputs: any scale
      }
      kernels_.emplace(path, std::make_unique<onednn_dense>(w.data(), w.rows(), w.cols(), bias, p,
                                                            range.largest_magnitude, range.nonnegative));
    }
  }

  bool forward(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) override {
    return run(path, x, y, false);
  }
  /// A Dense layer and the ReLU after it as one matmul whose post-op is the ReLU.
  bool forward_rectified(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) override {
    return run(path, x, y, true);
  }

  /// A Dense layer reading rows of a larger input in place (a slice), ReLU fused or not.
  bool forward_strided(const std::string& path, const strided_input& x, float* y, Index outputs, bool rectified) override {
    const auto found = kernels_.find(path);
    if (found == kernels_.end()) return false;
    onednn_dense& kernel = *found->second;
    check_shape(path, kernel, x.rows);
    if (outputs != kernel.rows())
      throw shape_error(detail::concat("layer '", path, "': its oneDNN kernel was made for ", kernel.rows(),
                                       " outputs, the layer has ", outputs, " (make the OnednnInference again)"));
    kernel.forward_strided(x.data, x.stride, x.cols, y, rectified);
    return true;
  }

  /// int8: every SparseInputDense layer evaluates in int8 (where the build can).
  bool quantize_sparse(const std::string&) override { return precision_ == precision::int8; }

  precision arithmetic() const { return precision_; }
  /// How many Dense layers run here.
  std::size_t layers() const { return kernels_.size(); }
  /// How many SparseInputDense layers evaluate in int8 (none but in int8 and with AVX512_VNNI).
  std::size_t sparse_layers() const { return sparse_layers_; }

 private:
  bool run(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y, bool rectified) {
    const auto found = kernels_.find(path);
    if (found == kernels_.end()) return false;
    onednn_dense& kernel = *found->second;
    check_shape(path, kernel, x.rows());
    if (y.rows() != kernel.rows() || y.cols() != x.cols()) y.resize(kernel.rows(), x.cols());
    kernel.forward(x.data(), x.cols(), y.data(), rectified);
    return true;
  }

  static void check_shape(const std::string& path, const onednn_dense& kernel, Index inputs) {
    if (inputs != kernel.inputs())
      throw shape_error(detail::concat("layer '", path, "': its oneDNN kernel was made for ", kernel.inputs(),
                                       " inputs, the batch has ", inputs, " rows (make the OnednnInference again)"));
  }

  precision precision_;
  std::size_t sparse_layers_ = 0;
  std::map<std::string, std::unique_ptr<onednn_dense>> kernels_;
};

}  // namespace strata
