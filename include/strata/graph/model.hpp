#pragma once
/// \file model.hpp
/// `Model<Spec, Backend>`: a composed architecture bound to a backend, built for an input width
/// and a seed. It owns the layers, runs forward and backward passes and exposes every parameter
/// and buffer through one list (the parameters visitor that optimizers, all-reduce and
/// checkpoints share).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/parameter_store.hpp"
#include "../layers/layer.hpp"

namespace strata {

/// A model: the architecture `Spec` (a layer or a composition of layers) on backend `B`.
template <class Spec, class B = EigenBackend<float>>
class Model {
 public:
  using spec_type = Spec;
  using backend = B;
  using matrix = typename B::matrix;
  using scalar = typename B::scalar;

  /// The output width when it is known at compile time (instantiating it runs the compile-time
  /// shape checks of the whole architecture), else `dynamic`.
  static constexpr Index static_output_width = Spec::template output_width<dynamic>;
  static_assert(static_output_width == dynamic || static_output_width > 0,
                "strata::Model: the architecture has no output");

  explicit Model(Spec spec = Spec{}) : spec_(std::move(spec)) {}

  /// Builds the layers for inputs of `input_width` features and initialises the weights from
  /// `seed`. Throws shape_error naming the layer when widths do not fit. Rebuilding resets.
  /// With a `partition` (model parallelism, layers/partition.hpp), wide Dense layers keep only
  /// this rank's rows of their weights; the initial weights are those of the unsplit model.
  Model& build(Index input_width, std::uint64_t seed = 0, row_partition* partition = nullptr) {
    auto net = std::make_unique<bind_t<Spec, B>>(spec_);
    std::uint64_t layer_counter = 0;
    build_context ctx(seed, layer_counter, "model");
    ctx.set_partition(partition);
    require_width("model input", input_width);
    output_width_ = net->build(ctx, input_width);
    net_ = std::move(net);
    dense_kernels_ = nullptr;  // made for the old layers
    input_width_ = input_width;
    seed_ = seed;
    parameters_.clear();
    buffers_.clear();
    net_->for_each_parameter([this](const parameter<B>& p) { parameters_.add(p); });
    parameters_.place();  // every tensor moves into the model's two contiguous buffers
    net_->for_each_buffer([this](const buffer<B>& b) { buffers_.push_back(b); });
    return *this;
  }

  bool built() const { return net_ != nullptr; }
  Index input_width() const { return input_width_; }
  Index output_width() const { return output_width_; }
  std::uint64_t seed() const { return seed_; }
  /// What ranks must share to hold the same model: the seed and the architecture's type (which
  /// covers what parameter shapes do not: activations, dropout layers).
  std::uint64_t signature() const { return mix64(seed_ + 0x7Full) ^ mix64(std::hash<std::string>{}(typeid(Spec).name())); }
  const Spec& spec() const { return spec_; }

  /// Forward pass over a `input_width x samples` batch; the result stays valid until the next
  /// forward pass.
  ///
  /// With `pass.check_finite` the input batch and the model's output are checked for NaN and
  /// infinity; only when the output has one is the pass run again with every layer's output
  /// checked, to name the first layer that produced it (the pass is a pure function of the batch,
  /// the step and the weights, so the same values come out; a batch-normalisation layer's running
  /// statistics take the batch twice then, on the way to the error). Checking every layer of
  /// every pass cost a parallel region per layer: 3-7% of a Combo training step on 2 threads.
  /// A non-finite value that no later layer passes on (a NaN that a ReLU turns into 0) is not
  /// reported: it changes neither the output nor the gradients.
  const matrix& forward(const matrix& x, const pass_info& pass = {}) {
    require_built();
    if (x.rows() != input_width_)
      throw shape_error(detail::concat("model input: expects ", input_width_, " features (rows), got a ",
                                       shape_string(x.rows(), x.cols()), " batch"));
    if (pass.check_finite) check_finite<B>(x, "model", "input batch");
    input_ = &x;
    last_pass_ = pass;
    last_pass_.check_finite = false;
    if (pass.phase == mode::eval && pass.kernels == nullptr) last_pass_.kernels = dense_kernels_;
    const matrix& y = net_->forward(x, last_pass_);
    if (!pass.check_finite || all_finite<B>(y)) return y;
    last_pass_.check_finite = true;
    check_finite<B>(net_->forward(x, last_pass_), "model", "output");  // a layer's check throws first
    return y;
  }

  /// Backward pass for the last forward pass: `dy` is d(loss)/d(output). Writes every
  /// parameter's gradient; returns d(loss)/d(input) when `need_input_grad` is set.
  const matrix& backward(const matrix& dy, bool need_input_grad = false) {
    require_built();
    if (input_ == nullptr) throw error("Model::backward called before forward");
    // Evaluation passes with dense kernels fuse layers and keep none of the inputs a backward
    // pass needs (a fused pair's first output, a slice read in place).
    if (last_pass_.phase == mode::eval && last_pass_.kernels != nullptr)
      throw error("Model::backward after an evaluation pass with dense kernels; run a training pass first");
    return net_->backward(*input_, dy, last_pass_, need_input_grad);
  }

  /// Calls f(name, double&) for every run-time setting of the layers (dropout rates), in build
  /// order; the layers check the values f leaves.
  template <class F>
  void for_each_setting(F&& f) {
    require_built();
    detail::visit_settings(*net_, f);
  }

  /// Describes the layer tree to `w` (graph/architecture.hpp), the root at path "model".
  template <class W>
  void describe(W& w) {
    require_built();
    w.node(Spec::kind, "model", *net_);
  }

  /// Every trainable tensor with its gradient, in a fixed order (build order), each a view of
  /// the model's contiguous value and gradient buffers (core/parameter_store.hpp).
  parameter_store<B>& parameters() { return parameters_; }
  /// Every non-trainable buffer (e.g. running statistics), in a fixed order.
  std::vector<buffer<B>>& buffers() { return buffers_; }

  /// Puts every parameter selected by layer-path `pattern` in `group` (detail::selects:
  /// "0:Fork/1:Shared" or "0:Fork/1:Shared/*" for a layer and everything in it, "*.bias" for all
  /// biases) and returns how many were selected. Later calls override earlier ones for the
  /// parameters they select; groups may change between epochs (freeze, then thaw). Throws
  /// config_error listing the layers when nothing matches, so a typo is never a silent no-op.
  std::size_t set_group(const std::string& pattern, const parameter_group& group) {
    require_built();
    if (!(group.lr_scale >= 0.0 && is_finite(group.lr_scale)))
      throw config_error(detail::concat("Model::set_group: the learning-rate multiplier must be finite and not negative, got ",
                                        group.lr_scale));
    std::size_t selected = 0;
    for (auto& p : parameters_)
      if (detail::selects(pattern, p.name)) {
        p.group = group;
        ++selected;
      }
    if (selected == 0) {
      std::string names;
      for (const auto& p : parameters_) names += "\n  " + p.name;
      throw config_error("Model::set_group: '" + pattern + "' selects no parameter; the parameters are:" + names);
    }
    return selected;
  }
  /// The group of a layer object (one with `path()`, such as Dense): its tensors.
  template <class Layer, class = decltype(std::declval<const Layer&>().path())>
  std::size_t set_group(const Layer& layer, const parameter_group& group) {
    return set_group(layer.path(), group);
  }
  /// Freezes what `pattern` selects (a multiplier of 0): see set_group.
  std::size_t freeze(const std::string& pattern) { return set_group(pattern, parameter_group{0.0, true}); }

  /// Number of trainable scalars.
  Index parameter_count() const {
    Index n = 0;
    for (const auto& p : parameters_) n += p.value->rows() * p.value->cols();
    return n;
  }

  /// Evaluation-mode predictions for a host batch of any size, computed `chunk` samples at a
  /// time.
  host_matrix<scalar> predict(const host_matrix<scalar>& x, Index chunk = 4096) {
    require_built();
    host_matrix<scalar> out(output_width_, x.cols());
    host_matrix<scalar> part;
    pass_info pass;
    pass.phase = mode::eval;
    for (Index begin = 0; begin < x.cols(); begin += chunk) {
      const Index n = std::min(chunk, x.cols() - begin);
      B::upload(x.middleCols(begin, n), staged_input_);
      pass.first_sample = static_cast<std::uint64_t>(begin);
      B::download(forward(staged_input_, pass), part);
      out.middleCols(begin, n) = part;
    }
    input_ = nullptr;
    return out;
  }

  /// Kernels that evaluation passes use for Dense layers' products (inference/low_precision.hpp:
  /// oneDNN in fp32, bf16 or int8); null restores the layers' own. The model does not own them.
  /// They hold a copy of the weights taken when they were made, so set them after training (a
  /// trainer's validation passes would use them too) and make new ones after the weights change;
  /// build() forgets them.
  void set_dense_kernels(dense_kernels* kernels) { dense_kernels_ = kernels; }
  dense_kernels* kernels() const { return dense_kernels_; }

  /// Forgets the input of the last forward pass (whose owner may be about to free it): backward
  /// then needs a new forward pass first.
  void release_input() { input_ = nullptr; }

  /// Access to the bound layer tree (for tests and tools).
  bind_t<Spec, B>& network() {
    require_built();
    return *net_;
  }

 private:
  void require_built() const {
    if (!net_) throw error("Model used before build(input_width, seed)");
  }

  Spec spec_;
  std::unique_ptr<bind_t<Spec, B>> net_;
  Index input_width_ = 0, output_width_ = 0;
  std::uint64_t seed_ = 0;
  parameter_store<B> parameters_;
  std::vector<buffer<B>> buffers_;
  const matrix* input_ = nullptr;
  pass_info last_pass_;
  matrix staged_input_;
  dense_kernels* dense_kernels_ = nullptr;
};

}  // namespace strata
