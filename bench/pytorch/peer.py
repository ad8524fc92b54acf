#!/usr/bin/env python3
"""The PyTorch peer of `posterior-lab bench --network`: the shipped U-Net rebuilt in PyTorch,
loaded with the shipped weights, checked against the project's own outputs, and timed with the
same protocol (NFE and VJP, batch 1 and 16, all cores and one), interleaved with the project's
runs. Prints both tables and the ratio project / PyTorch.

    python3 bench/pytorch/peer.py [--bin target/release/posterior-lab] [--passes 2] [--quick]

Needs torch and numpy (`pip install torch numpy`); runs on the CPU. Optional: the project never
runs it, CI does not need it.
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import burnpack  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SIGMA = 0.5
FOURIER = 32


def card_config(path):
    """The `unet: (...)` block of a model card (RON) as a dict of the fields the replica needs."""
    text = open(path).read()
    block = text[text.index("unet:"):]
    def num(key, cast=int, default=None):
        m = re.search(rf"\b{key}:\s*([-0-9.e]+)", block)
        return cast(m.group(1)) if m else default
    mult = re.search(r"channel_mult:\s*\[([^\]]*)\]", block).group(1)
    return {
        "image_channels": num("image_channels"),
        "cond_channels": num("cond_channels", default=0),
        "base_channels": num("base_channels"),
        "channel_mult": [int(v) for v in mult.replace("\n", "").split(",") if v.strip()],
        "res_blocks": num("res_blocks"),
        "emb_dim": num("emb_dim"),
        "sigma_data": num("sigma_data", float),
    }


def groups(c):
    return next(g for g in (8, 4, 2, 1) if c % g == 0)


class Replica(torch.nn.Module):
    """src/priors/unet.rs, op for op: GroupNorm → SiLU → conv residual blocks with a noise
    embedding shift, strided-conv downsampling, nearest upsampling + conv, EDM preconditioning."""

    def __init__(self, cfg, w):
        super().__init__()
        self.cfg, self.w = cfg, {k: torch.from_numpy(v) for k, v in w.items()}
        self.levels = len(cfg["channel_mult"])
        self.n = max(cfg["res_blocks"], 1)

    def conv(self, name, x, stride=1):
        wt = self.w[f"{name}.weight"]
        pad = 1 if wt.shape[-1] == 3 else 0
        return F.conv2d(x, wt, self.w[f"{name}.bias"], stride=stride, padding=pad)

    def linear(self, name, x):
        # burn stores Linear weights as [in, out].
        return x @ self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def norm(self, name, x):
        return F.group_norm(x, groups(x.shape[1]), self.w[f"{name}.gamma"], self.w[f"{name}.beta"], 1e-5)

    def block(self, name, x, emb):
        h = self.conv(f"{name}.conv1", F.silu(self.norm(f"{name}.norm1", x)))
        h = h + self.linear(f"{name}.emb", emb)[:, :, None, None]
        h = self.conv(f"{name}.conv2", F.silu(self.norm(f"{name}.norm2", h)))
        s = self.conv(f"{name}.skip", x) if f"{name}.skip.weight" in self.w else x
        return (s + h) * (1.0 / math.sqrt(2.0))

    def net(self, x, c_noise):
        freqs = torch.tensor([100.0 ** (i / (FOURIER - 1)) for i in range(FOURIER)], dtype=torch.float32,
                             device=x.device)
        arg = c_noise[:, None] * freqs[None, :]
        feat = torch.cat([arg.cos(), arg.sin()], 1)
        emb = F.silu(self.linear("net.emb2", F.silu(self.linear("net.emb1", feat))))
        h = self.conv("net.conv_in", x)
        skips = []
        for l in range(self.levels):
            for r in range(self.n):
                h = self.block(f"net.enc.{l * self.n + r}", h, emb)
            skips.append(h)
            if l + 1 < self.levels:
                h = self.conv(f"net.down.{l}", h, stride=2)
        h = self.block("net.mid1", h, emb)
        h = self.block("net.mid2", h, emb)
        for i, l in enumerate(reversed(range(self.levels))):
            for r in range(self.n):
                if r == 0:
                    h = torch.cat([h, skips[l]], 1)
                h = self.block(f"net.dec.{i * self.n + r}", h, emb)
            if l > 0:
                h = self.conv(f"net.up.{i}", F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv("net.conv_out", F.silu(self.norm("net.norm_out", h)))

    def forward(self, x, sigma):
        b, c, hh, ww = x.shape
        sd = self.cfg["sigma_data"]
        s2 = sigma * sigma + sd * sd
        c_in = (1.0 / s2.sqrt()).reshape(b, 1, 1, 1)
        c_skip = (sd * sd / s2).reshape(b, 1, 1, 1)
        c_out = (sigma * sd / s2.sqrt()).reshape(b, 1, 1, 1)
        m = 1 << (self.levels - 1)
        inp = x * c_in
        ph, pw = (m - hh % m) % m, (m - ww % m) % m
        if ph or pw:
            inp = F.pad(inp, (0, pw, 0, ph), mode="replicate")
        f = self.net(inp, sigma.log() / 4.0)[:, :c, :hh, :ww]
        return x * c_skip + f * c_out


def nfe(model, x):
    with torch.no_grad():
        return model(x, torch.full((x.shape[0],), SIGMA))


def vjp(model, x, v):
    xg = x.clone().requires_grad_(True)
    (model(xg, torch.full((x.shape[0],), SIGMA)) * v).sum().backward()
    return xg.grad


def timed(rounds, call):
    """Median and best ms per call over `rounds` rounds of about 0.3 s, after a warm-up."""
    t0 = time.perf_counter()
    call()
    per_round = int(min(max(0.3 / max(time.perf_counter() - t0, 1e-4), 1), 200))
    ms = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(per_round):
            call()
        ms.append((time.perf_counter() - t) * 1e3 / per_round)
    ms.sort()
    return ms[len(ms) // 2], ms[0]


def flops(model, x):
    """PyTorch's own count of one forward pass (2 per multiply-add), for the GFLOP/s column."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        nfe(model, x)
    return counter.get_total_flops()


def project_pass(binary, quick, ref_dir):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [binary, "bench", "--network", "--json", out]
    if ref_dir:
        cmd += ["--reference", ref_dir]
    if quick:
        cmd.append("--quick")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    figures = json.load(open(out))
    os.unlink(out)
    return {(f["model"], f["work"], f["batch"], f["threads"]): f for f in figures}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "posterior-lab"))
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--passes", type=int, default=2, help="interleaved passes of each side")
    ap.add_argument("--quick", action="store_true", help="2 timed rounds instead of 7")
    args = ap.parse_args()
    rounds = 2 if args.quick else 7
    cores = os.cpu_count() or 1
    ref = tempfile.mkdtemp(prefix="posterior-lab-peer-")

    ours, theirs = {}, {}
    for p in range(args.passes):
        # The project first (its first pass also writes the reference arrays), then PyTorch.
        for k, f in project_pass(args.bin, args.quick, ref if p == 0 else None).items():
            if k not in ours or f["median_ms"] < ours[k]["median_ms"]:
                ours[k] = f
        for name, side in (("fashion-mnist", 28), ("photo", 64)):
            d = os.path.join(args.models, name)
            model = Replica(card_config(os.path.join(d, "card.ron")), burnpack.read(os.path.join(d, "model.bpk")))
            c = model.cfg["image_channels"]
            for batch in (1, 16):
                tag = os.path.join(ref, f"{name}-b{batch}")
                x = torch.from_numpy(np.load(f"{tag}-x.npy"))
                v = torch.from_numpy(np.load(f"{tag}-v.npy"))
                if p == 0:
                    d_ref, g_ref = np.load(f"{tag}-d.npy"), np.load(f"{tag}-vjp.npy")
                    torch.set_num_threads(cores)
                    dd = np.abs(nfe(model, x).numpy() - d_ref).max()
                    gg = np.abs(vjp(model, x, v).numpy() - g_ref).max() / max(np.abs(g_ref).max(), 1e-12)
                    gf = flops(model, x[:1]) / 1e9
                    ok = dd < 1e-4 and gg < 1e-4
                    print(f"agreement {name} b{batch}: max |D - D_project| {dd:.2e}, VJP relative {gg:.2e} "
                          f"({'ok' if ok else 'MISMATCH'}); PyTorch counts {gf:.4f} GFLOP per image-NFE "
                          f"(project: {ours[(name, 'NFE', batch, cores)]['gflop'] / batch:.4f})")
                    if not ok:
                        sys.exit(f"the replica disagrees with the project on {name} b{batch}")
                for threads in ([cores, 1] if cores > 1 else [1]):
                    torch.set_num_threads(threads)
                    for work in ("NFE", "VJP"):
                        call = (lambda: nfe(model, x)) if work == "NFE" else (lambda: vjp(model, x, v))
                        med, best = timed(rounds, call)
                        k = (name, work, batch, threads)
                        if k not in theirs or med < theirs[k][0]:
                            theirs[k] = (med, best, c, side)

    print(f"\n# project (burn flex) vs PyTorch {torch.__version__} on the CPU, same weights and inputs")
    print(f"(best median over {args.passes} interleaved passes, {rounds} rounds each; ratio > 1: the project is slower)\n")
    print("| model | work | batch | threads | project ms | PyTorch ms | ratio | project GFLOP/s | PyTorch GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in sorted(ours, key=lambda k: (k[0], k[2], -k[3], k[1])):
        if k not in theirs:
            continue
        o, (tm, _, _, _) = ours[k], theirs[k]
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {o['median_ms']:.2f} | {tm:.2f} | {o['median_ms'] / tm:.2f} | "
              f"{o['gflop'] / (o['median_ms'] * 1e-3):.1f} | {o['gflop'] / (tm * 1e-3):.1f} |")


if __name__ == "__main__":
    main()
