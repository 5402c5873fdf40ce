#pragma once
/// \file host_staging.hpp
/// Spans of a model's parameter buffers as host memory for MPI (which is not CUDA-aware here):
/// the span itself on a host backend, a staged copy on a device backend.

#include <cstddef>
#include <vector>

#include "../core/config.hpp"
#include "../core/tensor.hpp"

namespace strata::detail {

/// `n` elements of backend memory at `data` as host memory: `data` itself on a host backend,
/// else a copy in `staging`.
template <class B>
float* on_host(float* data, std::size_t n, std::vector<float>& staging) {
  if constexpr (host_storage<B>) {
    return data;
  } else {
    staging.resize(n);
    B::copy_to_host(data, static_cast<Index>(n), staging.data());
    return staging.data();
  }
}

/// Copies what on_host returned back to the backend's memory (nothing on a host backend).
template <class B>
void back_from_host(const float* host, std::size_t n, float* data) {
  if constexpr (!host_storage<B>) B::copy_from_host(host, static_cast<Index>(n), data);
}

}  // namespace strata::detail
