#pragma once
/// \file data_parallel.hpp
/// `DataParallel<Comm, Reduction, Sharding>`: every rank holds the whole model and computes its
/// share of each global minibatch; gradients are summed over ranks before the optimizer step.
///
/// Two ways to sum, chosen by type (`BucketedOverlap`, `DeterministicTree`) or at run time by
/// `data_parallel_options::deterministic`:
///   * fast (default): the rank's columns go through one forward/backward; the model's gradient
///     buffer (core/parameter_store.hpp) is cut into buckets, spans of about `bucket_bytes` of
///     parameters adjacent in the buffer, ordered as backward announced the gradients on the
///     first step (reverse build order until then); each bucket's non-blocking all-reduce works
///     in place on its span and starts as soon as backward has written its last gradient, so
///     communication overlaps the rest of backward. Results match serial training to float
///     rounding (MPI and the GEMMs sum in an order that depends on the rank count).
///   * deterministic: the global batch is cut into `blocks` equal sample blocks (a power of two);
///     each block gets its own forward/backward, and block gradients are added in one fixed
///     pairwise tree ((b0+b1)+(b2+b3))+... A rank owns an aligned run of blocks, sums its subtree
///     locally, and the ranks' subtrees are combined in the same tree order by the owner of each
///     slice of the gradient (all-to-all, ordered sum, all-gather). Every rank count that divides
///     `blocks` therefore produces the same bits, given the same threads per rank (Eigen's GEMM
///     blocking may depend on the thread count). BatchNorm statistics are per block in this mode.
/// Start-up broadcasts rank 0's weights and buffers and checks that every rank built the same
/// model with the same settings, failing on every rank with a clear message if not.
///
/// BatchNorm normalises with each rank's own samples (as without synchronised batch norm in
/// other frameworks), so a BatchNorm model is not bit-for-bit the serial one; running statistics
/// are averaged over ranks after every step so all ranks evaluate the same model.
///
/// `ShardedOptimizer` / `shard_optimizer` (ZeRO stage 1): each rank owns 1/P of the model's
/// parameter buffers; gradients are reduce-scattered to their owner, the owner alone runs the
/// optimizer on its shard, in the value buffer itself (so the optimizer state per rank falls as
/// 1/P), and the updated shards are all-gathered in place into every rank's value buffer. The optimizer gets one slice per tensor piece in its shard (with the tensor's
/// group), so per-group rates, frozen groups and norm clipping (one all-reduce of the squared
/// norm) give the same update as without sharding.
/// Checkpoints hold the optimizer state in the unsharded, per-parameter layout, so they move
/// freely between sharded and unsharded runs and between rank counts.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../backend/eigen_backend.hpp"
#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../core/parameter_store.hpp"
#include "../core/tensor.hpp"
#include "../layers/layer.hpp"
#include "../optim/clip.hpp"
#include "communicator.hpp"
#include "serial.hpp"

namespace strata {

/// Settings of `DataParallel`.
struct data_parallel_options {
  /// Gradient bytes per all-reduce bucket in fast mode (a bucket starts when it is complete).
  std::size_t bucket_bytes = std::size_t{4} << 20;
  /// Sum gradients in a fixed tree order so results do not depend on the rank count.
  bool deterministic = false;
  /// Sample blocks per global batch in deterministic mode: a power of two that the rank count
  /// divides. 4 covers 1, 2 and 4 ranks; more blocks allow more ranks but run smaller GEMMs
  /// (Combo at 2 ranks: 4 blocks cost 7% over fast mode, 8 blocks 23%; bench_data_parallel).
  Index blocks = 4;
  /// Shard the optimizer state across ranks (ZeRO stage 1); host float models (EigenBackend<float>).
  bool shard_optimizer = false;
};

/// How DataParallel sums gradients, as a type: `BucketedOverlap` (the fast mode) or
/// `DeterministicTree` (the same bits for every rank count that divides the blocks).
struct BucketedOverlap {
  static constexpr bool deterministic = false;
};
struct DeterministicTree {
  static constexpr bool deterministic = true;
};
/// Where the optimizer state lives, as a type: on every rank, or sharded (ZeRO-1).
struct ReplicatedOptimizer {
  static constexpr bool sharded = false;
};
struct ShardedOptimizer {
  static constexpr bool sharded = true;
};
/// Either choice read from `data_parallel_options` at run time (programs that choose from the
/// command line); the default of both policies.
struct ChosenAtRunTime {};

/// Data parallelism over `Comm`, with its reduction and sharding chosen by type
/// (`DataParallel<MpiCommunicator, DeterministicTree, ShardedOptimizer>`) or at run time
/// (`DataParallel<MpiCommunicator>` and `data_parallel_options`). A choice fixed by the type
/// overrides the options' field; the other options (blocks, bucket size) apply either way.
template <class Comm, class Reduction = ChosenAtRunTime, class Sharding = ChosenAtRunTime>
class DataParallel : public Serial, private gradient_listener {
 public:
  static constexpr const char* name = "data-parallel";

  explicit DataParallel(Comm comm = {}, data_parallel_options options = {})
      : comm_(std::move(comm)), options_(fixed_by_type(options)) {
    if (options_.deterministic) {
      const Index p = comm_.size(), b = options_.blocks;
      const auto power_of_two = [](Index v) { return v > 0 && (v & (v - 1)) == 0; };
      if (!power_of_two(b) || !power_of_two(p) || b % p != 0)
        throw config_error(detail::concat("DataParallel (deterministic): ", b, " sample blocks over ", p,
                                          " ranks; both must be powers of two and the ranks must divide the blocks"));
    }
  }

  // Optimizer slices point into the shard buffers' heap storage, which moves with them.
  DataParallel(DataParallel&&) noexcept = default;
  DataParallel& operator=(DataParallel&&) noexcept = default;

  // A rank that unwinds after an error may leave bucket all-reduces running: their requests own
  // the bucket buffers and keep them until MPI is done (MpiCommunicator), so nothing here frees
  // memory under a transfer and no destructor is needed.

  int rank() const { return comm_.rank(); }
  int ranks() const { return comm_.size(); }
  bool is_root() const { return comm_.rank() == 0; }
  Comm& communicator() { return comm_; }
  const data_parallel_options& options() const { return options_; }
  /// Whether gradients are summed in the fixed tree order (constant when the type fixes it).
  bool deterministic() const {
    if constexpr (std::is_same_v<Reduction, ChosenAtRunTime>) return options_.deterministic;
    else return Reduction::deterministic;
  }
  /// Whether the optimizer state is sharded (constant when the type fixes it).
  bool sharded() const {
    if constexpr (std::is_same_v<Sharding, ChosenAtRunTime>) return options_.shard_optimizer;
    else return Sharding::sharded;
  }

  /// First column and number of columns of a global batch that this rank computes: an even
  /// split, or in deterministic mode this rank's aligned run of sample blocks.
  std::pair<Index, Index> local_range(Index global_batch) const {
    const Index p = ranks(), r = rank();
    if (!deterministic()) return {r * global_batch / p, (r + 1) * global_batch / p - r * global_batch / p};
    const Index per_rank = options_.blocks / p;
    const Index begin = block_start(global_batch, r * per_rank), end = block_start(global_batch, (r + 1) * per_rank);
    return {begin, end - begin};
  }

  /// Column ranges of this rank's share that get one forward/backward each (relative to it).
  std::vector<std::pair<Index, Index>> local_blocks(Index global_batch) const {
    const auto [offset, count] = local_range(global_batch);
    if (!deterministic()) return {{0, count}};
    std::vector<std::pair<Index, Index>> blocks;
    const Index per_rank = options_.blocks / ranks();
    for (Index k = rank() * per_rank; k < (rank() + 1) * per_rank; ++k) {
      const Index begin = block_start(global_batch, k), end = block_start(global_batch, k + 1);
      blocks.emplace_back(begin - offset, end - begin);
    }
    return blocks;
  }

  /// Broadcasts rank 0's parameters and buffers after checking that every rank has the same
  /// model layout and settings; lays out the gradient buckets.
  template <class B>
  void synchronize(parameter_store<B>& params, std::vector<buffer<B>>& buffers, std::uint64_t settings = 0) {
    const std::uint64_t mode = mix64(deterministic() + 2u * sharded()) ^
                               mix64(static_cast<std::uint64_t>(options_.blocks) + 0x100u) ^ mix64(options_.bucket_bytes + 0x200u);
    check_agreement(layout_signature(params, buffers) ^ (settings * 0x9E3779B97F4A7C15ull) ^ mode,
                    "built a different model or uses different settings (model layout, batch size, seeds, optimizer "
                    "or parallel mode)");
    // Every weight of the model in one broadcast: the value buffer is one span.
    const auto n = static_cast<std::size_t>(params.buffer_size());
    float* values = on_host<B>(params.values(), n);
    comm_.broadcast(values, n, 0);
    back_from_host<B>(values, n, params.values());
    for (auto& b : buffers) broadcast_matrix<B>(*b.value);
    if (!deterministic() && !sharded() && ranks() > 1) plan_buckets(params);
  }

  /// The listener that starts bucket all-reduces during backward (fast mode only).
  gradient_listener* listener() {
    return deterministic() || sharded() || ranks() == 1 ? nullptr : this;
  }

  /// What the optimizer updates: every parameter whole, or with sharding the pieces of the
  /// parameters that fall in this rank's shard of the buffers, one slice per tensor (so groups
  /// and per-tensor rules apply): weights in the model's value buffer itself, gradients in the
  /// shard's reduced gradient.
  template <class B>
  std::vector<parameter_slice<B>> optimizer_slices(parameter_store<B>& params) {
    if (!sharded()) return whole_slices(params);
    if constexpr (!std::is_same_v<B, EigenBackend<float>>) {
      throw config_error("DataParallel: optimizer sharding needs EigenBackend<float>");
    } else {
      plan_shard(params);
      std::vector<parameter_slice<B>> slices;
      const Index begin = shard_begin(), end = begin + static_cast<Index>(shard_counts_[static_cast<std::size_t>(rank())]);
      for (std::size_t k = 0; k < params.size(); ++k) {
        const Index offset = params[k].offset, from = std::max(begin, offset), to = std::min(end, offset + params[k].value->size());
        if (from < to)
          slices.push_back({params[k].name, params.values() + from, shard_grad_.data() + (from - begin), to - from, 1,
                            from - offset, k, params[k].group});
      }
      return slices;
    }
  }

  /// The squared norm of the gradients that train: with sharding each rank holds disjoint
  /// pieces, so one all-reduce of a scalar sums them; otherwise every rank holds them all.
  template <class B>
  double squared_gradient_norm(const std::vector<parameter_slice<B>>& slices, const parameter_store<B>&) {
    double sum = strata::squared_gradient_norm(slices);
    if (sharded() && ranks() > 1) comm_.all_reduce_sum(&sum, 1);
    return sum;
  }

  /// With sharding: every rank's updated shard of the value buffer is gathered, in place, into
  /// every rank's value buffer.
  template <class B>
  void after_step(parameter_store<B>& params) {
    if constexpr (std::is_same_v<B, EigenBackend<float>>)
      if (sharded()) comm_.all_gather_in_place(params.values(), shard_counts_);
  }

  /// Calls f(name, matrix&) for the optimizer's state in the unsharded layout ("<parameter>.<state>");
  /// with sharding, each state kind is gathered from every rank's pieces into whole tensors
  /// first and whatever f leaves in them (a checkpoint being loaded) is scattered back.
  /// Collective with sharding.
  template <class Optimizer, class B, class F>
  void for_each_optimizer_state(Optimizer& optimizer, parameter_store<B>& params, F&& f) {
    if (!sharded()) return optimizer.for_each_state(f);
    if constexpr (std::is_same_v<B, EigenBackend<float>>) {
      // The optimizer lists its state slice by slice, kind by kind; a slice's piece of one kind
      // sits where the slice sits in the buffers.
      const std::size_t kinds = optimizer.state_kinds().size();
      std::vector<typename B::matrix*> tensors;
      optimizer.for_each_state([&](const std::string&, typename B::matrix& m) { tensors.push_back(&m); });
      const auto slices = optimizer_slices(params);
      const auto n = static_cast<std::size_t>(params.buffer_size());
      const auto at = [&](const parameter_slice<B>& s) { return static_cast<std::size_t>(params[s.parameter].offset + s.offset); };
      std::vector<float> mine(shard_size_, 0.0f), flat(n, 0.0f);
      typename B::matrix whole;
      for (std::size_t kind = 0; kind < kinds; ++kind) {
        for (std::size_t j = 0; j < slices.size(); ++j) {
          const auto& m = *tensors[j * kinds + kind];
          std::copy(m.data(), m.data() + m.size(), mine.data() + (at(slices[j]) - static_cast<std::size_t>(shard_begin())));
        }
        comm_.all_gather(mine.data(), flat.data(), shard_counts_);
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

  /// After each block's backward (deterministic mode: adds the block to the local tree).
  template <class B>
  void block_done(parameter_store<B>& params) {
    if (!deterministic()) return;
    const auto n = static_cast<std::size_t>(params.buffer_size());
    if (tree_.empty() || tree_elements_ != n) {
      // log2(blocks) + 1 partial sums at most, each padded to whole slices for the all-to-all;
      // allocated once (fresh pages every step would cost more than the additions).
      const auto p = static_cast<std::size_t>(ranks());
      std::size_t levels = 1;
      for (Index b = 1; b < options_.blocks; b *= 2) ++levels;
      tree_.assign(levels, std::vector<float>(((n + p - 1) / p) * p, 0.0f));
      slices_.assign(tree_[0].size(), 0.0f);
      levels_.assign(levels, 0);
      used_ = 0;
      tree_elements_ = n;
    }
    const float* g = on_host<B>(params.gradients(), n);
    // The new block is the right neighbour of a level-0 partial sum, or starts one.
    if (used_ > 0 && levels_[used_ - 1] == 0) {
      float* out = tree_[used_ - 1].data();
      for (std::size_t i = 0; i < n; ++i) out[i] = out[i] + g[i];
      levels_[used_ - 1] = 1;
    } else {
      std::copy(g, g + n, tree_[used_].data());
      levels_[used_++] = 0;
    }
    while (used_ >= 2 && levels_[used_ - 2] == levels_[used_ - 1]) {  // left + right, as in the tree
      float* left = tree_[used_ - 2].data();
      const float* right = tree_[used_ - 1].data();
      for (std::size_t i = 0; i < n; ++i) left[i] = left[i] + right[i];
      ++levels_[used_ - 2];
      --used_;
    }
  }

  /// Makes every parameter's gradient the sum over ranks (with sharding: this rank's shard of it).
  template <class B>
  void reduce_gradients(parameter_store<B>& params) {
    if (sharded()) plan_shard(params);
    if (deterministic()) return reduce_deterministic<B>(params);
    if (sharded()) {
      if constexpr (std::is_same_v<B, EigenBackend<float>>)
        comm_.reduce_scatter_sum(params.gradients(), shard_grad_.data(), shard_counts_);
      return;
    }
    if (ranks() == 1) return;
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
  /// Fails on every rank unless all ranks pass the same value: a hash of what decides how many
  /// collectives each rank will issue (dataset sizes, epochs, the loop position after a resume).
  void agree(std::uint64_t value, const char* what) { check_agreement(value, what); }

  /// Averages buffers (running statistics) over ranks, so every rank evaluates with the same
  /// model. Each rank's statistics saw only its own samples; the mean is the usual estimate.
  template <class B>
  void average_buffers(std::vector<buffer<B>>& buffers) {
    if (ranks() == 1 || buffers.empty()) return;
    host_matrix<typename B::scalar> host;
    for (auto& b : buffers) {
      B::download(*b.value, host);
      comm_.all_reduce_sum(host.data(), static_cast<std::size_t>(host.size()));
      host /= static_cast<typename B::scalar>(ranks());
      B::upload(host, *b.value);
    }
  }

  /// Sum of a scalar over ranks (losses, counts).
  double sum(double local) {
    comm_.all_reduce_sum(&local, 1);
    return local;
  }

  /// Concatenates every rank's columns (in rank order) on every rank.
  template <class T>
  void gather(host_matrix<T>& m) {
    if (ranks() == 1) return;
    std::uint64_t cols = static_cast<std::uint64_t>(m.cols());
    std::vector<std::uint64_t> all_cols(static_cast<std::size_t>(ranks()));
    comm_.all_gather(&cols, all_cols.data(), std::vector<std::size_t>(static_cast<std::size_t>(ranks()), 1));
    std::vector<std::size_t> counts;
    std::uint64_t total = 0;
    for (const auto c : all_cols) {
      counts.push_back(static_cast<std::size_t>(c) * static_cast<std::size_t>(m.rows()));
      total += c;
    }
    host_matrix<T> all(m.rows(), static_cast<Index>(total));
    comm_.all_gather(m.data(), all.data(), counts);
    m = std::move(all);
  }

 private:
  static data_parallel_options fixed_by_type(data_parallel_options o) {
    if constexpr (!std::is_same_v<Reduction, ChosenAtRunTime>) o.deterministic = Reduction::deterministic;
    if constexpr (!std::is_same_v<Sharding, ChosenAtRunTime>) o.shard_optimizer = Sharding::sharded;
    return o;
  }

  /// Parameters [first, last) in build order, whose gradients are one span of the gradient
  /// buffer, summed by one all-reduce.
  struct bucket {
    std::size_t first = 0, last = 0;
    std::size_t begin = 0, count = 0;  ///< the span: elements [begin, begin + count) of the buffer
    std::size_t ready = 0;             ///< members whose gradient backward has announced this step
    std::shared_ptr<std::vector<float>> staging;  ///< device backends: the span's host copy
    typename Comm::request request;
  };

  Index block_start(Index global_batch, Index block) const { return block * global_batch / options_.blocks; }

  /// A hash of every parameter's and buffer's name and shape.
  template <class B>
  static std::uint64_t layout_signature(const parameter_store<B>& params, const std::vector<buffer<B>>& buffers) {
    std::uint64_t h = fnv1a64_offset;
    const auto mix = [&](const std::string& s, Index rows, Index cols) {
      const Index shape[2] = {rows, cols};
      h = fnv1a64(shape, sizeof shape, fnv1a64(s.data(), s.size(), h));
    };
    for (const auto& p : params) mix(p.name, p.value->rows(), p.value->cols());
    for (const auto& b : buffers) mix(b.name, b.value->rows(), b.value->cols());
    return h;
  }

  void check_agreement(std::uint64_t mine, const char* what) { strata::check_agreement(comm_, mine, "DataParallel", what); }

  template <class B>
  void broadcast_matrix(typename B::matrix& m) {
    host_matrix<typename B::scalar> host;
    B::download(m, host);
    comm_.broadcast(host.data(), static_cast<std::size_t>(host.size()), 0);
    B::upload(host, m);
  }

  // ---- staging for device backends ----------------------------------------------------------

  /// `n` elements of the model's buffers at `data` as host memory MPI can use: the buffer itself
  /// on a host backend, a copy in `staging_` on a device backend (MPI is not CUDA-aware here).
  template <class B>
  float* on_host(float* data, std::size_t n) {
    if constexpr (detail::host_storage<B>) {
      return data;
    } else {
      staging_.resize(n);
      B::copy_to_host(data, static_cast<Index>(n), staging_.data());
      return staging_.data();
    }
  }
  /// Copies what on_host returned back to the backend's memory (nothing on a host backend).
  template <class B>
  void back_from_host(const float* host, std::size_t n, float* data) {
    if constexpr (!detail::host_storage<B>) B::copy_from_host(host, static_cast<Index>(n), data);
  }

  // ---- fast mode: buckets -------------------------------------------------------------------

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
      if (!extends || bytes >= options_.bucket_bytes) {
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
    if constexpr (!detail::host_storage<B>) {
      // Device buffers: each bucket's span goes through a host copy it owns.
      for (auto& b : buckets_) b.staging = std::make_shared<std::vector<float>>(b.count);
      // (No capture of `this`: the strategy may move.)
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
    if (!order_known_) {  // first step: only learn the order (see reduce_gradients)
      announced_.push_back(it->second.second);
      return;
    }
    ++buckets_[it->second.first].ready;
    start_complete_buckets(false);
    for (std::size_t k = 0; k < next_to_start_; ++k) buckets_[k].request.test();  // let MPI progress
  }

  // ---- ZeRO stage 1 -----------------------------------------------------------------------------

  /// Rank r owns elements [r m, r m + counts[r]) of the buffers (m = ceil(N / P); the last ranks'
  /// shards end with the buffers).
  template <class B>
  void plan_shard(parameter_store<B>& params) {
    if (shard_planned_for_ == params.values() && params.values() != nullptr) return;
    const auto n = static_cast<std::size_t>(params.buffer_size()), p = static_cast<std::size_t>(ranks());
    shard_size_ = (n + p - 1) / p;
    shard_counts_.assign(p, 0);
    for (std::size_t r = 0; r < p; ++r) shard_counts_[r] = std::min(shard_size_, n - std::min(n, r * shard_size_));
    shard_grad_ = host_matrix<float>::Zero(static_cast<Index>(shard_size_), 1);
    shard_planned_for_ = params.values();
  }
  Index shard_begin() const { return static_cast<Index>(shard_size_) * rank(); }

  // ---- deterministic mode: a fixed pairwise tree over sample blocks ---------------------------

  template <class B>
  void reduce_deterministic(parameter_store<B>& params) {
    if (used_ != 1)
      throw error(detail::concat("DataParallel (deterministic): ", used_, " partial sums after the local blocks; "
                                 "block_done must be called once per block"));
    used_ = 0;
    std::vector<float>& mine = tree_[0];  // this rank's subtree sum, zero padded to p slices
    const auto n = static_cast<std::size_t>(params.buffer_size());
    const std::size_t p = static_cast<std::size_t>(ranks());
    const float* sum = mine.data();
    if (p > 1) {
      // Rank j owns slice j (m values); it receives slice j of every rank's subtree sum, adds
      // them in the tree's order, and all-gathers the result into every rank's gradients.
      const std::size_t m = mine.size() / p;
      comm_.all_to_all(mine.data(), slices_.data(), m);
      for (std::size_t width = 1; width < p; width *= 2)
        for (std::size_t left = 0; left + width < p; left += 2 * width)
          for (std::size_t i = 0; i < m; ++i) slices_[left * m + i] = slices_[left * m + i] + slices_[(left + width) * m + i];
      if (sharded()) {  // the owner keeps its slice; weights are gathered after the step
        std::copy(slices_.data(), slices_.data() + m, shard_grad_.data());
        return;
      }
      std::vector<std::size_t> counts(p);
      for (std::size_t r = 0; r < p; ++r) counts[r] = std::min(m, n - std::min(n, r * m));
      float* g = on_host<B>(params.gradients(), n);
      comm_.all_gather(slices_.data(), g, counts);
      return back_from_host<B>(g, n, params.gradients());
    }
    if (sharded()) {
      std::copy(sum, sum + n, shard_grad_.data());
      return;
    }
    float* g = on_host<B>(params.gradients(), n);
    std::copy(sum, sum + n, g);
    back_from_host<B>(g, n, params.gradients());
  }

  Comm comm_;
  data_parallel_options options_;
  std::vector<bucket> buckets_;
  std::unordered_map<const void*, std::pair<std::size_t, std::size_t>> owner_;  ///< gradient -> (bucket, parameter)
  std::vector<std::size_t> announced_;  ///< parameter indices in the order backward announced them
  bool order_known_ = false;
  float* gradients_ = nullptr;                ///< the model's gradient buffer (fast mode)
  std::shared_ptr<const void> keep_alive_;    ///< owns it while all-reduces are in flight
  void (*stage_)(bucket&, float*) = nullptr;    ///< device backends: a bucket's span to the host
  void (*unstage_)(bucket&, float*) = nullptr;  ///< and back
  std::size_t next_to_start_ = 0;
  const float* planned_for_ = nullptr;    ///< the gradient buffer the buckets were planned over
  std::vector<std::vector<float>> tree_;  ///< deterministic mode: partial sums (a stack), preallocated
  std::size_t tree_elements_ = 0;         ///< elements of the buffers the tree was sized for
  std::vector<int> levels_;               ///< tree level of each partial sum in use
  std::size_t used_ = 0;                  ///< partial sums in use
  std::vector<float> slices_;             ///< the owned slice of every rank's sum
  std::vector<float> staging_;            ///< device backends: a span of the buffers on the host
  std::size_t shard_size_ = 0;
  std::vector<std::size_t> shard_counts_;  ///< elements of each rank's shard
  host_matrix<float> shard_grad_;          ///< ZeRO: this rank's shard of the summed gradient
  const float* shard_planned_for_ = nullptr;
};

}  // namespace strata
