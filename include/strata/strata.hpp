#pragma once
/// \file strata.hpp
/// The umbrella include for building models: core (tensors, errors, random streams, initialisers,
/// the parameter view), the Eigen backend, the layers (Dense, activations, Dropout, BatchNorm,
/// LayerNorm, Identity, Input) and graph (the combinators and Model). Everything else is included
/// where it is used:
///   training   train/trainer.hpp (Trainer, with MSE, Adam and Serial); optim/optimizer.hpp and
///              loss/loss.hpp for the other optimizers, schedules and losses; train/callbacks.hpp,
///              train/ltfb.hpp, train/model_file.hpp
///   data       data/dataset.hpp, data/loader.hpp, data/drug_response.hpp, data/prepare.hpp,
///              data/split.hpp, data/synthetic_*.hpp, data/molecule_files.hpp, ...
///   I/O        io/state_file.hpp, io/model_state.hpp (train/checkpoint.hpp for checkpoints)
///   parallel   parallel/data_parallel.hpp, model_parallel.hpp, tournament.hpp, abort_on_error.hpp
///              (over any communicator); parallel/mpi_communicator.hpp for MPI (Boost.MPI: link
///              Strata::mpi)
///   Thrust     backend/thrust_backend.hpp (nvcc, or g++ with -DTHRUST_DEVICE_SYSTEM=...)
///   also       layers/sparse_input_dense.hpp, models/, inference/, chem/ (RDKit: Strata::rdkit)

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
