// MaeViT<T, Backend>: the whole masked autoencoder, as facebookresearch/mae models_mae.MaskedAutoencoderViT.
//   loss = forward(imgs, noise): mask from noise, encoder on the kept patches, decoder on all, loss on the removed
//   backward(scale): adds scale · d loss / d θ into the gradient arena (the caller zeroes it: zero_grad)
//   features(imgs, n): encoder on all patches in natural order, no masking -> (n, 1 + L, D)
// Gradient storage (set_gradients, model/grad_layout.hpp): Full, or PerBlock, where every block's
// gradients go to backward's sink once final and their shared buffer is zeroed when the sink returns
// (unless the sink returns true: it zeroed them itself, e.g. in its optimizer pass).
// Parameters, gradients and activations live in three arenas of backend memory. The parameter arena is
// made at construction; the gradient and training-activation arenas, planned for one batch size, on the
// first call that needs them (forward, zero_grad, grad, grad_arena), so a model used only for features
// never holds them. After that a step allocates nothing. Host access goes through get/set/grad by name.
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "mae/backend/policy.hpp"
#include "mae/layers/mse_loss.hpp"
#include "mae/layers/pos_embed_sincos.hpp"
#include "mae/model/config.hpp"
#include "mae/model/decoder.hpp"
#include "mae/model/grad_layout.hpp"
#include "mae/model/param_table.hpp"
#include "mae/tensor/arena.hpp"

namespace mae {

template <class T, class Backend>
class MaeViT {
  static_assert(is_backend<Backend>::value, "Backend must satisfy mae/backend/policy.hpp");
  static_assert(std::is_floating_point_v<T>, "T must be float or double");

 public:
  // What a training step encodes: the official masked step, or (for measuring the asymmetric design)
  // every token through the encoder with the loss over all patches.
  enum class Mode { Masked, AllTokens };
  // Which patches a training forward predicts: all (the official forward; pred() is the whole
  // reconstruction) or only those the loss reads (the removed ones; all of them in Mode::AllTokens).
  // With LossPatches the last decoder block's LayerNorm 2 and MLP, the decoder norm and the pixel
  // prediction run on those rows only (tiny32: 1.7% of a step's FLOPs, fmnist28 3.2%): the loss is
  // bit for bit the same and every gradient the same up to the order of the weight-gradient sums,
  // which no longer add the zero rows. pred() is not available then. TrainLoop selects LossPatches.
  enum class Predict { AllPatches, LossPatches };
  using Gradients = mae::Gradients;
  using BlockSpan = mae::BlockSpan;
  static constexpr Index kNonBlock = GradLayout::kNonBlock;  // sink argument: the tensors outside the blocks

  MaeViT(const MaeConfig& cfg, Backend& be, Index batch, Mode mode = Mode::Masked)
      : cfg_(cfg), be_(&be), batch_(batch), mode_(mode) {
    if (mode_ == Mode::AllTokens) cfg_.mask_ratio = 0.5;  // validated as a masked config; keep() overrides
    cfg_.validate();
    if (mode_ == Mode::AllTokens) cfg_.mask_ratio = cfg.mask_ratio;
    MAE_CHECK(batch > 0, "MaeViT: batch must be positive, got ", batch);
    build_table();
    params_ = Buffer<T, Backend>(be, table_.total());
    zero(be, params_.span());
    bind_layers();
    set("pos_embed", sincos_pos_embed_2d<T>(cfg_.embed_dim, cfg_.grid_size()));
    set("decoder_pos_embed", sincos_pos_embed_2d<T>(cfg_.decoder_embed_dim, cfg_.grid_size()));
  }
  MaeViT(const MaeViT&) = delete;
  MaeViT& operator=(const MaeViT&) = delete;

  const MaeConfig& config() const { return cfg_; }
  Mode mode() const { return mode_; }
  // Patches the encoder sees per sample: K = int(L * (1 - mask_ratio)), or L in Mode::AllTokens.
  Index keep() const { return mode_ == Mode::AllTokens ? cfg_.num_patches() : cfg_.len_keep(); }
  Index batch() const { return batch_; }
  Backend& backend() const { return *be_; }
  const ParamTable& table() const { return table_; }
  Span<T> param_arena() const { return params_.span(); }
  Span<T> grad_arena() {
    ensure_training();
    return grads_.span();
  }
  const std::vector<BlockSpan>& block_spans() const { return grad_layout_.blocks(); }
  Index block_of(Index e) const { return grad_layout_.block_of(e); }  // table entry e's block, or kNonBlock

  // Gradient storage, Full (the default) or PerBlock (see the top of this file). Changing it drops the
  // gradients held so far; it is reallocated by the next call that needs it.
  void set_gradients(Gradients g) {
    if (g == grad_mode_) return;
    grad_mode_ = g;
    grads_ = Buffer<T, Backend>();
    forward_done_ = false;
    rebind_layers();
  }
  Gradients gradients() const { return grad_mode_; }

  // Whether blocks cache their attention probabilities and head outputs for backward (the default)
  // or rebuild them there: ~4-6% more time per step (base224) for N·H·T² + N·T·D fewer cached values per block
  // (base224, batch 8: 180 MB). Results are bit for bit the same. Changing it drops the activations.
  void set_keep_attention_probs(bool keep) {
    if (keep == keep_probs_) return;
    keep_probs_ = keep;
    acts_ = Buffer<T, Backend>();
    feat_.reset();
    forward_done_ = false;
    rebind_layers();
  }
  bool keep_attention_probs() const { return keep_probs_; }

  // See Predict. Changing it drops the activations (replanned by the next forward).
  void set_predict(Predict p) {
    if (p == predict_) return;
    predict_ = p;
    acts_ = Buffer<T, Backend>();
    forward_done_ = false;
  }
  Predict predict() const { return predict_; }
  // Where the gradient of table entry e lives (for a block tensor in PerBlock mode: the shared block
  // buffer, meaningful only inside backward's sink for that block). Null for the fixed tensors.
  T* grad_data(Index e) {
    ensure_training();
    return grad_ptr(e);
  }

  // ---- host access by official name -------------------------------------------------------------
  std::vector<T> get(const std::string& name) const { return to_host(params_, table_.at(name)); }
  std::vector<T> grad(const std::string& name) {
    ensure_training();
    const ParamInfo& p = table_.at(name);
    const Index e = entry_index(p);
    MAE_CHECK(grad_mode_ == Gradients::Full || block_of(e) == kNonBlock, "grad('", name,
              "'): block gradients are not kept with Gradients::PerBlock (they reach backward's sink only)");
    std::vector<T> out(p.numel);
    if (T* g = grad_ptr(e)) be_->to_host(out.data(), g, sizeof(T) * p.numel);
    return out;
  }
  void set(const std::string& name, const std::vector<T>& values) {
    const ParamInfo& p = table_.at(name);
    MAE_CHECK(Index(values.size()) == p.numel, "tensor '", name, "' has shape ", shape_str(p.shape), " (", p.numel,
              " values), got ", values.size(), " values");
    be_->to_device(params_.data() + p.offset, values.data(), values.size() * sizeof(T));
  }

  void zero_grad() {
    ensure_training();
    zero(*be_, grads_.span());
  }

  // Copies every parameter from a model of the same config (e.g. a training model into an
  // evaluation model planned for another batch size). One copy of the arena.
  void copy_params_from(const MaeViT& other) {
    MAE_CHECK(other.config().to_json() == cfg_.to_json(), "copy_params_from: models have different configs");
    be_->copy(params_.data(), other.params_.data(), sizeof(T) * params_.size());
  }

  // ---- training step ---------------------------------------------------------------------------
  // imgs: (N, C, H, W) and noise: (N, L), host memory, N = batch(). Returns the loss.
  T forward(const T* imgs, const T* noise) {
    ensure_training();
    const Index n = batch_, l = cfg_.num_patches(), k = keep();
    random_masking_into(noise, n, l, cfg_.mask_ratio, masking_);
    for (Index i = 0; i < n * l; ++i)
      mask_host_[i] = masking_.ids_restore[i] >= k || mode_ == Mode::AllTokens ? T(1) : T(0);
    be_->to_device(imgs_.data, imgs, sizeof(T) * imgs_.size);
    be_->to_device(ids_.data(), masking_.ids_shuffle.data(), sizeof(std::int64_t) * n * l);
    be_->to_device(ids_.data() + n * l, masking_.ids_restore.data(), sizeof(std::int64_t) * n * l);
    be_->to_device(mask_.data, mask_host_.data(), sizeof(T) * n * l);
    if (dec_.m > 0) {  // Predict::LossPatches: the decoder rows of the removed patches, ascending
      Index j = 0;
      for (Index i = 0; i < n * l; ++i)
        if (mask_host_[i] != T(0)) loss_rows_host_[j++] = decoder_row_of_patch(i, l);
      MAE_ASSERT(j == dec_.m, "loss rows: count");
      be_->to_device(ids_.data() + 2 * n * l, loss_rows_host_.data(), sizeof(std::int64_t) * j);
      dec_.rows = ids_.data() + 2 * n * l;
    }
    loss_.target(*be_, imgs_.data, n, target_);
    encoder_.forward(*be_, imgs_.data, ids_shuffle(), l, enc_);
    decoder_.forward(*be_, enc_.out, ids_restore(), dec_);
    if (dec_.m > 0) loss_.forward_rows(*be_, loss_pred(), target_, dec_.rows, err_, stats_);
    else loss_.forward(*be_, dec_.pred, target_, mask_.data, n, err_, stats_);
    T out[2];
    be_->to_host(out, stats_.data, sizeof(out));
    forward_done_ = true;
    return out[0];
  }

  // The same with the sizes checked: imgs (N, C, H, W), noise (N, L).
  T forward(const std::vector<T>& imgs, const std::vector<T>& noise) {
    check_batch("imgs", imgs.size(), {batch_, cfg_.in_chans, cfg_.img_size, cfg_.img_size});
    check_batch("noise", noise.size(), {batch_, cfg_.num_patches()});
    return forward(imgs.data(), noise.data());
  }

  // Adds scale · d loss / d θ for the last forward into the gradient arena (Gradients::Full).
  void backward(T scale = T(1)) {
    MAE_CHECK(grad_mode_ == Gradients::Full, "MaeViT::backward: with Gradients::PerBlock, block gradients exist only "
              "inside backward(scale, sink); pass a sink");
    backward(scale, [](Index) {});
  }
  // The same, calling sink(k) as soon as the gradients of block k (block_spans()[k]) are final, and
  // sink(kNonBlock) at the end for every other tensor; read them through grad_data. With
  // Gradients::PerBlock each of those gradients is zeroed when its sink call returns, unless the sink
  // returns bool and returned true: then it has left every element of them zero itself (AdamW with
  // Segment::clear does, in its own pass, instead of a second pass over the buffer here).
  template <class Sink>
  void backward(T scale, Sink&& sink) {
    MAE_CHECK(forward_done_, "MaeViT::backward called before forward");
    const Index depth = cfg_.depth;
    auto finish = [&](Index k, Index offset, Index n) {  // sink(k), then the PerBlock zero fill it did not do
      bool cleared = false;
      if constexpr (std::is_same_v<std::invoke_result_t<Sink&, Index>, bool>) cleared = sink(k);
      else sink(k);
      if (grad_mode_ == Gradients::PerBlock && !cleared) zero(*be_, grads_.at(offset, n));
    };
    auto done = [&](Index k) { finish(k, grad_layout_.rest_size(), block_spans()[k].size); };
    const MatView<T> dpred = dpred_.row_block(0, dec_.pred_rows());
    if (dec_.m > 0) loss_.backward_rows(*be_, loss_pred(), target_, dec_.rows, stats_, scale, dpred);
    else loss_.backward(*be_, dec_.pred, target_, mask_.data, batch_, stats_, scale, dpred);
    decoder_.backward(*be_, dec_, enc_.out, ids_shuffle(), ids_restore(), dpred, scratch_, dlatent_,
                      [&](Index i) { done(depth + i); });
    encoder_.backward(*be_, enc_, dlatent_, scratch_, [&](Index i) { done(i); });
    finish(kNonBlock, 0, grad_layout_.rest_size());
  }

  // ---- results of the last forward, copied to the host ----------------------------------------
  std::vector<T> pred() const {  // (N, L, P)
    MAE_CHECK(predict_ == Predict::AllPatches, "MaeViT::pred(): with Predict::LossPatches (as TrainLoop sets) only the "
              "removed patches are predicted; call set_predict(Predict::AllPatches) before forward for the whole "
              "reconstruction");
    return drop_cls_rows(dec_.pred);
  }
  std::vector<T> target() const { return copy_out(target_.data, target_.size()); }    // (N, L, P)
  std::vector<T> latent() const { return copy_out(enc_.out.data, enc_.out.size()); }  // (N, 1+K, D)
  std::vector<T> mask() const { return mask_host_; }                                  // (N, L)
  const std::vector<std::int64_t>& ids_shuffle_host() const { return masking_.ids_shuffle; }
  const std::vector<std::int64_t>& ids_restore_host() const { return masking_.ids_restore; }

  // Encoder on every patch in natural order, no masking: imgs (n, C, H, W) host -> (n, 1+L, D).
  std::vector<T> features(const std::vector<T>& imgs) {
    MAE_CHECK(!imgs.empty() && imgs.size() % image_elems() == 0, "features: imgs has ", imgs.size(),
              " values, not a whole number of (", cfg_.in_chans, ", ", cfg_.img_size, ", ", cfg_.img_size, ") images");
    return features(imgs.data(), Index(imgs.size()) / image_elems());
  }
  std::vector<T> features(const T* imgs, Index n) {
    const Index l = cfg_.num_patches();
    if (!feat_ || feat_acts_.n != n) plan_features(n);
    be_->to_device(feat_->data(), imgs, sizeof(T) * n * image_elems());
    encoder_.forward(*be_, feat_->data(), feat_ids_.data(), l, feat_acts_);
    return copy_out(feat_acts_.out.data, feat_acts_.out.size());
  }

  Index image_elems() const { return cfg_.in_chans * cfg_.img_size * cfg_.img_size; }

 private:
  void build_table() {
    const Index D = cfg_.embed_dim, Dd = cfg_.decoder_embed_dim, L = cfg_.num_patches(), p = cfg_.patch_size;
    // official state_dict order: module's own parameters, then submodules in registration order
    table_.add("cls_token", {1, 1, D});
    table_.add("pos_embed", {1, 1 + L, D}, false);
    table_.add("mask_token", {1, 1, Dd});
    table_.add("decoder_pos_embed", {1, 1 + L, Dd}, false);
    table_.add("patch_embed.proj.weight", {D, cfg_.in_chans, p, p});
    table_.add("patch_embed.proj.bias", {D});
    auto add_block = [&](const std::string& pre, Index w, Index hidden) {
      table_.add(pre + "norm1.weight", {w});
      table_.add(pre + "norm1.bias", {w});
      table_.add(pre + "attn.qkv.weight", {3 * w, w});
      table_.add(pre + "attn.qkv.bias", {3 * w});
      table_.add(pre + "attn.proj.weight", {w, w});
      table_.add(pre + "attn.proj.bias", {w});
      table_.add(pre + "norm2.weight", {w});
      table_.add(pre + "norm2.bias", {w});
      table_.add(pre + "mlp.fc1.weight", {hidden, w});
      table_.add(pre + "mlp.fc1.bias", {hidden});
      table_.add(pre + "mlp.fc2.weight", {w, hidden});
      table_.add(pre + "mlp.fc2.bias", {w});
    };
    auto add_block_span = [&](const std::string& pre, Index w, Index hidden) {
      grad_layout_.begin_block(table_);
      add_block(pre, w, hidden);
      grad_layout_.end_block(table_);
    };
    for (Index i = 0; i < cfg_.depth; ++i) add_block_span("blocks." + std::to_string(i) + ".", D, cfg_.mlp_hidden());
    table_.add("norm.weight", {D});
    table_.add("norm.bias", {D});
    table_.add("decoder_embed.weight", {Dd, D});
    table_.add("decoder_embed.bias", {Dd});
    for (Index i = 0; i < cfg_.decoder_depth; ++i)
      add_block_span("decoder_blocks." + std::to_string(i) + ".", Dd, cfg_.decoder_mlp_hidden());
    table_.add("decoder_norm.weight", {Dd});
    table_.add("decoder_norm.bias", {Dd});
    table_.add("decoder_pred.weight", {cfg_.patch_dim(), Dd});
    table_.add("decoder_pred.bias", {cfg_.patch_dim()});
    grad_layout_.finish(table_);
  }

  Index entry_index(const ParamInfo& p) const { return Index(&p - table_.entries().data()); }
  T* grad_ptr(Index e) const {
    const ParamInfo& p = table_.entries()[e];
    if (!p.trainable || !grads_.data()) return nullptr;
    return grads_.data() + grad_layout_.offset(grad_mode_, table_, e);
  }
  Param<T> param(const std::string& name) const {
    const ParamInfo& p = table_.at(name);
    return {params_.data() + p.offset, grad_ptr(entry_index(p)), p.numel};
  }
  Linear<T> linear(const std::string& pre, Index in, Index out) const {
    return {in, out, param(pre + ".weight"), param(pre + ".bias")};
  }
  LayerNorm<T> layer_norm(const std::string& pre, Index dim) const {
    return {dim, T(cfg_.layernorm_eps), param(pre + ".weight"), param(pre + ".bias")};
  }
  Block<T> block(const std::string& pre, Index w, Index heads, Index hidden) const {
    Block<T> b;
    b.dim = w;
    b.norm1 = layer_norm(pre + "norm1", w);
    b.norm2 = layer_norm(pre + "norm2", w);
    b.attn = {w, heads, linear(pre + "attn.qkv", w, 3 * w), linear(pre + "attn.proj", w, w), keep_probs_};
    b.mlp = {w, hidden, linear(pre + "mlp.fc1", w, hidden), linear(pre + "mlp.fc2", hidden, w)};
    return b;
  }
  void bind_layers() {
    const Index D = cfg_.embed_dim, Dd = cfg_.decoder_embed_dim;
    encoder_.dim = D;
    encoder_.patch = {cfg_.img_size, cfg_.patch_size, cfg_.in_chans, D,
                      linear("patch_embed.proj", cfg_.patch_dim(), D), param("cls_token"), param("pos_embed").value};
    for (Index i = 0; i < cfg_.depth; ++i)
      encoder_.blocks.push_back(block("blocks." + std::to_string(i) + ".", D, cfg_.num_heads, cfg_.mlp_hidden()));
    encoder_.norm = layer_norm("norm", D);
    decoder_.dim = Dd;
    decoder_.embed = linear("decoder_embed", D, Dd);
    decoder_.unshuffle = {Dd, param("mask_token"), param("decoder_pos_embed").value};
    for (Index i = 0; i < cfg_.decoder_depth; ++i)
      decoder_.blocks.push_back(block("decoder_blocks." + std::to_string(i) + ".", Dd, cfg_.decoder_num_heads,
                                      cfg_.decoder_mlp_hidden()));
    decoder_.norm = layer_norm("decoder_norm", Dd);
    decoder_.pred = linear("decoder_pred", Dd, cfg_.patch_dim());
    loss_ = {cfg_.img_size, cfg_.patch_size, cfg_.in_chans, cfg_.norm_pix_loss};
  }

  // The layers again, after the gradient storage or the attention setting changed.
  void rebind_layers() {
    encoder_.blocks.clear();
    decoder_.blocks.clear();
    bind_layers();
  }

  // Gradients (zeroed) and training activations, once; the layers are rebound to see the gradients.
  void ensure_training() {
    if (!grads_.data()) {
      grads_ = Buffer<T, Backend>(*be_, grad_layout_.arena_size(grad_mode_));
      zero(*be_, grads_.span());
      rebind_layers();  // the layers now see the gradients
    }
    if (!acts_.data()) plan_training();
  }

  // Activation arena for training: inputs, encoder and decoder activations, loss, backward scratch.
  void plan_training() {
    const Index n = batch_, l = cfg_.num_patches(), k = keep(), P = cfg_.patch_dim();
    auto layout = [&](Spanner<T>& sp) {
      imgs_ = sp.take(n * image_elems());
      mask_ = sp.take(n * l);
      target_ = sp.mat(n * l, P);
      err_ = sp.take(n * l);
      stats_ = sp.take(2);
      encoder_.layout(sp, enc_, n, k, true);
      decoder_.layout(sp, dec_, n, k, l, loss_rows());
      dpred_ = sp.mat(n * (1 + l), P);
      dlatent_ = sp.mat(n * (1 + k), cfg_.embed_dim);
      // backward scratch, also the blocks' forward scratch (a backward needs more than its forward)
      scratch_ = sp.take(std::max({encoder_.scratch_elems(n, k), decoder_.scratch_elems(n, k, l),
                                   encoder_.forward_scratch_elems(n, k), decoder_.forward_scratch_elems(n, l)}));
      enc_.scratch = dec_.scratch = scratch_;
    };
    Spanner<T> measure;
    layout(measure);
    acts_ = Buffer<T, Backend>(*be_, measure.total);
    Spanner<T> bind{acts_.data()};
    layout(bind);
    ids_ = Buffer<std::int64_t, Backend>(*be_, 2 * n * l + loss_rows());  // shuffle, restore, loss rows
    loss_rows_host_.assign(loss_rows(), 0);
    mask_host_.assign(n * l, T(0));
    masking_.ids_shuffle.assign(n * l, 0);
    masking_.ids_restore.assign(n * l, 0);
  }
  void plan_features(Index n) {
    MAE_CHECK(n > 0, "features: batch must be positive, got ", n);
    const Index l = cfg_.num_patches();
    Spanner<T> measure;
    measure.take(n * image_elems());
    encoder_.layout(measure, feat_acts_, n, l, false);
    feat_ = std::make_unique<Buffer<T, Backend>>(*be_, measure.total);
    Spanner<T> bind{feat_->data()};
    bind.take(n * image_elems());
    encoder_.layout(bind, feat_acts_, n, l, false);
    std::vector<std::int64_t> ids(n * l);
    for (Index i = 0; i < n * l; ++i) ids[i] = i % l;  // identity shuffle: natural order
    feat_ids_ = Buffer<std::int64_t, Backend>(*be_, n * l);
    be_->to_device(feat_ids_.data(), ids.data(), sizeof(std::int64_t) * n * l);
  }

  void check_batch(const char* what, std::size_t got, const std::vector<Index>& shape) const {
    Index want = 1;
    for (Index d : shape) want *= d;
    MAE_CHECK(Index(got) == want, "MaeViT::forward: '", what, "' has ", got, " values, expected shape ", shape_str(shape),
              " = ", want, " (the model was planned for batch ", batch_, ")");
  }

  // Decoder rows a training forward predicts with Predict::LossPatches (0: every row, AllPatches).
  Index loss_rows() const {
    if (predict_ == Predict::AllPatches) return 0;
    return batch_ * (mode_ == Mode::AllTokens ? cfg_.num_patches() : cfg_.num_patches() - cfg_.len_keep());
  }
  MatView<const T> loss_pred() const { return dec_.pred.row_block(0, dec_.m); }  // LossPatches: pred's rows in use
  const std::int64_t* ids_shuffle() const { return ids_.data(); }
  const std::int64_t* ids_restore() const { return ids_.data() + batch_ * cfg_.num_patches(); }

  std::vector<T> to_host(const Buffer<T, Backend>& arena, const ParamInfo& p) const {
    return copy_out(arena.data() + p.offset, p.numel);
  }
  std::vector<T> copy_out(const T* src, Index count) const {
    std::vector<T> out(count);
    be_->to_host(out.data(), src, sizeof(T) * count);
    return out;
  }
  std::vector<T> drop_cls_rows(MatView<T> m) const {
    const std::vector<T> all = copy_out(m.data, m.size());
    const Index n = batch_, l = cfg_.num_patches(), w = m.cols;
    std::vector<T> out(n * l * w);
    for (Index s = 0; s < n; ++s)
      std::copy(all.begin() + (s * (1 + l) + 1) * w, all.begin() + (s + 1) * (1 + l) * w, out.begin() + s * l * w);
    return out;
  }

  MaeConfig cfg_;
  Backend* be_;
  Index batch_;
  Mode mode_;
  Gradients grad_mode_ = Gradients::Full;
  bool keep_probs_ = true;
  Predict predict_ = Predict::AllPatches;
  ParamTable table_;
  GradLayout grad_layout_;
  Buffer<T, Backend> params_, grads_, acts_;
  Buffer<std::int64_t, Backend> ids_;
  Encoder<T> encoder_;
  Decoder<T> decoder_;
  MseLoss<T> loss_;
  EncoderActs<T> enc_;
  DecoderActs<T> dec_;
  Span<T> imgs_, mask_, err_, stats_, scratch_;
  MatView<T> target_, dpred_, dlatent_;
  Masking masking_;
  std::vector<T> mask_host_;
  std::vector<std::int64_t> loss_rows_host_;
  bool forward_done_ = false;
  std::unique_ptr<Buffer<T, Backend>> feat_;
  Buffer<std::int64_t, Backend> feat_ids_;
  EncoderActs<T> feat_acts_;
};

}  // namespace mae
