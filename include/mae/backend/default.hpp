// backend::Default: the best CPU backend this build has. OneDnn when the program links mae::onednn
// (which defines MAE_HAVE_ONEDNN=1), CpuEigen otherwise. The one place that #if lives.
#pragma once

#if defined(MAE_HAVE_ONEDNN) && MAE_HAVE_ONEDNN
#include "mae/backend/onednn.hpp"
namespace mae::backend {
using Default = OneDnn;
}  // namespace mae::backend
#else
#include "mae/backend/cpu_eigen.hpp"
namespace mae::backend {
using Default = CpuEigen;
}  // namespace mae::backend
#endif
