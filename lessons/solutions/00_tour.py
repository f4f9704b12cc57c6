# Solutions to the exercises of lessons/00_tour.ipynb.
# Each block replaces the exercise cell with the same number.

# %% exercise 1
def count_anchors(image_size, strides, per_cell):
    """-> int: total anchors over all levels for a square image of side image_size."""
    return sum(int(np.ceil(image_size / s)) ** 2 * per_cell for s in strides)


# %% exercise 2
def mask_iou_matrix(pred, gt):
    """bool[D, H, W], bool[G, H, W] -> float64[D, G] mask IoU."""
    p = pred.reshape(len(pred), -1).astype(np.float64)        # [D, H*W]
    g = gt.reshape(len(gt), -1).astype(np.float64)            # [G, H*W]
    inter = p @ g.T
    union = p.sum(1)[:, None] + g.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
