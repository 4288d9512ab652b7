// The MAE decoder, as MaskedAutoencoderViT.forward_decoder: embed the latent, append the mask token
// for every removed patch, unshuffle, add the decoder position embedding, `decoder_depth` blocks,
// LayerNorm, and the pixel prediction (Dd -> p*p*C) for every token.
// With loss rows set (training where only some patches enter the loss, MaeViT Predict::LossPatches),
// the last block's LN2 and MLP, the LayerNorm and the prediction run on those rows only (attention
// still over every row): the loss and its gradients are the same, and what nothing reads is skipped.
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
  // Loss rows (layout with m > 0): `rows`, set by the owner before forward, lists m ascending rows of
  // the (n*(1+l)) stream in backend memory; `last` (m, Dd) is the stream's final value on them, and
  // normed and pred hold only those rows (their first m).
  Index m = 0;
  const std::int64_t* rows = nullptr;
  MatView<T> last;
  Index pred_rows() const { return m > 0 ? m : n * (1 + l); }  // rows of pred (and of dpred) in use
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

  // m > 0: predict m loss rows only (see DecoderActs).
  void layout(Spanner<T>& sp, DecoderActs<T>& a, Index n, Index keep, Index l, Index m = 0) const {
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
    a.m = m;
    a.rows = nullptr;
    a.last = m > 0 ? sp.mat(m, dim) : MatView<T>();
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
    const Index d = depth(), top = a.pred_rows();
    const bool subset = a.m > 0;
    MAE_ASSERT(!subset || a.rows, "decoder forward: loss rows not set");
    for (Index i = 0; i < d; ++i) {
      if (subset && i == d - 1) blocks[i].forward_rows(be, a.zs[i], a.rows, a.last, a.n, t, a.caches[i], a.scratch);
      else blocks[i].forward(be, a.zs[i], a.zs[i + 1], a.n, t, a.caches[i], a.scratch);
    }
    if (subset && d == 0) gather_rows(be, MatView<const T>(a.zs[0]), a.rows, a.last);
    norm.forward(be, MatView<const T>(subset ? a.last : a.zs[d]), a.normed.row_block(0, top), a.norm);
    pred.forward(be, MatView<const T>(a.normed.row_block(0, top)), a.pred.row_block(0, top));
  }

  // dpred: d loss / d pred (pred_rows() rows); dlatent = d loss / d latent (overwritten); adds every parameter gradient.
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
    const Index t = 1 + a.l, r = a.n * t, d = depth(), top = a.pred_rows();
    const bool subset = a.m > 0;
    MAE_ASSERT(dpred.rows == top, "decoder backward: dpred rows");
    Spanner<T> sp{scratch.data};
    MatView<T> g[2] = {sp.mat(r, dim), sp.mat(r, dim)};
    Span<T> block_scratch = sp.take(block_scratch_elems(a.n, t));
    MatView<T> dy = sp.mat(a.n * (1 + a.keep), dim);
    MAE_ASSERT(sp.total <= scratch.size, "decoder scratch too small");
    const MatView<T> gpred = g[1].row_block(0, top), gtop = g[0].row_block(0, top);
    pred.backward(be, MatView<const T>(a.normed.row_block(0, top)), dpred, gpred, /*accumulate_dx=*/false);
    zero(be, gtop.span());
    norm.backward(be, MatView<const T>(subset ? a.last : a.zs[d]), MatView<const T>(gpred), a.norm, gtop);
    Index i = d - 1, k = 0;  // g[k]: the gradient at block i's output
    if (subset) {            // from the loss rows to every row: through the last block, or scattered
      if (d > 0) {
        blocks[i].backward_rows(be, a.zs[i], MatView<const T>(gtop), a.rows, a.n, t, a.caches[i], block_scratch, g[1],
                                /*accumulate=*/false);
        on_block(i);
        --i;
      } else {
        zero(be, g[1].span());
        scatter_rows(be, MatView<const T>(gtop), a.rows, g[1]);
      }
      k = 1;
    }
    for (; i >= 0; --i, k ^= 1) {
      blocks[i].backward(be, a.zs[i], g[k], a.n, t, a.caches[i], block_scratch, g[k ^ 1], /*accumulate=*/false);
      on_block(i);
    }
    zero(be, dy.span());
    unshuffle.backward(be, g[k], ids_shuffle, ids_restore, a.n, a.l, a.keep, dy);
    embed.backward(be, latent, dy, dlatent, /*accumulate_dx=*/false);
  }
};

}  // namespace mae
