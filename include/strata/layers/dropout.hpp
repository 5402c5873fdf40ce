#pragma once
/// \file dropout.hpp
/// Inverted dropout: in training each activation is zeroed with probability `rate` and the
/// survivors are scaled by 1 / (1 - rate), so evaluation is the identity. With `when::always` it
/// stays active in evaluation too (Monte Carlo dropout for uncertainty estimates), as it does in
/// one evaluation pass that sets `pass_info::sample_dropout` (inference/uncertainty.hpp).
///
/// The mask of element (row, sample) at step s is a pure function of (seed, layer, s, global
/// sample id, row) for the layer's width, so a data-parallel run draws exactly the masks a
/// serial run draws. (Rows 4q to 4q + 3 take the four 32-bit words of Philox block
/// (sample id x ceil(rows / 4) + q). Earlier versions gave each element a block of its own, then
/// paired rows on the two 64-bit halves of a block: runs and checkpoints from those versions
/// draw other masks.)

#include "activation.hpp"
#include "layer.hpp"

namespace strata {

template <class B>
class dropout_layer;

/// Dropout with a run-time rate in [0, 1).
struct Dropout {
  static constexpr const char* kind = "Dropout";
  template <Index In>
  static constexpr Index output_width = In;
  template <class B>
  using impl = dropout_layer<B>;

  /// Tag for Monte Carlo dropout (active in evaluation as well).
  enum class when { training, always };

  double rate = 0.5;
  when active = when::training;

  Dropout() = default;
  explicit Dropout(double r, when a = when::training) : rate(r), active(a) {}
};

/// Dropout bound to backend `B`.
template <class B>
class dropout_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  explicit dropout_layer(const Dropout& spec) : rate_(spec.rate), always_(spec.active == Dropout::when::always) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = ctx.path();
    require_width(path_, input_width);
    if (!(rate_ >= 0.0 && rate_ < 1.0))
      throw config_error(detail::concat("layer '", path_, "': dropout rate must be in [0, 1), got ", rate_));
    rng_ = random_stream(ctx.seed(), purpose::dropout, ctx.take_layer_id());
    return input_width;
  }

  /// True when a pass like `pass` drops activations (training, Monte Carlo dropout, or a
  /// pass that samples dropout) rather than passing them through.
  bool active_in(const pass_info& pass) const {
    return rate_ > 0.0 && (pass.phase == mode::train || always_ || pass.sample_dropout);
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    active_ = active_in(pass);
    if (!active_) return x;
    return draw(x, pass, [] STRATA_HD(T v) { return v; }, [] STRATA_HD(T) { return true; });
  }

  /// ReLU then this dropout in one pass over `x` (the ReLU's input), for a pass where the
  /// dropout is active (`active_in`): the same output as the two layers one after the other.
  /// The ReLU's derivative (0 or 1) is folded into the stored mask, so `backward` then returns
  /// the gradient with respect to `x`, bit for bit what ReLU's backward would make of dropout's.
  /// Saves the ReLU's output and input-gradient buffers and two passes over them per step
  /// (Sequential fuses ReLU followed by Dropout this way; graph/sequential.hpp).
  const matrix& forward_rectified(const matrix& x, const pass_info& pass) {
    active_ = true;
    const activation::relu relu;
    return draw(x, pass, [relu] STRATA_HD(T v) { return relu.value(v); },
                [relu] STRATA_HD(T v) { return relu.derivative(v, v) != T(0); });
  }

  const matrix& backward(const matrix&, const matrix& dy, const pass_info&, bool need_dx) {
    if (!need_dx) return input_grad_;
    if (!active_) {
      B::copy(dy, input_grad_);
      return input_grad_;
    }
    B::resize(input_grad_, dy.rows(), dy.cols());
    const T* g = B::data(dy);
    const T* mask = B::data(mask_);
    T* dx = B::data(input_grad_);
    B::for_each(dy.rows() * dy.cols(), [g, mask, dx] STRATA_HD(Index i) { dx[i] = g[i] * mask[i]; });
    return input_grad_;
  }

  template <class F>
  void for_each_parameter(F&&) {}
  template <class F>
  void for_each_buffer(F&&) {}
  /// The rate, as a setting a tournament may perturb ("<path>.rate").
  template <class W>
  void describe(W& w) const {
    w.field("rate", rate_);
    w.field("always", always_);
  }
  template <class F>
  void for_each_setting(F&& f) {
    f(path_ + ".rate", rate_);
    if (!(rate_ >= 0.0 && rate_ < 1.0))
      throw config_error(detail::concat("layer '", path_, "': dropout rate must be in [0, 1), got ", rate_));
  }

  /// The body of both forwards: draws this step's mask and writes `output = value(x) * mask`;
  /// the stored mask is zero where `passes(x)` is false (where `value`'s derivative is 0). Public
  /// only because nvcc does not accept device lambdas inside private member functions.
  template <class Value, class Passes>
  const matrix& draw(const matrix& x, const pass_info& pass, Value value, Passes passes) {
    B::resize(mask_, x.rows(), x.cols());
    B::resize(output_, x.rows(), x.cols());
    const Index rows = x.rows();
    const random_stream rng = rng_.substream(pass.step);
    // Element kept when its uniform draw u = k / 2^32 (k: a 32-bit random integer) is >= rate,
    // i.e. when k >= ceil(rate 2^32): compared as integers, so the row loop has no conversion to
    // floating point and vectorises. (A rate above 1 - 2^-32 keeps nothing: keep_from is 2^32.)
    const std::uint64_t keep_from = static_cast<std::uint64_t>(std::ceil(rate_ * 4294967296.0));
    const T scale = static_cast<T>(1.0 / (1.0 - rate_));
    const pass_info p = pass;
    const T* in = B::data(x);
    T* out = B::data(output_);
    T* mask = B::data(mask_);
    // Rows 4q to 4q + 3 of a sample share one Philox block, a 32-bit word each: a quarter of the
    // random-number work of one block per element, the same distribution.
    const Index quads = (rows + 3) / 4;
    const auto draw_quad = [=] STRATA_HD(Index q, Index j, Index count) {
      const philox_block k = rng.bits(p.sample_id(j) * static_cast<std::uint64_t>(quads) + static_cast<std::uint64_t>(q));
      const Index first = j * rows + 4 * q;
      for (Index r = 0; r < 4; ++r) {
        if (r >= count) return;
        const Index i = first + r;
        const T m = k.word[r] >= keep_from ? scale : T(0);
        mask[i] = passes(in[i]) ? m : T(0);
        out[i] = value(in[i]) * m;
      }
    };
    if (rows % 4 == 0) {  // every block serves four rows: a branch-free loop that vectorises
      B::for_each_element(quads, x.cols(), [=] STRATA_HD(Index q, Index j) { draw_quad(q, j, 4); }, 4);
    } else {  // the last block of each column serves the rows left over
      B::for_each_element(quads, x.cols(), [=] STRATA_HD(Index q, Index j) {
        draw_quad(q, j, q + 1 < quads ? Index{4} : rows - 4 * q);
      }, 4);
    }
    return output_;
  }

 private:
  double rate_;
  bool always_;
  bool active_ = false;
  random_stream rng_;
  std::string path_;
  matrix mask_, output_, input_grad_;
};

namespace detail {
/// ReLU followed by Dropout runs as one pass whenever the dropout is active
/// (dropout_layer::forward_rectified).
template <>
struct fused_pair<ReLU, Dropout> : std::true_type {
  template <class Relu, class DropoutImpl>
  static bool applies(const Relu&, const DropoutImpl& dropout, const pass_info& pass) {
    return dropout.active_in(pass);
  }
  template <class Relu, class DropoutImpl, class M>
  static const M& forward(Relu&, DropoutImpl& dropout, const M& x, const pass_info& pass) {
    return dropout.forward_rectified(x, pass);
  }
};
}  // namespace detail

}  // namespace strata
