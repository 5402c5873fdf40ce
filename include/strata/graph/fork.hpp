#pragma once
/// \file fork.hpp
/// `Fork<L1, L2, ...>` applies every branch to the same input and concatenates their outputs
/// (rows of L1's output first). Branches usually read a slice of the input:
/// `Branch<Net, Slice<0, 921>>` or `Shared<Net, Slice<>, Slice<>>`.

#include <tuple>
#include <utility>

#include "sequential.hpp"
#include "slice.hpp"

namespace strata {

/// `Net` applied to the slice `S` of the input: Sequential<S, Net> under its own name.
template <class Net, class S = Slice<>>
struct Branch : Sequential<S, Net> {
  static constexpr const char* kind = "Branch";
  Branch() = default;
  Branch(S slice, Net net) : Sequential<S, Net>(std::move(slice), std::move(net)) {}
};

template <class B, class... Branches>
class fork_layer;

namespace detail {
/// Sum of widths, dynamic when any is dynamic.
template <Index... W>
constexpr Index sum_widths() {
  if (((W == dynamic) || ...)) return dynamic;
  return (Index{0} + ... + W);
}
}  // namespace detail

/// Branches applied to one input, outputs concatenated.
template <class... Branches>
struct Fork {
  static_assert(sizeof...(Branches) > 0, "strata::Fork needs at least one branch");
  static constexpr const char* kind = "Fork";
  template <Index In>
  static constexpr Index output_width = detail::sum_widths<Branches::template output_width<In>...>();
  template <class B>
  using impl = fork_layer<B, Branches...>;

  std::tuple<Branches...> branches;

  Fork() = default;
  Fork(Branches... b) : branches(std::move(b)...) {}
};

/// Fork bound to backend `B`.
template <class B, class... Branches>
class fork_layer {
  static constexpr std::size_t count = sizeof...(Branches);
  using indices = std::index_sequence_for<Branches...>;

 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  explicit fork_layer(const Fork<Branches...>& spec) : fork_layer(spec, indices{}) {}

  Index build(build_context& ctx, Index input_width) {
    Index offset = 0;
    build_each(ctx, input_width, offset, indices{});
    return offset;
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    B::resize(output_, offsets_[count], x.cols());
    forward_each(x, pass, indices{});
    return output_;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    if (need_dx) {
      B::resize(input_grad_, x.rows(), x.cols());
      B::fill(input_grad_, T(0));
    }
    backward_each(x, dy, pass, need_dx, indices{});
    return input_grad_;
  }

  template <class W>
  void describe(W& w) const {
    describe_each(w, indices{});
  }
  template <class F>
  void for_each_parameter(F&& f) {
    std::apply([&](auto&... b) { (b.for_each_parameter(f), ...); }, branches_);
  }
  template <class F>
  void for_each_buffer(F&& f) {
    std::apply([&](auto&... b) { (b.for_each_buffer(f), ...); }, branches_);
  }
  template <class F>
  void for_each_setting(F&& f) {
    std::apply([&](auto&... b) { (detail::visit_settings(b, f), ...); }, branches_);
  }

 private:
  template <class W, std::size_t... I>
  void describe_each(W& w, std::index_sequence<I...>) const {
    (w.child(static_cast<Index>(I), std::tuple_element_t<I, std::tuple<Branches...>>::kind, std::get<I>(branches_)), ...);
  }
  template <std::size_t... I>
  fork_layer(const Fork<Branches...>& spec, std::index_sequence<I...>)
      : branches_(bind_t<Branches, B>(std::get<I>(spec.branches))...) {}

  template <std::size_t... I>
  void build_each(build_context& ctx, Index input_width, Index& offset, std::index_sequence<I...>) {
    ((offsets_[I] = offset, offset += build_one<I>(ctx, input_width)), ...);
    offsets_[count] = offset;
  }
  template <std::size_t I>
  Index build_one(build_context& ctx, Index input_width) {
    build_context child = ctx.child(static_cast<Index>(I), std::tuple_element_t<I, std::tuple<Branches...>>::kind);
    paths_[I] = child.path();
    return std::get<I>(branches_).build(child, input_width);
  }

  template <std::size_t... I>
  void forward_each(const matrix& x, const pass_info& pass, std::index_sequence<I...>) {
    ((copy_block<B>(detail::checked_forward<B>(std::get<I>(branches_), x, pass, paths_[I]), {0, 0},
                    output_, {offsets_[I], 0}, offsets_[I + 1] - offsets_[I], x.cols())),
     ...);
  }

  template <std::size_t... I>
  void backward_each(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx,
                     std::index_sequence<I...>) {
    (backward_one<I>(x, dy, pass, need_dx), ...);
  }
  template <std::size_t I>
  void backward_one(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    const Index rows = offsets_[I + 1] - offsets_[I];
    B::resize(branch_grads_[I], rows, dy.cols());
    copy_block<B>(dy, {offsets_[I], 0}, branch_grads_[I], {0, 0}, rows, dy.cols());
    const matrix& g = std::get<I>(branches_).backward(x, branch_grads_[I], pass, need_dx);
    if (need_dx) copy_block<B>(g, {0, 0}, input_grad_, {0, 0}, x.rows(), x.cols(), true);
  }

  std::tuple<bind_t<Branches, B>...> branches_;
  std::array<Index, count + 1> offsets_{};
  std::array<std::string, count> paths_;
  std::array<matrix, count> branch_grads_;
  matrix output_, input_grad_;
};

}  // namespace strata
