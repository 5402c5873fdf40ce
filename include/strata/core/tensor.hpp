#pragma once
/// \file tensor.hpp
/// Host-side tensor aliases. Activations are column-major `features x samples` matrices: one
/// sample per column, so a dense layer computes `Y = W X + b`, data parallelism splits columns
/// and model parallelism splits rows of W.

#include <type_traits>

#include <Eigen/Core>

#include "config.hpp"

namespace strata {

/// A column-major host matrix (`features x samples` for activations).
template <class T>
using host_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

/// A host column vector.
template <class T>
using host_vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// Single-precision host matrix, the default for training and inference.
using matrix_f = host_matrix<float>;
/// Double-precision host matrix, used by gradient checks and metrics.
using matrix_d = host_matrix<double>;

namespace detail {
/// True when backend `B` keeps its matrices in host memory (collectives can use their storage
/// directly); false for device backends, whose data is staged through the host.
template <class B>
inline constexpr bool host_storage = std::is_same_v<typename B::matrix, host_matrix<typename B::scalar>>;
}  // namespace detail

}  // namespace strata
