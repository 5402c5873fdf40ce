#pragma once
/// \file parameter.hpp
/// The one view of a model's state that optimizers, gradient all-reduce, checkpoints and export
/// share: every trainable tensor with its gradient, and every non-trainable buffer (running
/// statistics), each under a stable hierarchical name.

#include <string>

#include "config.hpp"

namespace strata {

/// Which rows of a whole tensor this process holds when a model-parallel layer splits the
/// tensor by rows (layers/partition.hpp); `whole_rows == 0` means the tensor is not split.
struct row_split {
  Index offset = 0;      ///< first row held here
  Index rows = 0;        ///< rows held here
  Index whole_rows = 0;  ///< rows of the whole tensor (0: not split)
  bool split() const { return whole_rows > 0; }
};

/// A trainable tensor and its gradient, as the model exposes them. The pointers stay valid as
/// long as the model that produced them lives (models never reallocate parameters after build).
template <class Backend>
struct parameter {
  std::string name;                      ///< e.g. "0:Fork/1:Shared/2:Dense.weight"
  typename Backend::matrix* value;       ///< the weights
  typename Backend::matrix* gradient;    ///< d(loss)/d(weights), written by backward
  row_split split{};                     ///< the rows held here, when model parallelism splits it
};

/// Non-trainable state that belongs to the model (checkpointed and broadcast, never optimized).
template <class Backend>
struct buffer {
  std::string name;                 ///< e.g. "3:BatchNorm.running_mean"
  typename Backend::matrix* value;  ///< the values
};

}  // namespace strata
