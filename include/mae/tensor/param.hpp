// A trainable tensor as a layer sees it: value and gradient views into the model's arenas.
#pragma once
#include "mae/config.hpp"

namespace mae {
template <class T>
struct Param {
  T* value = nullptr;
  T* grad = nullptr;   // null for fixed tensors (position embeddings)
  Index size = 0;
};
}  // namespace mae
