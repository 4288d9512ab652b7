// Arenas: one allocation per purpose, planned before it is made. A Planner hands out aligned
// offsets while the owner walks its layout; then one Buffer of the planned size is allocated in the
// backend's memory and the offsets become views. Nothing else allocates during a training step.
#pragma once
#include <utility>

#include "mae/tensor/view.hpp"

namespace mae {

struct Planner {
  Index total = 0;
  static constexpr Index kAlign = 16;  // elements: 64 bytes for float
  Index take(Index elems) {
    const Index at = total;
    total += (elems + kAlign - 1) / kAlign * kAlign;
    return at;
  }
};

// Owns `size` elements of T in backend memory (host or device). Move-only.
template <class T, class B>
class Buffer {
 public:
  Buffer() = default;
  Buffer(B& be, Index size) : be_(&be), size_(size) {
    MAE_CHECK(size >= 0, "Buffer: negative size ", size);
    data_ = static_cast<T*>(be.allocate(static_cast<std::size_t>(size) * sizeof(T)));
  }
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    Buffer(std::move(o)).swap(*this);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (data_) be_->deallocate(data_);
  }
  void swap(Buffer& o) noexcept {
    std::swap(be_, o.be_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }
  T* data() const { return data_; }
  Index size() const { return size_; }
  Span<T> span() const { return {data_, size_}; }
  Span<T> at(Index offset, Index n) const {
    MAE_ASSERT(offset + n <= size_, "Buffer::at out of range");
    return {data_ + offset, n};
  }

 private:
  B* be_ = nullptr;
  T* data_ = nullptr;
  Index size_ = 0;
};

}  // namespace mae
