"""Solutions of lesson 03's exercises (each block replaces the exercise cell of the same number)."""

# %% exercise 1
def my_encode(g, p, weights):
    """g, p float[G, 4] (x1, y1, x2, y2); weights (wx, wy, ww, wh) -> deltas float[G, 4]."""
    wx, wy, ww, wh = weights
    pw, ph = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    gw, gh = g[:, 2] - g[:, 0], g[:, 3] - g[:, 1]
    pcx, pcy = p[:, 0] + 0.5 * pw, p[:, 1] + 0.5 * ph
    gcx, gcy = g[:, 0] + 0.5 * gw, g[:, 1] + 0.5 * gh
    return np.stack([wx * (gcx - pcx) / pw, wy * (gcy - pcy) / ph,
                     ww * np.log(gw / pw), wh * np.log(gh / ph)], axis=1)

# %% exercise 2
def gt_coverage(anchors, dataset):
    """anchors float[T, 4]; dataset yields (image, target) -> fraction of GT boxes with best anchor IoU >= 0.7."""
    covered, total = 0, 0
    for i in range(len(dataset)):
        boxes = dataset[i][1]["boxes"]                           # float32[G, 4]
        best = box_iou(boxes, anchors).max(axis=1)               # float32[G]: the best anchor of each GT
        covered += int(np.sum(best >= 0.7))
        total += len(boxes)
    return covered / total
