#pragma once
/// \file layer.hpp
/// What every layer shares: how a layer is described (a *spec* type) and bound to a backend (its
/// *impl*), the build context that names layers and seeds them, and the per-pass information.
///
/// A model is a type composed of specs: `Sequential<Dense<64>, ReLU, Dense<1>>`. A spec carries
/// the run-time configuration (widths, rates) and names its implementation for any backend:
///   `template <class B> using impl = ...;`  the layer bound to backend B
///   `static constexpr const char* kind`     the name used in messages and parameter names
///   `template <Index In> static constexpr Index output_width`   compile-time width, or dynamic
/// An impl provides:
///   `Index build(build_context&, Index input_width)`  allocate, check shapes, initialise; returns
///                                                     the output width (throws shape_error)
///   `const matrix& forward(const matrix& x, const pass_info&)`
///   `const matrix& backward(const matrix& x, const matrix& dy, const pass_info&, bool need_dx)`
///        `x` is the input given to forward; writes (not accumulates) parameter gradients and
///        returns d(loss)/dx (an empty matrix when `need_dx` is false)
///   `template <class F> void for_each_parameter(F&&)`, `for_each_buffer(F&&)`
///   optionally `template <class F> void for_each_setting(F&&)`: f(name, double&) for every
///        run-time hyperparameter that may change between steps (a dropout rate, perturbed by
///        tournaments); the layer checks what f leaves there
///   optionally `template <class W> void describe(W& w) const`: its configuration for the
///        architecture description (graph/architecture.hpp): `w.field(name, value)` for each
///        setting, then `w.child(index, kind, layer)` for each sub-layer of a composite
/// Layers own their output and gradient buffers and reuse them while the batch size is unchanged.

#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/config.hpp"
#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"

namespace strata {

/// Whether a pass trains (dropout active, batch statistics) or evaluates.
enum class mode { train, eval };

/// Told during backward each time a layer has written one parameter's gradient, so a
/// data-parallel strategy can start reducing it while the rest of backward runs.
class gradient_listener {
 public:
  virtual ~gradient_listener() = default;
  /// `gradient` is the address of the parameter's gradient matrix (as in its `parameter`).
  virtual void gradient_ready(const void* gradient) = 0;
};

/// A layer's input read in place from a larger column-major matrix: `rows` values per sample,
/// sample j's from `data + j * stride`, `cols` samples.
struct strided_input {
  const float* data;
  Index rows, stride, cols;
};

/// Evaluation-mode products that stand in for some Dense layers' own GEMM, for instance oneDNN's
/// in bf16 or int8 (inference/low_precision.hpp). A model hands its set to every evaluation pass
/// (Model::set_dense_kernels); a Dense layer on the host in float asks it first.
class dense_kernels {
 public:
  virtual ~dense_kernels() = default;
  /// Computes `y = W x + b` of the Dense layer at `path` (`x`: `inputs x n`) into `y` and returns
  /// true, or returns false when the set has no kernel for that layer (which then computes its own).
  virtual bool forward(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) = 0;
  /// As `forward`, then `max(y, 0)` on every output in the same pass: the Dense layer at `path`
  /// and the ReLU after it as one step (layers/dense.hpp). False by default: the layers then run
  /// one after the other, the Dense layer asking `forward`.
  virtual bool forward_rectified(const std::string& path, const host_matrix<float>& x, host_matrix<float>& y) {
    (void)path;
    (void)x;
    (void)y;
    return false;
  }
  /// As `forward`, or `forward_rectified` where `rectified`, for an input read in place from a
  /// larger matrix (`x`, see strided_input) into `y`, `outputs x x.cols` column-major. A Dense
  /// layer reads a slice of its input this way without copying it (graph/slice.hpp,
  /// graph/shared.hpp). False by default: the slice is copied.
  virtual bool forward_strided(const std::string& path, const strided_input& x, float* y, Index outputs, bool rectified) {
    (void)path;
    (void)x;
    (void)y;
    (void)outputs;
    (void)rectified;
    return false;
  }
  /// Whether the SparseInputDense layer at `path` evaluates in int8 (layers/sparse_int8.hpp)
  /// instead of fp32. No by default; a build without the instructions stays fp32 regardless.
  virtual bool quantize_sparse(const std::string& path) {
    (void)path;
    return false;
  }
};

/// Information that travels with one forward/backward pass.
struct pass_info {
  mode phase = mode::train;
  /// The optimizer step: dropout draws new masks every step.
  std::uint64_t step = 0;
  /// Global index of the sample in column 0 (so data-parallel ranks draw the same masks a
  /// serial run would for the same sample).
  std::uint64_t first_sample = 0;
  /// Samples per application: `Shared` stacks several applications of one network side by side
  /// in the columns; column j is sample `j % batch` of application `j / batch`. 0 means every
  /// column is its own sample.
  Index batch = 0;
  /// Check every layer's output for NaN or infinity and name the first layer that produced one
  /// (Model::forward checks its output first and every layer only when that has one).
  bool check_finite = false;
  /// Monte-Carlo dropout: in evaluation, dropout layers stay active and draw their masks from
  /// `step` as in training (every other layer evaluates as usual; inference/uncertainty.hpp).
  bool sample_dropout = false;
  /// Who to tell when a parameter's gradient is final (null: nobody).
  gradient_listener* gradients = nullptr;
  /// Evaluation passes: kernels that stand in for Dense layers' products (null: none).
  dense_kernels* kernels = nullptr;
  /// The caller promises that no parameter has changed since this model's previous pass (as
  /// between the batches of one `predict_stream`): layers may reuse what they derived from the
  /// parameters then (SparseInputDense its packed weights) instead of deriving it again.
  bool parameters_unchanged = false;

  /// Announces that `gradient` (a parameter's gradient matrix) is final for this pass.
  template <class M>
  void gradient_ready(const M& gradient) const {
    if (gradients != nullptr) gradients->gradient_ready(&gradient);
  }

  /// A globally unique id of the sample in column `col`, the same whatever the rank count.
  STRATA_HD std::uint64_t sample_id(Index col) const {
    // Written without a branch (no batch: one block wider than any column index) so that loops
    // calling it per element keep a straight body and vectorise.
    const Index block = batch > 0 ? batch : Index{1} << 62;
    return (static_cast<std::uint64_t>(col / block) << 40) + first_sample + static_cast<std::uint64_t>(col % block);
  }
};

class row_partition;  // layers/partition.hpp

/// Names and seeds layers while a model is built. Each layer gets a path such as
/// "0:Fork/1:Shared/2:Dense" (position and kind at every level), used in error messages and as
/// the prefix of its parameter names, and a layer id (depth-first order) that keys its random
/// streams.
class build_context {
 public:
  /// A root context; `layer_counter` hands out layer ids and must outlive the build.
  build_context(std::uint64_t seed, std::uint64_t& layer_counter, std::string path = {})
      : seed_(seed), path_(std::move(path)), next_id_(&layer_counter) {}

  /// The context for child number `index` of kind `kind`.
  build_context child(Index index, const char* kind) const {
    build_context c(*this);
    c.path_ = child_path(path_, index, kind);
    return c;
  }
  /// The path of child number `index` of kind `kind` under `parent` ("model/0:Fork/1:Shared").
  static std::string child_path(const std::string& parent, Index index, const char* kind) {
    return parent.empty() ? detail::concat(index, ":", kind) : detail::concat(parent, "/", index, ":", kind);
  }

  const std::string& path() const { return path_; }
  std::uint64_t seed() const { return seed_; }
  /// A fresh layer id: 0, 1, 2, ... in build order.
  std::uint64_t take_layer_id() { return (*next_id_)++; }

  /// The model-parallel group that layers able to split their rows use (null: no split).
  row_partition* partition() const { return partition_; }
  void set_partition(row_partition* p) { partition_ = p; }

 private:
  std::uint64_t seed_;
  std::string path_;
  std::uint64_t* next_id_;  // shared by the whole tree
  row_partition* partition_ = nullptr;
};

/// Throws a shape_error naming `path` when `got != expected`.
inline void expect_width(const std::string& path, const char* what, Index expected, Index got) {
  if (expected != got)
    throw shape_error(detail::concat("layer '", path, "': ", what, " expects width ", expected,
                                     " but gets width ", got));
}

/// Rejects a width that was never set (a run-time width left at `dynamic`) or is not positive.
inline void require_width(const std::string& path, Index width) {
  if (width == dynamic)
    throw shape_error(detail::concat("layer '", path,
                                     "': width is not set (give it at compile time or in the "
                                     "layer's constructor)"));
  if (width <= 0)
    throw shape_error(detail::concat("layer '", path, "': width must be positive, got ", width));
}

/// True for a finite value. Written as `x - x == x - x` (NaN for NaN and infinity) so that it is
/// the same function in host and device code.
template <class T>
STRATA_HD inline bool is_finite(T x) {
  const T zero = x - x;
  return zero == zero;
}

/// How many elements of `m` are NaN or infinite.
template <class B>
Index count_non_finite(const typename B::matrix& m) {
  const auto* p = B::data(m);
  return B::count(m.rows() * m.cols(), [p] STRATA_HD(Index i) { return !is_finite(p[i]); });
}

/// True when every element of `m` is finite.
template <class B>
bool all_finite(const typename B::matrix& m) {
  return count_non_finite<B>(m) == 0;
}

/// Checks that every element of `m` is finite; on failure names the layer and the position.
template <class B>
void check_finite(const typename B::matrix& m, const std::string& path, const char* what) {
  const Index bad = count_non_finite<B>(m);
  if (bad == 0) return;
  host_matrix<typename B::scalar> h;
  B::download(m, h);
  for (Index j = 0; j < h.cols(); ++j)
    for (Index i = 0; i < h.rows(); ++i)
      if (!is_finite(h(i, j)))
        throw numeric_error(detail::concat("non-finite value (", h(i, j), ") in the ", what,
                                           " of layer '", path, "' at row ", i, ", sample column ",
                                           j, "; ", bad, " such values in all"));
}

namespace detail {
/// Two adjacent layers (specs `First`, `Second`) that a Sequential may run as one step. A
/// specialisation derives from std::true_type and offers, for the bound layers,
///   `static bool applies(const first&, const second&, const pass_info&)`   fuse this pass?
///   `static const matrix& forward(first&, second&, const matrix& x, const pass_info&)`
///        both layers' output from the first one's input `x`
/// after which `second.backward(·, dy, pass, need_dx)` returns the gradient with respect to `x`
/// (its first argument is ignored) and the first layer's backward is skipped.
template <class First, class Second>
struct fused_pair : std::false_type {};

/// Whether layer spec `Spec` can evaluate from row windows of a larger input read in place: a
/// Dense layer, or a container whose first layer is one. Its bound layer then offers
///   `const matrix* forward_windows(const matrix& x, const Index* first_rows, Index count, const pass_info&)`
/// the outputs for inputs `x.middleRows(first_rows[a], width)`, application a's samples in
/// columns [a n, (a + 1) n) (as `Shared` stacks them), or null when the pass's kernel set cannot
/// read windows; nothing is computed then, and the caller copies the rows out instead.
template <class Spec>
struct reads_windows : std::false_type {};
/// Whether a fused pair (`fused_pair<First, Second>`) also reads windows as one step:
///   `static const matrix* forward_windows(first&, second&, x, first_rows, count, pass)`.
template <class First, class Second>
struct fused_reads_windows : std::false_type {};

/// Runs a layer's forward pass and, when asked, checks its output for NaN/infinity.
template <class B, class Layer>
const typename B::matrix& checked_forward(Layer& layer, const typename B::matrix& x,
                                          const pass_info& pass, const std::string& path) {
  const auto& y = layer.forward(x, pass);
  if (pass.check_finite) check_finite<B>(y, path, "output");
  return y;
}
}  // namespace detail

namespace detail {
template <class Layer, class F, class = void>
struct has_settings : std::false_type {};
template <class Layer, class F>
struct has_settings<Layer, F, std::void_t<decltype(std::declval<Layer&>().for_each_setting(std::declval<F&>()))>>
    : std::true_type {};

/// `layer.for_each_setting(f)` for layers with run-time settings; nothing for the others.
template <class Layer, class F>
void visit_settings(Layer& layer, F& f) {
  if constexpr (has_settings<Layer, F>::value) layer.for_each_setting(f);
}

template <class Layer, class W, class = void>
struct has_description : std::false_type {};
template <class Layer, class W>
struct has_description<Layer, W, std::void_t<decltype(std::declval<const Layer&>().describe(std::declval<W&>()))>>
    : std::true_type {};

/// `layer.describe(w)` for layers with a configuration to describe; nothing for the others.
template <class Layer, class W>
void describe_layer(const Layer& layer, W& w) {
  if constexpr (has_description<Layer, W>::value) layer.describe(w);
}
}  // namespace detail

/// The implementation of spec `Spec` on backend `B`.
template <class Spec, class B>
using bind_t = typename Spec::template impl<B>;

}  // namespace strata
