#pragma once
/// \file calibration.hpp
/// What int8 inference needs to know of the data: the range of every Dense layer's input,
/// measured by fp32 passes over a sample (`calibrate_dense_inputs`), and kept in the model file
/// beside the weights (`store_calibration`, `stored_calibration`). Calibrating once, when the
/// model is written, gives every later run the same scales: the shards of a library screened by
/// separate jobs are quantised alike, and a rerun scores bit for bit as before. Needs no kernel
/// library; inference/low_precision.hpp uses the ranges.

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "../core/error.hpp"
#include "../graph/model.hpp"
#include "../io/state_file.hpp"

namespace strata {

/// What calibration saw at one Dense layer's input.
struct input_range {
  float largest_magnitude = 0.0f;  ///< max |x| over the sample
  bool nonnegative = true;         ///< no negative input (behind a ReLU): int8 quantises it unsigned
};

/// Each Dense layer's input range, by layer path ("model/0:Sequential/2:Dense").
using dense_calibration = std::map<std::string, input_range>;

namespace detail {
/// Records the range of every Dense layer's input and lets the layer compute as usual.
class input_range_recorder : public dense_kernels {
 public:
  explicit input_range_recorder(dense_calibration& ranges) : ranges_(ranges) {}
  bool forward(const std::string& path, const host_matrix<float>& x, host_matrix<float>&) override {
    input_range& r = ranges_[path];
    if (x.size() > 0) {
      const float largest = x.cwiseAbs().maxCoeff();
      if (!std::isfinite(largest))
        throw data_error("calibrate_dense_inputs: the input of layer '" + path + "' holds NaN or infinity");
      r.largest_magnitude = std::max(r.largest_magnitude, largest);
      r.nonnegative = r.nonnegative && x.minCoeff() >= 0.0f;
    }
    return false;
  }

 private:
  dense_calibration& ranges_;
};

/// The state-file tensor names of a calibration: one 2 x 1 tensor per layer.
inline const std::string& calibration_prefix() {
  static const std::string prefix = "calibration/";
  return prefix;
}
}  // namespace detail

/// Runs `model` in evaluation mode (fp32, its own kernels) over `sample` (`inputs x n`, in
/// chunks) and returns every Dense layer's input range. Throws data_error naming the layer when
/// an input is not finite, and config_error for an empty sample.
template <class Spec>
dense_calibration calibrate_dense_inputs(Model<Spec>& model, const host_matrix<float>& sample, Index chunk = 4096) {
  if (sample.cols() == 0) throw config_error("calibrate_dense_inputs: the calibration sample is empty");
  dense_calibration ranges;
  detail::input_range_recorder recorder(ranges);
  dense_kernels* previous = model.kernels();
  model.set_dense_kernels(&recorder);
  try {
    model.predict(sample, chunk);
  } catch (...) {
    model.set_dense_kernels(previous);
    throw;
  }
  model.set_dense_kernels(previous);
  return ranges;
}

/// Adds `calibration` to `file` (a model file being written): per layer the tensor
/// "calibration/<layer path>" holding (largest magnitude, 1 if nonnegative else 0), exactly,
/// and the entry "calibration_samples" = `samples`. Files without them keep loading.
inline void store_calibration(state_file& file, const dense_calibration& calibration, Index samples) {
  for (const auto& [path, range] : calibration) {
    host_matrix<float> t(2, 1);
    t << range.largest_magnitude, range.nonnegative ? 1.0f : 0.0f;
    file.add(detail::calibration_prefix() + path, t);
  }
  file.meta["calibration_samples"] = std::to_string(samples);
}

/// The calibration stored in `file` (empty when it holds none). Throws io_error naming `path`
/// for a malformed entry: a tensor of another shape, a negative or non-finite magnitude.
inline dense_calibration stored_calibration(const state_file& file, const std::string& path) {
  dense_calibration out;
  const std::string& prefix = detail::calibration_prefix();
  for (const auto& t : file.tensors) {
    if (t.name.compare(0, prefix.size(), prefix) != 0) continue;
    const auto fail = [&](const std::string& what) {
      return io_error("model file '" + path + "': calibration of layer '" + t.name.substr(prefix.size()) + "' " + what);
    };
    if (t.rows != 2 || t.cols != 1) throw fail(detail::concat("has shape ", t.rows, " x ", t.cols, ", not 2 x 1"));
    host_matrix<float> v;
    state_file::extract(t, v);
    if (!(std::isfinite(v(0)) && v(0) >= 0.0f)) throw fail(detail::concat("has magnitude ", v(0)));
    if (v(1) != 0.0f && v(1) != 1.0f) throw fail(detail::concat("has sign flag ", v(1), " (0 or 1)"));
    out[t.name.substr(prefix.size())] = input_range{v(0), v(1) == 1.0f};
  }
  return out;
}

}  // namespace strata
