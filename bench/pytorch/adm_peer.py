#!/usr/bin/env python3
"""The PyTorch peer of imported checkpoints: random-weight full-size versions of the field's
real configurations (DPS's ffhq_10m, OpenAI's ImageNet 256 unconditional, the consistency
models cd_imagenet64_l2 and cd_bedroom256_lpips, diffusers' ddpm-celebahq-256), built with the
reference code, saved as the real files are, imported with `posterior-lab models
--import-checkpoint`, and then

1. agreement: `posterior-lab denoise` against PyTorch's D(x, σ) on the same input, at σ on the
   checkpoint's table (relative error, goal ≤ 1e-4 for f32 files);
2. speed (--time): one network call (NFE) and one VJP at the model's size, batch 1 and 4, with
   2 threads, PyTorch and `posterior-lab bench --checkpoint` interleaved.

    /tmp/torchenv/bin/python bench/pytorch/adm_peer.py [--bin target/release/posterior-lab]
        [--configs ffhq_10m,cd_imagenet64_l2] [--time] [--passes 3] [--threads 2]

Needs torch, numpy, pyyaml, guided-diffusion-sdk, diffusers (see
tests/fixtures/checkpoints/generate.py). Optional: CI never runs it. Writes under --work
(default /tmp/adm-peer): the full-size files are large (ImageNet 256: 2.2 GB).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures", "checkpoints"))
import generate  # noqa: E402  (the fixtures' reference helpers)

torch.set_grad_enabled(False)


def build(name):
    """(model, save(path), config path for --config or None, kind, image size, class)."""
    if name == "ddpm-celebahq-256":
        from diffusers import DDPMScheduler, UNet2DModel
        cfg = json.load(open(os.path.join(ROOT, "assets/checkpoints/ddpm-celebahq-256.json")))
        model = UNet2DModel.from_config(cfg).eval()
        generate.randomise(model, 11)

        def save(path):
            model.save_pretrained(path)
            DDPMScheduler(num_train_timesteps=1000).save_pretrained(os.path.join(path, "scheduler"))
        return model, save, None, "diffusers", 256, None
    cfg_path = os.path.join(ROOT, "assets/checkpoints", f"{name}.yaml")
    cfg = yaml.safe_load(open(cfg_path))
    args = generate.model_args(cfg)
    args["use_fp16"] = False
    # DPS's YAML gives a bare 16 (its copy of create_model accepts an int); the original wants text.
    args["attention_resolutions"] = str(args["attention_resolutions"])
    model = generate.create_model(**args).eval()
    generate.randomise(model, 11)
    cm = bool(cfg.get("consistency"))
    sd = model.state_dict()
    if cm:
        sd = {k: (v[..., None] if (".qkv." in k or ".proj_out." in k) and v.dim() == 3 else v)
              for k, v in sd.items()}
    klass = 207 if cfg.get("class_cond") else None
    return model, (lambda p: torch.save(sd, p)), cfg_path, ("cm" if cm else "adm"), \
        cfg["image_size"], klass


def reference(model, kind, x, sigma, klass):
    b = x.shape[0]
    y = None if klass is None else torch.full((b,), klass, dtype=torch.long)
    if kind == "cm":
        c_skip, c_out, c_in = generate.cm_scalings(sigma)
        t = torch.full((b,), 250.0 * math.log(sigma))
        return c_skip * x + c_out * model(c_in * x, t, y=y)
    table = generate.sigmas("linear", 1000)
    t = int(np.argmin(np.abs(table - sigma)))
    s = float(table[t])
    assert abs(s - sigma) < 1e-12
    xin = x / math.sqrt(1 + s * s)
    tt = torch.full((b,), float(t))
    if kind == "diffusers":
        eps = model(xin, tt).sample
    else:
        eps = model(xin, tt, y=y)[:, :3]
    return x - s * eps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/posterior-lab"))
    ap.add_argument("--configs", default="ffhq_10m")
    ap.add_argument("--work", default="/tmp/adm-peer")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    env = dict(os.environ, XDG_DATA_HOME=os.path.join(a.work, "home"),
               RAYON_NUM_THREADS=str(a.threads))
    env.pop("POSTERIOR_LAB_MODELS", None)
    rows = []
    for name in a.configs.split(","):
        model, save, cfg, kind, size, klass = build(name)
        src = os.path.join(a.work, name + (".pt" if kind != "diffusers" else ""))
        if not os.path.exists(src):
            save(src)
        mdir = os.path.join(env["XDG_DATA_HOME"], "posterior-lab", "models", name)
        if not os.path.exists(mdir):
            cmd = [a.bin, "models", "--import-checkpoint", src, "--name", name]
            if cfg:
                cmd += ["--config", cfg]
            t = time.time()
            subprocess.run(cmd, check=True, env=env)
            print(f"{name}: imported in {time.time() - t:.1f} s")
        g = torch.Generator().manual_seed(5)
        x0 = torch.rand(1, 3, size, size, generator=g) * 2 - 1
        n = torch.randn(1, 3, size, size, generator=g)
        sigmas = [0.002, 1.0, 80.0] if kind == "cm" else \
            [float(generate.sigmas("linear", 1000)[t]) for t in (10, 500, 990)]
        for s in sigmas:
            x = x0 + s * n
            ref = reference(model, kind, x, s, klass).numpy()
            with tempfile.TemporaryDirectory() as d:
                np.save(os.path.join(d, "x.npy"), x.numpy().astype(np.float32))
                cmd = [a.bin, "denoise", "--backend", "cpu", "--model", name, "--sigma",
                       repr(s), os.path.join(d, "x.npy"), os.path.join(d, "d.npy")]
                if klass is not None:
                    cmd += ["--class", str(klass)]
                subprocess.run(cmd, check=True, env=env, capture_output=True)
                got = np.load(os.path.join(d, "d.npy"))
            err = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
            print(f"{name}: σ {s:.4f}: relative error {err:.2e}")
            rows.append((name, s, err))
        if a.time:
            timing(a, env, model, kind, size, klass, name)
    worst = max(r[2] for r in rows)
    print(f"worst relative error {worst:.2e} ({'within' if worst <= 1e-4 else 'ABOVE'} 1e-4)")


def timing(a, env, model, kind, size, klass, name):
    res = {}
    sigma = 1.0 if kind == "cm" else float(generate.sigmas("linear", 1000)[250])
    for b in (1, 4):
        x = torch.randn(b, 3, size, size)
        torch_nfe, torch_vjp, ours_nfe, ours_vjp = [], [], [], []
        reference(model, kind, x, sigma, klass)  # warm-up
        for _ in range(a.passes):
            t = time.time()
            reference(model, kind, x, sigma, klass)
            torch_nfe.append(time.time() - t)
            with torch.enable_grad():
                xg = x.clone().requires_grad_(True)
                t = time.time()
                out = reference(model, kind, xg, sigma, klass)
                (out * x).sum().backward()
                torch_vjp.append(time.time() - t)
            cmd = [a.bin, "bench", "--backend", "cpu", "--checkpoint", name, "--batches",
                   str(b), "--passes", "1", "--sigma", repr(sigma)]
            if klass is not None:
                cmd += ["--class", str(klass)]
            out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
            row = [l for l in out.splitlines() if l.startswith(f"| {b} |")][0].split("|")
            ours_nfe.append(float(row[2]))
            ours_vjp.append(float(row[3]))
        med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
        res[b] = (med(torch_nfe), med(ours_nfe), med(torch_vjp), med(ours_vjp))
    print(f"\n{name} at {size}², {a.threads} threads, median of {a.passes} interleaved passes")
    print("| batch | PyTorch NFE (s) | posterior-lab NFE (s) | ratio | PyTorch VJP (s) | "
          "posterior-lab VJP (s) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for b, (tn, on, tv, ov) in res.items():
        print(f"| {b} | {tn:.2f} | {on:.2f} | {on / tn:.2f} | {tv:.2f} | {ov:.2f} | {ov / tv:.2f} |")


if __name__ == "__main__":
    main()
