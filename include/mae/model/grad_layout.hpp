// Where each tensor's gradient lives in the gradient arena.
//   Gradients::Full      the arena mirrors the parameter arena (same offsets).
//   Gradients::PerBlock  [the tensors outside the transformer blocks, back to back | one buffer the
//                        size of the largest block, shared by every block]: for an optimizer applied
//                        inside backward, block by block (MaeViT::backward(scale, sink), TrainLoop).
#pragma once
#include <algorithm>
#include <vector>

#include "mae/model/param_table.hpp"

namespace mae {

enum class Gradients { Full, PerBlock };

// A transformer block's run of tensors in the table (encoder blocks, then decoder blocks).
struct BlockSpan {
  Index entry_begin = 0, entry_end = 0;  // ParamTable::entries() indices
  Index offset = 0, size = 0;            // its region of the parameter arena
};

class GradLayout {
 public:
  static constexpr Index kNonBlock = -1;

  // Around the table additions of one block, then finish() once the table is complete.
  void begin_block(const ParamTable& t) {
    open_.entry_begin = Index(t.entries().size());
    open_.offset = t.total();
  }
  void end_block(const ParamTable& t) {
    open_.entry_end = Index(t.entries().size());
    open_.size = t.total() - open_.offset;
    blocks_.push_back(open_);
  }
  void finish(const ParamTable& t) {
    const auto& es = t.entries();
    block_of_.assign(es.size(), kNonBlock);
    for (Index k = 0; k < Index(blocks_.size()); ++k)
      for (Index e = blocks_[k].entry_begin; e < blocks_[k].entry_end; ++e) block_of_[e] = k;
    rest_offset_.assign(es.size(), 0);
    rest_size_ = 0;
    for (std::size_t e = 0; e < es.size(); ++e)
      if (block_of_[e] == kNonBlock && es[e].trainable) {
        rest_offset_[e] = rest_size_;
        rest_size_ += (es[e].numel + 15) / 16 * 16;
      }
    max_block_ = 0;
    for (const BlockSpan& b : blocks_) max_block_ = std::max(max_block_, b.size);
    table_total_ = t.total();
  }

  const std::vector<BlockSpan>& blocks() const { return blocks_; }
  Index block_of(Index e) const { return block_of_.at(e); }  // entry e's block, or kNonBlock
  Index arena_size(Gradients g) const { return g == Gradients::Full ? table_total_ : rest_size_ + max_block_; }
  // PerBlock: the tensors outside the blocks are [0, rest_size()), the shared block buffer follows.
  Index rest_size() const { return rest_size_; }
  // Offset of (trainable) entry e's gradient in the arena.
  Index offset(Gradients g, const ParamTable& t, Index e) const {
    const ParamInfo& p = t.entries()[e];
    if (g == Gradients::Full) return p.offset;
    const Index k = block_of_[e];
    return k == kNonBlock ? rest_offset_[e] : rest_size_ + (p.offset - blocks_[k].offset);
  }

 private:
  BlockSpan open_;
  std::vector<BlockSpan> blocks_;
  std::vector<Index> block_of_, rest_offset_;
  Index rest_size_ = 0, max_block_ = 0, table_total_ = 0;
};

}  // namespace mae
