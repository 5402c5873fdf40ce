#pragma once
/// \file parameter.hpp
/// The one view of a model's state that optimizers, gradient all-reduce, checkpoints and export
/// share: every trainable tensor with its gradient, and every non-trainable buffer (running
/// statistics), each under a stable hierarchical name.

#include <cstddef>
#include <string>
#include <vector>

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

/// How the parameters of one group train: a multiplier of the learning rate (the schedule's
/// rate times `lr_scale`) and whether weight decay applies. A multiplier of 0 freezes the group:
/// the optimizer skips it entirely (no update, no decay, no change to its state), while backward
/// still carries gradients through it to the layers before. Select groups with
/// `Model::set_group` (graph/model.hpp).
struct parameter_group {
  double lr_scale = 1.0;     ///< the learning rate is multiplied by this; 0 freezes
  bool weight_decay = true;  ///< false: the optimizer's weight decay skips this group

  bool frozen() const { return lr_scale == 0.0; }
};

/// A trainable tensor and its gradient, as the model exposes them: views of the model's two
/// parameter buffers (parameter_store.hpp) at `offset`. The pointers stay valid as long as the
/// model that produced them lives (models never reallocate parameters after build).
template <class Backend>
struct parameter {
  std::string name;                                ///< e.g. "model/0:Fork/1:Shared/2:Dense.weight"
  typename Backend::parameter_matrix* value;       ///< the weights
  typename Backend::parameter_matrix* gradient;    ///< d(loss)/d(weights), written by backward
  row_split split{};                               ///< the rows held here, when model parallelism splits it
  parameter_group group{};                         ///< how it trains (learning-rate multiplier, decay)
  Index offset = 0;  ///< first element of both views in the model's value and gradient buffers
};

/// What an optimizer updates: a parameter's elements `[offset, offset + rows * cols)` as raw
/// pointers in the backend's memory. Without sharding a slice is a whole parameter (its shape,
/// offset 0, the layer's own storage); with a sharded optimizer (ZeRO-1) it is the piece of one
/// parameter that this rank owns (a column), pointing into the strategy's shard buffers. Either
/// way an optimizer sees tensor boundaries and each tensor's group.
template <class Backend>
struct parameter_slice {
  using scalar = typename Backend::scalar;
  std::string name;          ///< the parameter's name (state tensors are "<name>.<state>")
  scalar* value = nullptr;   ///< first element of the slice's weights
  scalar* gradient = nullptr;  ///< first element of the slice's gradient
  Index rows = 0, cols = 0;  ///< the slice's shape (rows * cols elements, column-major)
  Index offset = 0;          ///< first element of the parameter held (0: from its start)
  std::size_t parameter = 0;   ///< index of the parameter in the model's list
  parameter_group group{};   ///< copied from the parameter (see refresh_groups)

  Index size() const { return rows * cols; }
};

namespace detail {
/// Glob matching: `*` matches any run of characters ('/' and '.' included), `?` any one.
inline bool glob_match(const char* pattern, const char* text) {
  const char *star = nullptr, *resume = nullptr;
  while (*text != '\0') {
    if (*pattern == '*') {
      star = pattern++;
      resume = text;
    } else if (*pattern == '?' || *pattern == *text) {
      ++pattern;
      ++text;
    } else if (star != nullptr) {
      pattern = star + 1;
      text = ++resume;
    } else {
      return false;
    }
  }
  while (*pattern == '*') ++pattern;
  return *pattern == '\0';
}

/// Whether layer-path pattern `pattern` selects the parameter called `name`. Names and patterns
/// are read without the root's "model/" prefix; a pattern selects a parameter it matches as a
/// glob, and a layer path selects that layer's own tensors and everything nested in it:
/// "0:Fork/1:Shared" and "0:Fork/1:Shared/*" select the same, "*.bias" selects every bias.
inline bool selects(std::string pattern, const std::string& name) {
  const std::string root = "model/";
  if (pattern.compare(0, root.size(), root) == 0) pattern.erase(0, root.size());
  const std::string path = name.compare(0, root.size(), root) == 0 ? name.substr(root.size()) : name;
  return glob_match(pattern.c_str(), path.c_str()) || glob_match((pattern + ".*").c_str(), path.c_str()) ||
         glob_match((pattern + "/*").c_str(), path.c_str());
}
}  // namespace detail

/// Non-trainable state that belongs to the model (checkpointed and broadcast, never optimized).
template <class Backend>
struct buffer {
  std::string name;                 ///< e.g. "3:BatchNorm.running_mean"
  typename Backend::matrix* value;  ///< the values
};

}  // namespace strata
