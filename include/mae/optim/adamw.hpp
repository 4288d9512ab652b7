// AdamW as in PyTorch 1.13 torch.optim.AdamW, single-tensor path (amsgrad = maximize = False), the
// optimizer of the official MAE pretraining (betas (0.9, 0.95), weight decay 0.05, eps 1e-8).
//
// State per parameter element: m, v (start at 0); one step count t shared by every tensor.
// One step with learning rate lr, per tensor decay wd (0 or weight_decay, see mae_decays):
//   t   = t + 1
//   p   = p * (1 - lr * wd)                          decoupled decay, on the value before the update
//   m   = m * beta1 + g * (1 - beta1)
//   v   = v * beta2 + ((1 - beta2) * g) * g
//   bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t
//   p   = p + ((-(lr / bc1)) * m) / (sqrt(v) / sqrt(bc2) + eps)
// i.e. p -= lr * m_hat / (sqrt(v_hat) + eps): eps outside the root, after the bias correction of v.
// lr = 0 (the first warmup window) is a real step: t and m, v advance, p stays bit for bit the same
// (factor 1 - 0 * wd = 1, update (-0 * m) / denom = -0).
//
// Roundings. The PyTorch code is
//   param.mul_(1 - lr * wd); exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
//   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
//   denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps); param.addcdiv_(exp_avg, denom, value=-lr / bc1)
// Every Python scalar (1 - lr*wd, 1 - beta1, 1 - beta2, lr / bc1, sqrt(bc2), eps) is a double computed
// on the host and then cast to the tensor dtype; we do the same (see adamw_kernel). ATen's CPU element
// kernels evaluate addcmul as self + (value * t1) * t2 and addcdiv as self + (value * t1) / t2, left to
// right, and we keep that grouping. The one operation we do not mirror is add_(grad, alpha): its
// vectorized CPU kernel is a fused multiply-add, fma(g, 1 - beta1, m * beta1), while we round g * (1 -
// beta1) first (nvcc contracts it to an fma on the device by default). So we are not bit-exact with the
// fixtures (shared/fixtures/mae_train/README.md section 7: only re-running PyTorch is); expect the
// README's bound for an independent implementation fed the same gradients: parameters within 1 ulp,
// moments within 4e-16 of a tensor's max, per step. The schedule (optim/schedule.hpp) is bit-exact.
#pragma once
#include <math.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "mae/config.hpp"

namespace mae {

namespace detail {
// sqrt for kernels: plain C functions, callable on host and device, no std:: dispatch.
MAE_HOST_DEVICE inline float adamw_sqrt(float x) { return ::sqrtf(x); }
MAE_HOST_DEVICE inline double adamw_sqrt(double x) { return ::sqrt(x); }
}  // namespace detail

// The official parameter groups (timm add_weight_decay with no skip list): no decay for tensors with
// one dimension (biases, LayerNorm gamma/beta) and for names ending in ".bias"; everything else decays,
// including the 3-D cls_token and mask_token and the 4-D patch_embed.proj.weight.
inline bool mae_decays(const std::string& name, Index ndim) {
  MAE_CHECK(ndim >= 0, "mae_decays: tensor '", name, "' has negative rank ", ndim);
  static constexpr char kBias[] = ".bias";
  constexpr std::size_t nb = sizeof(kBias) - 1;
  const bool is_bias = name.size() >= nb && name.compare(name.size() - nb, nb, kBias) == 0;
  return !(ndim == 1 || is_bias);
}

// One AdamW step on n elements; launched through be.parallel_for(n, kernel). Holds only raw pointers
// and scalars already cast to T, so the same functor runs on the host and on a CUDA device.
template <class T>
struct AdamWKernel {
  T* p;
  const T* g;
  T* m;
  T* v;
  T decay_factor;     // 1 - lr * wd
  T beta1, one_minus_beta1;
  T beta2, one_minus_beta2;
  T step_size;        // lr / bc1
  T sqrt_bc2;         // sqrt(1 - beta2^t)
  T eps;

  MAE_HOST_DEVICE void operator()(Index i) const {
    const T gi = g[i];
    const T pd = p[i] * decay_factor;
    const T mi = m[i] * beta1 + gi * one_minus_beta1;
    const T vi = v[i] * beta2 + (one_minus_beta2 * gi) * gi;
    const T denom = detail::adamw_sqrt(vi) / sqrt_bc2 + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = pd + ((-step_size) * mi) / denom;
  }
};

// The same step, then g := 0 where it was read: the step and the zero fill of the next accumulation
// in one pass (the gradient line is in cache when it is cleared), for a caller that would zero the
// gradient right after the step (an optimizer applied inside backward, block by block).
template <class T>
struct AdamWClearKernel {
  AdamWKernel<T> step;
  T* g;  // step.g, writable

  MAE_HOST_DEVICE void operator()(Index i) const {
    step(i);
    g[i] = T(0);
  }
};

// The kernel for step number t (t >= 1, the count after incrementing) on (p, g, m, v): host
// arithmetic in double, exactly as PyTorch forms its Python scalars, then a cast to T.
template <class T>
AdamWKernel<T> adamw_kernel(T* p, const T* g, T* m, T* v, double lr, double wd, double beta1, double beta2,
                            double eps, Index t) {
  MAE_CHECK(t >= 1, "adamw_kernel: step number must be >= 1, got ", t);
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(t));
  AdamWKernel<T> k;
  k.p = p;
  k.g = g;
  k.m = m;
  k.v = v;
  k.decay_factor = static_cast<T>(1.0 - lr * wd);
  k.beta1 = static_cast<T>(beta1);
  k.one_minus_beta1 = static_cast<T>(1.0 - beta1);
  k.beta2 = static_cast<T>(beta2);
  k.one_minus_beta2 = static_cast<T>(1.0 - beta2);
  k.step_size = static_cast<T>(lr / bc1);
  k.sqrt_bc2 = static_cast<T>(std::sqrt(bc2));
  k.eps = static_cast<T>(eps);
  return k;
}

// The optimizer: hyper-parameters and the shared step count. m and v live in the caller's memory
// (an arena mirroring the parameters); a Segment is one contiguous run of elements with one decay flag
// (one tensor, or several tensors of the same group laid out next to each other).
template <class T>
class AdamW {
  static_assert(std::is_floating_point<T>::value, "AdamW: T must be float or double");

 public:
  struct Segment {
    T* p;        // parameters, updated in place
    const T* g;  // gradient (already averaged over the accumulation window)
    T* m;        // first moment (exp_avg), updated in place
    T* v;        // second moment (exp_avg_sq), updated in place
    Index n;     // element count
    bool decay;  // weight_decay if true, 0 otherwise (mae_decays)
    T* clear = nullptr;  // null, or g itself: the step then writes 0 there after reading each element
  };

  explicit AdamW(double beta1 = 0.9, double beta2 = 0.95, double eps = 1e-8, double weight_decay = 0.05)
      : beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
    MAE_CHECK(beta1 >= 0 && beta1 < 1, "AdamW: beta1 must be in [0, 1), got ", beta1);
    MAE_CHECK(beta2 >= 0 && beta2 < 1, "AdamW: beta2 must be in [0, 1), got ", beta2);
    MAE_CHECK(eps >= 0, "AdamW: eps must be >= 0, got ", eps);
    MAE_CHECK(weight_decay >= 0, "AdamW: weight_decay must be >= 0, got ", weight_decay);
  }

  // One step over every segment with learning rate lr (all groups share it). Increments the step
  // count first, so bias correction uses t = step_count() after the call. Allocates nothing; one
  // be.parallel_for per segment. Segments are checked before anything is touched.
  template <class B>
  void step(B& be, const std::vector<Segment>& segments, double lr) {
    check(segments, lr, "step");
    begin_step();
    run(be, segments, lr);
  }
  // A step in parts, for an optimizer applied inside backward as each block's gradients become final:
  // begin_step() once, then apply() on every segment of the model exactly once, with the same lr.
  void begin_step() { ++step_; }
  template <class B>
  void apply(B& be, const std::vector<Segment>& segments, double lr) const {
    check(segments, lr, "apply");
    MAE_CHECK(step_ >= 1, "AdamW::apply: call begin_step first");
    run(be, segments, lr);
  }

  Index step_count() const { return step_; }
  // For resuming from a checkpoint (the PyTorch state's "step").
  void set_step_count(Index t) {
    MAE_CHECK(t >= 0, "AdamW::set_step_count: step count must be >= 0, got ", t);
    step_ = t;
  }

  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }

 private:
  // The kernels for the current step count; the segments were checked by the caller.
  template <class B>
  void run(B& be, const std::vector<Segment>& segments, double lr) const {
    for (const Segment& seg : segments) {
      if (seg.n == 0) continue;
      const AdamWKernel<T> k =
          adamw_kernel<T>(seg.p, seg.g, seg.m, seg.v, lr, seg.decay ? weight_decay_ : 0.0, beta1_, beta2_, eps_, step_);
      if (seg.clear) be.parallel_for(seg.n, AdamWClearKernel<T>{k, seg.clear});
      else be.parallel_for(seg.n, k);
    }
  }
  static void check(const std::vector<Segment>& segments, double lr, const char* what) {
    MAE_CHECK(std::isfinite(lr) && lr >= 0, "AdamW::", what, ": lr must be finite and >= 0, got ", lr);
    for (std::size_t s = 0; s < segments.size(); ++s) {
      const Segment& seg = segments[s];
      MAE_CHECK(seg.n >= 0, "AdamW::", what, ": segment ", s, " has negative size ", seg.n);
      MAE_CHECK(seg.n == 0 || (seg.p && seg.g && seg.m && seg.v), "AdamW::", what, ": segment ", s, " (", seg.n,
                " elements) has a null pointer");
      MAE_CHECK(!seg.clear || seg.clear == seg.g, "AdamW::", what, ": segment ", s,
                " clears memory that is not its gradient (clear must be null or g)");
    }
  }

  double beta1_, beta2_, eps_, weight_decay_;
  Index step_ = 0;
};

}  // namespace mae
