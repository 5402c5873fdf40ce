#pragma once
/// \file docking.hpp
/// Docking-surrogate models (Clyde et al. 2021; docs/design.md §2): molecule features to the
/// regression label reg = max(-docking score, 0).
///
///   DescriptorMLP   1,613 descriptors -> 250 -> 125 -> 60 -> 30 -> 1   (the group's model)
///   FingerprintMLP  2,048-bit Morgan fingerprint -> 1,024 -> 256 -> 64 -> 16 -> 1, whose first
///                   layer is a SparseInputDense (a fingerprint sets 2-5% of its bits)
/// Hidden layers are Dense + ReLU + Dropout (0.1 by default). Input widths are run-time values.

#include "../graph/sequential.hpp"
#include "../layers/activation.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/sparse_input_dense.hpp"

namespace strata {

/// A hidden layer of a docking MLP.
template <Index Width>
using DockingLayer = Sequential<Dense<Width>, ReLU, Dropout>;

/// The descriptor MLP's type: 250 -> 125 -> 60 -> 30 -> 1.
using DescriptorMLP = Sequential<DockingLayer<250>, DockingLayer<125>, DockingLayer<60>, DockingLayer<30>, Dense<1>>;

/// The fingerprint MLP's type: a sparse-input first layer of 1,024, then 256 -> 64 -> 16 -> 1.
using FingerprintMLP = Sequential<SparseInputDense<1024>, ReLU, Dropout, DockingLayer<256>, DockingLayer<64>,
                                  DockingLayer<16>, Dense<1>>;

/// A descriptor MLP with dropout `rate` after every hidden layer.
inline DescriptorMLP make_descriptor_mlp(double rate = 0.1) {
  return DescriptorMLP{DockingLayer<250>{Dense<250>{}, ReLU{}, Dropout{rate}}, DockingLayer<125>{Dense<125>{}, ReLU{}, Dropout{rate}},
                       DockingLayer<60>{Dense<60>{}, ReLU{}, Dropout{rate}}, DockingLayer<30>{Dense<30>{}, ReLU{}, Dropout{rate}},
                       Dense<1>{}};
}

/// A fingerprint MLP with dropout `rate` after every hidden layer.
inline FingerprintMLP make_fingerprint_mlp(double rate = 0.1) {
  return FingerprintMLP{SparseInputDense<1024>{},
                        ReLU{},
                        Dropout{rate},
                        DockingLayer<256>{Dense<256>{}, ReLU{}, Dropout{rate}},
                        DockingLayer<64>{Dense<64>{}, ReLU{}, Dropout{rate}},
                        DockingLayer<16>{Dense<16>{}, ReLU{}, Dropout{rate}},
                        Dense<1>{}};
}

}  // namespace strata
