#pragma once
/// \file identity.hpp
/// `Identity` passes its input through. `Input<N>` does too, and declares the model's input
/// width: at compile time (so later width mismatches are compile errors) and at run time (a
/// batch of another width is a shape_error).

#include "layer.hpp"

namespace strata {

/// A layer that passes its input through, bound to backend `B`; optionally checks the width.
template <class B>
class identity_layer {
 public:
  using matrix = typename B::matrix;

  explicit identity_layer(Index expected_width = dynamic) : expected_(expected_width) {}
  template <class Spec>
  explicit identity_layer(const Spec& spec) : expected_(spec.width) {}

  Index build(build_context& ctx, Index input_width) {
    path_ = ctx.path();
    require_width(path_, input_width);
    if (expected_ != dynamic) expect_width(path_, "the input", expected_, input_width);
    return input_width;
  }
  const matrix& forward(const matrix& x, const pass_info&) {
    if (expected_ != dynamic && x.rows() != expected_)
      throw shape_error(detail::concat("layer '", path_, "': expects input of ", expected_,
                                       " rows, got ", shape_string(x.rows(), x.cols())));
    return x;
  }
  const matrix& backward(const matrix&, const matrix& dy, const pass_info&, bool) { return dy; }

  template <class F>
  void for_each_parameter(F&&) {}
  template <class F>
  void for_each_buffer(F&&) {}

 private:
  Index expected_;
  std::string path_;
};

/// The identity layer.
struct Identity {
  static constexpr const char* kind = "Identity";
  template <Index In>
  static constexpr Index output_width = In;
  template <class B>
  using impl = identity_layer<B>;
  Index width = dynamic;
};

/// Declares the input width `Width` (compile-time, or run-time with `Input<>{n}`).
template <Index Width = dynamic>
struct Input {
  static constexpr const char* kind = "Input";
  static_assert(Width == dynamic || Width > 0, "strata::Input: the width must be positive");
  template <Index In>
  struct rule {
    static_assert(!both_known(In, Width) || In == Width,
                  "strata::Input: the declared input width differs from the width it receives");
    static constexpr Index value = Width != dynamic ? Width : In;
  };
  template <Index In>
  static constexpr Index output_width = rule<In>::value;
  template <class B>
  using impl = identity_layer<B>;

  Index width = Width;
  Input() = default;
  explicit Input(Index w) : width(w) {}
};

}  // namespace strata
