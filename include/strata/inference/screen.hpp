#pragma once
/// \file screen.hpp
/// Scoring a library with a trained model at full speed: `predict_stream` runs evaluation-mode
/// forward passes over any dataset in large batches (multi-threaded GEMMs, buffers allocated
/// once), handing each batch's predictions to the caller; `TopK` keeps the k best molecules in
/// a bounded heap, so memory does not grow with the library; `ScreenProgress` prints
/// molecules/s and an ETA.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iomanip>
#include <ostream>
#include <queue>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../graph/model.hpp"
#include "../layers/layer.hpp"

namespace strata {

/// How several predictions of one molecule spread (Monte-Carlo dropout or an ensemble).
struct score_spread {
  double std = 0.0, min = 0.0, max = 0.0;
};

/// A molecule and its predicted score (and its true score when the library knows it).
struct scored_molecule {
  std::uint64_t id = 0;     ///< position in the library (breaks ties)
  double predicted = 0.0;   ///< the prediction, or the mean of several
  double truth = 0.0;
  std::string name{};       ///< the library's name for it, when it has one
  score_spread spread{};    ///< the spread of several predictions (zero for one)
};

/// The k molecules with the highest predicted score seen so far (a min-heap of size k).
class TopK {
 public:
  explicit TopK(std::size_t k) : k_(k) {}

  /// Whether a molecule scored `predicted` at position `id` would be kept now (so a caller can
  /// skip building the molecule's name when not).
  bool admits(double predicted, std::uint64_t id) const {
    return k_ > 0 && (heap_.size() < k_ || better({id, predicted, 0.0}, heap_.front()));
  }

  void offer(const scored_molecule& m) {
    if (k_ == 0) return;
    if (heap_.size() < k_) {
      heap_.push_back(m);
      std::push_heap(heap_.begin(), heap_.end(), worse_first);
    } else if (better(m, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), worse_first);
      heap_.back() = m;
      std::push_heap(heap_.begin(), heap_.end(), worse_first);
    }
  }

  /// The kept molecules, best first (ties by id).
  std::vector<scored_molecule> sorted() const {
    std::vector<scored_molecule> out = heap_;
    std::sort(out.begin(), out.end(), [](const scored_molecule& a, const scored_molecule& b) { return better(a, b); });
    return out;
  }
  std::size_t capacity() const { return k_; }

 private:
  /// Higher prediction first, NaN last; the lower id wins a tie, so results do not depend on
  /// batch order (and a NaN cannot break the heap's ordering).
  static bool better(const scored_molecule& a, const scored_molecule& b) {
    const double x = std::isnan(a.predicted) ? -HUGE_VAL : a.predicted, y = std::isnan(b.predicted) ? -HUGE_VAL : b.predicted;
    return x != y ? x > y : a.id < b.id;
  }
  static bool worse_first(const scored_molecule& a, const scored_molecule& b) { return better(a, b); }

  std::size_t k_;
  std::vector<scored_molecule> heap_;
};

/// A progress line for long screens: done/total, molecules/s and ETA, at most every `seconds`.
class ScreenProgress {
 public:
  ScreenProgress(std::ostream* out, std::uint64_t total, double seconds = 5.0)
      : out_(out), total_(total), every_(seconds), start_(std::chrono::steady_clock::now()) {}

  void update(std::uint64_t done) {
    const double elapsed = seconds();
    if (out_ == nullptr || (elapsed - last_ < every_ && done < total_)) return;
    last_ = elapsed;
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    std::ostringstream line;
    line << "screened " << done << " / " << total_ << " molecules  " << std::fixed << std::setprecision(0) << rate
         << " molecules/s  ETA " << std::setprecision(1) << eta << " s\n";
    *out_ << line.str() << std::flush;
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::ostream* out_;
  std::uint64_t total_;
  double every_, last_ = -1e300;
  std::chrono::steady_clock::time_point start_;
};

/// Runs `model` in evaluation mode over every sample of `data`, `batch` samples per pass, and
/// calls `on_batch(first, predictions, targets)` for each pass (first = index of its first
/// sample; predictions `outputs x count`, targets as the dataset gives them). `on_batch` must
/// not change the model's parameters: passes after the first reuse what layers derived from them.
template <class Spec, class B, class Dataset, class F>
void predict_stream(Model<Spec, B>& model, const Dataset& data, Index batch, F&& on_batch) {
  using T = typename B::scalar;
  if (batch <= 0) throw config_error(detail::concat("predict_stream: batch must be positive, got ", batch));
  if (data.input_width() != model.input_width())
    throw shape_error(detail::concat("the model reads ", model.input_width(), " features per molecule, the library has ",
                                     data.input_width()));
  host_matrix<T> x, y, predictions;
  typename B::matrix device_x;
  std::vector<Index> indices(static_cast<std::size_t>(batch));
  for (Index first = 0; first < data.size(); first += batch) {
    const Index count = std::min(batch, data.size() - first);
    for (Index j = 0; j < count; ++j) indices[static_cast<std::size_t>(j)] = first + j;
    pass_info pass;
    pass.phase = mode::eval;
    pass.first_sample = static_cast<std::uint64_t>(first);
    pass.parameters_unchanged = first > 0;  // on_batch must leave the model alone
    if constexpr (std::is_same_v<typename B::matrix, host_matrix<T>>) {
      data.gather(indices.data(), count, device_x, y);  // a host backend reads the batch where it lies
    } else {
      data.gather(indices.data(), count, x, y);
      B::upload(x, device_x);
    }
    B::download(model.forward(device_x, pass), predictions);
    on_batch(first, static_cast<const host_matrix<T>&>(predictions), static_cast<const host_matrix<T>&>(y));
  }
}

}  // namespace strata
