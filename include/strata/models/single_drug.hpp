#pragma once
/// \file single_drug.hpp
/// Models of single-drug response (one cell line, one drug; the Uno studies, dose-response AUC),
/// the two networks Zhu et al. (Sci. Rep. 10:18040, 2020) compare for transfer across studies:
///
///   TwoSubnetwork  input [cell | drug]
///                    cell -> cell encoder 2 x [Dense(w), ReLU, Dropout]
///                    drug -> drug encoder 2 x [Dense(w), ReLU, Dropout]
///                  concatenation (2w) -> 3 x [Dense(w), ReLU, Dropout] -> Dense(1)
///
///   Concatenated   input [cell | drug] -> 5 x [Dense(w), ReLU, Dropout] -> Dense(1)
///
/// Both have five hidden layers, so they differ only in whether cell and drug features are
/// encoded apart before they meet: the two-subnetwork network won the random and cell-blind
/// comparisons in that paper. Both are built from the hidden stacks Combo is made of.

#include <string>

#include "../core/error.hpp"
#include "../graph/fork.hpp"
#include "../graph/slice.hpp"
#include "hidden_stack.hpp"

namespace strata {

/// Sizes of a single-drug model.
struct single_drug_options {
  Index cell_width = 942;  ///< cell features (first slice of the input)
  Index drug_width = 3838; ///< drug features (second slice)
  Index width = 128;       ///< width of every hidden layer
  double dropout = 0.1;    ///< dropout rate after every hidden layer
};

/// The two-subnetwork single-drug model's type: separate cell and drug encoders, then the
/// prediction stack.
using TwoSubnetwork =
    Sequential<Fork<Branch<HiddenStack<2>>, Branch<HiddenStack<2>>>, HiddenStack<3>, Dense<1>>;
/// The single-input network's type: cell and drug features concatenated from the first layer.
using Concatenated = Sequential<HiddenStack<5>, Dense<1>>;

/// A two-subnetwork model of the given sizes.
inline TwoSubnetwork make_two_subnetwork(const single_drug_options& o) {
  const Index end = o.cell_width + o.drug_width;
  return TwoSubnetwork{{Branch<HiddenStack<2>>{Slice<>{0, o.cell_width}, hidden_stack<2>(o.width, o.dropout)},
                        Branch<HiddenStack<2>>{Slice<>{o.cell_width, end}, hidden_stack<2>(o.width, o.dropout)}},
                       hidden_stack<3>(o.width, o.dropout), Dense<1>{}};
}

/// A single-input model of the given sizes (its input width is cell_width + drug_width).
inline Concatenated make_concatenated(const single_drug_options& o) {
  return Concatenated{hidden_stack<5>(o.width, o.dropout), Dense<1>{}};
}

/// The two networks by name, for programs that choose at run time.
enum class single_drug_network { two_subnetwork, concatenated };

/// "two-subnetwork" or "concatenated".
inline const char* to_string(single_drug_network n) {
  return n == single_drug_network::two_subnetwork ? "two-subnetwork" : "concatenated";
}

/// Parses "two-subnetwork" (or "two") and "concatenated" (or "concat").
inline single_drug_network parse_single_drug_network(const std::string& name) {
  if (name == "two-subnetwork" || name == "two") return single_drug_network::two_subnetwork;
  if (name == "concatenated" || name == "concat") return single_drug_network::concatenated;
  throw config_error("unknown network '" + name + "' (expected two-subnetwork or concatenated)");
}

}  // namespace strata
