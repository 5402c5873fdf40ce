#pragma once
/// \file optimizer_sharding.hpp
/// Where DataParallel keeps the optimizer state, as policies (data_parallel.hpp picks one by
/// type): `detail::replicated_optimizer`, every rank updates every parameter, and
/// `detail::sharded_optimizer<Comm>`, ZeRO stage 1. A sharding policy provides:
///   sharded()                                   whether the state is sharded
///   shard(params)                               where the reduction leaves this rank's summed
///                                               gradient (null: in the gradient buffer, whole)
///   optimizer_slices(params)                    what the optimizer updates
///   squared_gradient_norm(slices)               the global squared norm of what trains
///   after_step(params)                          after the optimizer step
///   for_each_optimizer_state(opt, params, f)    the state in the unsharded layout (checkpoints)

#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/error.hpp"
#include "../core/parameter_store.hpp"
#include "../core/tensor.hpp"
#include "../optim/clip.hpp"

namespace strata::detail {

/// ZeRO-1's cut of a model's parameter buffers: rank r owns elements [r size, r size + counts[r])
/// (size = ceil(N / P); the last ranks' shards end with the buffers) and receives that part of
/// the summed gradient in `gradient`.
struct gradient_shard {
  std::size_t size = 0;
  std::vector<std::size_t> counts;
  host_matrix<float> gradient;
  Index begin(int rank) const { return static_cast<Index>(size) * rank; }
};

/// Every rank keeps the whole optimizer state and updates every parameter.
class replicated_optimizer {
 public:
  static constexpr bool sharded() { return false; }
  template <class B>
  gradient_shard* shard(parameter_store<B>&) {
    return nullptr;
  }
  template <class B>
  std::vector<parameter_slice<B>> optimizer_slices(parameter_store<B>& params) {
    return whole_slices(params);
  }
  template <class B>
  double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices) {
    return strata::squared_gradient_norm(slices);
  }
  template <class B>
  void after_step(parameter_store<B>&) {}
  template <class Optimizer, class B, class F>
  void for_each_optimizer_state(Optimizer& optimizer, parameter_store<B>&, F&& f) {
    optimizer.for_each_state(f);
  }
};

/// ZeRO stage 1: each rank owns 1/P of the model's parameter buffers. Gradients are
/// reduce-scattered to their owner (by the reduction policy, into `shard`), the owner alone runs
/// the optimizer on its shard, in the value buffer itself (so the optimizer state per rank falls
/// as 1/P), and the updated shards are all-gathered in place into every rank's value buffer. The
/// optimizer gets one slice per tensor piece in the shard (with the tensor's group), so per-group
/// rates, frozen groups and norm clipping give the same update as without sharding. Host float
/// models (EigenBackend<float>).
template <class Comm>
class sharded_optimizer {
 public:
  explicit sharded_optimizer(Comm comm) : comm_(std::move(comm)) {}

  static constexpr bool sharded() { return true; }

  template <class B>
  gradient_shard* shard(parameter_store<B>& params) {
    plan(params);
    return &shard_;
  }

  /// The pieces of the parameters in this rank's shard, one slice per tensor: weights in the
  /// value buffer, gradients in the shard's summed gradient.
  template <class B>
  std::vector<parameter_slice<B>> optimizer_slices(parameter_store<B>& params) {
    if constexpr (!std::is_same_v<B, EigenBackend<float>>) {
      throw config_error("DataParallel: optimizer sharding needs EigenBackend<float>");
    } else {
      plan(params);
      std::vector<parameter_slice<B>> slices;
      const Index begin = shard_.begin(comm_.rank()), end = begin + static_cast<Index>(shard_.counts[static_cast<std::size_t>(comm_.rank())]);
      for (std::size_t k = 0; k < params.size(); ++k) {
        const Index offset = params[k].offset, from = std::max(begin, offset), to = std::min(end, offset + params[k].value->size());
        if (from < to)
          slices.push_back({params[k].name, params.values() + from, shard_.gradient.data() + (from - begin), to - from, 1,
                            from - offset, k, params[k].group});
      }
      return slices;
    }
  }

  /// Each rank holds disjoint pieces: one all-reduce of a scalar sums them.
  template <class B>
  double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices) {
    double sum = strata::squared_gradient_norm(slices);
    if (comm_.size() > 1) comm_.all_reduce_sum(&sum, 1);
    return sum;
  }

  /// Every rank's updated shard of the value buffer, gathered in place into every rank's.
  template <class B>
  void after_step(parameter_store<B>& params) {
    if constexpr (std::is_same_v<B, EigenBackend<float>>) comm_.all_gather_in_place(params.values(), shard_.counts);
  }

  /// Calls f(name, matrix&) for the optimizer's state in the unsharded layout
  /// ("<parameter>.<state>"): each state kind is gathered from every rank's pieces into whole
  /// tensors first and whatever f leaves in them (a checkpoint being loaded) is scattered back.
  /// Collective.
  template <class Optimizer, class B, class F>
  void for_each_optimizer_state(Optimizer& optimizer, parameter_store<B>& params, F&& f) {
    if constexpr (std::is_same_v<B, EigenBackend<float>>) {
      // The optimizer lists its state slice by slice, kind by kind; a slice's piece of one kind
      // sits where the slice sits in the buffers.
      const std::size_t kinds = optimizer.state_kinds().size();
      std::vector<typename B::matrix*> tensors;
      optimizer.for_each_state([&](const std::string&, typename B::matrix& m) { tensors.push_back(&m); });
      const auto slices = optimizer_slices(params);
      const auto n = static_cast<std::size_t>(params.buffer_size());
      const auto at = [&](const parameter_slice<B>& s) { return static_cast<std::size_t>(params[s.parameter].offset + s.offset); };
      const auto mine_at = static_cast<std::size_t>(shard_.begin(comm_.rank()));
      std::vector<float> mine(shard_.size, 0.0f), flat(n, 0.0f);
      typename B::matrix whole;
      for (std::size_t kind = 0; kind < kinds; ++kind) {
        for (std::size_t j = 0; j < slices.size(); ++j) {
          const auto& m = *tensors[j * kinds + kind];
          std::copy(m.data(), m.data() + m.size(), mine.data() + (at(slices[j]) - mine_at));
        }
        comm_.all_gather(mine.data(), flat.data(), shard_.counts);
        for (auto& p : params) {
          whole.resize(p.value->rows(), p.value->cols());
          std::copy(flat.data() + p.offset, flat.data() + p.offset + whole.size(), whole.data());
          f(p.name + "." + optimizer.state_kinds()[kind], whole);
          std::copy(whole.data(), whole.data() + whole.size(), flat.data() + p.offset);
        }
        for (std::size_t j = 0; j < slices.size(); ++j) {
          auto& m = *tensors[j * kinds + kind];
          std::copy(flat.data() + at(slices[j]), flat.data() + at(slices[j]) + m.size(), m.data());
        }
      }
    }
  }

 private:
  template <class B>
  void plan(parameter_store<B>& params) {
    if (planned_for_ == params.values() && planned_for_ != nullptr) return;
    const auto n = static_cast<std::size_t>(params.buffer_size()), p = static_cast<std::size_t>(comm_.size());
    shard_.size = (n + p - 1) / p;
    shard_.counts.assign(p, 0);
    for (std::size_t r = 0; r < p; ++r) shard_.counts[r] = std::min(shard_.size, n - std::min(n, r * shard_.size));
    shard_.gradient = host_matrix<float>::Zero(static_cast<Index>(shard_.size), 1);
    planned_for_ = params.values();
  }

  Comm comm_;
  gradient_shard shard_;
  const void* planned_for_ = nullptr;  ///< the value buffer the shard was cut from
};

}  // namespace strata::detail
