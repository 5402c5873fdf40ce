#pragma once
/// \file device_matrix.hpp
/// Column-major matrix storage in Thrust's device memory: GPU memory under CUDA, ordinary host
/// memory under Thrust's OpenMP and CPP systems. The storage type of ThrustBackend.

// Without nvcc, Thrust must be told to use a host system for "device" code; its default is CUDA,
// which only nvcc can compile.
#if !defined(__CUDACC__) && !defined(THRUST_DEVICE_SYSTEM)
#error "strata: the Thrust backend without nvcc needs -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_OMP (with -fopenmp) or =THRUST_DEVICE_SYSTEM_CPP"
#endif

#include <thrust/copy.h>
#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>

#include "../core/config.hpp"
#include "../core/error.hpp"

namespace strata {

/// A `rows x cols` column-major matrix in device memory. Element (i, j) is at `i + j * rows()`.
/// It is also ThrustBackend's parameter storage: `place(at)` moves the elements into a buffer
/// the model owns (core/parameter_store.hpp), and the matrix views them there from then on.
///
/// The allocation only grows: shrinking the shape keeps the buffer, and growing back up to the
/// largest size seen reuses it. Layers resize their output and gradient buffers every step (the
/// last batch of an epoch is often smaller), and a fresh device allocation each time would cost
/// a synchronising cudaMalloc/cudaFree on a GPU and page faults on the host.
template <class T>
class device_matrix {
 public:
  using value_type = T;
  using iterator = thrust::device_ptr<T>;
  using const_iterator = thrust::device_ptr<const T>;

  device_matrix() = default;
  /// A `rows x cols` matrix with unspecified contents.
  device_matrix(Index rows, Index cols) { resize(rows, cols); }
  /// A copy owns its elements, even when `other` views a placed buffer.
  device_matrix(const device_matrix& other) : storage_(other.begin(), other.end()), rows_(other.rows_), cols_(other.cols_) {}
  device_matrix& operator=(const device_matrix& other) {
    if (this == &other) return *this;
    resize(other.rows_, other.cols_);
    if (size() > 0) thrust::copy(thrust::device, other.begin(), other.end(), begin());
    return *this;
  }
  device_matrix(device_matrix&&) noexcept = default;
  device_matrix& operator=(device_matrix&&) noexcept = default;

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  /// Number of elements, `rows() * cols()`.
  Index size() const { return rows_ * cols_; }
  /// Number of elements the current allocation holds (at least `size()`).
  Index capacity() const { return static_cast<Index>(storage_.size()); }

  /// Raw device pointer to element (0, 0); null while nothing has been allocated.
  T* data() { return placed_at_ != nullptr ? placed_at_ : thrust::raw_pointer_cast(storage_.data()); }
  const T* data() const { return placed_at_ != nullptr ? placed_at_ : thrust::raw_pointer_cast(storage_.data()); }

  /// Thrust iterators over the `size()` elements in column-major order.
  iterator begin() { return iterator(data()); }
  iterator end() { return iterator(data()) + size(); }
  const_iterator begin() const { return const_iterator(data()); }
  const_iterator end() const { return const_iterator(data()) + size(); }

  /// Copies the elements to device memory `at` (room for `size()`), frees the own allocation
  /// and views `at` from now on; the shape is then fixed. The model calls this once per
  /// parameter tensor and gradient, after every layer has built.
  void place(T* at) {
    if (size() > 0) thrust::copy(thrust::device, begin(), end(), thrust::device_ptr<T>(at));
    storage_.clear();
    storage_.shrink_to_fit();
    placed_at_ = at;
  }
  /// Whether the elements live in a buffer placed by the model.
  bool placed() const { return placed_at_ != nullptr; }

  /// Changes the shape. The contents become unspecified (as with Eigen's resize); memory is
  /// reallocated only when the element count exceeds the capacity.
  void resize(Index rows, Index cols) {
    if (rows < 0 || cols < 0)
      throw shape_error(detail::concat("device_matrix: cannot resize to ", shape_string(rows, cols)));
    const Index n = rows * cols;
    if (placed() && (rows != rows_ || cols != cols_))
      throw shape_error(detail::concat("a parameter placed in its model's buffers cannot change shape from ",
                                       shape_string(rows_, cols_), " to ", shape_string(rows, cols)));
    if (placed()) return;
    if (n > capacity()) {
      // Release the old buffer first: resizing in place would copy the stale contents into the
      // new allocation and briefly hold both.
      storage_.clear();
      storage_.shrink_to_fit();
      storage_.resize(static_cast<std::size_t>(n));
    }
    rows_ = rows;
    cols_ = cols;
  }

 private:
  thrust::device_vector<T> storage_;  // its size() is the capacity
  Index rows_ = 0, cols_ = 0;
  T* placed_at_ = nullptr;  // set by place(): the elements live there
};

}  // namespace strata
