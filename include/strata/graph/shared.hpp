#pragma once
/// \file shared.hpp
/// `Shared<Net, Slices...>`: one network, one set of weights, applied to several slices of the
/// input (drug 1 and drug 2 through the same drug encoder). The outputs are concatenated in
/// slice order and the weight gradients of all applications add up.
///
/// The applications are stacked side by side in the sample axis and run as one batch, so the
/// shared network does one large GEMM instead of several small ones. A consequence worth
/// knowing: a normalisation layer inside the shared network computes its batch statistics over
/// all applications together.

#include <array>
#include <tuple>
#include <vector>

#include "slice.hpp"

namespace strata {

template <class B, class Net, std::size_t N>
class shared_layer;

namespace detail {
/// The common compile-time width of the slices (dynamic if any is dynamic); a compile error if
/// two fixed widths differ.
template <class... Slices>
struct common_slice_width {
  static constexpr Index widths[sizeof...(Slices)] = {Slices::fixed_width...};
  static constexpr bool equal() {
    Index seen = dynamic;
    for (Index w : widths) {
      if (w == dynamic) continue;
      if (seen != dynamic && w != seen) return false;
      seen = w;
    }
    return true;
  }
  static_assert(equal(), "strata::Shared: every slice read by a shared network must have the same width");
  static constexpr Index value = ((Slices::fixed_width != dynamic) && ...) ? widths[0] : dynamic;
};
}  // namespace detail

/// `Net` applied with one set of weights to each slice in `Slices...`.
template <class Net, class... Slices>
struct Shared {
  static_assert(sizeof...(Slices) > 0, "strata::Shared needs at least one slice");
  static constexpr const char* kind = "Shared";
  static constexpr Index slice_width = detail::common_slice_width<Slices...>::value;

  template <Index In>
  struct rule {
    // Instantiating each slice's rule checks that it fits the input.
    static constexpr bool slices_fit = ((Slices::template output_width<In> == Slices::fixed_width) && ...);
    static_assert(slices_fit, "strata::Shared: a slice does not fit the input");
    static constexpr Index inner = Net::template output_width<slice_width>;
    static constexpr Index value = inner == dynamic ? dynamic : inner * static_cast<Index>(sizeof...(Slices));
  };
  template <Index In>
  static constexpr Index output_width = rule<In>::value;
  template <class B>
  using impl = shared_layer<B, Net, sizeof...(Slices)>;

  std::tuple<Slices...> slices;
  Net net;

  Shared() = default;
  Shared(Net n, Slices... s) : slices(std::move(s)...), net(std::move(n)) {}

  /// The slice bounds as run-time pairs.
  std::array<std::pair<Index, Index>, sizeof...(Slices)> bounds() const {
    return std::apply([](const auto&... s) {
      return std::array<std::pair<Index, Index>, sizeof...(Slices)>{std::pair<Index, Index>{s.begin, s.end}...};
    }, slices);
  }
};

/// Shared bound to backend `B`, applying the network to `N` slices.
template <class B, class Net, std::size_t N>
class shared_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  template <class... Slices>
  explicit shared_layer(const Shared<Net, Slices...>& spec) : net_(spec.net), bounds_(spec.bounds()) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = ctx.path();
    for (const auto& [begin, end] : bounds_) check_slice(path_, begin, end, input_width);
    input_width_ = input_width;
    width_ = bounds_[0].second - bounds_[0].first;
    for (std::size_t a = 1; a < N; ++a) {
      const Index w = bounds_[a].second - bounds_[a].first;
      if (w != width_)
        throw shape_error(detail::concat("layer '", path_, "': slice ", a, " [", bounds_[a].first, ", ",
                                         bounds_[a].second, ") has width ", w, " but slice 0 has width ",
                                         width_, "; a shared network needs equal widths"));
    }
    build_context child = ctx.child(0, Net::kind);
    net_path_ = child.path();
    net_width_ = net_.build(child, width_);
    return net_width_ * static_cast<Index>(N);
  }

  const matrix& forward(const matrix& x, const pass_info& pass) {
    const Index n = x.cols();
    expect_width(path_, "the input", input_width_, x.rows());
    if constexpr (detail::reads_windows<Net>::value) {
      // The network's first layer reads the slices in place where it can (in evaluation passes
      // with a kernel set); otherwise nothing is computed and the slices are stacked below.
      std::array<Index, N> first_rows;
      for (std::size_t a = 0; a < N; ++a) first_rows[a] = bounds_[a].first;
      if (const matrix* y = net_.forward_windows(x, first_rows.data(), static_cast<Index>(N), inner_pass(pass, n)))
        return concatenate(*y, n);
    }
    B::resize(stacked_, width_, n * static_cast<Index>(N));
    for (std::size_t a = 0; a < N; ++a)
      copy_block<B>(x, {bounds_[a].first, 0}, stacked_, {0, n * static_cast<Index>(a)}, width_, n);
    return concatenate(detail::checked_forward<B>(net_, stacked_, inner_pass(pass, n), net_path_), n);
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info& pass, bool need_dx) {
    const Index n = x.cols();
    B::resize(stacked_grad_, net_width_, n * static_cast<Index>(N));
    for (std::size_t a = 0; a < N; ++a)
      copy_block<B>(dy, {net_width_ * static_cast<Index>(a), 0}, stacked_grad_, {0, n * static_cast<Index>(a)}, net_width_, n);
    const matrix& g = net_.backward(stacked_, stacked_grad_, inner_pass(pass, n), need_dx);
    if (!need_dx) return input_grad_;
    B::resize(input_grad_, x.rows(), n);
    B::fill(input_grad_, T(0));
    for (std::size_t a = 0; a < N; ++a)
      copy_block<B>(g, {0, n * static_cast<Index>(a)}, input_grad_, {bounds_[a].first, 0}, width_, n, true);
    return input_grad_;
  }

  template <class F>
  void for_each_parameter(F&& f) { net_.for_each_parameter(f); }
  /// The slices as `begins` and `ends`, then the shared network.
  template <class W>
  void describe(W& w) const {
    std::vector<Index> begins, ends;
    for (const auto& [begin, end] : bounds_) {
      begins.push_back(begin);
      ends.push_back(end);
    }
    w.field("begins", begins);
    w.field("ends", ends);
    w.child(0, Net::kind, net_);
  }
  template <class F>
  void for_each_buffer(F&& f) { net_.for_each_buffer(f); }
  template <class F>
  void for_each_setting(F&& f) { detail::visit_settings(net_, f); }

 private:
  /// The applications' outputs (side by side in `y`'s columns) one above the other.
  const matrix& concatenate(const matrix& y, Index n) {
    B::resize(output_, net_width_ * static_cast<Index>(N), n);
    for (std::size_t a = 0; a < N; ++a)
      copy_block<B>(y, {0, n * static_cast<Index>(a)}, output_, {net_width_ * static_cast<Index>(a), 0}, net_width_, n);
    return output_;
  }

  /// Column j of the stacked batch is sample j % n of application j / n.
  static pass_info inner_pass(const pass_info& pass, Index n) {
    pass_info inner = pass;
    inner.batch = n;
    return inner;
  }

  bind_t<Net, B> net_;
  std::array<std::pair<Index, Index>, N> bounds_;
  Index width_ = 0, net_width_ = 0, input_width_ = dynamic;
  std::string path_, net_path_;
  matrix stacked_, stacked_grad_, output_, input_grad_;
};

}  // namespace strata
