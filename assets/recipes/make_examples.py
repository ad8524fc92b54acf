"""Regenerates the example inputs of assets/recipes (run from this folder; needs numpy).

A Gaussian-mixture prior over 8x8 grey images: four smooth patterns (gradients, a ring, a
checker) with full covariances from a squared-exponential kernel over pixel positions, so that
missing pixels are predictable from their neighbours and the posterior is multi-modal.
"""
import numpy as np

rng = np.random.default_rng(2026)
H = W = 8
yy, xx = np.mgrid[0:H, 0:W] / (H - 1) * 2 - 1
patterns = [
    0.7 * xx,
    -0.7 * yy,
    0.8 * np.cos(3.0 * np.hypot(xx, yy)) - 0.1,
    0.6 * np.sign(np.sin(2.4 * xx) * np.sin(2.4 * yy)) * np.abs(np.sin(2.4 * xx)) ** 0.5,
]
means = [p.reshape(-1) for p in patterns]
pos = np.stack([yy.reshape(-1), xx.reshape(-1)], 1)
dist2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
kernel = 0.12 * np.exp(-dist2 / (2 * 0.35**2)) + 0.01 * np.eye(H * W)
weights = [0.3, 0.3, 0.25, 0.15]


def fmt(v):
    return "[" + ", ".join(f"{x:.6g}" for x in v) + "]"


with open("gmm-8x8.ron", "w") as f:
    f.write("// Four smooth 8x8 patterns with full covariances (assets/recipes/make_examples.py).\n(\n")
    f.write(f"    weights: {fmt(weights)},\n")
    f.write("    means: [\n" + "".join(f"        {fmt(m)},\n" for m in means) + "    ],\n")
    f.write("    covariances: [\n")
    for _ in means:
        f.write("        [\n" + "".join(f"            {fmt(r)},\n" for r in kernel) + "        ],\n")
    f.write("    ],\n)\n")

truth = rng.multivariate_normal(means[2], kernel).reshape(1, H, W).astype(np.float32)
np.save("truth-8x8.npy", truth)

mask = np.ones((H, W), np.float32)
mask[2:6, 1:7] = 0.0  # a box of missing pixels across the middle
np.save("mask-box-8x8.npy", mask)

A = rng.standard_normal((6, H * W)).astype(np.float32) / np.sqrt(H * W)
np.save("A-6x64.npy", A)
y = A @ truth.reshape(-1) + 0.05 * rng.standard_normal(6).astype(np.float32)
np.save("y-6.npy", y.astype(np.float32))

# Scratches and blots on a 96x144 photo (the damage an old print shows), for
# photo-scratches-pigdm.ron: four thin lines and three round blots, 13% of the pixels.
H, W = 96, 144
yy, xx = np.mgrid[0:H, 0:W].astype(float)
scratches = np.ones((H, W), np.float32)
for x0, y0, x1, y1 in [(5, 10, 130, 80), (20, 90, 140, 30), (70, 0, 60, 95), (0, 50, 143, 60)]:
    a, b = np.array([x0, y0], float), np.array([x1, y1], float)
    p = np.stack([xx, yy], -1)
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
    scratches[np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1) < 1.6] = 0.0
for cx, cy, r in [(40, 30, 6), (110, 70, 7), (25, 75, 5)]:
    scratches[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 0.0
np.save("mask-scratches-96x144.npy", scratches)

# The 2-D lab's ring of eight modes (lab-ring.ron) observed through one oblique projection
# (lab-ring-dps.ron): opening that recipe in the window opens the 2-D lab.
with open("lab-ring.ron", "w") as f:
    f.write("// Eight modes on a circle of radius 2, sd 0.2 (the 2-D lab's ring example).\n(\n")
    f.write("    weights: [" + ", ".join(["0.125"] * 8) + "],\n    means: [\n")
    for k in range(8):
        t = 2 * np.pi * k / 8
        f.write(f"        {fmt([round(2 * np.cos(t), 6) + 0.0, round(2 * np.sin(t), 6) + 0.0])},\n")
    f.write("    ],\n    variances: [\n" + "".join("        [0.04, 0.04],\n" for _ in range(8)) + "    ],\n)\n")
np.save("lab-A-1x2.npy", np.array([[0.6, 0.8]], np.float32))
np.save("lab-ring-y.npy", np.array([1.3], np.float32))
