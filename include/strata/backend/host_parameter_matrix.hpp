#pragma once
/// \file host_parameter_matrix.hpp
/// How EigenBackend stores a parameter tensor or its gradient: a matrix that owns its elements
/// while its layer builds and is then *placed* by the model into the model's contiguous
/// parameter buffers (core/parameter_store.hpp), after which it is a view of its piece of them.
/// Layers read and write it like any Eigen matrix; once placed it keeps its shape for good.
///
/// Storing every parameter once, in one buffer, is what lets data-parallel all-reduce, ZeRO
/// shards and model exchange work on spans of that buffer instead of copying tensors in and out
/// of flat staging buffers every step.

#include <algorithm>
#include <new>
#include <utility>

#include "../core/error.hpp"
#include "../core/tensor.hpp"

namespace strata {

/// A column-major host matrix that owns its storage until `place` moves it into a buffer the
/// model owns; an `Eigen::Map` either way, so Eigen expressions take it without a copy.
template <class T>
class host_parameter_matrix : public Eigen::Map<host_matrix<T>> {
  using base = Eigen::Map<host_matrix<T>>;

 public:
  host_parameter_matrix() : base(nullptr, 0, 0) {}
  // Moving keeps the elements where they are (a placed matrix points into the model's buffer;
  // an owned one's heap block moves with it). Copies would alias one buffer: none.
  host_parameter_matrix(host_parameter_matrix&& other) noexcept
      : base(other.data(), other.rows(), other.cols()), owned_(std::move(other.owned_)), placed_(other.placed_) {
    other.rebind(nullptr, 0, 0);
  }
  host_parameter_matrix(const host_parameter_matrix&) = delete;
  host_parameter_matrix& operator=(host_parameter_matrix&&) = delete;

  /// Element-wise assignment from any Eigen expression of the same shape (as for a matrix).
  using base::operator=;
  /// Copies the other tensor's elements (not its storage), as assigning matrices would.
  host_parameter_matrix& operator=(const host_parameter_matrix& other) {
    resize(other.rows(), other.cols());
    base::operator=(other);
    return *this;
  }

  /// Changes the shape while the matrix owns its storage (contents unspecified, as Eigen's
  /// resize); a placed matrix keeps its shape and refuses another.
  void resize(Index rows, Index cols) {
    if (rows == this->rows() && cols == this->cols()) return;
    if (placed_)
      throw shape_error(detail::concat("a parameter placed in its model's buffers cannot change shape from ",
                                       shape_string(this->rows(), this->cols()), " to ", shape_string(rows, cols)));
    owned_.resize(rows, cols);
    rebind(owned_.data(), rows, cols);
  }

  /// Copies the elements to `at` (room for `size()` of them), frees the owned storage and from
  /// now on views `at`. The model calls this once, after every layer has built.
  void place(T* at) {
    std::copy(this->data(), this->data() + this->size(), at);
    rebind(at, this->rows(), this->cols());
    owned_ = host_matrix<T>();
    placed_ = true;
  }
  /// Whether the elements live in the model's buffers.
  bool placed() const { return placed_; }

 private:
  // Eigen documents re-seating a Map by constructing it again in place.
  void rebind(T* data, Index rows, Index cols) { new (static_cast<base*>(this)) base(data, rows, cols); }

  host_matrix<T> owned_;
  bool placed_ = false;
};

}  // namespace strata
