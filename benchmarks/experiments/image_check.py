"""What CocoDataset's up-front image check costs: headers only vs decoding every pixel.

    python benchmarks/experiments/image_check.py [--num-images 300] [--size 640x480]

Writes the images (smooth random content, JPEG quality 90 and PNG) to a temporary folder, then
times `read_image_size` (header and EXIF tag) and `read_image` (every pixel, RGB, upright) over
all of them, each pass alone. docs/custom-data.md quotes its output for the decode budget
`CocoDataset.DECODE_UP_FRONT_PIXELS`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from PIL import Image

from minimrcnn.data.images import read_image, read_image_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=300)
    parser.add_argument("--size", default="640x480", help="W x H of the images")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    base = (np.cumsum(rng.integers(0, 8, (height, width, 3)), axis=1) % 256).astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        for ext in ("jpg", "png"):
            paths = []
            for i in range(args.num_images):
                path = os.path.join(folder, f"{i}.{ext}")
                Image.fromarray(np.roll(base, i, axis=1)).save(path, **({"quality": 90} if ext == "jpg" else {}))
                paths.append(path)
            for name, read in (("headers", read_image_size), ("decode", read_image)):
                start = time.perf_counter()
                for path in paths:
                    read(path)
                seconds = time.perf_counter() - start
                print(f"{ext} {name:8s} {args.num_images} images of {width}x{height}: {seconds:.3f} s "
                      f"({1000 * seconds / args.num_images:.2f} ms per image, "
                      f"{seconds / (args.num_images * width * height) * 1e8:.2f} s per 100 megapixels)")


if __name__ == "__main__":
    main()
