// The model's named tensors, in the official state_dict order and with its names and shapes
// (`blocks.3.attn.qkv.weight`, ...), laid out back to back in one parameter arena; the gradient arena
// has the same layout, so zeroing gradients is one fill and the optimizer walks flat segments.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "mae/config.hpp"

namespace mae {

struct ParamInfo {
  std::string name;
  std::vector<Index> shape;
  Index offset = 0, numel = 0;
  bool trainable = true;  // false: the fixed sin-cos position embeddings
  bool decay = true;      // AdamW weight decay group (official rule: not for 1-D tensors or biases)
};

inline std::string shape_str(const std::vector<Index>& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

class ParamTable {
 public:
  void add(const std::string& name, std::vector<Index> shape, bool trainable = true) {
    MAE_CHECK(!index_.count(name), "ParamTable: duplicate tensor '", name, "'");
    ParamInfo p;
    p.name = name;
    p.numel = 1;
    for (Index d : shape) p.numel *= d;
    p.shape = std::move(shape);
    p.offset = total_;
    p.trainable = trainable;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    p.decay = trainable && p.shape.size() > 1 && !is_bias;
    total_ += (p.numel + 15) / 16 * 16;  // 64-byte aligned tensors
    index_[name] = entries_.size();
    entries_.push_back(std::move(p));
  }
  const ParamInfo& at(const std::string& name) const {
    auto it = index_.find(name);
    MAE_CHECK(it != index_.end(), "model has no tensor '", name, "'");
    return entries_[it->second];
  }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const std::vector<ParamInfo>& entries() const { return entries_; }
  Index total() const { return total_; }

 private:
  std::vector<ParamInfo> entries_;
  std::unordered_map<std::string, std::size_t> index_;
  Index total_ = 0;
};

}  // namespace mae
