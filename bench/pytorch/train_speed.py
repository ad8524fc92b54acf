#!/usr/bin/env python3
"""The PyTorch peer of `posterior-lab bench --training`: seconds per training step (EDM loss on a
batch of the model's image size, backward, Adam) of the project's U-Net rebuilt in PyTorch
(peer.Replica with trainable weights, as train_photo.py trains it), on the CPU, next to the
project's own figures for the same networks at the same batch sizes (its CPU U-Net path and
burn's autodiff), interleaved per model. Prints seconds per step and the ratio project / PyTorch.

    python3 bench/pytorch/train_speed.py [--bin target/release/posterior-lab] [--steps 5]

Needs torch and numpy; runs on the CPU with --threads threads on both sides (default: every
core). Optional: the project never runs it, CI does not need it.
"""

import argparse
import os
import re
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import burnpack  # noqa: E402
from peer import ROOT, card_config  # noqa: E402
from train_photo import Trainable  # noqa: E402


def batch_size(train_ron):
    return int(re.search(r"\bbatch:\s*(\d+)", open(train_ron).read()).group(1))


def card_shape(card):
    m = re.search(r"shape:\s*\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", open(card).read())
    return tuple(int(v) for v in m.groups())


def torch_step_seconds(folder, steps):
    """Median seconds per step over `steps` steps after a warm-up step."""
    cfg = card_config(os.path.join(folder, "card.ron"))
    model = Trainable(cfg, burnpack.read(os.path.join(folder, "model.bpk")))
    opt = torch.optim.Adam(model.parameters(), lr=1e-5, eps=1e-8)
    b = batch_size(os.path.join(folder, "train.ron"))
    c, h, w = card_shape(os.path.join(folder, "card.ron"))
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        x0 = torch.randn(b, c, h, w, generator=gen) * 0.5
        sigma = (-1.2 + 1.2 * torch.randn(b, generator=gen)).exp()
        x = x0 + torch.randn(b, c, h, w, generator=gen) * sigma[:, None, None, None]
        f, c_skip, c_out = model.raw(x, sigma)
        loss = ((f - (x0 - c_skip * x) / c_out) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i > 0:
            times.append(time.perf_counter() - t)
    times.sort()
    return b, (c, h, w), times[len(times) // 2]


def project_seconds(binary, folder, threads):
    """(CPU U-Net s, burn autodiff s) from `posterior-lab bench --training --model folder`, on as
    many threads as PyTorch gets."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "bench", "--training", "--model", folder], check=True,
                         capture_output=True, text=True, cwd=ROOT, env=env).stdout
    row = out.strip().splitlines()[-1].split()
    return float(row[3]), float(row[4])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "posterior-lab"))
    ap.add_argument("--models", default=os.path.join(ROOT, "models"))
    ap.add_argument("--names", default="fashion-mnist,photo,photo64",
                    help="model folders (priors: the Denoiser task)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'model':<16} {'image':>9} {'batch':>5} {'CPU U-Net s':>12} {'burn s':>8} {'PyTorch s':>10} "
          f"{'ratio':>6}")
    for name in args.names.split(","):
        folder = os.path.join(args.models, name)
        cpu, burn = project_seconds(args.bin, folder, args.threads)
        b, (c, h, w), ours = torch_step_seconds(folder, args.steps)
        print(f"{name:<16} {f'{c}x{h}x{w}':>9} {b:>5} {cpu:>12.3f} {burn:>8.3f} {ours:>10.3f} {cpu / ours:>6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
