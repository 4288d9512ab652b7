// The MAE encoder, as MaskedAutoencoderViT.forward_encoder: patch embedding of the kept patches,
// position embedding, cls token, `depth` blocks, final LayerNorm. Also the unmasked pass used for
// features (all L patches in natural order).
#pragma once
#include <vector>

#include "mae/layers/block.hpp"
#include "mae/layers/patch_embed.hpp"

namespace mae {

// Hands out consecutive aligned spans of an arena; run once with base == nullptr to measure.
template <class T>
struct Spanner {
  T* base = nullptr;
  Index total = 0;
  Span<T> take(Index n) {
    Span<T> s{base ? base + total : nullptr, n};
    total += (n + 15) / 16 * 16;
    return s;
  }
  MatView<T> mat(Index rows, Index cols) { return {take(rows * cols).data, rows, cols}; }
};

// Activations of one encoder pass over n samples of `keep` patches each (T = 1 + keep tokens).
// With for_backward, every block keeps its input and cache, and the blocks' forward scratch is the
// owner's backward scratch (set `scratch` after layout); otherwise two stream buffers, one cache and
// a forward scratch of its own are reused (inference).
template <class T>
struct EncoderActs {
  Index n = 0, keep = 0;
  bool for_backward = true;
  MatView<T> patches, tok, out;   // (n*keep, P), (n*keep, D), (n*(1+keep), D)
  std::vector<MatView<T>> xs;     // stream; block i reads xs[i] (or xs[i % 2]) and writes the next
  std::vector<BlockCache<T>> caches;
  LayerNormCache<T> norm;
  Span<T> scratch;                // at least Encoder::forward_scratch_elems
  MatView<T> in(Index i) const { return xs[i % xs.size()]; }
  MatView<T> after(Index i) const { return xs[(i + 1) % xs.size()]; }
  BlockCache<T> cache(Index i) const { return caches[i % caches.size()]; }
};

template <class T>
struct Encoder {
  Index dim = 0;
  PatchEmbed<T> patch;
  std::vector<Block<T>> blocks;
  LayerNorm<T> norm;

  Index depth() const { return Index(blocks.size()); }
  // Blocks share one scratch (all blocks of a stack have the same shapes); depth 0 needs none.
  Index block_scratch_elems(Index n, Index t) const { return blocks.empty() ? 0 : blocks[0].scratch_elems(n, t); }
  Index forward_scratch_elems(Index n, Index keep, bool for_backward = true) const {
    return blocks.empty() ? 0 : blocks[0].forward_scratch_elems(n, 1 + keep, for_backward);
  }

  void layout(Spanner<T>& sp, EncoderActs<T>& a, Index n, Index keep, bool for_backward) const {
    const Index t = 1 + keep, r = n * t;
    a.n = n;
    a.keep = keep;
    a.for_backward = for_backward;
    a.patches = sp.mat(n * keep, patch.patch_dim());
    a.tok = sp.mat(n * keep, dim);
    a.xs.clear();
    a.caches.clear();
    const Index streams = for_backward ? depth() + 1 : 2, caches = for_backward ? depth() : std::min<Index>(1, depth());
    for (Index i = 0; i < streams; ++i) a.xs.push_back(sp.mat(r, dim));
    for (Index i = 0; i < caches; ++i)
      a.caches.push_back(
          blocks[0].make_cache(sp.take(blocks[0].cache_elems(n, t, for_backward)), n, t, for_backward));
    a.norm = LayerNorm<T>::make_cache(sp.take(LayerNorm<T>::cache_elems(r)), r);
    a.out = sp.mat(r, dim);
    a.scratch = for_backward ? Span<T>{} : sp.take(forward_scratch_elems(n, keep, false));
  }
  // Scratch for backward: two stream gradients, block scratch, token gradients.
  Index scratch_elems(Index n, Index keep) const {
    const Index r = n * (1 + keep);
    return 2 * (r * dim + 16) + block_scratch_elems(n, 1 + keep) + 16 + n * keep * dim;
  }

  // imgs (n, C, H, W) in backend memory; ids (n, ids_ld): the first `keep` of each row are embedded.
  template <class B>
  void forward(B& be, const T* imgs, const std::int64_t* ids, Index ids_ld, const EncoderActs<T>& a) const {
    const Index t = 1 + a.keep;
    patch.forward(be, imgs, ids, ids_ld, a.n, a.keep, a.patches, a.tok, a.in(0));
    MAE_ASSERT(a.scratch.size >= forward_scratch_elems(a.n, a.keep, a.for_backward), "encoder forward scratch too small");
    for (Index i = 0; i < depth(); ++i) blocks[i].forward(be, a.in(i), a.after(i), a.n, t, a.cache(i), a.scratch);
    norm.forward(be, a.in(depth()), a.out, a.norm);
  }

  // dout: d loss / d out; adds every parameter gradient. on_block(i) runs once block i's gradients are final.
  template <class B>
  void backward(B& be, const EncoderActs<T>& a, MatView<const T> dout, Span<T> scratch) const {
    backward(be, a, dout, scratch, [](Index) {});
  }
  template <class B, class OnBlock>
  void backward(B& be, const EncoderActs<T>& a, MatView<const T> dout, Span<T> scratch, OnBlock&& on_block) const {
    const Index t = 1 + a.keep, r = a.n * t;
    Spanner<T> sp{scratch.data};
    MatView<T> g[2] = {sp.mat(r, dim), sp.mat(r, dim)};
    Span<T> block_scratch = sp.take(block_scratch_elems(a.n, t));
    MatView<T> dtok = sp.mat(a.n * a.keep, dim);
    MAE_ASSERT(sp.total <= scratch.size, "encoder scratch too small");
    zero(be, g[0].span());
    norm.backward(be, a.in(depth()), dout, a.norm, g[0]);
    for (Index i = depth() - 1, k = 0; i >= 0; --i, k ^= 1) {
      blocks[i].backward(be, a.in(i), g[k], a.n, t, a.cache(i), block_scratch, g[k ^ 1], /*accumulate=*/false);
      on_block(i);
    }
    patch.backward(be, a.n, a.keep, a.patches, g[depth() % 2], dtok);
  }
};

}  // namespace mae
