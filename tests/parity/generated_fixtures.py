#!/usr/bin/python3
"""Parity on configurations no shipped fixture has: odd grids, ratios, depths, head counts, mlp ratios.

1. Checks that the PyTorch model of benchmarks/pytorch_mae.py reproduces every official fixture in
   shared/fixtures/mae_parity (so it is the official model).
2. For each config below, writes a fixture folder laid out exactly like the shipped ones (config.json,
   weights/inputs/expected.safetensors; weights perturbed as the fixture README describes), computed
   by that PyTorch model in float64.
3. Runs `mae_parity` on each folder for f32/f64 x eigen/onednn and compares every tensor within the
   parity tolerance (max |diff| / max |ref|: 1e-9 double, 2e-5 float).
Usage: generated_fixtures.py <mae_parity binary> <work dir> <official fixtures dir>. Exit 77 without torch.
"""
import json
import os
import struct
import subprocess
import sys

try:
    import numpy as np
    import torch
except ImportError:
    print("generated_fixtures: torch or numpy not importable: skipping")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks"))
import pytorch_mae as pm  # noqa: E402

CONFIGS = [  # name, model kwargs, mask_ratio, batch
    ("odd12_p3_c2", dict(img_size=12, patch_size=3, in_chans=2, embed_dim=12, depth=3, num_heads=3,
                         decoder_embed_dim=8, decoder_depth=2, decoder_num_heads=2, mlp_ratio=2.5,
                         norm_pix_loss=True), 0.6, 3),
    ("rgb20_p5_k0", dict(img_size=20, patch_size=5, in_chans=3, embed_dim=16, depth=1, num_heads=4,
                         decoder_embed_dim=12, decoder_depth=1, decoder_num_heads=3, mlp_ratio=1.0,
                         norm_pix_loss=False), 0.95, 2),
    ("gray30_p6_r9", dict(img_size=30, patch_size=6, in_chans=1, embed_dim=20, depth=2, num_heads=5,
                          decoder_embed_dim=4, decoder_depth=3, decoder_num_heads=1, mlp_ratio=3.3,
                          norm_pix_loss=True), 0.9, 1),
    ("gray8_p2_depth0", dict(img_size=8, patch_size=2, in_chans=1, embed_dim=8, depth=0, num_heads=2,
                             decoder_embed_dim=8, decoder_depth=0, decoder_num_heads=2, mlp_ratio=4.0,
                             norm_pix_loss=True), 0.75, 2),
    ("rgb8_p4_all_masked", dict(img_size=8, patch_size=4, in_chans=3, embed_dim=12, depth=1, num_heads=3,
                                decoder_embed_dim=8, decoder_depth=1, decoder_num_heads=2, mlp_ratio=2.0,
                                norm_pix_loss=True), 1.0, 2),
]


def write_safetensors(path, tensors):
    header, blobs, offset = {"__metadata__": {"producer": "generated_fixtures.py"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dt = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_fixture(folder, name, kw, ratio, n, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = pm.MaskedAutoencoderViT(**kw)
    with torch.no_grad():  # perturb as the fixture README does, then round to float32
        for pname, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if "norm" in pname:
                std = 0.1 if pname.endswith("weight") else 0.05
            elif pname in ("cls_token", "mask_token"):
                std = 0.02
            else:
                std = 0.01 if pname.endswith("weight") else 0.02
            p.add_(std * torch.randn_like(p))
    weights = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    model = model.double()
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in weights.items()})
    L = (kw["img_size"] // kw["patch_size"]) ** 2
    imgs = rng.standard_normal((n, kw["in_chans"], kw["img_size"], kw["img_size"])).astype(np.float32)
    noise = rng.permutation(n * L).reshape(n, L).astype(np.float32) / np.float32(n * L)  # distinct values
    ti, tn = torch.from_numpy(imgs.astype(np.float64)), torch.from_numpy(noise.astype(np.float64))
    loss, pred, mask, latent, ids_restore, ids_shuffle = model(ti, tn, ratio, details=True)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        exp = {"loss": loss.detach().numpy().reshape(()), "pred": pred.detach().numpy(), "mask": mask.numpy(),
               "latent": latent.detach().numpy(), "target": model.target(ti).numpy(),
               "features": model.forward_features(ti).numpy(),
               "ids_restore": ids_restore.numpy().astype(np.int64), "ids_shuffle": ids_shuffle.numpy().astype(np.int64)}
    for pname, p in model.named_parameters():
        if p.requires_grad:
            exp["grad." + pname] = p.grad.numpy()
    os.makedirs(folder, exist_ok=True)
    cfg = dict(kw, mask_ratio=ratio, layernorm_eps=1e-6, batch=n, name=name,
               patchify_generalized_channels=kw["in_chans"] != 3, generated_by="tests/parity/generated_fixtures.py")
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    write_safetensors(os.path.join(folder, "weights.safetensors"), weights)
    write_safetensors(os.path.join(folder, "inputs.safetensors"), {"imgs": imgs, "noise": noise})
    write_safetensors(os.path.join(folder, "expected.safetensors"), exp)
    return exp


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    binary, work, official = sys.argv[1:]
    torch.set_num_threads(2)
    if os.path.isdir(official):
        ok = True
        for d in sorted(os.listdir(official)):
            if os.path.exists(os.path.join(official, d, "config.json")):
                good, rows = pm.check_fixture(os.path.join(official, d), 1e-9)
                ok = ok and good
                print(f"PyTorch model vs official fixture {d}: worst {max(r[1] for r in rows):.2e}")
        if not ok:
            print("the PyTorch model does not reproduce the official fixtures: cannot generate new ones")
            return 1
    failures = 0
    for i, (name, kw, ratio, n) in enumerate(CONFIGS):
        folder = os.path.join(work, name)
        exp = make_fixture(folder, name, kw, ratio, n, 1000 + i)
        for dtype, tol in (("f64", 1e-9), ("f32", 2e-5)):
            for backend in ("eigen", "onednn"):
                out = os.path.join(work, f"{name}_{dtype}_{backend}.safetensors")
                r = subprocess.run([binary, folder, "--dtype", dtype, "--backend", backend, "--out", out],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAIL {name} {dtype} {backend}: mae_parity exited {r.returncode}: {r.stderr.strip()}")
                    failures += 1
                    continue
                got = pm.read_safetensors(out)
                worst, worst_name = 0.0, ""
                for key, e in exp.items():
                    if key not in got:
                        print(f"FAIL {name} {dtype} {backend}: '{key}' missing from mae_parity output")
                        failures += 1
                        continue
                    e = np.asarray(e, dtype=np.float64)
                    g = np.asarray(got[key], dtype=np.float64).reshape(e.shape)
                    err = float(np.max(np.abs(g - e))) / max(float(np.max(np.abs(e))), 1e-300) if e.size else 0.0
                    if err > worst:
                        worst, worst_name = err, key
                status = "ok  " if worst <= tol else "FAIL"
                failures += worst > tol
                print(f"{status} {name:14s} {dtype} {backend:6s} worst {worst:.2e} ({worst_name}), tolerance {tol:g}")
    print(f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
