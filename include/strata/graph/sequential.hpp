#pragma once
/// \file sequential.hpp
/// `Sequential<L1, L2, ...>`: layers applied one after another.

#include <array>
#include <tuple>
#include <utility>

#include "../layers/layer.hpp"

namespace strata {

template <class... Layers>
struct Sequential;

namespace detail {
/// Compile-time width after applying `Layers...` in turn to a width `In`.
template <Index In, class... Layers>
struct chain_width {
  static constexpr Index value = In;
};
template <Index In, class First, class... Rest>
struct chain_width<In, First, Rest...> {
  static constexpr Index value = chain_width<First::template output_width<In>, Rest...>::value;
};

template <class First, class... Rest>
struct reads_windows<Sequential<First, Rest...>> : reads_windows<First> {};

}  // namespace detail

template <class B, class... Layers>
class sequential_layer;

/// Layers applied in order; the output width of each is the input width of the next.
template <class... Layers>
struct Sequential {
  static_assert(sizeof...(Layers) > 0, "strata::Sequential needs at least one layer");
  static constexpr const char* kind = "Sequential";
  template <Index In>
  static constexpr Index output_width = detail::chain_width<In, Layers...>::value;
  template <class B>
  using impl = sequential_layer<B, Layers...>;

  std::tuple<Layers...> layers;

  Sequential() = default;
  Sequential(Layers... ls) : layers(std::move(ls)...) {}
};

/// Sequential bound to backend `B`.
template <class B, class... Layers>
class sequential_layer {
  static constexpr std::size_t count = sizeof...(Layers);
  using indices = std::index_sequence_for<Layers...>;

 public:
  using matrix = typename B::matrix;

  explicit sequential_layer(const Sequential<Layers...>& spec) : sequential_layer(spec, indices{}) {}

  Index build(build_context& ctx, Index input_width) {
    Index width = input_width;
    build_each(ctx, width, indices{});
    return width;
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    const matrix* y = &x;
    forward_from<0>(y, pass);
    return *y;
  }

  /// Evaluation from row windows of `x` read in place (detail::reads_windows): the first layer,
  /// with the one after it where the two fuse, reads them; the rest run as in `forward`. Null,
  /// with nothing computed, where the first layer cannot read them.
  const matrix* forward_windows(const matrix& x, const Index* first_rows, Index count, const pass_info& pass) {
    static_assert(detail::reads_windows<spec_t<0>>::value, "strata::Sequential: the first layer reads no row windows");
    if (pass.check_finite) return nullptr;  // every layer's output is checked: run them one by one
    const matrix* y = nullptr;
    if constexpr (fusable<0>()) {
      if constexpr (detail::fused_reads_windows<spec_t<0>, spec_t<1>>::value) {
        using pair = detail::fused_pair<spec_t<0>, spec_t<1>>;
        using windows = detail::fused_reads_windows<spec_t<0>, spec_t<1>>;
        auto& first = std::get<0>(layers_);
        auto& second = std::get<1>(layers_);
        if (pair::applies(first, second, pass) && (y = windows::forward_windows(first, second, x, first_rows, count, pass))) {
          fused_[0] = true;
          outputs_[0] = nullptr;
          outputs_[1] = y;
          forward_from<2>(y, pass);
          return y;
        }
      }
      fused_[0] = false;
    }
    y = std::get<0>(layers_).forward_windows(x, first_rows, count, pass);
    if (y == nullptr) return nullptr;
    outputs_[0] = y;
    forward_from<1>(y, pass);
    return y;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    return backward_from<count - 1>(x, dy, pass, need_dx);
  }

  template <class F>
  void for_each_parameter(F&& f) {
    std::apply([&](auto&... layer) { (layer.for_each_parameter(f), ...); }, layers_);
  }
  template <class W>
  void describe(W& w) const {
    describe_each(w, std::index_sequence_for<Layers...>{});
  }
  template <class F>
  void for_each_buffer(F&& f) {
    std::apply([&](auto&... layer) { (layer.for_each_buffer(f), ...); }, layers_);
  }
  template <class F>
  void for_each_setting(F&& f) {
    std::apply([&](auto&... layer) { (detail::visit_settings(layer, f), ...); }, layers_);
  }

  /// The i-th layer (bound to B).
  template <std::size_t I>
  auto& layer() { return std::get<I>(layers_); }

 private:
  template <class W, std::size_t... I>
  void describe_each(W& w, std::index_sequence<I...>) const {
    (w.child(static_cast<Index>(I), std::tuple_element_t<I, std::tuple<Layers...>>::kind, std::get<I>(layers_)), ...);
  }
  template <std::size_t... I>
  sequential_layer(const Sequential<Layers...>& spec, std::index_sequence<I...>)
      : layers_(bind_t<Layers, B>(std::get<I>(spec.layers))...) {}

  template <std::size_t... I>
  void build_each(build_context& ctx, Index& width, std::index_sequence<I...>) {
    ((width = build_one<I>(ctx, width)), ...);
  }
  template <std::size_t I>
  Index build_one(build_context& ctx, Index width) {
    build_context child = ctx.child(static_cast<Index>(I), std::tuple_element_t<I, std::tuple<Layers...>>::kind);
    paths_[I] = child.path();
    return std::get<I>(layers_).build(child, width);
  }

  /// The spec of layer I.
  template <std::size_t I>
  using spec_t = std::tuple_element_t<I, std::tuple<Layers...>>;
  /// Whether layers I and I + 1 have a fused forward (detail::fused_pair).
  template <std::size_t I>
  static constexpr bool fusable() {
    if constexpr (I + 1 < count)
      return detail::fused_pair<spec_t<I>, spec_t<I + 1>>::value;
    else
      return false;
  }

  /// Runs layers I, I + 1, ... on `*y`. A fusable pair runs as one step when its fused form
  /// applies to this pass and no per-layer finiteness check asks for every layer's output.
  template <std::size_t I>
  void forward_from(const matrix*& y, const pass_info& pass) {
    if constexpr (I < count) {
      if constexpr (fusable<I>()) {
        auto& first = std::get<I>(layers_);
        auto& second = std::get<I + 1>(layers_);
        using pair = detail::fused_pair<spec_t<I>, spec_t<I + 1>>;
        fused_[I] = !pass.check_finite && pair::applies(first, second, pass);
        if (fused_[I]) {
          outputs_[I] = nullptr;  // the first layer's output is never formed
          outputs_[I + 1] = y = &pair::forward(first, second, *y, pass);
          return forward_from<I + 2>(y, pass);
        }
      }
      outputs_[I] = y = &detail::checked_forward<B>(std::get<I>(layers_), *y, pass, paths_[I]);
      forward_from<I + 1>(y, pass);
    }
  }

  template <std::size_t I>
  const matrix& backward_from(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    if constexpr (I >= 1) {
      if constexpr (fusable<I - 1>()) {
        if (fused_[I - 1]) {  // the second layer's backward gives the gradient of the pair's input
          if constexpr (I == 1) {
            return std::get<1>(layers_).backward(x, dy, pass, need_dx);
          } else {
            const matrix& g = std::get<I>(layers_).backward(dy, dy, pass, true);  // its input is not needed
            return backward_from<I - 2>(x, g, pass, need_dx);
          }
        }
      }
    }
    if constexpr (I == 0) {
      return std::get<0>(layers_).backward(x, dy, pass, need_dx);
    } else {
      const matrix& g = std::get<I>(layers_).backward(*outputs_[I - 1], dy, pass, true);
      return backward_from<I - 1>(x, g, pass, need_dx);
    }
  }

  std::tuple<bind_t<Layers, B>...> layers_;
  std::array<const matrix*, count> outputs_{};
  std::array<bool, count> fused_{};  // fused_[I]: layers I and I + 1 ran fused in the last forward
  std::array<std::string, count> paths_;
};

}  // namespace strata
