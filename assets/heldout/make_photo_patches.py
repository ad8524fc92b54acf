"""Held-out colour patches for the photo prior (run from assets/heldout; needs numpy, Pillow).

48 random 32x32 patches from the bundled demo photos (never trained on), each photo shrunk to at
most 512 px as the training photos were, float32 in [-1, 1], shape [48, 3, 32, 32].
"""
import numpy as np
from PIL import Image

rng = np.random.default_rng(7)
names = ["coffee", "chelsea", "astronaut", "flower", "seeding", "picosdeeuropa", "camera"]
per = [7, 7, 7, 7, 7, 7, 6]
out = []
for name, n in zip(names, per):
    im = Image.open(f"../demo/{name}.jpg").convert("RGB")
    s = min(1.0, 512 / max(im.size))
    im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
    a = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    for _ in range(n):
        y = rng.integers(0, a.shape[0] - 32 + 1)
        x = rng.integers(0, a.shape[1] - 32 + 1)
        out.append(a[y : y + 32, x : x + 32].transpose(2, 0, 1))
np.save("photo-demo-patches48.npy", np.stack(out).astype(np.float32))
