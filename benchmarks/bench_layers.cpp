// bench_layers: forward and backward of each layer of an MAE training step, at the exact shapes of a
// config, in ms and GFLOP/s, and what each layer costs per step (count × (forward + backward)).
//
// Rows, per config:
//   encoder / decoder: LayerNorm, the four Linears of a block (qkv, proj, fc1, fc2), the attention
//     core (S = s·Q·Kᵀ, softmax, O = P·V and their backward, batched over samples × heads), GELU,
//     the whole Attention layer, and the whole Block. The parts are inside the block: their
//     per-step cost is shown, but only the block enters the step total.
//   head: patch embedding (kept patches only), final norms, decoder_embed, mask-token unshuffle,
//     decoder_pred, the loss (target + forward, backward), zero_grad, AdamW over every parameter.
//   model: MaeViT::forward and MaeViT::backward as a whole, for comparison with the sum of parts.
// GFLOP/s counts GEMM FLOPs only (2·m·n·k; backward = 2 × forward, 1 × without input gradient);
// element-wise layers show "-". Backward accumulates into its gradients on every call (the
// library's += contract), which costs the same as the first call.
//
// Usage: bench_layers [--config tiny32,base224] [--json] [--threads 2] [--budget SECONDS_PER_ROW]
//                     [--min-reps 3] [--backend default|eigen]
//   --json: one object per line and direction: {"kind": "layer", config, part, layer, shape, mode
//   ("fwd" | "bwd"), batch, threads, median_ms, min_ms, max_ms, images_per_s, gflops, peak_rss_mb,
//   per_step, step_ms}.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mae/backend/cpu_eigen.hpp"
#include "mae/backend/default.hpp"
#include "mae/layers/mse_loss.hpp"
#include "mae/model/init.hpp"
#include "mae/model/mae_vit.hpp"
#include "mae/optim/adamw.hpp"
#include "mae/tensor/rng.hpp"
#include "support/bench.hpp"

namespace {

using mae::Index;
using mae::MatView;
using mae::Param;
using mae::Span;
namespace b = mae::bench;

struct LayerConfig {
  std::string name;
  Index img, p, c, d, depth, heads, dd, ddepth, dheads, batch;
};

// The configs of bench_step (mask ratio 0.75, mlp ratio 4).
const std::vector<LayerConfig> kConfigs = {{"tiny32", 32, 4, 3, 192, 12, 3, 128, 4, 4, 64},
                                           {"fmnist28", 28, 4, 1, 192, 6, 3, 128, 2, 4, 128},
                                           {"base224", 224, 16, 3, 768, 12, 12, 512, 8, 16, 8}};

mae::MaeConfig model_config(const LayerConfig& c) {
  mae::MaeConfig m;
  m.img_size = c.img, m.patch_size = c.p, m.in_chans = c.c;
  m.embed_dim = c.d, m.depth = c.depth, m.num_heads = c.heads;
  m.decoder_embed_dim = c.dd, m.decoder_depth = c.ddepth, m.decoder_num_heads = c.dheads;
  m.mlp_ratio = 4.0;
  m.norm_pix_loss = true;
  m.mask_ratio = 0.75;
  return m;
}

// Host memory for one row: filled buffers that live as long as the pool.
class Pool {
 public:
  explicit Pool(std::uint64_t seed) : rng_(seed, 3, 0) {}
  float* take(Index n, double scale = 1.0, double mean = 0.0) {
    bufs_.emplace_back(std::size_t(std::max<Index>(n, 1)));
    for (float& x : bufs_.back()) x = float(mean + scale * rng_.normal());
    return bufs_.back().data();
  }
  float* zeros(Index n) {
    bufs_.emplace_back(std::size_t(std::max<Index>(n, 1)), 0.0f);
    return bufs_.back().data();
  }
  Param<float> param(Index n, double scale, double mean = 0.0) { return {take(n, scale, mean), zeros(n), n}; }
  mae::Linear<float> linear(Index in, Index out) {
    return {in, out, param(in * out, 1.0 / std::sqrt(double(in))), param(out, 0.02)};
  }
  mae::LayerNorm<float> layer_norm(Index dim) { return {dim, 1e-6f, param(dim, 0.1, 1.0), param(dim, 0.05)}; }
  std::vector<std::int64_t>& ids(Index n, Index l) {  // per-sample random permutations: (ids_shuffle, ids_restore)
    ids_.emplace_back(std::size_t(2 * n * l));
    std::vector<std::int64_t>& v = ids_.back();
    for (Index s = 0; s < n; ++s) {
      std::int64_t* shuf = v.data() + s * l;
      std::int64_t* rest = v.data() + n * l + s * l;
      for (Index i = 0; i < l; ++i) shuf[i] = i;
      mae::shuffle(shuf, shuf + l, rng_);
      for (Index i = 0; i < l; ++i) rest[shuf[i]] = i;
    }
    return v;
  }

 private:
  mae::Rng rng_;
  std::vector<std::vector<float>> bufs_;
  std::vector<std::vector<std::int64_t>> ids_;
};

// One row: forward and backward closures, FLOPs, and how often the layer runs per training step.
struct Row {
  std::string part, layer, shape;
  double fwd_flop = 0, bwd_flop = 0;
  Index per_step = 1;
  bool in_block = false;  // a part of the block: shown, not added to the step total
  std::function<void()> fwd, bwd;
};

struct Printer {
  bool json = false;
  int threads = 2;
  std::string config;
  Index batch = 0;
  double total_ms = 0;  // sum of the top-level rows' step ms
  b::Table table{{{"part", 5, true}, {"layer", 20, true}, {"shape", 22, true}, {"fwd ms", 9, false},
                  {"bwd ms", 9, false}, {"fwd GF/s", 8, false}, {"bwd GF/s", 8, false}, {"x/step", 6, false},
                  {"step ms", 9, false}}};

  void emit(const Row& r, const b::Stats& f, const b::Stats& bw) {
    const double step_ms = double(r.per_step) * (f.median_ms + bw.median_ms);
    if (!r.in_block && r.part != "model") total_ms += step_ms;
    auto gf = [](double flop, const b::Stats& s) { return flop > 0 && s.median_ms > 0 ? flop / (s.median_ms * 1e-3) * 1e-9 : 0.0; };
    if (json) {
      for (int dir = 0; dir < 2; ++dir) {
        const b::Stats& s = dir ? bw : f;
        if (s.reps == 0) continue;
        b::Json().add("kind", "layer").add("config", config).add("part", r.part).add("layer", r.layer)
            .add("shape", r.shape).add("mode", dir ? "bwd" : "fwd").add("batch", long(batch)).add("threads", threads)
            .add("median_ms", s.median_ms).add("min_ms", s.min_ms).add("max_ms", s.max_ms)
            .add("images_per_s", double(batch) / (s.median_ms * 1e-3)).add("gflops", gf(dir ? r.bwd_flop : r.fwd_flop, s))
            .add("peak_rss_mb", b::peak_rss_mb()).add("per_step", long(r.per_step)).add("in_block", r.in_block)
            .add("step_ms", double(r.per_step) * s.median_ms).print();
      }
      return;
    }
    auto ms = [](const b::Stats& s) { return s.reps ? b::fmt("%.3f", s.median_ms) : std::string("-"); };
    auto g = [&](double flop, const b::Stats& s) { return flop > 0 && s.reps ? b::fmt("%.1f", gf(flop, s)) : std::string("-"); };
    table.row({r.part, (r.in_block ? "  " : "") + r.layer, r.shape, ms(f), ms(bw), g(r.fwd_flop, f), g(r.bwd_flop, bw),
               b::fmt("%ld", long(r.per_step)), b::fmt("%.2f", step_ms)});
  }
};

std::string shape(Index rows, Index in, Index out) { return b::fmt("%ldx%ld->%ld", long(rows), long(in), long(out)); }

// Rows of one transformer block at (n samples, t tokens, width d, heads h, hidden hm), run `depth` times per step.
void block_rows(std::vector<Row>& rows, Pool& pool, const std::string& part, Index n, Index t, Index d, Index h,
                Index hm, Index depth) {
  const Index r = n * t, dh = d / h;
  const double fr = double(r), fd = double(d), fhm = double(hm), fn = double(n), ft = double(t);
  auto add = [&](std::string layer, std::string shp, double flop, Index per, bool inner, std::function<void()> f,
                 std::function<void()> bk, double bwd_mult = 2.0) {
    Row row;
    row.part = part, row.layer = std::move(layer), row.shape = std::move(shp);
    row.fwd_flop = flop, row.bwd_flop = bwd_mult * flop, row.per_step = per, row.in_block = inner;
    row.fwd = std::move(f), row.bwd = std::move(bk);
    rows.push_back(std::move(row));
  };
  using B = mae::backend::Default;
  static B be;  // one backend object for all rows (oneDNN primitives are cached per shape)

  {  // LayerNorm
    auto ln = pool.layer_norm(d);
    float *x = pool.take(r * d), *y = pool.zeros(r * d), *dy = pool.take(r * d), *dx = pool.zeros(r * d);
    mae::LayerNormCache<float> c{{pool.zeros(r), r}, {pool.zeros(r), r}};
    add("layernorm", b::fmt("%ldx%ld", long(r), long(d)), 0, 2 * depth, true,
        [=] { ln.forward(be, MatView<const float>(x, r, d), MatView<float>(y, r, d), c); },
        [=] { ln.backward(be, MatView<const float>(x, r, d), MatView<const float>(dy, r, d), c, MatView<float>(dx, r, d)); });
  }
  auto linear_row = [&](const char* name, Index in, Index out) {
    auto lin = pool.linear(in, out);
    float *x = pool.take(r * in), *y = pool.zeros(r * out), *dy = pool.take(r * out), *dx = pool.zeros(r * in);
    add(name, shape(r, in, out), 2 * fr * double(in) * double(out), depth, true,
        [=] { lin.forward(be, MatView<const float>(x, r, in), MatView<float>(y, r, out)); },
        [=] { lin.backward(be, MatView<const float>(x, r, in), MatView<const float>(dy, r, out), MatView<float>(dx, r, in)); });
  };
  linear_row("qkv", d, 3 * d);
  {  // attention core: the batched products and the softmax, as mae::Attention runs them (its backward
     // also runs this row's forward again: P and O are rebuilt, not kept)
    float *qkv = pool.take(r * 3 * d, 0.5), *probs = pool.zeros(n * h * t * t), *o = pool.zeros(r * d);
    float *d_o = pool.take(r * d), *dqkv = pool.zeros(r * 3 * d), *dp = pool.zeros(n * h * t * t);
    const float scale = 1.0f / std::sqrt(float(dh));
    const mae::Stride2 s_qkv{t * 3 * d, dh}, s_p{h * t * t, t * t}, s_o{t * d, dh};
    const mae::Batch2 nh{n, h};
    using mae::Op;
    add("attn core", b::fmt("%ldx%ldh x%ldt dh%ld", long(n), long(h), long(t), long(dh)), 4 * fn * ft * ft * fd, depth,
        true,
        [=] {
          be.gemm_batched(Op::N, Op::T, t, t, dh, scale, qkv, 3 * d, s_qkv, qkv + d, 3 * d, s_qkv, 0.0f, probs, t, s_p, nh);
          be.parallel_for(n * h * t, mae::kernels::SoftmaxRows<float>{probs, t});
          be.gemm_batched(Op::N, Op::N, t, dh, t, 1.0f, probs, t, s_p, qkv + 2 * d, 3 * d, s_qkv, 0.0f, o, d, s_o, nh);
        },
        [=] {
          be.gemm_batched(Op::N, Op::T, t, t, dh, 1.0f, d_o, d, s_o, qkv + 2 * d, 3 * d, s_qkv, 0.0f, dp, t, s_p, nh);
          be.gemm_batched(Op::T, Op::N, t, dh, t, 1.0f, probs, t, s_p, d_o, d, s_o, 0.0f, dqkv + 2 * d, 3 * d, s_qkv, nh);
          be.parallel_for(n * h * t, mae::kernels::SoftmaxRowsBackward<float>{probs, dp, t});
          be.gemm_batched(Op::N, Op::N, t, dh, t, scale, dp, t, s_p, qkv + d, 3 * d, s_qkv, 0.0f, dqkv, 3 * d, s_qkv, nh);
          be.gemm_batched(Op::T, Op::N, t, dh, t, scale, dp, t, s_p, qkv, 3 * d, s_qkv, 0.0f, dqkv + d, 3 * d, s_qkv, nh);
        });
  }
  linear_row("proj", d, d);
  linear_row("fc1", d, hm);
  {  // GELU
    float *x = pool.take(r * hm), *y = pool.zeros(r * hm), *dy = pool.take(r * hm), *dx = pool.zeros(r * hm);
    const Index sz = r * hm;
    add("gelu", b::fmt("%ldx%ld", long(r), long(hm)), 0, depth, true,
        [=] { mae::Gelu<float>{}.forward(be, Span<const float>{x, sz}, Span<float>{y, sz}); },
        [=] {  // Mlp::backward runs recompute_backward (this plus one store of y), in place on its
               // gradient; repeated in place here it would drift into subnormals, so time this
          mae::Gelu<float>{}.backward(be, Span<const float>{x, sz}, Span<const float>{dy, sz}, Span<float>{dx, sz}, false);
        });
  }
  linear_row("fc2", hm, d);
  {  // whole attention layer
    mae::Attention<float> at{d, h, pool.linear(d, 3 * d), pool.linear(d, d)};
    float *x = pool.take(r * d), *y = pool.zeros(r * d), *dy = pool.take(r * d), *dx = pool.zeros(r * d);
    auto c = at.make_cache({pool.zeros(at.cache_elems(n, t)), at.cache_elems(n, t)}, n, t);
    Span<float> scratch{pool.zeros(at.scratch_elems(n, t)), at.scratch_elems(n, t)};
    add("attention (all)", b::fmt("%ldx%ld h%ld", long(r), long(d), long(h)),
        2 * fr * fd * 4 * fd + 4 * fn * ft * ft * fd, depth, true,
        [=] { at.forward(be, MatView<const float>(x, r, d), MatView<float>(y, r, d), n, t, c, scratch); },
        [=] { at.backward(be, MatView<const float>(x, r, d), MatView<const float>(dy, r, d), n, t, c, scratch, MatView<float>(dx, r, d)); });
  }
  {  // whole block
    mae::Block<float> blk;
    blk.dim = d;
    blk.norm1 = pool.layer_norm(d);
    blk.norm2 = pool.layer_norm(d);
    blk.attn = {d, h, pool.linear(d, 3 * d), pool.linear(d, d)};
    blk.mlp = {d, hm, pool.linear(d, hm), pool.linear(hm, d)};
    float *x = pool.take(r * d), *y = pool.zeros(r * d), *dy = pool.take(r * d), *dx = pool.zeros(r * d);
    auto c = blk.make_cache({pool.zeros(blk.cache_elems(n, t)), blk.cache_elems(n, t)}, n, t);
    Span<float> scratch{pool.zeros(blk.scratch_elems(n, t)), blk.scratch_elems(n, t)};
    add("block", b::fmt("%ldx%ld h%ld mlp%ld", long(r), long(d), long(h), long(hm)),
        2 * fr * fd * (4 * fd + 2 * fhm) + 4 * fn * ft * ft * fd, depth, false,
        [=] { blk.forward(be, MatView<const float>(x, r, d), MatView<float>(y, r, d), n, t, c, scratch); },
        [=] { blk.backward(be, MatView<const float>(x, r, d), MatView<const float>(dy, r, d), n, t, c, scratch, MatView<float>(dx, r, d)); });
  }
}

template <class B>
void head_rows(std::vector<Row>& rows, Pool& pool, B& be, const LayerConfig& cfg, mae::MaeViT<float, B>& model,
               std::vector<float>& imgs, std::vector<float>& noise, std::vector<typename mae::AdamW<float>::Segment>& segs, mae::AdamW<float>& adamw) {
  const Index n = cfg.batch, g = cfg.img / cfg.p, l = g * g, k = Index(double(l) * 0.25), pd = cfg.p * cfg.p * cfg.c;
  const Index d = cfg.d, dd = cfg.dd, re = n * (1 + k), rd = n * (1 + l);
  auto add = [&](std::string part, std::string layer, std::string shp, double ff, double bf, std::function<void()> f,
                 std::function<void()> bk) {
    Row row;
    row.part = std::move(part), row.layer = std::move(layer), row.shape = std::move(shp);
    row.fwd_flop = ff, row.bwd_flop = bf, row.fwd = std::move(f), row.bwd = std::move(bk);
    rows.push_back(std::move(row));
  };
  auto& ids = pool.ids(n, l);
  const std::int64_t* shuf = ids.data();
  const std::int64_t* rest = ids.data() + n * l;
  {  // patch embedding of the kept patches
    mae::PatchEmbed<float> pe{cfg.img, cfg.p, cfg.c, d, pool.linear(pd, d), pool.param(d, 0.02),
                              pool.take((1 + l) * d, 0.5)};
    float* im = imgs.data();
    MatView<float> xp(pool.zeros(n * k * pd), n * k, pd), tok(pool.zeros(n * k * d), n * k, d),
        out(pool.zeros(re * d), re, d), dout(pool.take(re * d), re, d), dtok(pool.zeros(n * k * d), n * k, d);
    add("enc", "patch_embed", shape(n * k, pd, d), 2.0 * double(n * k * pd * d), 2.0 * double(n * k * pd * d),
        [=, &be] { pe.forward(be, im, shuf, l, n, k, xp, tok, out); },
        [=, &be] { pe.backward(be, n, k, xp, dout, dtok); });
  }
  auto ln_row = [&](const char* part, const char* name, Index r, Index w) {
    auto ln = pool.layer_norm(w);
    float *x = pool.take(r * w), *y = pool.zeros(r * w), *dy = pool.take(r * w), *dx = pool.zeros(r * w);
    mae::LayerNormCache<float> c{{pool.zeros(r), r}, {pool.zeros(r), r}};
    add(part, name, b::fmt("%ldx%ld", long(r), long(w)), 0, 0,
        [=, &be] { ln.forward(be, MatView<const float>(x, r, w), MatView<float>(y, r, w), c); },
        [=, &be] { ln.backward(be, MatView<const float>(x, r, w), MatView<const float>(dy, r, w), c, MatView<float>(dx, r, w)); });
  };
  auto lin_row = [&](const char* part, const char* name, Index r, Index in, Index out) {
    auto lin = pool.linear(in, out);
    float *x = pool.take(r * in), *y = pool.zeros(r * out), *dy = pool.take(r * out), *dx = pool.zeros(r * in);
    add(part, name, shape(r, in, out), 2.0 * double(r * in * out), 4.0 * double(r * in * out),
        [=, &be] { lin.forward(be, MatView<const float>(x, r, in), MatView<float>(y, r, out)); },
        [=, &be] { lin.backward(be, MatView<const float>(x, r, in), MatView<const float>(dy, r, out), MatView<float>(dx, r, in)); });
  };
  ln_row("enc", "norm", re, d);
  lin_row("dec", "decoder_embed", re, d, dd);
  {  // mask tokens + unshuffle + decoder position embedding
    mae::MaskUnshuffle<float> mu{dd, pool.param(dd, 0.02), pool.take((1 + l) * dd, 0.5)};
    MatView<float> y(pool.take(re * dd), re, dd), z(pool.zeros(rd * dd), rd, dd), dz(pool.take(rd * dd), rd, dd),
        dy(pool.zeros(re * dd), re, dd);
    add("dec", "unshuffle", b::fmt("%ldx%ld->%ldx%ld", long(re), long(dd), long(rd), long(dd)), 0, 0,
        [=, &be] { mu.forward(be, y, rest, n, l, k, z); },
        [=, &be] { mu.backward(be, dz, shuf, rest, n, l, k, dy); });
  }
  ln_row("dec", "decoder_norm", rd, dd);
  lin_row("dec", "decoder_pred", rd, dd, pd);
  {  // loss: target (norm_pix) + masked mean; backward writes dpred
    mae::MseLoss<float> loss{cfg.img, cfg.p, cfg.c, true};
    float* im = imgs.data();
    MatView<float> pred(pool.take(rd * pd), rd, pd), target(pool.zeros(n * l * pd), n * l, pd),
        dpred(pool.zeros(rd * pd), rd, pd);
    float* mask = pool.zeros(n * l);
    for (Index s = 0; s < n; ++s)
      for (Index i = 0; i < l; ++i) mask[s * l + i] = rest[s * l + i] >= k ? 1.0f : 0.0f;
    Span<float> err{pool.zeros(n * l), n * l}, stats{pool.zeros(2), 2};
    add("loss", "mse norm_pix", b::fmt("%ldx%ld", long(n * l), long(pd)), 0, 0,
        [=, &be] {
          loss.target(be, im, n, target);
          loss.forward(be, pred, target, mask, n, err, stats);
        },
        [=, &be] { loss.backward(be, pred, target, mask, n, stats, 1.0f, dpred); });
  }
  {  // zero_grad and AdamW over all parameters (model's arena layout, one segment per tensor)
    auto* mp = &model;
    add("optim", "zero_grad", b::fmt("%ld params", long(model.param_arena().size)), 0, 0, [mp] { mp->zero_grad(); },
        nullptr);
    auto* ap = &adamw;
    auto* sp = &segs;
    add("optim", "AdamW step", b::fmt("%ld params", long(model.param_arena().size)), 0, 0,
        [ap, sp, &be] { ap->step(be, *sp, 1e-4); }, nullptr);
  }
  {  // the whole model
    auto* mp = &model;
    const float* im = imgs.data();
    const float* no = noise.data();
    const double enc = double(cfg.depth) * (2.0 * re * d * 12 * d + 4.0 * n * (1 + k) * (1 + k) * d);
    const double dec = double(cfg.ddepth) * (2.0 * rd * dd * 12 * dd + 4.0 * n * (1 + l) * (1 + l) * dd);
    const double patch = 2.0 * n * k * pd * d, fwd = patch + enc + 2.0 * re * d * dd + dec + 2.0 * rd * dd * pd;
    add("model", "MaeViT forward", b::fmt("batch %ld", long(n)), fwd, 2 * fwd - patch, [mp, im, no] { mp->forward(im, no); },
        [mp] { mp->backward(); });
  }
}

template <class B>
void run_config(const LayerConfig& cfg, Printer& out, const b::TimeBudget& budget) {
  Pool pool(17);
  const Index n = cfg.batch, g = cfg.img / cfg.p, l = g * g, k = Index(double(l) * 0.25);
  std::vector<Row> rows;
  block_rows(rows, pool, "enc", n, 1 + k, cfg.d, cfg.heads, 4 * cfg.d, cfg.depth);
  block_rows(rows, pool, "dec", n, 1 + l, cfg.dd, cfg.dheads, 4 * cfg.dd, cfg.ddepth);

  B be;
  mae::MaeViT<float, B> model(model_config(cfg), be, n);
  mae::init_weights(model, 7);
  std::vector<float> imgs(std::size_t(n * cfg.c * cfg.img * cfg.img)), noise(std::size_t(n * l));
  mae::Rng rng(5, 0, 0);
  for (float& x : imgs) x = float(rng.normal());
  for (float& x : noise) x = rng.uniform_float();
  std::vector<float> m(std::size_t(model.param_arena().size), 0.0f), v(m.size(), 0.0f);
  std::vector<typename mae::AdamW<float>::Segment> segs;
  for (const mae::ParamInfo& p : model.table().entries())
    if (p.trainable)
      segs.push_back({model.param_arena().data + p.offset, model.grad_arena().data + p.offset, m.data() + p.offset,
                      v.data() + p.offset, p.numel, p.decay});
  mae::AdamW<float> adamw(0.9, 0.95, 1e-8, 0.05);
  head_rows<B>(rows, pool, be, cfg, model, imgs, noise, segs, adamw);

  out.config = cfg.name;
  out.batch = n;
  out.total_ms = 0;
  if (!out.json) {
    std::printf("\n%s: batch %ld, %ldx%ld %s, patch %ld (L %ld, K %ld) | encoder %ld x %ld, %ld heads | decoder %ld x %ld, %ld heads\n",
                cfg.name.c_str(), long(n), long(cfg.img), long(cfg.img), cfg.c == 1 ? "gray" : "RGB", long(cfg.p), long(l),
                long(k), long(cfg.d), long(cfg.depth), long(cfg.heads), long(cfg.dd), long(cfg.ddepth), long(cfg.dheads));
    out.table.header();
  }
  double model_ms = 0;
  for (const Row& r : rows) {
    b::Stats f = b::time_it(r.fwd, budget), bw;
    if (r.bwd) bw = b::time_it(r.bwd, budget);
    if (r.part == "model") model_ms = f.median_ms + bw.median_ms;
    out.emit(r, f, bw);
  }
  if (!out.json)
    std::printf("sum of top-level rows (blocks x depth + head + optim): %.1f ms | MaeViT forward + backward: %.1f ms\n",
                out.total_ms, model_ms);
}

const char* kUsage =
    "usage: bench_layers [--config NAME[,NAME..]] [--json] [--threads N] [--budget SECONDS_PER_ROW]\n"
    "                    [--min-reps N]\n"
    "  configs: tiny32 fmnist28 base224 (default: tiny32,base224)\n";

}  // namespace

int main(int argc, char** argv) {
  b::Args args(argc, argv);
  if (args.flag("-h") || args.flag("--help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  Printer out;
  out.json = args.flag("--json");
  out.threads = int(args.number("--threads", 2));
  b::TimeBudget budget;
  budget.budget_s = args.number("--budget", 0.25);
  budget.min_reps = int(args.number("--min-reps", 3));
  const std::string cfg_arg = args.value("--config", "tiny32,base224");
  if (const std::string e = args.error(); !e.empty() || out.threads < 1) {
    std::fprintf(stderr, "bench_layers: %s\n%s", e.empty() ? "--threads must be >= 1" : e.c_str(), kUsage);
    return 2;
  }
  std::vector<LayerConfig> configs;
  for (const std::string& s : b::split_list(cfg_arg)) {
    bool found = false;
    for (const LayerConfig& c : kConfigs)
      if (c.name == s || s == "all") configs.push_back(c), found = true;
    if (!found) {
      std::fprintf(stderr, "bench_layers: unknown config '%s'\n%s", s.c_str(), kUsage);
      return 2;
    }
  }
  omp_set_num_threads(out.threads);
  if (!out.json)
    std::printf("bench_layers: float32, backend %s, median of repeats (%.2f s per direction, >= %d reps)\n%s\n",
                mae::backend::Default::name, budget.budget_s, budget.min_reps, b::machine_line(out.threads).c_str());
  try {
    for (const LayerConfig& c : configs) run_config<mae::backend::Default>(c, out, budget);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_layers: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
