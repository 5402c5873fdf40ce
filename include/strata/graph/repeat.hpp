#pragma once
/// \file repeat.hpp
/// `Repeat<N, Net>`: N copies of one block applied in sequence, each with its own weights
/// (e.g. `Repeat<3, Sequential<Dense<>, ReLU, Dropout>>` for three hidden layers).

#include <vector>

#include "sequential.hpp"

namespace strata {

template <class B, std::size_t N, class Net>
class repeat_layer;

namespace detail {
template <Index In, std::size_t N, class Net>
struct repeat_width {
  static constexpr Index value = repeat_width<Net::template output_width<In>, N - 1, Net>::value;
};
template <Index In, class Net>
struct repeat_width<In, 0, Net> {
  static constexpr Index value = In;
};
}  // namespace detail

/// N applications of independent copies of `Net`, configured alike.
template <std::size_t N, class Net>
struct Repeat {
  static_assert(N > 0, "strata::Repeat needs at least one repetition");
  static constexpr const char* kind = "Repeat";
  template <Index In>
  static constexpr Index output_width = detail::repeat_width<In, N, Net>::value;
  template <class B>
  using impl = repeat_layer<B, N, Net>;

  Net block;

  Repeat() = default;
  Repeat(Net b) : block(std::move(b)) {}
};

namespace detail {
template <std::size_t N, class Net>
struct reads_windows<Repeat<N, Net>> : reads_windows<Net> {};
}  // namespace detail

/// Repeat bound to backend `B`.
template <class B, std::size_t N, class Net>
class repeat_layer {
 public:
  using matrix = typename B::matrix;

  // Each block is constructed from the spec (layers are not copied: their parameters are
  // placed in the model's buffers).
  explicit repeat_layer(const Repeat<N, Net>& spec) {
    blocks_.reserve(N);
    for (std::size_t i = 0; i < N; ++i) blocks_.emplace_back(spec.block);
  }

  Index build(build_context& ctx, Index width) {
    for (std::size_t i = 0; i < N; ++i) {
      build_context child = ctx.child(static_cast<Index>(i), Net::kind);
      paths_[i] = child.path();
      width = blocks_[i].build(child, width);
    }
    return width;
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    const matrix* y = &x;
    for (std::size_t i = 0; i < N; ++i) outputs_[i] = y = &detail::checked_forward<B>(blocks_[i], *y, pass, paths_[i]);
    return *y;
  }

  /// Evaluation from row windows of `x` read in place (detail::reads_windows): the first block
  /// reads them. Null, with nothing computed, where it cannot.
  const matrix* forward_windows(const matrix& x, const Index* first_rows, Index count, const pass_info& pass) {
    const matrix* y = blocks_[0].forward_windows(x, first_rows, count, pass);
    if (y == nullptr) return nullptr;
    outputs_[0] = y;
    for (std::size_t i = 1; i < N; ++i) outputs_[i] = y = &detail::checked_forward<B>(blocks_[i], *y, pass, paths_[i]);
    return y;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    const matrix* g = &dy;
    for (std::size_t i = N; i-- > 0;) {
      const matrix& in = i == 0 ? x : *outputs_[i - 1];
      g = &blocks_[i].backward(in, *g, pass, i > 0 || need_dx);
    }
    return *g;
  }

  template <class F>
  void for_each_parameter(F&& f) {
    for (auto& b : blocks_) b.for_each_parameter(f);
  }
  template <class W>
  void describe(W& w) const {
    for (std::size_t i = 0; i < blocks_.size(); ++i) w.child(static_cast<Index>(i), Net::kind, blocks_[i]);
  }
  template <class F>
  void for_each_buffer(F&& f) {
    for (auto& b : blocks_) b.for_each_buffer(f);
  }
  template <class F>
  void for_each_setting(F&& f) {
    for (auto& b : blocks_) detail::visit_settings(b, f);
  }

 private:
  std::vector<bind_t<Net, B>> blocks_;
  std::array<const matrix*, N> outputs_{};
  std::array<std::string, N> paths_;
};

}  // namespace strata
