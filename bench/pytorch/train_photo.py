#!/usr/bin/env python3
"""Trains a photo patch prior — the project's EDM U-Net (src/priors/unet.rs, rebuilt op for op in
peer.py) — in PyTorch on a lent GPU, where `posterior-lab train` (burn autodiff) would take days on
a 2-core CPU. Same objective as src/train/trainer.rs: EDM loss with ln σ ~ N(p_mean, p_std²),
Adam, linear warm-up, EMA weights. The weights are written as a burnpack (.bpk) by filling a
template file's tensors (same names, shapes and layout), so `posterior-lab` loads them unchanged.

    python3 bench/pytorch/train_photo.py --template models/photo/model.bpk \
        --card models/photo/card.ron --photos data/photos --out OUT.bpk --seconds 390

`--task eps` fine-tunes a prior into EPS's conditional denoiser, as `Task::Eps` of
src/train/tasks.rs does (same μ⋆ and observation image): `--template` is then a conditional
model's .bpk and card (e.g. the export of a one-step `posterior-lab train` run with that task)
and `--init` the prior's .bpk, whose weights start it with the extra input channels at zero.
`--sigma-max-frac q` trains a fraction q of each batch at σ_max exactly, where `Eps(steps: 1)`
asks for the one-call posterior mean E[x0 | y].

Data: every photo of --photos (the licence-clean training set of scripts/fetch-data.sh; demo and
evaluation photos are never in it) shrunk to several sizes (--scales: the largest side, bilinear
with antialiasing like the image crate's Triangle filter), a pool of random 64x64 patches cut from
all of them with horizontal flips. Optional: the project never runs it; CI does not need it.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import burnpack  # noqa: E402
from peer import Replica, card_config  # noqa: E402


class _ByName:
    """The trainable parameters under their .bpk names, as peer.Replica looks weights up."""

    def __init__(self, params):
        self.params = params

    def __getitem__(self, name):
        return self.params[name.replace(".", "__")]

    def __contains__(self, name):
        return name.replace(".", "__") in self.params


class Trainable(Replica):
    """peer.Replica (the network, op for op) with trainable weights."""

    def __init__(self, cfg, weights):
        torch.nn.Module.__init__(self)
        self.cfg = cfg
        self.levels = len(cfg["channel_mult"])
        self.n = max(cfg["res_blocks"], 1)
        self.p = torch.nn.ParameterDict(
            {k.replace(".", "__"): torch.nn.Parameter(torch.from_numpy(v)) for k, v in weights.items()})
        self.w = _ByName(self.p)

    def raw(self, x, sigma, cond=None):
        """(F, c_skip, c_out): D = c_skip x + c_out F (patches are a multiple of 4: no padding).
        `cond` (EPS's observation image) is concatenated after the scaled image, unscaled."""
        sd = self.cfg["sigma_data"]
        s2 = (sigma * sigma + sd * sd).reshape(-1, 1, 1, 1)
        inp = x / s2.sqrt()
        if cond is not None:
            inp = torch.cat([inp, cond], 1)
        f = self.net(inp, sigma.log() / 4.0)[:, :x.shape[1]]
        return f.float(), sd * sd / s2, sigma.reshape(-1, 1, 1, 1) * sd / s2.sqrt()

    def forward(self, x, sigma, cond=None):
        f, c_skip, c_out = self.raw(x, sigma, cond)
        return x * c_skip + f * c_out


def widened(start, template):
    """The prior's weights `start` in the template's shapes: input convolutions that take more
    channels get zeros for them (as `EdmUNet::widen_input`), so training starts from the prior."""
    out = {}
    for k, t in template.items():
        v = start[k]
        if v.shape != t.shape:
            if v.ndim != 4 or v.shape[0] != t.shape[0] or v.shape[1] > t.shape[1]:
                raise ValueError(f"{k}: {v.shape} cannot be widened to {t.shape}")
            pad = np.zeros((t.shape[0], t.shape[1] - v.shape[1]) + t.shape[2:], np.float32)
            v = np.concatenate([v, pad], 1)
        out[k] = v
    return out


def eps_inputs(x0, sigma, family, sigma_y, missing, box_side):
    """(μ⋆, observation image) for clean x0 [B, C, H, W] at noise σ [B], as
    src/train/tasks.rs `eps_inputs`: σ_y log-uniform per image; `family` is "mask" (half random
    pixels, half a missing box, per image) or a block-average factor 2 or 4."""
    b, c, h, w = x0.shape
    dev = x0.device
    lo, hi = np.log(sigma_y[0]), np.log(sigma_y[1])
    sy = (lo + (hi - lo) * torch.rand(b, device=dev)).exp().reshape(b, 1, 1, 1)
    sig = sigma.reshape(b, 1, 1, 1)
    x_t = x0 + torch.randn_like(x0) * sig
    w_t = 1.0 / (sig * sig)
    if family == "mask":
        p = missing[0] + (missing[1] - missing[0]) * torch.rand(b, 1, 1, 1, device=dev)
        pix = (torch.rand(b, 1, h, w, device=dev) >= p).float()
        bh = (box_side[0] + (box_side[1] - box_side[0]) * torch.rand(b, device=dev)) * h
        bw = (box_side[0] + (box_side[1] - box_side[0]) * torch.rand(b, device=dev)) * w
        bh, bw = bh.round().clamp(1, h), bw.round().clamp(1, w)
        y0 = (torch.rand(b, device=dev) * (h - bh + 1)).floor()
        x0b = (torch.rand(b, device=dev) * (w - bw + 1)).floor()
        ar = torch.arange(h, device=dev, dtype=torch.float32)
        iny = (ar[None, :] >= y0[:, None]) & (ar[None, :] < (y0 + bh)[:, None])
        inx = (ar[None, :] >= x0b[:, None]) & (ar[None, :] < (x0b + bw)[:, None])
        box = 1.0 - (iny[:, :, None] & inx[:, None, :]).float()[:, None]
        use_pix = (torch.rand(b, 1, 1, 1, device=dev) < 0.5).float()
        m = (use_pix * pix + (1 - use_pix) * box).expand(b, c, h, w)
        y = (x0 + torch.randn_like(x0) * sy) * m
        w_y = m / (sy * sy)
        return (x_t * w_t + y * w_y) / (w_t + w_y), y
    f = family
    pool = lambda v: F.avg_pool2d(v, f)
    up = lambda v: v.repeat_interleave(f, 2).repeat_interleave(f, 3)
    y = pool(x0) + torch.randn(b, c, h // f, w // f, device=dev) * sy
    obs = up(y)
    # AᵀA = P/f² with P = up∘pool: off range(P) μ = x_t; on it the two precisions add.
    k = 1.0 / (sy * sy * f * f)
    px = up(pool(x_t))
    return x_t - px + (px * w_t + obs * k) / (w_t + k), obs


def dihedral(x):
    """Each patch under one of the 8 symmetries of the square (rotations by 90° and flips), which
    keep block averaging and masks of the same law: for patch statistics, 8× the data."""
    k = int(torch.randint(0, 4, (1,)))
    x = torch.rot90(x, k, (2, 3))
    flip = torch.rand(x.shape[0], device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def write_bpk(template, params, path):
    """The template burnpack with every tensor's bytes replaced by `params[name]` (same shape)."""
    buf = bytearray(open(template, "rb").read())
    (meta_len,) = struct.unpack("<I", buf[6:10])
    meta, _ = burnpack._cbor(buf, 10)
    start = -(-(10 + meta_len) // 256) * 256
    for name, t in meta["tensors"].items():
        a, b = t["data_offsets"]
        v = params[name].detach().float().cpu().numpy().astype("<f4")
        if list(v.shape) != list(t["shape"]):
            raise ValueError(f"{name}: shape {list(v.shape)} != template {t['shape']}")
        buf[start + a:start + b] = v.tobytes()
    tmp = path + ".part"
    open(tmp, "wb").write(buf)
    os.replace(tmp, path)


def load_photos(folder, scales):
    """uint8 [3, H, W] tensors: every photo at every scale (largest side), never enlarged."""
    from PIL import Image
    out = []
    for name in sorted(os.listdir(folder)):
        img = Image.open(os.path.join(folder, name)).convert("RGB")
        for s in scales:
            w, h = img.size
            f = min(1.0, s / max(w, h))
            im = img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.BILINEAR) if f < 1 else img
            out.append((name, s, torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)))
    return out


def patch_pool(images, patch, count, gen, device):
    """`count` random patches as uint8 [N, 3, p, p], drawn from each image in proportion to the
    number of positions it has (so every pixel of every scale is equally likely)."""
    sizes = [(im.shape[1] - patch + 1) * (im.shape[2] - patch + 1) for _, _, im in images]
    sizes = [max(s, 0) for s in sizes]
    total = sum(sizes)
    pools, ar = [], torch.arange(patch)
    for (_, _, im), s in zip(images, sizes):
        n = round(count * s / total)
        if n == 0:
            continue
        y = torch.randint(0, im.shape[1] - patch + 1, (n,), generator=gen)
        x = torch.randint(0, im.shape[2] - patch + 1, (n,), generator=gen)
        rows = (y[:, None] + ar)[:, :, None].to(device)
        cols = (x[:, None] + ar)[:, None, :].to(device)
        pools.append(im.to(device)[:, rows, cols].permute(1, 0, 2, 3))
    return torch.cat(pools)


def heldout_mse(model, data, sigmas, gen, device):
    """Denoising MSE of the model and of the identity on held-out images, per σ."""
    rows = []
    with torch.no_grad():
        for s in sigmas:
            n = torch.randn(data.shape, generator=gen).to(device)
            sig = torch.full((data.shape[0],), s, device=device)
            d = model(data + s * n, sig)
            rows.append((s, float(((d - data) ** 2).mean()), s * s))
    return rows


def heldout_eps(model, data, sigmas, gen, device):
    """EPS on held-out images, 2× block-average super-resolution at σ_y 0.02: per σ, the MSE of
    D(μ⋆, y) against the truth beside the nearest-neighbour enlargement's."""
    torch.manual_seed(int(torch.randint(0, 2 ** 31, (1,), generator=gen)))
    rows = []
    with torch.no_grad():
        for s in sigmas:
            sig = torch.full((data.shape[0],), s, device=device)
            mu, obs = eps_inputs(data, sig, 2, (0.02, 0.02), (0.5, 0.5), (0.5, 0.5))
            d = model(mu, sig, obs)
            rows.append((s, float(((d - data) ** 2).mean()), float(((obs - data) ** 2).mean())))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", required=True, help="a .bpk of the architecture: its weights are the start")
    ap.add_argument("--card", required=True, help="the template's card.ron (architecture)")
    ap.add_argument("--photos", required=True)
    ap.add_argument("--out", required=True, help="the EMA weights, a .bpk (rewritten every --save-every s)")
    ap.add_argument("--log", help="JSON: loss curve and held-out figures")
    ap.add_argument("--heldout", help="an .npy [N, 3, h, w] in [-1, 1] of held-out patches (never trained on)")
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--scales", default="1024,768,512,384,256")
    ap.add_argument("--pool", type=int, default=200000)
    ap.add_argument("--refresh", type=int, default=2000, help="steps between new patch pools")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--p-mean", type=float, default=-1.2)
    ap.add_argument("--p-std", type=float, default=1.2)
    ap.add_argument("--seconds", type=float, default=390, help="training time; the lr decays over the last 30%%")
    ap.add_argument("--max-steps", type=int, default=10 ** 9)
    ap.add_argument("--save-every", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (convolutions); GroupNorm and loss in f32")
    ap.add_argument("--dihedral", action="store_true", help="rotations by 90° and flips, not only horizontal flips")
    ap.add_argument("--task", choices=["denoiser", "eps"], default="denoiser")
    ap.add_argument("--init", help="eps: the prior's .bpk to start from (default: the template's weights)")
    ap.add_argument("--operators", default="2,4,mask", help="eps: families drawn per step (repeat one to weight it)")
    ap.add_argument("--sigma-y", default="0.01,0.05", help="eps: σ_y range, log-uniform")
    ap.add_argument("--missing", default="0.05,0.8", help="eps: random-pixel masks, fraction missing")
    ap.add_argument("--box", default="0.25,0.7", help="eps: box masks, side as a fraction of the patch")
    ap.add_argument("--sigma-max", type=float, default=80.0)
    ap.add_argument("--sigma-max-frac", type=float, default=0.0, help="eps: fraction of each batch at σ_max")
    args = ap.parse_args()
    pair = lambda v: tuple(float(t) for t in v.split(","))
    families = [f if f == "mask" else int(f) for f in args.operators.split(",")]

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    cfg = card_config(args.card)
    weights = burnpack.read(args.template)
    if args.init:
        weights = widened(burnpack.read(args.init), weights)
    model = Trainable(cfg, weights).to(device)
    ema = {k: v.detach().clone() for k, v in model.p.items()}
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, eps=1e-8)
    nparams = sum(p.numel() for p in model.parameters())

    t0 = time.time()
    images = [(n, s, im.to(device)) for n, s, im in load_photos(args.photos, [int(s) for s in args.scales.split(",")])]
    pool = patch_pool(images, args.patch, args.pool, gen, device)
    print(f"{device} {torch.cuda.get_device_name() if device == 'cuda' else ''}: {nparams} parameters, "
          f"{len(images)} photo-scales of {len(set(n for n, _, _ in images))} photos, pool {tuple(pool.shape)} "
          f"in {time.time() - t0:.1f} s", flush=True)

    held = torch.from_numpy(np.load(args.heldout)).to(device) if args.heldout else None
    sigmas = [0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    log = {"template": args.template, "params": nparams, "args": vars(args), "curve": []}
    heldout = heldout_eps if args.task == "eps" else heldout_mse
    if args.task == "eps":
        sigmas = [args.sigma_max, 2.0, 0.5, 0.1]
    if held is not None:
        log["heldout_before"] = heldout(model, held, sigmas, torch.Generator().manual_seed(7), device)

    def export(step):
        write_bpk(args.template, {k.replace("__", "."): v for k, v in ema.items()}, args.out)
        log["steps"] = step
        if args.log:
            json.dump(log, open(args.log, "w"), indent=1)

    start, last_save, step, acc, accn, skipped = time.time(), time.time(), 0, 0.0, 0, 0
    while step < args.max_steps:
        t = (time.time() - start) / args.seconds
        if t >= 1:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (1.0 if t < 0.7 else max(0.1, 1 - (t - 0.7) / 0.3 * 0.9))
        for g in opt.param_groups:
            g["lr"] = lr
        if step > 0 and step % args.refresh == 0:
            pool = patch_pool(images, args.patch, args.pool, gen, device)
        idx = torch.randint(0, pool.shape[0], (args.batch,), device=device)
        x0 = pool[idx].float() / 127.5 - 1.0
        if args.dihedral:
            x0 = dihedral(x0)
        else:
            flip = torch.rand(args.batch, device=device) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        sigma = (args.p_mean + args.p_std * torch.randn(args.batch, device=device)).exp()
        if args.task == "eps":
            top = torch.rand(args.batch, device=device) < args.sigma_max_frac
            sigma = torch.where(top, torch.full_like(sigma, args.sigma_max), sigma.clamp(max=args.sigma_max))
            family = families[int(torch.randint(0, len(families), (1,)))]
            x, cond = eps_inputs(x0, sigma, family, pair(args.sigma_y), pair(args.missing), pair(args.box))
        else:
            x, cond = x0 + torch.randn_like(x0) * sigma[:, None, None, None], None
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=args.amp):
            f, c_skip, c_out = model.raw(x, sigma, cond)
        loss = ((f - (x0 - c_skip * x) / c_out) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if not torch.isfinite(loss):
            skipped += 1
            if skipped > 20:
                sys.exit(f"the loss is not finite at step {step}: lower --lr")
            continue
        opt.step()
        beta = min(args.ema, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for k, p in model.p.items():
                ema[k].mul_(beta).add_(p.detach(), alpha=1 - beta)
        step += 1
        acc += float(loss.detach()) if step % 50 == 0 else 0.0
        accn += 1 if step % 50 == 0 else 0
        if step % 500 == 0:
            el = time.time() - start
            log["curve"].append((step, round(el, 1), acc / max(accn, 1)))
            print(f"step {step}: loss {acc / max(accn, 1):.4f}, {step / el:.1f} steps/s, lr {lr:.2e}", flush=True)
            acc, accn = 0.0, 0
        if time.time() - last_save > args.save_every:
            export(step)
            last_save = time.time()
    log["seconds"] = round(time.time() - start, 1)
    if held is not None:
        for k, v in ema.items():
            model.p[k].data, ema[k] = ema[k], model.p[k].data
        log["heldout_after"] = heldout(model, held, sigmas, torch.Generator().manual_seed(7), device)
        for k, v in ema.items():
            model.p[k].data, ema[k] = ema[k], model.p[k].data
        for (s, before, ident), (_, after, _) in zip(log["heldout_before"], log["heldout_after"]):
            what = "2x SR from y (σ_y 0.02) at" if args.task == "eps" else "denoising at"
            base = "nearest" if args.task == "eps" else "identity"
            print(f"held-out {what} sigma {s}: MSE {before:.3e} -> {after:.3e} ({base} {ident:.3e})")
    export(step)
    print(f"done: {step} steps in {log['seconds']} s, wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
