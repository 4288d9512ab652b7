// The MAE decoder, as MaskedAutoencoderViT.forward_decoder: embed the latent, append the mask token
// for every removed patch, unshuffle, add the decoder position embedding, `decoder_depth` blocks,
// LayerNorm, and the pixel prediction (Dd -> p*p*C) for every token.
#pragma once
#include "mae/layers/mask_unshuffle.hpp"
#include "mae/model/encoder.hpp"

namespace mae {

template <class T>
struct DecoderActs {
  Index n = 0, keep = 0, l = 0;
  MatView<T> y;                     // (n*(1+keep), Dd): decoder_embed(latent)
  std::vector<MatView<T>> zs;       // (n*(1+l), Dd): zs[0] block 0 input, zs[i+1] block i output
  std::vector<BlockCache<T>> caches;
  LayerNormCache<T> norm;
  MatView<T> normed, pred;          // (n*(1+l), Dd), (n*(1+l), P) (row 0 of each sample: cls)
  Span<T> scratch;                  // the blocks' forward scratch (the owner's backward scratch), set after layout
};

template <class T>
struct Decoder {
  Index dim = 0;
  Linear<T> embed;
  MaskUnshuffle<T> unshuffle;
  std::vector<Block<T>> blocks;
  LayerNorm<T> norm;
  Linear<T> pred;

  Index depth() const { return Index(blocks.size()); }
  Index block_scratch_elems(Index n, Index t) const { return blocks.empty() ? 0 : blocks[0].scratch_elems(n, t); }
  Index forward_scratch_elems(Index n, Index l) const {
    return blocks.empty() ? 0 : blocks[0].forward_scratch_elems(n, 1 + l);
  }

  void layout(Spanner<T>& sp, DecoderActs<T>& a, Index n, Index keep, Index l) const {
    const Index t = 1 + l, r = n * t;
    a.n = n;
    a.keep = keep;
    a.l = l;
    a.y = sp.mat(n * (1 + keep), dim);
    a.zs.clear();
    a.caches.clear();
    for (Index i = 0; i <= depth(); ++i) a.zs.push_back(sp.mat(r, dim));
    for (Index i = 0; i < depth(); ++i) a.caches.push_back(blocks[0].make_cache(sp.take(blocks[0].cache_elems(n, t)), n, t));
    a.norm = LayerNorm<T>::make_cache(sp.take(LayerNorm<T>::cache_elems(r)), r);
    a.normed = sp.mat(r, dim);
    a.pred = sp.mat(r, pred.out);
  }
  Index scratch_elems(Index n, Index keep, Index l) const {
    const Index r = n * (1 + l);
    return 2 * (r * dim + 16) + block_scratch_elems(n, 1 + l) + 16 + n * (1 + keep) * dim + 16;
  }

  template <class B>
  void forward(B& be, MatView<const T> latent, const std::int64_t* ids_restore, const DecoderActs<T>& a) const {
    const Index t = 1 + a.l;
    embed.forward(be, latent, a.y);
    unshuffle.forward(be, a.y, ids_restore, a.n, a.l, a.keep, a.zs[0]);
    MAE_ASSERT(a.scratch.size >= forward_scratch_elems(a.n, a.l), "decoder forward scratch too small");
    for (Index i = 0; i < depth(); ++i) blocks[i].forward(be, a.zs[i], a.zs[i + 1], a.n, t, a.caches[i], a.scratch);
    norm.forward(be, a.zs[depth()], a.normed, a.norm);
    pred.forward(be, a.normed, a.pred);
  }

  // dpred: d loss / d pred (every row); dlatent = d loss / d latent (overwritten); adds every parameter gradient.
  // on_block(i) runs once block i's gradients are final.
  template <class B>
  void backward(B& be, const DecoderActs<T>& a, MatView<const T> latent, const std::int64_t* ids_shuffle,
                const std::int64_t* ids_restore, MatView<const T> dpred, Span<T> scratch, MatView<T> dlatent) const {
    backward(be, a, latent, ids_shuffle, ids_restore, dpred, scratch, dlatent, [](Index) {});
  }
  template <class B, class OnBlock>
  void backward(B& be, const DecoderActs<T>& a, MatView<const T> latent, const std::int64_t* ids_shuffle,
                const std::int64_t* ids_restore, MatView<const T> dpred, Span<T> scratch, MatView<T> dlatent,
                OnBlock&& on_block) const {
    const Index t = 1 + a.l, r = a.n * t;
    Spanner<T> sp{scratch.data};
    MatView<T> g[2] = {sp.mat(r, dim), sp.mat(r, dim)};
    Span<T> block_scratch = sp.take(block_scratch_elems(a.n, t));
    MatView<T> dy = sp.mat(a.n * (1 + a.keep), dim);
    MAE_ASSERT(sp.total <= scratch.size, "decoder scratch too small");
    pred.backward(be, a.normed, dpred, g[1], /*accumulate_dx=*/false);
    zero(be, g[0].span());
    norm.backward(be, a.zs[depth()], g[1], a.norm, g[0]);
    for (Index i = depth() - 1, k = 0; i >= 0; --i, k ^= 1) {
      blocks[i].backward(be, a.zs[i], g[k], a.n, t, a.caches[i], block_scratch, g[k ^ 1], /*accumulate=*/false);
      on_block(i);
    }
    zero(be, dy.span());
    unshuffle.backward(be, g[depth() % 2], ids_shuffle, ids_restore, a.n, a.l, a.keep, dy);
    embed.backward(be, latent, dy, dlatent, /*accumulate_dx=*/false);
  }
};

}  // namespace mae
