// mae.cpp umbrella header: the model, its layers and the CPU backends. Never pulls in CUDA.
#pragma once
#include "mae/backend/cpu_eigen.hpp"
#include "mae/config.hpp"
#include "mae/model/mae_vit.hpp"
