// The official MAE learning-rate schedule (facebookresearch/mae util/lr_sched.py, main_pretrain.py,
// engine_pretrain.py), evaluated per iteration with gradient-accumulation windows.
//
//   peak lr  = (blr * eff_batch) / 256,         eff_batch = batch * accum_iter * world_size
//   lr(e)    = (lr * e) / W                                                  if e < W  (strict)
//            = min_lr + ((lr - min_lr) * 0.5) * (1 + cos((pi * (e - W)) / (epochs - W)))   otherwise
//
// Iteration i (global, from 0) lies in epoch E = start_epoch + i / ipe at position k = i % ipe.
// Accumulation windows are counted inside an epoch: the window of i starts at k0 = k - k % accum_iter.
// The lr is set once per window, at its first iteration, from e = k0 / ipe + E (double division,
// then add the integer epoch), and stays in effect for the rest of the window, so the optimizer step
// at the window's last iteration uses it. Gradients are zeroed at each window start (k = 0 included)
// and a step follows iteration i when (k + 1) % accum_iter == 0. An epoch's last, incomplete window
// (ipe not a multiple of accum_iter) never steps: the next epoch's k = 0 zeroes its gradients.
//
// Every expression is written in the same order as the Python, so the doubles match bit for bit
// (shared/fixtures/mae_train: lr_per_iter, epoch_arg_per_iter). With start_epoch = 0 the first
// window has lr = 0; the optimizer step is still taken (see optim/adamw.hpp).
#pragma once
#include <cmath>

#include "mae/config.hpp"

namespace mae {

struct LrSchedule {
  double lr = 0;             // peak lr after warmup (see peak_lr)
  double min_lr = 0;         // floor of the cosine
  double warmup_epochs = 0;  // W
  double epochs = 0;         // total schedule length in epochs
  Index iters_per_epoch = 0; // ipe: batches per epoch; the schedule divides by it
  Index accum_iter = 1;      // iterations per optimizer step
  Index start_epoch = 0;     // epoch number of iteration 0 (resumed runs)
};

// main_pretrain.py: args.lr = args.blr * eff_batch_size / 256, left to right in double.
inline double peak_lr(double blr, Index eff_batch) {
  MAE_CHECK(eff_batch > 0, "peak_lr: eff_batch must be positive, got ", eff_batch);
  return (blr * static_cast<double>(eff_batch)) / 256.0;
}

// Throws mae::Error naming the first bad field.
inline void validate(const LrSchedule& s) {
  MAE_CHECK(s.iters_per_epoch > 0, "LrSchedule: iters_per_epoch must be positive, got ", s.iters_per_epoch);
  MAE_CHECK(s.accum_iter > 0, "LrSchedule: accum_iter must be positive, got ", s.accum_iter);
  MAE_CHECK(s.epochs > 0, "LrSchedule: epochs must be positive, got ", s.epochs);
  MAE_CHECK(s.warmup_epochs >= 0, "LrSchedule: warmup_epochs must be >= 0, got ", s.warmup_epochs);
  MAE_CHECK(s.warmup_epochs <= s.epochs, "LrSchedule: warmup_epochs (", s.warmup_epochs,
            ") must be <= epochs (", s.epochs, ")");
  MAE_CHECK(s.start_epoch >= 0, "LrSchedule: start_epoch must be >= 0, got ", s.start_epoch);
  MAE_CHECK(std::isfinite(s.lr) && std::isfinite(s.min_lr), "LrSchedule: lr (", s.lr, ") and min_lr (", s.min_lr,
            ") must be finite");
}

// util/lr_sched.adjust_learning_rate for a fractional epoch e (without setting any optimizer).
inline double lr_at_epoch(const LrSchedule& s, double e) {
  validate(s);
  MAE_CHECK(e >= 0, "lr_at_epoch: epoch must be >= 0, got ", e);
  const double w = s.warmup_epochs;
  if (e < w) return (s.lr * e) / w;
  // e >= w here; w == epochs would divide 0 by 0 (Python raises ZeroDivisionError).
  MAE_CHECK(s.epochs > w, "lr_at_epoch: epoch ", e, " is past warmup but warmup_epochs == epochs (", s.epochs,
            "): the cosine is undefined");
  const double pi = 3.141592653589793;  // math.pi
  return s.min_lr + ((s.lr - s.min_lr) * 0.5) * (1.0 + std::cos((pi * (e - w)) / (s.epochs - w)));
}

// Position of global iteration i: epoch E, index k inside the epoch, start k0 of its window.
struct IterationPos {
  Index epoch, k, k0;
};
inline IterationPos iteration_pos(const LrSchedule& s, Index i) {
  validate(s);
  MAE_CHECK(i >= 0, "LrSchedule: iteration index must be >= 0, got ", i);
  const Index k = i % s.iters_per_epoch;
  return {s.start_epoch + i / s.iters_per_epoch, k, k - k % s.accum_iter};
}

// e = k0 / ipe + E: the fractional epoch the lr of iteration i is computed from.
inline double epoch_arg_for_iteration(const LrSchedule& s, Index i) {
  const IterationPos p = iteration_pos(s, i);
  return static_cast<double>(p.k0) / static_cast<double>(s.iters_per_epoch) + static_cast<double>(p.epoch);
}

// The lr in effect during iteration i (and for the step that may follow it).
inline double lr_for_iteration(const LrSchedule& s, Index i) { return lr_at_epoch(s, epoch_arg_for_iteration(s, i)); }

// True when an optimizer step follows iteration i: (k + 1) % accum_iter == 0.
inline bool is_step_iteration(const LrSchedule& s, Index i) {
  return (iteration_pos(s, i).k + 1) % s.accum_iter == 0;
}

// True when the gradient buffers must be zeroed before iteration i: at k == 0 (start of an epoch,
// which also drops an incomplete window of the previous epoch) and at every window start (right
// after a step). k == 0 is itself a window start, so this is k % accum_iter == 0.
inline bool zero_grads_before(const LrSchedule& s, Index i) {
  const IterationPos p = iteration_pos(s, i);
  return p.k == 0 || p.k == p.k0;
}

}  // namespace mae
