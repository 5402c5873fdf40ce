#pragma once
/// \file dropout.hpp
/// Inverted dropout: in training each activation is zeroed with probability `rate` and the
/// survivors are scaled by 1 / (1 - rate), so evaluation is the identity. With `when::always` it
/// stays active in evaluation too (Monte Carlo dropout for uncertainty estimates), as it does in
/// one evaluation pass that sets `pass_info::sample_dropout` (inference/uncertainty.hpp).
///
/// The mask of element (row, sample) at step s is a pure function of (seed, layer, s, global
/// sample id, row) for the layer's width, so a data-parallel run draws exactly the masks a
/// serial run draws. (Rows 2q and 2q + 1 take the two halves of Philox block
/// (sample id x ceil(rows / 2) + q). Before this pairing every element had a block of its own:
/// runs and checkpoints from those versions draw other masks.)

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

  const matrix& forward(const matrix& x, const pass_info& pass) {
    active_ = rate_ > 0.0 && (pass.phase == mode::train || always_ || pass.sample_dropout);
    if (!active_) return x;
    B::resize(mask_, x.rows(), x.cols());
    B::resize(output_, x.rows(), x.cols());
    const Index rows = x.rows();
    const random_stream rng = rng_.substream(pass.step);
    // Element kept when its uniform draw u = k / 2^53 (k: the top 53 bits of a 64-bit random
    // integer) is >= rate, i.e. when k >= ceil(rate 2^53): compared as integers, so the row loop
    // has no conversion to double and vectorises.
    const std::uint64_t keep_from = static_cast<std::uint64_t>(std::ceil(rate_ * 9007199254740992.0));
    const T scale = static_cast<T>(1.0 / (1.0 - rate_));
    const pass_info p = pass;
    const T* in = B::data(x);
    T* out = B::data(output_);
    T* mask = B::data(mask_);
    // Rows 2q and 2q + 1 of a sample share one Philox block (two 64-bit integers): half the
    // random-number work of one block per element, the same distribution.
    const Index pairs = (rows + 1) / 2;
    const auto draw = [=] STRATA_HD(Index q, Index j, bool partner) {
      const integer_pair k = rng.integers(p.sample_id(j) * static_cast<std::uint64_t>(pairs) + static_cast<std::uint64_t>(q));
      const Index i = j * rows + 2 * q;
      const T m0 = (k.first >> 11) >= keep_from ? scale : T(0);
      mask[i] = m0;
      out[i] = in[i] * m0;
      if (!partner) return;
      const T m1 = (k.second >> 11) >= keep_from ? scale : T(0);
      mask[i + 1] = m1;
      out[i + 1] = in[i + 1] * m1;
    };
    if (rows % 2 == 0) {  // every row has its partner: a branch-free loop that vectorises
      B::for_each_element(pairs, x.cols(), [=] STRATA_HD(Index q, Index j) { draw(q, j, true); });
    } else {  // the last row of each column has none
      B::for_each_element(pairs, x.cols(), [=] STRATA_HD(Index q, Index j) { draw(q, j, q + 1 < pairs); });
    }
    return output_;
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

 private:
  double rate_;
  bool always_;
  bool active_ = false;
  random_stream rng_;
  std::string path_;
  matrix mask_, output_, input_grad_;
};

}  // namespace strata
