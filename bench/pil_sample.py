#!/usr/bin/python3
"""The PIL peer of bench/b_sample.sh, and the maker of its image set.

  pil_sample.py make DIR N   write N JPEGs of about 500x375 to DIR: random
                             crops, rescales, flips and JPEG qualities of the
                             natural photos scikit-learn ships (china.jpg,
                             flower.jpg), so the set has real photo content
  pil_sample.py run LIST     per image, as MMSelfSup 0.x does with PIL: decode,
                             Resize(292) (bilinear, antialiased), RandomCrop(255),
                             RandomGrayscale(0.66), nine 64x64 crops from the
                             85 px cells, each as bytes; prints images/s
  pil_sample.py parity RECS  recompute with PIL every patch of an rl-sample
                             mmselfsup stream (--exact) from its boxes;
                             prints the share of patches identical to PIL's
                             and the largest pixel difference
"""
import glob
import os
import random
import sys
import time

import numpy as np
from PIL import Image


def make(outdir, n):
    import sklearn
    photos = sorted(glob.glob(os.path.join(os.path.dirname(sklearn.__file__),
                                           "datasets", "images", "*.jpg")))
    if not photos:
        sys.exit("pil_sample.py: scikit-learn's sample photos not found")
    srcs = [Image.open(p).convert("RGB") for p in photos]
    rng = random.Random(1505)
    os.makedirs(outdir, exist_ok=True)
    for i in range(n):
        im = srcs[i % len(srcs)]
        portrait = rng.random() < 0.25
        ow, oh = (375, 500) if portrait else (500, 375)
        ow += rng.randint(-40, 40)
        oh += rng.randint(-30, 30)
        # A crop of 55-100% of the photo at the target's aspect, scaled to size.
        s = rng.uniform(0.55, 1.0) * min(im.width / ow, im.height / oh)
        cw, ch = int(ow * s), int(oh * s)
        x, y = rng.randint(0, im.width - cw), rng.randint(0, im.height - ch)
        t = im.crop((x, y, x + cw, y + ch)).resize((ow, oh), Image.BICUBIC)
        if rng.random() < 0.5:
            t = t.transpose(Image.FLIP_LEFT_RIGHT)
        t.save(os.path.join(outdir, "%04d.jpg" % i), quality=rng.randint(75, 95))


def resize292(im):
    """torchvision's Resize(292) on a PIL image: the shorter side to 292."""
    w, h = im.size
    if w <= h:
        return im.resize((292, int(292 * h / w)), Image.BILINEAR)
    return im.resize((int(292 * w / h), 292), Image.BILINEAR)


def run(listfile):
    paths = [l.split()[0] for l in open(listfile) if l.strip()]
    rng = random.Random(0)
    nbytes = 0
    t0 = time.perf_counter()
    for p in paths:
        im = resize292(Image.open(p).convert("RGB"))
        ow, oh = im.size
        i, j = rng.randint(0, oh - 255), rng.randint(0, ow - 255)
        im = im.crop((j, i, j + 255, i + 255))
        if rng.random() < 0.66:
            im = im.convert("L").convert("RGB")
        for r in range(3):
            for c in range(3):
                dy, dx = rng.randint(0, 21), rng.randint(0, 21)
                x0, y0 = c * 85 + dx, r * 85 + dy
                nbytes += len(np.asarray(im.crop((x0, y0, x0 + 64, y0 + 64))).tobytes())
    dt = time.perf_counter() - t0
    assert nbytes == len(paths) * 9 * 64 * 64 * 3
    print("%.1f" % (len(paths) / dt))


def parity(recfile):
    import msgpack
    same = total = 0
    maxdiff = 0
    with open(recfile, "rb") as f:
        for r in msgpack.Unpacker(f, raw=False):
            im = Image.open(r["source"]).convert("RGB")
            w, h = im.size
            big = resize292(im)
            ow, oh = big.size
            if r["gray"]:
                big = big.convert("L").convert("RGB")
            P = r["patch"]
            px = np.frombuffer(r["pixels"], np.uint8).reshape(9, P, P, 3)
            for i, b in enumerate(r["boxes"]):
                x0 = int(round(b[0] * ow / w))
                y0 = int(round(b[1] * oh / h))
                ref = np.asarray(big.crop((x0, y0, x0 + P, y0 + P)))
                d = np.abs(ref.astype(int) - px[i]).max()
                maxdiff = max(maxdiff, int(d))
                same += d == 0
                total += 1
    print("%d of %d patches identical to PIL's, max difference %d"
          % (same, total, maxdiff))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "run":
        run(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "parity":
        parity(sys.argv[2])
    else:
        sys.exit(__doc__)
