#pragma once
/// \file bucketed_reduction.hpp
/// `detail::bucketed_reduction<Comm>`, DataParallel's fast way to sum gradients (the policy
/// behind `BucketedOverlap`): each rank's columns go through one forward/backward; the model's
/// gradient buffer (core/parameter_store.hpp) is cut into buckets, spans of about `bucket_bytes`
/// of parameters adjacent in the buffer, ordered as backward announced the gradients on the first
/// step (reverse build order until then); each bucket's non-blocking all-reduce works in place on
/// its span and starts as soon as backward has written its last gradient, so communication
/// overlaps the rest of backward. Results match serial training to float rounding (MPI and the
/// GEMMs sum in an order that depends on the rank count). With a sharded optimizer the whole
/// gradient is reduce-scattered once backward is over instead.
///
/// A reduction policy provides local_range(global), local_blocks(global), prepare(params,
/// sharded), listener(sharded), block_done(params) and reduce(params, shard) (shard: null, or
/// where this rank's part of the sum goes; optimizer_sharding.hpp).

#include <cstddef>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/parameter_store.hpp"
#include "../layers/layer.hpp"
#include "optimizer_sharding.hpp"

namespace strata::detail {

template <class Comm>
class bucketed_reduction : private gradient_listener {
 public:
  bucketed_reduction(Comm comm, std::size_t bucket_bytes) : comm_(std::move(comm)), bucket_bytes_(bucket_bytes) {}

  /// An even split of the global batch's columns; one pass over them.
  std::pair<Index, Index> local_range(Index global_batch) const {
    const Index p = comm_.size(), r = comm_.rank();
    return {r * global_batch / p, (r + 1) * global_batch / p - r * global_batch / p};
  }
  std::vector<std::pair<Index, Index>> local_blocks(Index global_batch) const { return {{0, local_range(global_batch).second}}; }

  /// Lays out the buckets (they serve only an unsharded optimizer on more than one rank).
  template <class B>
  void prepare(parameter_store<B>& params, bool sharded) {
    if (!sharded && comm_.size() > 1) plan_buckets(params);
  }
  /// Told of every gradient backward finishes, to start complete buckets.
  gradient_listener* listener(bool sharded) { return sharded || comm_.size() == 1 ? nullptr : this; }
  template <class B>
  void block_done(parameter_store<B>&) {}

  /// Makes every gradient the sum over ranks (with a shard: this rank's part of the sum, there).
  template <class B>
  void reduce(parameter_store<B>& params, gradient_shard* shard) {
    if (shard != nullptr) {
      if constexpr (std::is_same_v<B, EigenBackend<float>>)
        comm_.reduce_scatter_sum(params.gradients(), shard->gradient.data(), shard->counts);
      return;
    }
    if (comm_.size() == 1) return;
    if (planned_for_ != params.gradients()) plan_buckets(params);
    if (!order_known_) {
      // First step: backward announced every gradient in its real order (Fork runs its branches
      // first to last, so it is not simply reverse build order). Buckets follow it from now on;
      // it is the same on every rank, so every rank plans the same buckets.
      if (announced_.size() == params.size()) plan_buckets(params, announced_);
      order_known_ = true;
    }
    start_complete_buckets(true);
    for (auto& bucket : buckets_) {
      bucket.request.wait();
      if (unstage_) unstage_(bucket, gradients_);
      bucket.ready = 0;
    }
    next_to_start_ = 0;
  }

 private:
  /// Parameters [first, last) in build order, whose gradients are one span of the gradient
  /// buffer, summed by one all-reduce.
  struct bucket {
    std::size_t first = 0, last = 0;
    std::size_t begin = 0, count = 0;  ///< the span: elements [begin, begin + count) of the buffer
    std::size_t ready = 0;             ///< members whose gradient backward has announced this step
    std::shared_ptr<std::vector<float>> staging;  ///< device backends: the span's host copy
    typename Comm::request request;
  };

  /// Buckets of about bucket_bytes over the parameters in `order` (default: reverse build order).
  /// A bucket is a run of parameters adjacent in the buffers, so its all-reduce works on one
  /// span of the gradient buffer, in place; a run that `order` breaks starts a new bucket.
  template <class B>
  void plan_buckets(parameter_store<B>& params, std::vector<std::size_t> order = {}) {
    static_assert(std::is_same_v<typename B::scalar, float>, "DataParallel: float models only for now");
    if (order.empty())
      for (std::size_t n = params.size(); n-- > 0;) order.push_back(n);
    buckets_.clear();
    owner_.clear();
    std::size_t bytes = 0;
    for (const std::size_t n : order) {
      const bool extends = !buckets_.empty() && (n + 1 == buckets_.back().first || n == buckets_.back().last);
      if (!extends || bytes >= bucket_bytes_) {
        buckets_.emplace_back();
        buckets_.back().first = n;
        buckets_.back().last = n + 1;
        bytes = 0;
      } else if (n + 1 == buckets_.back().first) {
        buckets_.back().first = n;
      } else {
        buckets_.back().last = n + 1;
      }
      owner_[params[n].gradient] = {buckets_.size() - 1, n};
      bytes += sizeof(float) * static_cast<std::size_t>(params[n].gradient->size());
    }
    for (auto& b : buckets_) {
      b.begin = static_cast<std::size_t>(params[b.first].offset);
      b.count = static_cast<std::size_t>(b.last < params.size() ? params[b.last].offset : params.buffer_size()) - b.begin;
    }
    gradients_ = params.gradients();
    keep_alive_ = params.keep_alive();
    stage_ = nullptr;
    unstage_ = nullptr;
    if constexpr (!host_storage<B>) {
      // Device buffers: each bucket's span goes through a host copy it owns. (No capture of
      // `this`: the strategy may move.)
      for (auto& b : buckets_) b.staging = std::make_shared<std::vector<float>>(b.count);
      stage_ = [](bucket& b, float* gradients) {
        B::copy_to_host(gradients + b.begin, static_cast<Index>(b.count), b.staging->data());
      };
      unstage_ = [](bucket& b, float* gradients) {
        B::copy_from_host(b.staging->data(), static_cast<Index>(b.count), gradients + b.begin);
      };
    }
    next_to_start_ = 0;
    planned_for_ = gradients_;
  }

  /// Starts, in bucket order, every bucket whose gradients are all written (or every remaining
  /// one with `all`): every rank issues the same collectives in the same order.
  void start_complete_buckets(bool all) {
    while (next_to_start_ < buckets_.size() &&
           (all || buckets_[next_to_start_].ready == buckets_[next_to_start_].last - buckets_[next_to_start_].first)) {
      auto& b = buckets_[next_to_start_];
      float* span = gradients_ + b.begin;
      std::shared_ptr<const void> owner = keep_alive_;
      if (stage_) {
        stage_(b, gradients_);
        span = b.staging->data();
        owner = b.staging;
      }
      // Buckets still waiting when backward is over have nothing left to overlap with: the
      // blocking all-reduce is faster for them than a non-blocking one (about 2x here).
      if (all) comm_.all_reduce_sum(span, b.count);
      else b.request = comm_.iall_reduce_sum(span, b.count, std::move(owner));
      ++next_to_start_;
    }
  }

  /// Called by layers during backward: when a bucket is complete, it and every complete bucket
  /// before it start, always in bucket order so every rank issues the same collectives.
  void gradient_ready(const void* gradient) override {
    const auto it = owner_.find(gradient);
    if (it == owner_.end()) return;
    if (!order_known_) {  // first step: only learn the order (see reduce)
      announced_.push_back(it->second.second);
      return;
    }
    ++buckets_[it->second.first].ready;
    start_complete_buckets(false);
    for (std::size_t k = 0; k < next_to_start_; ++k) buckets_[k].request.test();  // let MPI progress
  }

  Comm comm_;
  std::size_t bucket_bytes_;
  std::vector<bucket> buckets_;
  std::unordered_map<const void*, std::pair<std::size_t, std::size_t>> owner_;  ///< gradient -> (bucket, parameter)
  std::vector<std::size_t> announced_;  ///< parameter indices in the order backward announced them
  bool order_known_ = false;
  float* gradients_ = nullptr;              ///< the model's gradient buffer
  std::shared_ptr<const void> keep_alive_;  ///< owns it while all-reduces are in flight
  void (*stage_)(bucket&, float*) = nullptr;    ///< device backends: a bucket's span to the host
  void (*unstage_)(bucket&, float*) = nullptr;  ///< and back
  std::size_t next_to_start_ = 0;
  const float* planned_for_ = nullptr;  ///< the gradient buffer the buckets were planned over
};

}  // namespace strata::detail
