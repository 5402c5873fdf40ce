#pragma once
/// \file tensor.hpp
/// Host-side tensor aliases. Activations are column-major `features x samples` matrices: one
/// sample per column, so a dense layer computes `Y = W X + b`, data parallelism splits columns
/// and model parallelism splits rows of W.

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

}  // namespace strata
