#pragma once
/// \file loader.hpp
/// `BatchLoader`: turns a dataset into the minibatches of an epoch. The order is a counter-based
/// permutation of (seed, epoch), so epoch e is the same sequence of batches on every run, rank
/// count and restart; an epoch can start at any batch (resuming mid-epoch). Each global batch is
/// cut by a `local_range` function (the parallel strategy's shard selection) so a rank gathers
/// only its columns. With prefetch, a worker thread gathers batch k+1 while the caller computes
/// on batch k: gathering rows from entity tables overlaps with the math.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"

namespace strata {

/// How a `BatchLoader` cuts and orders an epoch.
struct loader_options {
  Index batch_size = 256;   ///< global minibatch size (the last batch of an epoch may be smaller)
  bool shuffle = true;      ///< a new permutation every epoch; false keeps the dataset order
  std::uint64_t seed = 0;   ///< seed of the permutations
  bool prefetch = true;     ///< gather the next batch on a worker thread
};

/// One minibatch as this rank sees it.
template <class T>
struct minibatch {
  host_matrix<T> x, y;   ///< this rank's columns: `features x count`, `targets x count`
  Index index = 0;       ///< batch number within the epoch
  Index first = 0;       ///< position of the global batch's first sample in the epoch order
  Index global = 0;      ///< samples in the global batch (over all ranks)
  Index offset = 0;      ///< first column of the global batch that this rank holds
  Index count = 0;       ///< columns this rank holds
};

/// The minibatches of a dataset, epoch by epoch (see the file comment). Not copyable: it owns
/// the prefetch thread and refers to the dataset.
template <class Dataset>
class BatchLoader {
 public:
  using T = typename Dataset::scalar;
  /// Maps a global batch size to (first column, columns) of this rank's share.
  using range_function = std::function<std::pair<Index, Index>(Index)>;

  /// The permutation of 0..n-1 used for `epoch` (identity without shuffling).
  static std::vector<Index> epoch_order(Index n, std::uint64_t seed, std::uint64_t epoch, bool shuffle = true) {
    if (shuffle) return permutation(n, random_stream(seed, purpose::shuffle).substream(epoch));
    std::vector<Index> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), Index{0});
    return order;
  }

  /// `data` must outlive the loader. Without `local_range` every rank takes whole batches.
  BatchLoader(const Dataset& data, loader_options options, range_function local_range = {})
      : data_(data), options_(options), local_range_(std::move(local_range)) {
    if (options_.batch_size <= 0)
      throw config_error(detail::concat("BatchLoader: the batch size must be positive, got ", options_.batch_size));
    if (!local_range_) local_range_ = [](Index global) { return std::pair<Index, Index>{0, global}; };
  }
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  ~BatchLoader() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  /// Batches per epoch (the last one may be partial).
  Index batches() const { return data_.size() / options_.batch_size + (data_.size() % options_.batch_size != 0); }

  /// Starts `epoch` at batch `first_batch` (0 for a whole epoch).
  void start_epoch(std::uint64_t epoch, Index first_batch = 0) {
    wait_idle();
    if (first_batch < 0 || first_batch > batches())
      throw config_error(detail::concat("BatchLoader: epoch has ", batches(), " batches, cannot start at ", first_batch));
    order_ = epoch_order(data_.size(), options_.seed, epoch, options_.shuffle);
    error_ = nullptr;  // a failure while prefetching an abandoned epoch is not this epoch's
    failed_ = false;
    started_ = true;
    next_ = first_batch;
    if (options_.prefetch && next_ < batches()) request(next_);
  }

  /// The next batch of the epoch, or nullptr at its end. The batch stays valid until the next
  /// call (or `start_epoch`); errors raised while gathering it (bad data) are rethrown here.
  const minibatch<T>* next() {
    if (!started_) throw error("BatchLoader::next called before start_epoch");
    if (failed_) throw data_error("BatchLoader: a batch of this epoch could not be gathered; start the epoch again");
    if (next_ >= batches()) return nullptr;
    minibatch<T>* out;
    if (options_.prefetch) {
      wait_idle();
      if (error_) {
        failed_ = true;  // the slot holds no batch: later calls must not hand it out
        std::rethrow_exception(std::exchange(error_, nullptr));
      }
      out = &slots_[static_cast<std::size_t>(next_ % 2)];
      if (next_ + 1 < batches()) request(next_ + 1);
    } else {
      out = &slots_[0];
      place(*out, next_);
      fill(*out);
    }
    ++next_;
    return out;
  }

 private:
  /// Sets batch k's position and this rank's share; runs on the caller's thread, since the range
  /// function may consult a parallel strategy.
  void place(minibatch<T>& b, Index k) const {
    b.index = k;
    b.first = k * options_.batch_size;
    b.global = std::min(options_.batch_size, data_.size() - b.first);
    const auto [offset, count] = local_range_(b.global);
    if (offset < 0 || count < 0 || offset + count > b.global)
      throw config_error(detail::concat("BatchLoader: the local range (", offset, ", ", count, ") does not fit a batch of ",
                                        b.global));
    b.offset = offset;
    b.count = count;
  }

  void fill(minibatch<T>& b) const { data_.gather(order_.data() + b.first + b.offset, b.count, b.x, b.y); }

  void request(Index k) {
    place(slots_[static_cast<std::size_t>(k % 2)], k);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = k;
      if (!worker_.joinable()) worker_ = std::thread([this] { work(); });
    }
    wake_.notify_all();
  }

  void wait_idle() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return job_ < 0; });
  }

  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || job_ >= 0; });
      if (stop_) return;
      const Index k = job_;
      lock.unlock();
      try {
        fill(slots_[static_cast<std::size_t>(k % 2)]);
      } catch (...) {
        error_ = std::current_exception();  // read by the consumer after wait_idle()
      }
      lock.lock();
      job_ = -1;
      done_.notify_all();
    }
  }

  const Dataset& data_;
  loader_options options_;
  range_function local_range_;
  std::vector<Index> order_;
  Index next_ = 0;
  minibatch<T> slots_[2];
  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  Index job_ = -1;  ///< batch the worker is asked to fill; -1 when idle
  bool stop_ = false;
  bool started_ = false, failed_ = false;
  std::exception_ptr error_;
};

}  // namespace strata
