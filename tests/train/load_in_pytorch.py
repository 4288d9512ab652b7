#!/usr/bin/python3
"""train.load_in_pytorch: a model.safetensors written by pretrain_tiny loads name-for-name, with
strict=True, into a PyTorch module tree built like facebookresearch/mae models_mae.MaskedAutoencoderViT
(timm 0.4.12 PatchEmbed / Block / Attention / Mlp), decoder included.

  load_in_pytorch.py PRETRAIN_TINY

Trains a tiny RGB model (depth 2, decoder depth 2) for one epoch on 12 IDX images written here,
reads model.safetensors with a minimal safetensors parser (no safetensors package needed), builds
the model from the "config" metadata, loads the state dict strictly and checks the dtypes and the
fixed 2-D sin-cos position embeddings against util/pos_embed.get_2d_sincos_pos_embed.
Exit status 0: passed, 1: failed, 77: torch or numpy is not importable (CTest: skipped).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:  # not a failure: this machine has no PyTorch
    print(f"skipped: {e}")
    sys.exit(77)


# ---- the official module tree (parameters and names only; forward is not needed to load) --------

class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)


class Block(nn.Module):
    def __init__(self, dim, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))


class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=1024, depth=24, num_heads=16,
                 decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0, **_):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_embed_dim, mlp_ratio) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size ** 2 * in_chans, bias=True)


def sincos_2d(embed_dim, grid_size):
    """util/pos_embed.get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=True)."""
    def one_d(dim, pos):
        omega = np.arange(dim // 2, dtype=np.float64)
        omega /= dim / 2.0
        omega = 1.0 / 10000 ** omega
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    grid = np.meshgrid(np.arange(grid_size, dtype=np.float32), np.arange(grid_size, dtype=np.float32))
    grid = np.stack(grid, axis=0).reshape([2, 1, grid_size, grid_size])
    emb = np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, embed_dim]), emb], axis=0)


def read_safetensors(path):
    """name -> numpy array, and the metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "F64": np.float64}
    tensors = {}
    for name, e in header.items():
        if e["dtype"] not in dtypes:
            raise SystemExit(f"FAIL: tensor {name} has dtype {e['dtype']}")
        begin, end = e["data_offsets"]
        dt = np.dtype(dtypes[e["dtype"]])
        arr = np.frombuffer(data, dtype=dt, count=(end - begin) // dt.itemsize, offset=8 + n + begin)
        tensors[name] = (e["dtype"], arr.reshape(e["shape"]).copy())
    return tensors, meta


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    program = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="mae_load_in_pytorch_") as tmp:
        idx = os.path.join(tmp, "idx")
        os.makedirs(idx)
        rng = np.random.default_rng(0)
        with open(os.path.join(idx, "train-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, 12, 8, 8))
            f.write(rng.integers(0, 256, size=12 * 8 * 8, dtype=np.uint8).tobytes())
        model_cfg = dict(img_size=8, patch_size=2, in_chans=3, embed_dim=16, depth=2, num_heads=2,
                         decoder_embed_dim=8, decoder_depth=2, decoder_num_heads=2, mlp_ratio=4.0,
                         norm_pix_loss=True, mask_ratio=0.75)
        cfg = os.path.join(tmp, "tiny.json")
        with open(cfg, "w") as f:
            json.dump({"model": model_cfg, "epochs": 1, "warmup_epochs": 0, "batch": 4, "recon_images": 1, "threads": 1}, f)
        out = os.path.join(tmp, "out")
        run = subprocess.run([program, "--config", cfg, "--data", idx, "--out", out],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0:
            print(run.stdout)
            raise SystemExit(f"FAIL: pretrain_tiny exited {run.returncode}")

        tensors, meta = read_safetensors(os.path.join(out, "model.safetensors"))
        config = json.loads(meta["config"])
        for k, v in model_cfg.items():
            if config.get(k) != v:
                raise SystemExit(f"FAIL: metadata config {k} = {config.get(k)}, expected {v}")
        bad = [n for n, (dt, _) in tensors.items() if dt != "F32"]
        if bad:
            raise SystemExit(f"FAIL: not F32: {bad}")

        model = MaskedAutoencoderViT(**config)
        state = {n: torch.from_numpy(a) for n, (_, a) in tensors.items()}
        try:
            model.load_state_dict(state, strict=True)  # missing, unexpected or misshapen keys raise
        except RuntimeError as e:
            raise SystemExit(f"FAIL: load_state_dict(strict=True): {e}")
        if set(model.state_dict()) != set(state):
            raise SystemExit("FAIL: key sets differ")

        g = config["img_size"] // config["patch_size"]
        for name, dim in (("pos_embed", config["embed_dim"]), ("decoder_pos_embed", config["decoder_embed_dim"])):
            want = torch.from_numpy(sincos_2d(dim, g)).float().unsqueeze(0)
            err = (getattr(model, name).detach() - want).abs().max().item()
            if err > 1e-6:
                raise SystemExit(f"FAIL: {name} differs from get_2d_sincos_pos_embed by {err}")
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                raise SystemExit(f"FAIL: {name} is not finite")
        print(f"ok: {len(state)} tensors loaded with strict=True into MaskedAutoencoderViT({json.dumps(config)})")


if __name__ == "__main__":
    main()
