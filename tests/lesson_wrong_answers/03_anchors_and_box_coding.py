"""Typical wrong answers to lesson 03's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: centre is x1 \+ 0\.5 \* w, not x1$
def my_encode(g, p, weights):
    wx, wy, ww, wh = weights
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    # corners instead of centres
    return np.stack([wx * (g[:, 0] - p[:, 0]) / pw, wy * (g[:, 1] - p[:, 1]) / ph,
                     ww * np.log(gw / pw), wh * np.log(gh / ph)], axis=1)

# %% exercise 1: no \+1
def my_encode(g, p, weights):
    wx, wy, ww, wh = weights
    pw, ph = p[:, 2] - p[:, 0] + 1, p[:, 3] - p[:, 1] + 1        # the old Detectron +1
    gw, gh = g[:, 2] - g[:, 0] + 1, g[:, 3] - g[:, 1] + 1
    pcx, pcy = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
    gcx, gcy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
    return np.stack([wx * (gcx - pcx) / pw, wy * (gcy - pcy) / ph,
                     ww * np.log(gw / pw), wh * np.log(gh / ph)], axis=1)

# %% exercise 1: reference box's size
def my_encode(g, p, weights):
    wx, wy, ww, wh = weights
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    pcx, pcy = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
    gcx, gcy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
    return np.stack([wx * (gcx - pcx) / gw, wy * (gcy - pcy) / gh,      # divides by g's size
                     ww * np.log(gw / pw), wh * np.log(gh / ph)], axis=1)

# %% exercise 1: wx goes with x, wy with y|wx, wy scale dx, dy
def my_encode(g, p, weights):
    ww, wh, wx, wy = weights                                              # unpacked in the wrong order
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    pcx, pcy = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
    gcx, gcy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
    return np.stack([wx * (gcx - pcx) / pw, wy * (gcy - pcy) / ph,
                     ww * np.log(gw / pw), wh * np.log(gh / ph)], axis=1)

# %% exercise 1: your code called minimrcnn\.ops\.box_coder\.BoxCoder\.encode
def my_encode(g, p, weights):
    return BoxCoder(weights).encode(g, p)

# %% exercise 2: inclusive
def gt_coverage(anchors, dataset):
    best = np.concatenate([box_iou(dataset[i][1]["boxes"], anchors).max(axis=1) for i in range(len(dataset))])
    return float(np.mean(best > 0.7))

# %% exercise 2: not the average of per-image fractions
def gt_coverage(anchors, dataset):
    return float(np.mean([np.mean(box_iou(dataset[i][1]["boxes"], anchors).max(axis=1) >= 0.7)
                          for i in range(len(dataset))]))

# %% exercise 2: same number for every anchor set
def gt_coverage(anchors, dataset):
    return 0.0            # "section 4 found none"

# %% exercise 2: max IoU over all anchors
def gt_coverage(anchors, dataset):
    # fraction of anchors (not GT boxes) that cover some GT
    best = np.concatenate([box_iou(dataset[i][1]["boxes"], anchors).max(axis=0) for i in range(len(dataset))])
    return float(np.mean(best >= 0.7))
