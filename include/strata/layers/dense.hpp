#pragma once
/// \file dense.hpp
/// Fully connected layer: `Y = W X + b`, W is `width x input_width`. Built with a model-parallel
/// partition (partition.hpp), a wide enough layer holds only its rank's rows of W and b.

#include "../core/init.hpp"
#include "activation.hpp"
#include "layer.hpp"
#include "partition.hpp"

namespace strata {

template <class B>
class dense_layer;

namespace detail {
/// Checks a dense layer's widths and draws its whole `width x inputs` weight matrix from the
/// layer's initialisation stream: every dense-like layer (Dense, SparseInputDense) draws the same
/// weights for the same seed and position. Returns the layer's path. (The draw goes to a plain
/// matrix: a model-parallel layer keeps only some rows of it.)
template <class B>
std::string draw_dense_weight(build_context& ctx, Index width, Index inputs, Init init, typename B::matrix& weight) {
  std::string path = ctx.path();
  require_width(path, width);
  require_width(path, inputs);
  B::resize(weight, width, inputs);
  initialize<B>(weight, init, random_stream(ctx.seed(), purpose::initialization, ctx.take_layer_id()));
  return path;
}

/// A dense layer's zeroed state besides its weights: the weight gradient (`rows x inputs`) and,
/// when it has one, the bias and its gradient (`rows x 1`).
template <class B>
void zero_dense_state(typename B::parameter_matrix& weight_grad, typename B::parameter_matrix& bias,
                      typename B::parameter_matrix& bias_grad, Index rows, Index inputs, bool with_bias) {
  using T = typename B::scalar;
  B::resize(weight_grad, rows, inputs);
  B::fill(weight_grad, T(0));
  if (!with_bias) return;
  for (auto* m : {&bias, &bias_grad}) {
    B::resize(*m, rows, 1);
    B::fill(*m, T(0));
  }
}
}  // namespace detail

/// A dense (fully connected) layer of `Width` outputs; `Dense<>` takes its width at run time:
/// `Dense<>{1000}`. Weights are He-normal by default, biases zero.
template <Index Width = dynamic>
struct Dense {
  static constexpr const char* kind = "Dense";
  template <Index In>
  static constexpr Index output_width = Width;
  template <class B>
  using impl = dense_layer<B>;

  Index width = Width;
  Init init = Init::he_normal;
  bool bias = true;

  Dense() = default;
  explicit Dense(Index w, Init i = Init::he_normal, bool with_bias = true)
      : width(w), init(i), bias(with_bias) {
    if (Width != dynamic && w != Width)
      throw shape_error(detail::concat("Dense<", Width, ">: constructed with width ", w));
  }
};

/// Dense layer bound to backend `B`.
template <class B>
class dense_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  template <Index W>
  explicit dense_layer(const Dense<W>& spec) : width_(spec.width), init_(spec.init), bias_(spec.bias) {}

  Index build(build_context& ctx, Index input_width) {
    matrix whole;
    path_ = detail::draw_dense_weight<B>(ctx, width_, input_width, init_, whole);
    partition_ = ctx.partition() != nullptr && ctx.partition()->splits(width_) ? ctx.partition() : nullptr;
    split_ = {};
    if (partition_ != nullptr) {
      // The whole matrix is drawn first, so a split model starts from the unsplit one's weights.
      split_ = partition_->rows_of(partition_->rank(), width_);
      detail::take_rows<B>(whole, split_, weight_);
    } else {
      B::copy(whole, weight_);
    }
    detail::zero_dense_state<B>(weight_grad_, bias_value_, bias_grad_, local_rows(), input_width, bias_);
    return width_;
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    check_input(x);
    if constexpr (std::is_same_v<matrix, host_matrix<float>>) {
      if (asks_kernels(pass) && pass.kernels->forward(path_, x, output_)) return output_;
    }
    matrix& y = partition_ != nullptr ? local_output_ : output_;
    if (bias_) {
      B::repeat_column(bias_value_, x.cols(), y);  // Y = b, then Y += W X inside the GEMM
      B::gemm(T(1), weight_, false, x, false, T(1), y);
    } else {
      B::gemm(T(1), weight_, false, x, false, T(0), y);
    }
    if (partition_ != nullptr) detail::all_gather_rows<B>(*partition_, local_output_, width_, gathered_, output_);
    return output_;
  }

  /// `max(W x + b, 0)`, this layer and a ReLU after it in one step, where the pass's kernel set
  /// has a fused kernel for this layer (dense_kernels::forward_rectified); null when it has none,
  /// and nothing is computed.
  const matrix* forward_rectified(const matrix& x, const pass_info& pass) {
    if constexpr (std::is_same_v<matrix, host_matrix<float>>) {
      if (asks_kernels(pass)) {
        check_input(x);
        if (pass.kernels->forward_rectified(path_, x, output_)) return &output_;
      }
    }
    return nullptr;
  }

  /// Evaluation from row windows of `x` read in place (detail::reads_windows), `rectified`: with
  /// the ReLU after this layer applied too. Null where the pass's kernel set has no strided
  /// kernel for this layer.
  const matrix* forward_windows(const matrix& x, const Index* first_rows, Index count, const pass_info& pass,
                                bool rectified = false) {
    if constexpr (std::is_same_v<matrix, host_matrix<float>>) {
      if (!asks_kernels(pass) || count < 1) return nullptr;
      const Index inputs = weight_.cols(), n = x.cols();
      for (Index a = 0; a < count; ++a)
        if (first_rows[a] < 0 || first_rows[a] + inputs > x.rows())
          throw shape_error(detail::concat("layer '", path_, "': rows [", first_rows[a], ", ", first_rows[a] + inputs,
                                           ") do not fit an input of ", x.rows(), " rows"));
      B::resize(output_, width_, n * count);
      if (n == 0) return &output_;
      for (Index a = 0; a < count; ++a) {
        const strided_input window{x.data() + first_rows[a], inputs, x.rows(), n};
        const bool done = pass.kernels->forward_strided(path_, window, output_.data() + a * n * width_, width_, rectified);
        if (!done) {
          if (a == 0) return nullptr;  // the kernel set reads no windows for this layer
          throw error(detail::concat("layer '", path_, "': the kernel set read some row windows but not all"));
        }
      }
      return &output_;
    } else {
      (void)x, (void)first_rows, (void)count, (void)pass, (void)rectified;
      return nullptr;
    }
  }

  const matrix& backward(const matrix& x, const matrix& dy_whole, const pass_info& pass, bool need_dx) {
    const matrix* rows_of_dy = &dy_whole;
    if (partition_ != nullptr) {
      detail::take_rows<B>(dy_whole, split_, local_dy_);
      rows_of_dy = &local_dy_;
    }
    const matrix& dy = *rows_of_dy;
    B::gemm(T(1), dy, false, x, true, T(0), weight_grad_);
    pass.gradient_ready(weight_grad_);
    if (bias_) {
      B::row_sum(dy, bias_grad_);
      pass.gradient_ready(bias_grad_);
    }
    // The input gradient comes last, so reducing this layer's gradients overlaps with it.
    if (need_dx) {
      B::gemm(T(1), weight_, true, dy, false, T(0), input_grad_);
      if (partition_ != nullptr) detail::all_reduce_rows<B>(*partition_, input_grad_);  // Σ_r W_rᵀ dY_r
    }
    return input_grad_;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    f(parameter<B>{path_ + ".weight", &weight_, &weight_grad_, split_});
    if (bias_) f(parameter<B>{path_ + ".bias", &bias_value_, &bias_grad_, split_});
  }
  template <class F>
  void for_each_buffer(F&&) {}

  /// The weights held here: all of W, or this rank's rows when the layer is split.
  const typename B::parameter_matrix& weight() const { return weight_; }
  const std::string& path() const { return path_; }
  template <class W>
  void describe(W& w) const {
    w.field("width", width_);
    w.field("bias", bias_);
  }
  /// The rows of W held here (`split()` false when the layer is whole).
  const row_split& split() const { return split_; }

 private:
  Index width_;
  Init init_;
  bool bias_;
  std::string path_;
  row_partition* partition_ = nullptr;
  row_split split_;
  typename B::parameter_matrix weight_, weight_grad_, bias_value_, bias_grad_;
  matrix output_, input_grad_;
  matrix local_output_, local_dy_;   // this rank's rows (split layers only)
  host_matrix<T> gathered_;          // all-gather scratch (split layers only)

  Index local_rows() const { return partition_ != nullptr ? split_.rows : width_; }
  void check_input(const matrix& x) const {
    if (x.rows() != weight_.cols())
      throw shape_error(detail::concat("layer '", path_, "': expects input of ", weight_.cols(),
                                       " rows, got ", shape_string(x.rows(), x.cols())));
  }
  /// Evaluation passes of a whole layer ask the pass's kernel set first.
  bool asks_kernels(const pass_info& pass) const {
    return pass.kernels != nullptr && pass.phase == mode::eval && partition_ == nullptr;
  }
};

namespace detail {
template <Index Width>
struct reads_windows<Dense<Width>> : std::true_type {};

/// A Dense layer followed by ReLU runs as one step in evaluation passes with a kernel set that
/// fuses the two (OnednnInference: the ReLU as the matmul's post-op, saving a pass over the
/// output); without one the layers run one after the other.
template <Index Width>
struct fused_pair<Dense<Width>, ReLU> : std::true_type {
  template <class DenseImpl, class Relu>
  static bool applies(const DenseImpl&, const Relu&, const pass_info& pass) {
    return pass.kernels != nullptr && pass.phase == mode::eval;
  }
  template <class DenseImpl, class Relu, class M>
  static const M& forward(DenseImpl& dense, Relu& relu, const M& x, const pass_info& pass) {
    if (const M* y = dense.forward_rectified(x, pass)) return *y;
    return relu.forward(dense.forward(x, pass), pass);
  }
};
/// ... and reads row windows as one step too (the rectified strided product).
template <Index Width>
struct fused_reads_windows<Dense<Width>, ReLU> : std::true_type {
  template <class DenseImpl, class Relu, class M>
  static const M* forward_windows(DenseImpl& dense, Relu&, const M& x, const Index* first_rows, Index count,
                                  const pass_info& pass) {
    return dense.forward_windows(x, first_rows, count, pass, true);
  }
};
}  // namespace detail

}  // namespace strata
