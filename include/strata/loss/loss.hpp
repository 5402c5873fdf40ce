#pragma once
/// \file loss.hpp
/// Every loss: MSE, MAE and Huber (the contract is described in common.hpp).

#include "huber.hpp"
#include "mae.hpp"
#include "mse.hpp"
