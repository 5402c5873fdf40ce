#pragma once
/// \file optimizer.hpp
/// Every optimizer (SGD, Adam, AdamW, RMSprop, Adagrad), the learning-rate schedules and
/// gradient clipping. The optimizer contract is described in common.hpp.

#include "adagrad.hpp"
#include "adam.hpp"
#include "clip.hpp"
#include "common.hpp"
#include "rmsprop.hpp"
#include "schedule.hpp"
#include "sgd.hpp"
