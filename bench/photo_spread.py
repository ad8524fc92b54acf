#!/usr/bin/env python3
"""Sharpness and honesty of posterior chains on held-out photos (models/photo-cm's card).

For each photo (centre square, Lanczos to 128²) and each degradation (2x super-resolution; a
mask of thin scratches and round blots, ~9% hidden), runs `posterior-lab sample` with 8 chains
for each sampler line and prints, over the restored pixels (the hidden ones for the mask):
  mean    PSNR of the chains' mean
  single  mean PSNR of one chain
  spread/error  the chains' mean variance x (1 + 1/8) over the squared error of their mean
                (1 when the spread tells how far off the mean is; below 1: overconfident)
  detail  the chains' mean squared finite difference over the truth's (below 1: smoother than
          the photo; above 1: texture the photo does not have)

Usage: python3 bench/photo_spread.py OUT PHOTO... (needs numpy and pillow; run from the source
tree after `cargo build --release`; models/photo-cm beside models/photo). LINES=... (below)
compares other samplers or priors."""
import glob, os, subprocess, sys
import numpy as np
from PIL import Image

N, CHAINS = 128, 8
LINES = {
    "cm": ("models/photo", "NoiseSpaceLangevin(steps: 100, warm: 0.5, warmup_lr: 0.02)"),
    "ddrm": ("models/photo", "Ddrm(steps: 50)"),
    "ddrmw": ("models/photo", "Ddrm(steps: 30, warm: 0.5)"),
}
# The student before distillation: UNDISTILLED=DIR, a folder holding a copy of models/photo and
# a photo-cm/ with photo's model.bpk and photo-cm's card.ron (trained_steps 0).
if os.environ.get("UNDISTILLED"):
    LINES["d0"] = (os.path.join(os.environ["UNDISTILLED"], "photo"), LINES["cm"][1])
# Other lines instead: LINES="KEY=MODEL=LINE;..." (KEY in letters and digits), e.g.
# LINES="eps64=models/photo64=Eps(steps: 5);ddrm64=models/photo64=Ddrm(steps: 50)".
if os.environ.get("LINES"):
    LINES = {k: (m, l) for k, m, l in (e.split("=", 2) for e in os.environ["LINES"].split(";"))}


def crops(out, photos):
    rng = np.random.default_rng(7)
    m = np.ones((N, N), np.float32)
    yy, xx = np.mgrid[0:N, 0:N]
    for _ in range(6):
        a, b = rng.uniform(-1, 1), rng.uniform(0, N)
        m[np.abs(yy - (a * xx + b)) < 1.0] = 0
    for _ in range(4):
        cy, cx, r = rng.uniform(0, N), rng.uniform(0, N), rng.uniform(3, 7)
        m[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 0
    np.save(f"{out}/mask.npy", m)
    names = []
    for p in photos:
        im = Image.open(p).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        x = np.asarray(im.resize((N, N), Image.LANCZOS), np.float32) / 127.5 - 1
        name = os.path.splitext(os.path.basename(p))[0].split("_")[0].lower()
        np.save(f"{out}/{name}.npy", x.transpose(2, 0, 1).copy())
        names.append(name)
    return m, names


def run(out, names):
    root = os.getcwd()
    for img in names:
        for op, spec in (("sr2", "Downsample(2)"), ("mask", f'Mask("{out}/mask.npy")')):
            for key, (model, line) in LINES.items():
                if op == "sr2" and key == "ddrmw":
                    continue
                d = f"{out}/{img}-{op}-{key}"
                if os.path.exists(f"{d}/samples.npy"):
                    continue
                model = os.path.join(root, model)
                with open(f"{d}.ron", "w") as f:
                    f.write(f'(prior: Model("{model}"), shape: (3, {N}, {N}), operator: {spec}, '
                            f'measurement: Simulate(truth: Npy("{out}/{img}.npy")), '
                            f"noise_sigma: 0.02, sampler: {line}, chains: {CHAINS}, seed: 1)")
                subprocess.run([f"{root}/target/release/posterior-lab", "sample", "--recipe",
                                f"{d}.ron", "--out", d, "--quiet"], check=True)


def report(out, mask):
    g2 = lambda x: (np.diff(x, axis=-1) ** 2).mean() + (np.diff(x, axis=-2) ** 2).mean()
    psnr = lambda e: 10 * np.log10(4 / e)
    for d in sorted(glob.glob(f"{out}/*-*-*/")):
        img, op, key = os.path.basename(d.rstrip("/")).split("-")
        s = np.load(f"{d}/samples.npy").astype(np.float64)
        t = np.load(f"{d}/truth.npy").astype(np.float64)
        sel = np.broadcast_to(mask == 0 if op == "mask" else np.ones(mask.shape, bool), t.shape)
        mean, var = s.mean(0), s.var(0, ddof=1)
        mse = ((mean - t) ** 2)[sel].mean()
        single = np.mean([psnr(((x - t) ** 2)[sel].mean()) for x in s])
        ratio = var[sel].mean() * (1 + 1 / len(s)) / mse
        detail = np.mean([g2(x) for x in s]) / g2(t)
        print(f"{img:10s} {op:5s} {key:6s} mean {psnr(mse):6.2f}  single {single:6.2f}  "
              f"spread/error {ratio:5.2f}  detail {detail:5.2f}")


if __name__ == "__main__":
    out = os.path.abspath(sys.argv[1])
    os.makedirs(out, exist_ok=True)
    mask, names = crops(out, sys.argv[2:])
    run(out, names)
    report(out, mask)
