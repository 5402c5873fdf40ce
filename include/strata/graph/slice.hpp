#pragma once
/// \file slice.hpp
/// `Slice<Begin, End>`: the rows [Begin, End) of the input (a range of features). Bounds are
/// compile-time (`Slice<0, 921>`) or run-time (`Slice<>{0, 921}`).

#include "../backend/block.hpp"
#include "../layers/layer.hpp"

namespace strata {

template <class B>
class slice_layer;

/// The features [begin, end) of the input.
template <Index Begin = dynamic, Index End = dynamic>
struct Slice {
  static constexpr const char* kind = "Slice";
  static constexpr bool fixed = Begin != dynamic && End != dynamic;
  /// Width of the slice when known at compile time.
  static constexpr Index fixed_width = fixed ? End - Begin : dynamic;
  static_assert(Begin == dynamic || Begin >= 0, "strata::Slice: Begin must not be negative");
  static_assert(!fixed || End > Begin, "strata::Slice: End must be greater than Begin");

  template <Index In>
  struct rule {
    static_assert(!both_known(In, End) || End <= In,
                  "strata::Slice: the slice ends beyond the width of its input");
    static constexpr Index value = fixed_width;
  };
  template <Index In>
  static constexpr Index output_width = rule<In>::value;
  template <class B>
  using impl = slice_layer<B>;

  Index begin = Begin, end = End;

  Slice() = default;
  Slice(Index b, Index e) : begin(b), end(e) {
    if ((Begin != dynamic && b != Begin) || (End != dynamic && e != End))
      throw shape_error(detail::concat("Slice<", Begin, ", ", End, ">: constructed as [", b, ", ", e, ")"));
  }
};

/// Checks that the rows [begin, end) exist in an input of `width` rows.
inline void check_slice(const std::string& path, Index begin, Index end, Index width) {
  if (begin == dynamic || end == dynamic)
    throw shape_error(detail::concat("layer '", path, "': slice bounds are not set"));
  if (!(0 <= begin && begin < end && end <= width))
    throw shape_error(detail::concat("layer '", path, "': slice [", begin, ", ", end,
                                     ") does not fit an input of width ", width));
}

/// Slice bound to backend `B`.
template <class B>
class slice_layer {
 public:
  using matrix = typename B::matrix;
  using T = typename B::scalar;

  template <Index Begin, Index End>
  explicit slice_layer(const Slice<Begin, End>& spec) : begin_(spec.begin), end_(spec.end) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = ctx.path();
    check_slice(path_, begin_, end_, input_width);
    input_width_ = input_width;
    return end_ - begin_;
  }

  /// The first row of the slice.
  Index begin() const { return begin_; }
  /// Throws shape_error unless `x` has the input width this slice was built for.
  void check_input(const matrix& x) const { expect_width(path_, "the input", input_width_, x.rows()); }

  const matrix& forward(const matrix& x, const pass_info&) {
    check_input(x);
    B::resize(output_, end_ - begin_, x.cols());
    copy_block<B>(x, {begin_, 0}, output_, {0, 0}, end_ - begin_, x.cols());
    return output_;
  }

  const matrix& backward(const matrix& x, const matrix& dy, const pass_info&, bool need_dx) {
    if (!need_dx) return input_grad_;
    B::resize(input_grad_, x.rows(), x.cols());
    B::fill(input_grad_, T(0));
    copy_block<B>(dy, {0, 0}, input_grad_, {begin_, 0}, end_ - begin_, x.cols());
    return input_grad_;
  }

  template <class F>
  void for_each_parameter(F&&) {}
  template <class W>
  void describe(W& w) const {
    w.field("begin", begin_);
    w.field("end", end_);
  }
  template <class F>
  void for_each_buffer(F&&) {}

 private:
  Index begin_, end_, input_width_ = dynamic;
  std::string path_;
  matrix output_, input_grad_;
};

namespace detail {
/// A slice and a network whose first layer reads row windows (a Dense layer: `Branch<Net>`) run
/// as one step in evaluation passes with a kernel set: the network reads the slice's rows in
/// place instead of a copy of them. Where the kernel set cannot, the slice is copied as usual.
/// (In `Sequential<Slice, Dense, ReLU>` the pair is the slice and the Dense layer, so the ReLU
/// then runs on its own; in `Branch<Net>` the network keeps its Dense + ReLU fusion.)
template <Index Begin, Index End, class Net>
struct fused_pair<Slice<Begin, End>, Net> : std::bool_constant<reads_windows<Net>::value> {
  template <class SliceImpl, class NetImpl>
  static bool applies(const SliceImpl&, const NetImpl&, const pass_info& pass) {
    return pass.kernels != nullptr && pass.phase == mode::eval;
  }
  template <class SliceImpl, class NetImpl, class M>
  static const M& forward(SliceImpl& slice, NetImpl& net, const M& x, const pass_info& pass) {
    slice.check_input(x);
    const Index first_row = slice.begin();
    if (const M* y = net.forward_windows(x, &first_row, 1, pass)) return *y;
    return net.forward(slice.forward(x, pass), pass);
  }
};
}  // namespace detail

}  // namespace strata
