#!/usr/bin/python3
"""The PyTorch peer of bench_step: the official MAE model and training step, in plain PyTorch.

A faithful re-implementation of facebookresearch/mae models_mae.MaskedAutoencoderViT (commit
efb2a80) with timm 0.4.12 PatchEmbed / Block / Attention / Mlp semantics: Conv2d patch embedding
(kernel = stride = p), pre-norm blocks, fused qkv with bias, scale head_dim^-0.5, LayerNorm eps 1e-6,
exact (erf) GELU, fixed 2-D sin-cos position embeddings rounded to float32, per-sample random
masking from given noise, norm_pix loss (unbiased variance, eps inside the root). Two additions,
both outside the official forward: the masking noise is an argument (the fixtures fix it), and
`all_tokens=True` runs the encoder on every patch with the loss over all patches (the
asymmetric-encoder comparison, MaeViT::Mode::AllTokens in mae.cpp).

  --check-fixtures DIR   every sub-folder of DIR holding a config.json is one parity fixture
                         (shared/fixtures/mae_parity): run it in float64 and compare loss, pred,
                         mask, ids, latent, target, features and every gradient with
                         expected.safetensors, within --tol (1e-9) of each tensor's largest |value|.
                         Prints the worst tensor per fixture; exit status 1 on any mismatch.
  (default)              benchmark: the configs and modes of bench_step, one JSON object per line
                         with --json (same keys as bench_step --json), else a table.

Train step = optimizer.zero_grad(); loss = model(imgs, noise); loss.backward(); optimizer.step()
with torch.optim.AdamW(betas=(0.9, 0.95), weight_decay=0.05) over all trainable parameters, in the
official two groups (no decay for biases and 1-D tensors). Inference = forward_features under
torch.inference_mode(). torch.set_num_threads(--threads, default 2).

Run it with Debian's interpreter: /usr/bin/python3 (python3-torch, python3-numpy). For PyTorch's
best GEMM speed here, unset OPENBLAS_L2_SIZE and set OPENBLAS_CORETYPE to the fastest kernel the CPU
runs (this machine sets Haswell; unset, OpenBLAS 0.3.21 runs an unknown CPU as a Prescott): compare.py
tries each and keeps the fastest torch.mm.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

# ---- configs (the same table as bench_step.cpp) -----------------------------------------------------

CONFIGS = {
    # name: (img, patch, chans, D, depth, heads, Dd, ddepth, dheads, batch)
    "tiny32": (32, 4, 3, 192, 12, 3, 128, 4, 4, 64),
    "fmnist28": (28, 4, 1, 192, 6, 3, 128, 2, 4, 128),
    "base224": (224, 16, 3, 768, 12, 12, 512, 8, 16, 8),
}
MODES = ["train", "train_nomask", "infer"]


def model_kwargs(name):
    img, p, c, d, depth, heads, dd, ddepth, dheads, _ = CONFIGS[name]
    return dict(img_size=img, patch_size=p, in_chans=c, embed_dim=d, depth=depth, num_heads=heads,
                decoder_embed_dim=dd, decoder_depth=ddepth, decoder_num_heads=dheads, mlp_ratio=4.0,
                norm_pix_loss=True)


def step_flops(name, mode, mask_ratio=0.75):
    """GEMM FLOPs of one step, counted exactly as bench_step.cpp's step_flops (the model's FLOPs,
    not what PyTorch executes: the official code embeds all L patches before masking)."""
    img, p, c, d, depth, _, dd, ddepth, _, n = CONFIGS[name]
    l = (img // p) ** 2
    pd = p * p * c
    k = int(l * (1.0 - mask_ratio)) if mode == "train" else l

    def block(t, w):
        return 2 * n * t * w * (3 * w + w + 2 * 4 * w) + 4 * n * t * t * w

    patch = 2 * n * k * pd * d
    enc = depth * block(1 + k, d)
    if mode == "infer":
        return patch + enc
    dec = 2 * n * (1 + k) * d * dd + ddepth * block(1 + l, dd) + 2 * n * (1 + l) * dd * pd
    return 3 * (patch + enc + dec) - patch


# ---- model (official MAE + timm 0.4.12 blocks) ------------------------------------------------------

def sincos_1d(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(embed_dim, grid_size):
    """util/pos_embed.get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=True)."""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(grid_w, grid_h), axis=0).reshape([2, 1, grid_size, grid_size])
    emb = np.concatenate([sincos_1d(embed_dim // 2, grid[0]), sincos_1d(embed_dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0,
                 norm_pix_loss=False):
        super().__init__()
        self.in_chans = in_chans
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            [Block(decoder_embed_dim, decoder_num_heads, mlp_ratio) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size ** 2 * in_chans, bias=True)
        self.norm_pix_loss = norm_pix_loss
        self.initialize_weights()

    def initialize_weights(self):
        g = int(self.patch_embed.num_patches ** 0.5)
        self.pos_embed.data.copy_(torch.from_numpy(sincos_2d(self.pos_embed.shape[-1], g)).float().unsqueeze(0))
        self.decoder_pos_embed.data.copy_(
            torch.from_numpy(sincos_2d(self.decoder_pos_embed.shape[-1], g)).float().unsqueeze(0))
        w = self.patch_embed.proj.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        torch.nn.init.normal_(self.cls_token, std=0.02)
        torch.nn.init.normal_(self.mask_token, std=0.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def patchify(self, imgs):
        """(N, C, H, W) -> (N, L, p*p*C), (u, v, c) order (official, generalized to C channels)."""
        p = self.patch_embed.patch_size[0]
        c = self.in_chans
        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], c, h, p, w, p))
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(shape=(imgs.shape[0], h * w, p ** 2 * c))

    def random_masking(self, x, mask_ratio, noise, all_tokens=False):
        N, L, D = x.shape
        len_keep = L if all_tokens else int(L * (1 - mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        mask = torch.ones([N, L], device=x.device, dtype=x.dtype)
        if not all_tokens:  # all_tokens: the loss covers every patch
            mask[:, :len_keep] = 0
            mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore, ids_shuffle

    def forward_encoder(self, x, mask_ratio, noise, all_tokens=False):
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore, ids_shuffle = self.random_masking(x, mask_ratio, noise, all_tokens)
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x, mask, ids_restore, ids_shuffle

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        x = self.decoder_pred(x)
        return x[:, 1:, :]

    def target(self, imgs):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    def forward_loss(self, imgs, pred, mask):
        loss = (pred - self.target(imgs)) ** 2
        loss = loss.mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    def forward(self, imgs, noise, mask_ratio=0.75, all_tokens=False, details=False):
        latent, mask, ids_restore, ids_shuffle = self.forward_encoder(imgs, mask_ratio, noise, all_tokens)
        pred = self.forward_decoder(latent, ids_restore)
        loss = self.forward_loss(imgs, pred, mask)
        if details:
            return loss, pred, mask, latent, ids_restore, ids_shuffle
        return loss

    def forward_features(self, imgs):
        """Encoder on all patches, natural order, no masking (fixtures' `features`)."""
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


def param_groups(model, weight_decay):
    """timm add_weight_decay as used by main_pretrain.py: no decay for 1-D tensors and biases."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


# ---- safetensors (a tiny reader: struct + json + numpy) ----------------------------------------------

_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U8": "u1", "BOOL": "?"}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        dt = np.dtype(_DTYPES[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64))
        if not (0 <= begin <= end <= len(data) - base) or end - begin != count * dt.itemsize:
            raise ValueError(f"{path}: tensor '{name}' has bad offsets {begin}..{end} for shape {info['shape']}")
        out[name] = np.frombuffer(data, dtype=dt, count=count, offset=base + begin).reshape(info["shape"]).copy()
    return out


# ---- fixture check -----------------------------------------------------------------------------------

def check_fixture(folder, tol):
    """Runs one parity fixture in float64. Returns (ok, rows): rows are (tensor, rel err)."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    keys = ["img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
            "decoder_depth", "decoder_num_heads", "mlp_ratio", "norm_pix_loss"]
    model = MaskedAutoencoderViT(**{k: cfg[k] for k in keys}).double()
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            m.eps = float(cfg.get("layernorm_eps", 1e-6))
    weights = read_safetensors(os.path.join(folder, "weights.safetensors"))
    state = {k: torch.from_numpy(v.astype(np.float64)) for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder}: weights do not match the model: missing {missing}, unexpected {unexpected}")
    inputs = read_safetensors(os.path.join(folder, "inputs.safetensors"))
    expected = read_safetensors(os.path.join(folder, "expected.safetensors"))
    imgs = torch.from_numpy(inputs["imgs"].astype(np.float64))
    noise = torch.from_numpy(inputs["noise"].astype(np.float64))

    loss, pred, mask, latent, ids_restore, ids_shuffle = model(imgs, noise, cfg["mask_ratio"], details=True)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        got = {"loss": loss.detach(), "pred": pred.detach(), "mask": mask, "latent": latent.detach(),
               "target": model.target(imgs), "features": model.forward_features(imgs),
               "ids_restore": ids_restore, "ids_shuffle": ids_shuffle}
    for name, p in model.named_parameters():
        if p.requires_grad:
            got["grad." + name] = p.grad
    rows, ok = [], True
    for name in sorted(expected):
        if name.startswith("act."):
            continue  # optional debugging aids
        if name not in got:
            rows.append((name, float("inf"), "not produced"))
            ok = False
            continue
        e = expected[name].astype(np.float64)
        g = got[name].detach().numpy().astype(np.float64)
        if e.shape != g.shape and not (e.size == g.size == 1):
            rows.append((name, float("inf"), f"shape {list(g.shape)} != {list(e.shape)}"))
            ok = False
            continue
        scale = max(float(np.max(np.abs(e))) if e.size else 0.0, 1e-300)
        err = float(np.max(np.abs(g.reshape(e.shape) - e))) / scale if e.size else 0.0
        rows.append((name, err, ""))
        ok = ok and err <= tol
    for name in got:
        if name.startswith("grad.") and name not in expected:
            rows.append((name, float("inf"), "gradient missing from expected.safetensors"))
            ok = False
    return ok, rows


def check_fixtures(root, tol, as_json):
    folders = sorted(os.path.join(root, d) for d in os.listdir(root)
                     if os.path.isfile(os.path.join(root, d, "config.json")))
    if not folders:
        print(f"pytorch_mae: no fixture folders (with config.json) under {root}", file=sys.stderr)
        return 1
    all_ok = True
    for folder in folders:
        ok, rows = check_fixture(folder, tol)
        all_ok = all_ok and ok
        worst = max(rows, key=lambda r: r[1])
        bad = [r for r in rows if r[1] > tol]
        name = os.path.basename(folder)
        if as_json:
            print(json.dumps({"kind": "fixture", "impl": "pytorch", "fixture": name, "ok": ok, "tensors": len(rows),
                              "worst_tensor": worst[0], "worst_rel_err": worst[1], "tol": tol}), flush=True)
        else:
            print(f"fixture {name:12s} {'OK  ' if ok else 'FAIL'} {len(rows):3d} tensors, worst {worst[0]} "
                  f"{worst[1]:.3g} (relative to the tensor's max |value|, tol {tol:g})", flush=True)
        for r in bad:
            print(f"  mismatch: {r[0]} rel err {r[1]:.3g} {r[2]}", file=sys.stderr)
    return 0 if all_ok else 1


# ---- benchmark ---------------------------------------------------------------------------------------

def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def time_it(fn, budget_s, min_reps):
    """First call warms up; then repeat until budget_s of measured calls and at least min_reps."""
    fn()
    times = []
    while sum(times) < budget_s or len(times) < min_reps:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    return med * 1e3, times[0] * 1e3, times[-1] * 1e3, n


def sgemm_peak(budget_s=0.5):
    best = 0.0
    for n in (2048, 3072):  # the same two sizes as bench_step; the faster counts
        g = torch.Generator().manual_seed(11)
        a = torch.rand(n, n, generator=g) - 0.5
        b = torch.rand(n, n, generator=g) - 0.5
        _, fastest, _, _ = time_it(lambda: torch.mm(a, b), budget_s, 3)  # the fastest call, as bench_step
        best = max(best, 2.0 * n ** 3 / (fastest * 1e-3) * 1e-9)
    return best


def bench_one(name, mode, budget_s, min_reps):
    kw = model_kwargs(name)
    n = CONFIGS[name][-1]
    torch.manual_seed(0)
    imgs = torch.randn(n, kw["in_chans"], kw["img_size"], kw["img_size"])
    L = (kw["img_size"] // kw["patch_size"]) ** 2
    noises = [torch.rand(n, L) for _ in range(4)]
    base_rss = current_rss_mb()
    reset_peak_rss()
    model = MaskedAutoencoderViT(**kw)
    checksum = [0.0]
    if mode == "infer":
        model.eval()

        def fn():
            with torch.inference_mode():
                f = model.forward_features(imgs)
            checksum[0] += float(f.view(-1)[0]) + float(f.view(-1)[f.numel() // 2])
    else:
        model.train()
        opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1.5e-4 * n / 256, betas=(0.9, 0.95))
        step = [0]
        all_tokens = mode == "train_nomask"

        def fn():
            opt.zero_grad()
            loss = model(imgs, noises[step[0] % len(noises)], 0.75, all_tokens)
            loss.backward()
            opt.step()
            step[0] += 1
            checksum[0] += float(loss)
    med, lo, hi, reps = time_it(fn, budget_s, min_reps)
    return med, lo, hi, reps, peak_rss_mb(), base_rss, checksum[0]


def blas_label():
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return f"torch {torch.__version__}" + (f", OPENBLAS_CORETYPE={coretype}" if coretype else ", OPENBLAS_CORETYPE unset")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check-fixtures", metavar="DIR", help="verify every fixture folder under DIR in float64")
    ap.add_argument("--tol", type=float, default=1e-9, help="fixture tolerance relative to each tensor's max")
    ap.add_argument("--config", default="all", help="tiny32,fmnist28,base224 (default all)")
    ap.add_argument("--mode", default="all", help="train,train_nomask,infer (default all)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of measured steps per row")
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--peak", type=float, default=0.0, help="GEMM peak GFLOP/s (default: measure torch.mm 2048^3 and 3072^3)")
    ap.add_argument("--no-peak", action="store_true")
    ap.add_argument("--peak-only", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    if args.check_fixtures:
        return check_fixtures(args.check_fixtures, args.tol, args.json)

    configs = list(CONFIGS) if args.config == "all" else [c for c in args.config.split(",") if c]
    modes = MODES if args.mode == "all" else [m for m in args.mode.split(",") if m]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown config '{c}'")
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode '{m}'")

    label = blas_label()
    peak = args.peak
    if peak <= 0 and not args.no_peak:
        peak = sgemm_peak()
    if args.json:
        print(json.dumps({"kind": "peak", "impl": "pytorch", "backend": label, "op": "torch.mm 2048^3, 3072^3",
                          "threads": args.threads, "gflops": peak}), flush=True)
    else:
        print(f"pytorch_mae: float32, {label}, {args.threads} threads, budget {args.budget} s, >= {args.min_reps} reps")
        print(f"GEMM peak: {peak:.1f} GFLOP/s (torch.mm, fastest of 2048^3 and 3072^3)\n")
        print(f"{'config':8s} | {'mode':12s} | {'batch':>5s} | {'median ms':>10s} | {'min ms':>9s} | {'max ms':>9s} | "
              f"{'img/s':>8s} | {'GFLOP/s':>8s} | {'% peak':>6s} | {'RSS MB':>7s} | reps", flush=True)
    if args.peak_only:
        return 0
    ms = {}
    total = 0.0
    for c in configs:
        for m in modes:
            med, lo, hi, reps, rss, base_rss, chk = bench_one(c, m, args.budget, args.min_reps)
            total += chk
            batch = CONFIGS[c][-1]
            flop = step_flops(c, m)
            gflops = flop / (med * 1e-3) * 1e-9
            pct = 100.0 * gflops / peak if peak > 0 else 0.0
            ms[(c, m)] = med
            if args.json:
                print(json.dumps({"kind": "step", "impl": "pytorch", "backend": label, "config": c, "mode": m,
                                  "batch": batch, "threads": args.threads, "median_ms": med, "min_ms": lo,
                                  "max_ms": hi, "images_per_s": batch / (med * 1e-3), "gflops": gflops,
                                  "peak_rss_mb": rss, "base_rss_mb": base_rss, "model_gflop": flop * 1e-9,
                                  "peak_gflops": peak, "pct_peak": pct, "reps": reps, "checksum": chk}), flush=True)
            else:
                print(f"{c:8s} | {m:12s} | {batch:5d} | {med:10.2f} | {lo:9.2f} | {hi:9.2f} | "
                      f"{batch / (med * 1e-3):8.1f} | {gflops:8.1f} | {pct:6.1f} | {rss:7.0f} | {reps:4d}", flush=True)
    for c in configs:
        if (c, "train") in ms and (c, "train_nomask") in ms:
            speedup = ms[(c, "train_nomask")] / ms[(c, "train")]
            ratio = step_flops(c, "train_nomask") / step_flops(c, "train")
            if args.json:
                print(json.dumps({"kind": "speedup", "impl": "pytorch", "config": c, "batch": CONFIGS[c][-1],
                                  "threads": args.threads, "speedup": speedup, "flop_ratio": ratio}), flush=True)
            else:
                print(f"asymmetric encoder {c}: speedup {speedup:.2f}x, FLOP ratio {ratio:.2f}x")
    if not args.json:
        print(f"checksum {total:.9g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
