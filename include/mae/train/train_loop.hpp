// The official MAE pretraining iteration (engine_pretrain.train_one_epoch) around a MaeViT:
//   zero the gradients at an epoch start and after every step; set the lr at the first iteration of
//   each accumulation window (util/lr_sched.adjust_learning_rate); forward; backward of
//   loss / accum_iter, added into the gradients; an AdamW step after the window's last iteration.
// The AdamW moments live in two arenas that mirror the parameter arena (same offsets).
// With accum_iter 1 (and OptimConfig::fuse_into_backward, the default) the step is applied inside
// backward, block by block, as each block's gradients become final: the model then keeps gradients
// for one block at a time (MaeViT Gradients::PerBlock), not for the whole model, and AdamW zeroes each
// gradient in the pass that reads it (Segment::clear: no separate zero fill). Every element sees
// the same gradient, lr and step count as in a step after backward, so the results are bit for bit
// the same; only the order in which tensors are updated changes.
// The model is set to predict only the patches the loss reads (MaeViT Predict::LossPatches).
#pragma once
#include <vector>

#include "mae/model/mae_vit.hpp"
#include "mae/optim/adamw.hpp"
#include "mae/optim/schedule.hpp"

namespace mae {

struct OptimConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.05;
  bool fuse_into_backward = true;  // used when accum_iter == 1; false keeps every gradient (model.grad works)
};

template <class T, class B>
class TrainLoop {
 public:
  TrainLoop(MaeViT<T, B>& model, const LrSchedule& schedule, const OptimConfig& opt = {})
      : model_(&model), schedule_(schedule), adamw_(opt.beta1, opt.beta2, opt.eps, opt.weight_decay) {
    validate(schedule_);
    B& be = model.backend();
    exp_avg_ = Buffer<T, B>(be, model.param_arena().size);
    exp_avg_sq_ = Buffer<T, B>(be, model.param_arena().size);
    zero(be, exp_avg_.span());
    zero(be, exp_avg_sq_.span());
    fused_ = opt.fuse_into_backward && schedule_.accum_iter == 1;
    model.set_gradients(fused_ ? Model::Gradients::PerBlock : Model::Gradients::Full);
    model.set_predict(Model::Predict::LossPatches);  // the loss reads only the removed patches' predictions
    const auto& entries = model.table().entries();
    block_segments_.resize(model.block_spans().size());
    for (Index e = 0; e < Index(entries.size()); ++e) {
      const ParamInfo& p = entries[e];
      if (!p.trainable) continue;
      // fused: AdamW zeroes each gradient as it reads it, for the next backward (see iteration)
      T* g = model.grad_data(e);
      const typename AdamW<T>::Segment seg{model.param_arena().data + p.offset, g, exp_avg_.data() + p.offset,
                                           exp_avg_sq_.data() + p.offset, p.numel, p.decay, fused_ ? g : nullptr};
      const Index k = model.block_of(e);
      (fused_ && k != Model::kNonBlock ? block_segments_[k] : segments_).push_back(seg);
    }
  }

  // One iteration on a batch (host imgs (N, C, H, W), noise (N, L)); returns its loss (before the
  // division by accum_iter). Whether a step follows is decided by the global iteration index.
  T iteration(const T* imgs, const T* noise) {
    // fused: the model keeps its gradients zero itself, and with accum_iter 1 every iteration steps
    if (!fused_ && zero_grads_before(schedule_, iteration_)) model_->zero_grad();
    if (iteration_pos(schedule_, iteration_).k % schedule_.accum_iter == 0) lr_ = lr_for_iteration(schedule_, iteration_);
    const T loss = model_->forward(imgs, noise);
    stepped_ = is_step_iteration(schedule_, iteration_);
    B& be = model_->backend();
    if (fused_) {
      adamw_.begin_step();
      // The segments cover every trainable tensor, so each sink call leaves its gradients zero (the
      // rest of the buffer is padding, never written): true, the model need not fill them again.
      model_->backward(T(1), [&](Index k) {
        adamw_.apply(be, k == Model::kNonBlock ? segments_ : block_segments_[k], lr_);
        return true;
      });
    } else {
      model_->backward(T(1) / T(schedule_.accum_iter));
      if (stepped_) adamw_.step(be, segments_, lr_);
    }
    ++iteration_;
    return loss;
  }

  bool fused() const { return fused_; }                  // AdamW applied inside backward?
  Index iteration_index() const { return iteration_; }  // iterations done
  void set_iteration_index(Index i) { iteration_ = i; }  // resume
  double lr() const { return lr_; }                      // lr of the last iteration's window
  bool stepped() const { return stepped_; }              // did the last iteration end with a step?
  const LrSchedule& schedule() const { return schedule_; }
  AdamW<T>& optimizer() { return adamw_; }
  MaeViT<T, B>& model() { return *model_; }

  std::vector<T> exp_avg(const std::string& name) const { return moment(exp_avg_, name); }
  std::vector<T> exp_avg_sq(const std::string& name) const { return moment(exp_avg_sq_, name); }
  void set_exp_avg(const std::string& name, const std::vector<T>& v) { set_moment(exp_avg_, name, v); }
  void set_exp_avg_sq(const std::string& name, const std::vector<T>& v) { set_moment(exp_avg_sq_, name, v); }
  Span<T> exp_avg_arena() const { return exp_avg_.span(); }
  Span<T> exp_avg_sq_arena() const { return exp_avg_sq_.span(); }

 private:
  using Model = MaeViT<T, B>;

  std::vector<T> moment(const Buffer<T, B>& arena, const std::string& name) const {
    const ParamInfo& p = model_->table().at(name);
    std::vector<T> out(p.numel);
    model_->backend().to_host(out.data(), arena.data() + p.offset, sizeof(T) * p.numel);
    return out;
  }

  void set_moment(Buffer<T, B>& arena, const std::string& name, const std::vector<T>& v) {
    const ParamInfo& p = model_->table().at(name);
    MAE_CHECK(Index(v.size()) == p.numel, "optimizer moment of '", name, "': ", v.size(), " values, expected ", p.numel);
    model_->backend().to_device(arena.data() + p.offset, v.data(), sizeof(T) * p.numel);
  }

  MaeViT<T, B>* model_;
  LrSchedule schedule_;
  AdamW<T> adamw_;
  Buffer<T, B> exp_avg_, exp_avg_sq_;
  std::vector<typename AdamW<T>::Segment> segments_;  // every tensor, or (fused) those outside the blocks
  std::vector<std::vector<typename AdamW<T>::Segment>> block_segments_;  // fused: per block
  bool fused_ = false;
  Index iteration_ = 0;
  double lr_ = 0;
  bool stepped_ = false;
};

}  // namespace mae
