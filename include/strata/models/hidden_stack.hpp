#pragma once
/// \file hidden_stack.hpp
/// The building block every drug-response model here is made of (CANDLE Combo and Uno, Zhu et
/// al.'s two-subnetwork and single-input networks): hidden layers of Dense, ReLU and Dropout, all
/// of one width, stacked N deep. Encoders and prediction stacks differ only in where they sit.

#include <cstddef>

#include "../graph/repeat.hpp"
#include "../graph/sequential.hpp"
#include "../layers/activation.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"

namespace strata {

/// One hidden layer: Dense(width), ReLU, Dropout(rate).
using HiddenLayer = Sequential<Dense<>, ReLU, Dropout>;
/// N hidden layers of one width, each with its own weights.
template <std::size_t N>
using HiddenStack = Repeat<N, HiddenLayer>;

/// N hidden layers of `width` units, each followed by dropout at `dropout`.
template <std::size_t N>
HiddenStack<N> hidden_stack(Index width, double dropout) {
  return HiddenStack<N>{HiddenLayer{Dense<>{width}, ReLU{}, Dropout{dropout}}};
}

}  // namespace strata
