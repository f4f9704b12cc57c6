"""COCO run-length encoding (RLE) of binary masks, written out in NumPy.

A COCO mask is stored column by column (Fortran order): the counts alternate
"number of 0s, number of 1s, number of 0s, ..." starting with zeros, so a mask
whose first pixel is 1 starts with a count of 0. Example, a 3x2 mask

    0 1          column-major pixels: 0 1 1 | 1 1 0
    1 1    ->    counts [1, 4, 1]
    1 0

`mask_to_counts` / `counts_to_mask` give and read the uncompressed counts (COCO's
``{"size": [H, W], "counts": [...]}`` of crowd regions). The compressed form (`encode`,
through `counts_to_string`; back with `string_to_counts`) writes each count as a
string of 6-bit chunks, ASCII 48 + chunk, with counts after the second stored as
differences to the count two places back (pycocotools' `rleToString`, including its `i > 2`
quirk). pycocotools is only used by the tests, as an oracle.

Also here: COCO's polygon rasteriser (`polygons_to_mask`, a port of
`rleFrPoly`), a simple contour tracer (`mask_to_polygons`) and the mask IoU
with crowd semantics used by the evaluator (`iou`).

Shape shorthand: H, W image size; D detections; G ground-truth instances.
"""

from __future__ import annotations

import numpy as np

__all__ = ["encode", "decode", "area", "to_bbox", "polygons_to_mask", "mask_to_polygons", "iou",
           "mask_to_counts", "counts_to_mask", "counts_to_string", "string_to_counts"]


# ---------------------------------------------------------------------------
# counts <-> mask
# ---------------------------------------------------------------------------
def mask_to_counts(mask: np.ndarray) -> list[int]:
    """uint8[H, W] -> run lengths of the column-major pixel sequence, zeros first."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    # Positions where the value changes start a new run.
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(starts).tolist()
    if flat[0]:
        counts = [0] + counts  # the first run always counts zeros
    return counts


def counts_to_mask(counts, height: int, width: int) -> np.ndarray:
    """Run lengths (zeros first) -> uint8[H, W]."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() != height * width:
        raise ValueError(f"rle counts sum to {int(counts.sum())}, expected H*W = {height * width}")
    values = (np.arange(len(counts)) % 2).astype(np.uint8)  # 0, 1, 0, 1, ...
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T.copy()


def counts_to_string(counts: list[int]) -> str:
    """pycocotools rleToString: delta to counts[i-2] for i > 2, 5 bits per char + a 'more' bit."""
    chars = []
    for i, count in enumerate(counts):
        x = int(count)
        if i > 2:  # sic: pycocotools compares i > 2, so counts[2] is stored whole
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative deltas end at -1
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return "".join(chars)


def string_to_counts(s: str) -> list[int]:
    """pycocotools rleFrString: the inverse of `counts_to_string`."""
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)  # sign-extend the last chunk
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def _parse(rle) -> tuple[int, int, list[int]]:
    """Check an RLE dict and return (H, W, counts) for compressed or uncompressed counts."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"rle must be a dict with 'size' and 'counts', got {type(rle).__name__} {rle!r:.80}")
    size = rle["size"]
    if len(size) != 2:
        raise ValueError(f"rle['size'] must be [H, W], got {size!r}")
    height, width = int(size[0]), int(size[1])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    elif isinstance(counts, (list, tuple, np.ndarray)):
        counts = [int(c) for c in counts]
        if any(c < 0 for c in counts):
            raise ValueError("uncompressed rle['counts'] must be non-negative")
    else:
        raise TypeError(f"rle['counts'] must be str, bytes or a list of ints, got {type(counts).__name__}")
    return height, width, counts


# ---------------------------------------------------------------------------
# public codec
# ---------------------------------------------------------------------------
def encode(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a binary mask.

    Args:
        mask (uint8/bool[H, W]): nonzero = foreground.
    Returns:
        {"size": [H, W], "counts": str}, equal to pycocotools' mask.encode (with counts decoded to str).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D [H, W], got shape {mask.shape}")
    height, width = mask.shape
    return {"size": [int(height), int(width)], "counts": counts_to_string(mask_to_counts(mask))}


def decode(rle: dict) -> np.ndarray:
    """uint8[H, W] mask of a compressed (str/bytes counts) or uncompressed (list counts) RLE."""
    height, width, counts = _parse(rle)
    return counts_to_mask(counts, height, width)


def area(rle: dict) -> int:
    """Number of foreground pixels: the sum of the odd-position counts."""
    _, _, counts = _parse(rle)
    return int(sum(counts[1::2]))


def to_bbox(rle: dict) -> list[float]:
    """[x, y, w, h] of the tightest box around the foreground (all zeros when empty), as toBbox."""
    mask = decode(rle)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]


# ---------------------------------------------------------------------------
# polygons
# ---------------------------------------------------------------------------
def _polygon_edge_points(xy: np.ndarray) -> tuple[list[int], list[int]]:
    """rleFrPoly step 1: the polygon upsampled 5x and walked edge by edge on the integer grid.

    C's `(int)` truncates toward zero, which `int()` also does (it matters for
    negative coordinates).
    """
    scale = 5.0
    k = len(xy) // 2
    x = [int(scale * xy[2 * j] + 0.5) for j in range(k)]
    y = [int(scale * xy[2 * j + 1] + 0.5) for j in range(k)]
    x.append(x[0])
    y.append(y[0])
    u, v = [], []
    for j in range(k):  # for each edge: one point per step along its longer axis
        xs, xe, ys, ye = x[j], x[j + 1], y[j], y[j + 1]
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            s = (ye - ys) / dx if dx else 0.0
            for d in range(dx + 1):
                t = dx - d if flip else d
                u.append(t + xs)
                v.append(int(ys + s * t + 0.5))
        else:
            s = (xe - xs) / dy
            for d in range(dy + 1):
                t = dy - d if flip else d
                v.append(t + ys)
                u.append(int(xs + s * t + 0.5))
    return u, v


def _polygon_to_mask(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Port of pycocotools' rleFrPoly: one polygon -> uint8[H, W].

    The polygon's edges are walked on a 5x finer integer grid; each crossing of a
    pixel column (COCO samples pixel x at coordinate x) gives the row where the
    column's run of ones starts or ends.
    """
    scale = 5.0
    u, v = _polygon_edge_points(xy)
    # 2. where the walk crosses a column centre, record (column, first row inside)
    starts = []
    for j in range(1, len(u)):
        if u[j] == u[j - 1]:
            continue
        xd = float(u[j] if u[j] < u[j - 1] else u[j] - 1)
        xd = (xd + 0.5) / scale - 0.5
        if np.floor(xd) != xd or xd < 0 or xd > width - 1:
            continue
        yd = float(v[j] if v[j] < v[j - 1] else v[j - 1])
        yd = (yd + 0.5) / scale - 0.5
        yd = float(np.ceil(min(max(yd, 0.0), float(height))))
        starts.append(int(xd) * height + int(yd))
    # 3. sorted boundary positions toggle the value along the column-major sequence
    starts.append(height * width)
    a = np.sort(np.asarray(starts, dtype=np.int64))
    runs = np.diff(np.concatenate([[0], a])).tolist()
    counts = [runs[0]]
    j = 1
    while j < len(runs):  # a zero-length run merges its neighbours, as in rleFrPoly
        if runs[j] > 0:
            counts.append(runs[j])
            j += 1
        else:
            j += 1
            if j < len(runs):
                counts[-1] += runs[j]
                j += 1
    return counts_to_mask(counts, height, width)


def polygons_to_mask(polygons, height: int, width: int) -> np.ndarray:
    """Union of COCO polygons rasterised as pycocotools does (frPyObjects + merge + decode).

    Args:
        polygons (list of float[2V]): flat [x1, y1, x2, y2, ...] in pixels, V >= 3 vertices.
    Returns:
        uint8[H, W].
    """
    mask = np.zeros((height, width), dtype=np.uint8)
    for poly in polygons:
        poly = np.asarray(poly, dtype=np.float64).ravel()
        if len(poly) < 6 or len(poly) % 2:
            raise ValueError(f"a polygon needs an even number >= 6 of coordinates, got {len(poly)}")
        mask |= _polygon_to_mask(poly, height, width)
    return mask


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer boundaries of a binary mask as flat COCO polygons, vertices at pixel centres.

    Each boundary pixel edge is turned into a directed segment with the foreground on
    its right; the segments are chained into closed loops and only counter-clockwise
    (outer) loops are kept. Pixel corners are then shifted by -0.5 because COCO's
    rasteriser samples pixel (x, y) at coordinate (x, y), not at its centre; with
    that shift an axis-aligned rectangle of pixels round-trips exactly.

    Limitations: holes are dropped (COCO polygons cannot express them); the polygon
    follows pixel edges, so `polygons_to_mask(mask_to_polygons(m))` reproduces `m`
    only approximately (tests check IoU > 0.8 on shapes of >= 20 pixels).
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    # Directed edges between pixel corners (x, y); foreground on the right when walking.
    nxt: dict[tuple[int, int], list[tuple[int, int]]] = {}
    ys, xs = np.nonzero(mask)
    for y, x in zip(ys.tolist(), xs.tolist()):
        if not padded[y, x + 1]:      # background above: walk left -> right along the top
            nxt.setdefault((x, y), []).append((x + 1, y))
        if not padded[y + 2, x + 1]:  # background below: walk right -> left along the bottom
            nxt.setdefault((x + 1, y + 1), []).append((x, y + 1))
        if not padded[y + 1, x]:      # background left: walk bottom -> top
            nxt.setdefault((x, y + 1), []).append((x, y))
        if not padded[y + 1, x + 2]:  # background right: walk top -> bottom
            nxt.setdefault((x + 1, y), []).append((x + 1, y + 1))
    polygons = []
    while nxt:
        start = next(iter(nxt))
        loop, point = [start], start
        while True:
            ends = nxt[point]
            end = ends.pop()
            if not ends:
                del nxt[point]
            if end == start:
                break
            loop.append(end)
            point = end
        pts = np.asarray(loop, dtype=np.float64)
        # Drop collinear vertices: keep only corners where the direction changes.
        before, after = pts - np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0) - pts
        corner = (before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]) != 0
        pts = pts[corner]
        # Shoelace signed area; in image coordinates (y down) outer loops come out > 0.
        signed = 0.5 * np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
        if signed > 0 and len(pts) >= 3:
            polygons.append((pts - 0.5).ravel().tolist())
    return polygons


# ---------------------------------------------------------------------------
# IoU
# ---------------------------------------------------------------------------
def mask_iou(dt_masks: np.ndarray, gt_masks: np.ndarray, iscrowd) -> np.ndarray:
    """float64[D, G] IoU of binary masks; for a crowd GT the denominator is the detection area.

    Args:
        dt_masks (bool/uint8[D, H, W]), gt_masks (bool/uint8[G, H, W]), iscrowd (int[G]).
    """
    # reshape(D, -1) cannot infer -1 for D = 0: flatten H*W from the shape instead
    dt = np.asarray(dt_masks, dtype=bool)
    gt = np.asarray(gt_masks, dtype=bool)
    dt = dt.reshape(len(dt), int(np.prod(dt.shape[1:]))).astype(np.float64)   # [D, H*W]
    gt = gt.reshape(len(gt), int(np.prod(gt.shape[1:]))).astype(np.float64)   # [G, H*W]
    crowd = np.asarray(iscrowd, dtype=bool).reshape(-1)
    inter = dt @ gt.T  # exact: integer pixel counts in float64
    dt_area, gt_area = dt.sum(1)[:, None], gt.sum(1)[None, :]
    union = np.where(crowd[None, :], dt_area, dt_area + gt_area - inter)
    out = np.zeros(inter.shape, dtype=np.float64)
    np.divide(inter, union, out=out, where=inter > 0)  # empty masks give 0, not NaN
    return out


def iou(dt_rles, gt_rles, iscrowd) -> np.ndarray:
    """pycocotools maskUtils.iou for RLEs: float64[D, G], i/u, or i/area(dt) when gt is crowd.

    A detection whose size differs from the GT's gets -1, as in pycocotools.
    """
    if len(dt_rles) == 0 or len(gt_rles) == 0:
        return np.zeros((len(dt_rles), len(gt_rles)), dtype=np.float64)
    if len(iscrowd) != len(gt_rles):
        raise ValueError(f"iscrowd must have one entry per gt ({len(gt_rles)}), got {len(iscrowd)}")
    dts = [decode(r) for r in dt_rles]
    gts = [decode(r) for r in gt_rles]
    out = np.full((len(dts), len(gts)), -1.0)
    dt_shapes = np.array([m.shape for m in dts])
    for shape in {m.shape for m in gts}:
        di = np.flatnonzero((dt_shapes == shape).all(1))
        gi = [j for j, m in enumerate(gts) if m.shape == shape]
        if len(di):
            sub = mask_iou(np.stack([dts[i] for i in di]), np.stack([gts[j] for j in gi]),
                           np.asarray(iscrowd)[gi])
            out[np.ix_(di, gi)] = sub
    return out
