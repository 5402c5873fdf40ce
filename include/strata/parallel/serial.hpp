#pragma once
/// \file serial.hpp
/// The `Serial` strategy: one process, nothing to communicate. It is also where the strategy
/// contract and its defaults live: every other strategy derives from Serial (directly or through
/// the strategy it extends) and declares only the hooks it changes, so adding a hook means adding
/// its default here. The trainer calls, on the concrete strategy type (no virtual calls):
///   rank(), ranks(), is_root()             who this process is
///   local_range(global_batch)              the columns of a global batch this rank computes
///   local_blocks(global_batch)             how those columns are cut into forward/backward passes
///   synchronize(parameters, buffers, settings)  make every rank start from the same model, and
///                                          check that all ranks agree on the settings hash
///   listener()                             a gradient_listener told during backward, or null
///   block_done(parameters)                 after each block's backward
///   reduce_gradients(parameters)           combine per-rank gradients (sum over ranks)
///   optimizer_slices(parameters)           what the optimizer updates: whole tensors, or this
///                                          rank's per-tensor pieces with ZeRO-1 (built once)
///   squared_gradient_norm(slices, parameters)  the squared global norm of the slices' gradients
///                                          that train (summed over ranks that hold pieces)
///   after_step(parameters)                 after the optimizer step (ZeRO-1: gather weights)
///   for_each_optimizer_state(opt, parameters, f)  the optimizer state in the model's layout
///   with_whole<B>(split, m, f)             f(whole tensor) for a tensor a model-parallel layer
///                                          holds only rows of (collective; writes back f's changes)
///   agree(value, what)                     fail on every rank unless all pass the same value
///   average_buffers(buffers)               make running statistics the same on every rank
///   sum(value)                             all-reduce a scalar (losses, counts)
///   gather(host matrix)                    concatenate per-rank columns (predictions) on all ranks
/// Layers never see a strategy, and a strategy never sees a layer's math: both meet only in the
/// parameter list.

#include <cstdint>
#include <utility>
#include <vector>

#include "../core/parameter_store.hpp"
#include "../core/tensor.hpp"
#include "../layers/layer.hpp"
#include "../optim/clip.hpp"

namespace strata {

/// Single-process training, and the defaults of every strategy (see above).
struct Serial {
  static constexpr const char* name = "serial";

  int rank() const { return 0; }
  int ranks() const { return 1; }
  bool is_root() const { return true; }

  /// First column and number of columns of a global batch that this rank computes.
  std::pair<Index, Index> local_range(Index global_batch) const { return {0, global_batch}; }
  /// One pass over the whole batch.
  std::vector<std::pair<Index, Index>> local_blocks(Index global_batch) const { return {{0, global_batch}}; }

  template <class B>
  void synchronize(parameter_store<B>&, std::vector<buffer<B>>&, std::uint64_t = 0) const {}
  gradient_listener* listener() const { return nullptr; }
  template <class B>
  void block_done(parameter_store<B>&) const {}
  template <class B>
  void reduce_gradients(parameter_store<B>&) const {}
  template <class B>
  std::vector<parameter_slice<B>> optimizer_slices(parameter_store<B>& params) const {
    return whole_slices(params);
  }
  template <class B>
  double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices, const parameter_store<B>&) const {
    return strata::squared_gradient_norm(slices);
  }
  template <class B>
  void after_step(parameter_store<B>&) const {}
  template <class Optimizer, class B, class F>
  void for_each_optimizer_state(Optimizer& optimizer, parameter_store<B>&, F&& f) const {
    optimizer.for_each_state(f);
  }
  template <class B, class M, class F>
  void with_whole(const row_split&, M& m, F&& f) const {
    f(m);
  }
  void agree(std::uint64_t, const char*) const {}
  template <class B>
  void average_buffers(std::vector<buffer<B>>&) const {}
  double sum(double local) const { return local; }
  template <class T>
  void gather(host_matrix<T>&) const {}
};

}  // namespace strata
