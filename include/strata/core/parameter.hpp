#pragma once
/// \file parameter.hpp
/// The one view of a model's state that optimizers, gradient all-reduce, checkpoints and export
/// share: every trainable tensor with its gradient, and every non-trainable buffer (running
/// statistics), each under a stable hierarchical name.

#include <string>

namespace strata {

/// A trainable tensor and its gradient, as the model exposes them. The pointers stay valid as
/// long as the model that produced them lives (models never reallocate parameters after build).
template <class Backend>
struct parameter {
  std::string name;                      ///< e.g. "0:Fork/1:Shared/2:Dense.weight"
  typename Backend::matrix* value;       ///< the weights
  typename Backend::matrix* gradient;    ///< d(loss)/d(weights), written by backward
};

/// Non-trainable state that belongs to the model (checkpointed and broadcast, never optimized).
template <class Backend>
struct buffer {
  std::string name;                 ///< e.g. "3:BatchNorm.running_mean"
  typename Backend::matrix* value;  ///< the values
};

}  // namespace strata
