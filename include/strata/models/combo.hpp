#pragma once
/// \file combo.hpp
/// The two-subnetwork drug-response model ("Combo", CANDLE Pilot 1; docs/design.md §2) as one type:
///
///   input [cell | drug 1 | drug 2]
///     cell   -> cell encoder  3 x [Dense(w), ReLU, Dropout]
///     drug 1 -> drug encoder  3 x [Dense(w), ReLU, Dropout]   } one set of weights
///     drug 2 -> drug encoder  (shared)                         }
///   concatenation (3w) -> 3 x [Dense(w), ReLU, Dropout] -> Dense(1)
///
/// With w = 1000 and the NCI-ALMANAC widths (921 cell and 3,829 drug features) it has
/// 13,760,001 parameters. Widths are run-time values so the feature widths can come from data.

#include "../graph/fork.hpp"
#include "../graph/shared.hpp"
#include "../graph/slice.hpp"
#include "hidden_stack.hpp"

namespace strata {

/// Sizes of a Combo model.
struct combo_options {
  Index cell_width = 921;    ///< cell features (first slice of the input)
  Index drug_width = 3829;   ///< features per drug (second and third slices)
  Index width = 1000;        ///< width of every hidden layer
  double dropout = 0.05;     ///< dropout rate after every hidden layer
};

/// One hidden layer of the Combo model.
using ComboLayer = HiddenLayer;
/// The cell encoder, the drug encoder and the prediction stack all have this shape.
using ComboStack = HiddenStack<3>;
/// The Combo model's type.
using Combo = Sequential<Fork<Branch<ComboStack>, Shared<ComboStack, Slice<>, Slice<>>>, ComboStack, Dense<1>>;

/// A Combo model of the given sizes (He-normal initialisation, the Dense default).
inline Combo make_combo(const combo_options& o) {
  const ComboStack stack = hidden_stack<3>(o.width, o.dropout);
  const Index d1 = o.cell_width, d2 = o.cell_width + o.drug_width, end = o.cell_width + 2 * o.drug_width;
  return Combo{{Branch<ComboStack>{Slice<>{0, d1}, stack}, Shared<ComboStack, Slice<>, Slice<>>{stack, Slice<>{d1, d2}, Slice<>{d2, end}}},
               stack, Dense<1>{}};
}

}  // namespace strata
