#pragma once
/// \file strata.hpp
/// The umbrella include: everything except the optional backends and MPI strategies, which
/// have dependencies of their own (include backend/thrust_backend.hpp or the parallel/ headers
/// explicitly).

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/init.hpp"
#include "core/parameter.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"

#include "backend/block.hpp"
#include "backend/eigen_backend.hpp"

#include "layers/activation.hpp"
#include "layers/batch_norm.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/identity.hpp"
#include "layers/layer.hpp"
#include "layers/layer_norm.hpp"

#include "graph/fork.hpp"
#include "graph/model.hpp"
#include "graph/repeat.hpp"
#include "graph/residual.hpp"
#include "graph/sequential.hpp"
#include "graph/shared.hpp"
#include "graph/slice.hpp"
