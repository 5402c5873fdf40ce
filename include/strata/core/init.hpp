#pragma once
/// \file init.hpp
/// Weight initialisers. Draws come from the counter-based generator, element by element, so a
/// layer's initial weights depend only on (seed, layer id) and are the same on every backend.

#include <cmath>

#include "config.hpp"
#include "error.hpp"
#include "random.hpp"

namespace strata {

/// How a weight matrix is initialised (fan_in = input width, fan_out = output width).
enum class Init {
  he_normal,       ///< N(0, 2 / fan_in): He et al. 2015, for ReLU networks (the default)
  he_uniform,      ///< U(-a, a), a = sqrt(6 / fan_in)
  glorot_uniform,  ///< U(-a, a), a = sqrt(6 / (fan_in + fan_out)): Glorot & Bengio 2010
  zeros,           ///< all zero
};

/// The name of an initialiser, for messages and logs.
inline const char* to_string(Init init) {
  switch (init) {
    case Init::he_normal: return "he_normal";
    case Init::he_uniform: return "he_uniform";
    case Init::glorot_uniform: return "glorot_uniform";
    case Init::zeros: return "zeros";
  }
  return "unknown";
}

/// Fills `w` (fan_out x fan_in) according to `init`, drawing element i from `rng` at index i.
template <class B>
void initialize(typename B::matrix& w, Init init, const random_stream& rng) {
  using T = typename B::scalar;
  const Index fan_out = w.rows(), fan_in = w.cols();
  T* p = B::data(w);
  const Index n = fan_out * fan_in;
  switch (init) {
    case Init::zeros:
      B::fill(w, T(0));
      return;
    case Init::he_normal: {
      const double stddev = std::sqrt(2.0 / static_cast<double>(fan_in));
      B::for_each(n, [p, rng, stddev] STRATA_HD(Index i) {
        p[i] = static_cast<T>(stddev * rng.normal(static_cast<std::uint64_t>(i)));
      });
      return;
    }
    case Init::he_uniform:
    case Init::glorot_uniform: {
      const double fans = init == Init::he_uniform ? static_cast<double>(fan_in)
                                                   : static_cast<double>(fan_in + fan_out);
      const double limit = std::sqrt(6.0 / fans);
      B::for_each(n, [p, rng, limit] STRATA_HD(Index i) {
        p[i] = static_cast<T>(limit * (2.0 * rng.uniform(static_cast<std::uint64_t>(i)) - 1.0));
      });
      return;
    }
  }
  throw config_error("unknown initialiser");
}

}  // namespace strata
