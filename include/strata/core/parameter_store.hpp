#pragma once
/// \file parameter_store.hpp
/// Every parameter of a model, stored once: one contiguous buffer of values and one of
/// gradients, each parameter tensor a named view of its piece of both (name, offset, shape, row
/// split, group; core/parameter.hpp). Layers keep using their tensors as matrices; everything
/// that treats the parameters as a whole (data-parallel all-reduce and its buckets, ZeRO shards,
/// broadcasts, gradient zeroing) works on spans of the two buffers without copying tensors in
/// and out of flat staging buffers.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "parameter.hpp"
#include "random.hpp"

namespace strata {

/// The parameter list of a model and the two buffers its tensors live in. The list reads like a
/// `std::vector<parameter<B>>` (build order); `place()` moves the tensors into the buffers.
template <class B>
class parameter_store {
 public:
  using scalar = typename B::scalar;
  using list = std::vector<parameter<B>>;
  using iterator = typename list::iterator;
  using const_iterator = typename list::const_iterator;

  /// Tensors start at multiples of this many elements (64 bytes of floats). A tensor is then
  /// at least as aligned as a matrix allocated on its own, so vectorised kernels split their work
  /// the same way (and sum in the same order) as before the tensors were placed; the padding
  /// between tensors holds zeros in both buffers and stays zero.
  static constexpr Index alignment = 16;

  iterator begin() { return list_.begin(); }
  iterator end() { return list_.end(); }
  const_iterator begin() const { return list_.begin(); }
  const_iterator end() const { return list_.end(); }
  std::size_t size() const { return list_.size(); }
  bool empty() const { return list_.empty(); }
  parameter<B>& operator[](std::size_t k) { return list_[k]; }
  const parameter<B>& operator[](std::size_t k) const { return list_[k]; }

  /// Forgets every parameter and both buffers (a model being rebuilt).
  void clear() {
    list_.clear();
    values_.reset();
    gradients_.reset();
    size_ = 0;
  }
  /// Adds a parameter the layers still own the storage of; `place()` moves it.
  void add(const parameter<B>& p) { list_.push_back(p); }

  /// Lays the tensors out in build order (each at an aligned offset), allocates both buffers
  /// and moves every tensor and gradient into them. Called once per build, by the model.
  void place() {
    Index n = 0;
    for (auto& p : list_) {
      p.offset = n;
      n += (p.value->size() + alignment - 1) / alignment * alignment;
    }
    size_ = n;
    values_ = std::make_shared<typename B::matrix>();
    gradients_ = std::make_shared<typename B::matrix>();
    for (auto* buffer : {values_.get(), gradients_.get()}) {
      B::resize(*buffer, n, 1);
      B::fill(*buffer, scalar(0));
    }
    for (auto& p : list_) {
      p.value->place(B::data(*values_) + p.offset);
      p.gradient->place(B::data(*gradients_) + p.offset);
    }
  }

  /// A hash of every parameter's group: ranks must train the same tensors at the same rates.
  std::uint64_t groups_signature() const {
    std::uint64_t h = 0x6A09E667F3BCC908ull;
    for (const auto& p : list_)
      h = mix64(h ^ detail::bits_signature(p.group.lr_scale, 0)) ^ mix64(h + (p.group.weight_decay ? 1u : 2u));
    return h;
  }

  /// Sets every gradient to zero (one fill of the gradient buffer).
  void zero_gradients() {
    if (gradients_) B::fill(*gradients_, scalar(0));
  }

  /// Elements in each buffer, alignment padding included.
  Index buffer_size() const { return size_; }
  /// The value buffer (all weights) and the gradient buffer: `buffer_size()` elements each, in
  /// the backend's memory; parameter k occupies [offset, offset + size) of both.
  scalar* values() { return size_ > 0 ? B::data(*values_) : nullptr; }
  scalar* gradients() { return size_ > 0 ? B::data(*gradients_) : nullptr; }
  /// Shares ownership of the buffers: a non-blocking transfer in flight keeps them alive even if
  /// the model is destroyed first (a rank unwinding after an error).
  std::shared_ptr<void> keep_alive() const { return std::make_shared<buffers>(buffers{values_, gradients_}); }

 private:
  struct buffers {
    std::shared_ptr<typename B::matrix> values, gradients;
  };

  list list_;
  std::shared_ptr<typename B::matrix> values_, gradients_;
  Index size_ = 0;
};

/// One slice per parameter, each the whole tensor (its view of the model's buffers).
template <class B>
std::vector<parameter_slice<B>> whole_slices(parameter_store<B>& params) {
  std::vector<parameter_slice<B>> slices;
  slices.reserve(params.size());
  for (std::size_t k = 0; k < params.size(); ++k) {
    auto& p = params[k];
    slices.push_back({p.name, B::data(*p.value), B::data(*p.gradient), p.value->rows(), p.value->cols(), 0, k, p.group});
  }
  return slices;
}

/// Copies every parameter's current group into the slices cut from it (groups may change
/// between steps: a layer thawed after some epochs).
template <class B>
void refresh_groups(std::vector<parameter_slice<B>>& slices, const parameter_store<B>& params) {
  for (auto& s : slices) s.group = params[s.parameter].group;
}

}  // namespace strata
