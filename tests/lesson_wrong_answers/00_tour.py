"""Typical wrong answers to lesson 00's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: round image_size / s down.*ceil
def count_anchors(image_size, strides, per_cell):
    # floor division: drops the partly covered cells of a size that is not a multiple of s
    return sum((image_size // s) ** 2 for s in strides) * per_cell

# %% exercise 1: forget per_cell
def count_anchors(image_size, strides, per_cell):
    return sum((-(-image_size // s)) ** 2 for s in strides)

# %% exercise 1: one side only
def count_anchors(image_size, strides, per_cell):
    return sum((-(-image_size // s)) for s in strides) * per_cell

# %% exercise 1: you return 4092 for every input
def count_anchors(image_size, strides, per_cell):
    return 4092          # the tour's count, hard-coded

# %% exercise 1: your code called minimrcnn\.ops\.anchors\.AnchorGenerator\.__call__
def count_anchors(image_size, strides, per_cell):
    sizes = [(-(-image_size // s),) * 2 for s in strides]
    return len(model.rpn.anchor_generator((image_size, image_size), sizes))

# %% exercise 2: your code called minimrcnn\.data\.rle\.mask_iou
def mask_iou_matrix(pred, gt):
    return mask_iou(pred, gt, np.zeros(len(gt)))

# %% exercise 2: not NaN
def mask_iou_matrix(pred, gt):
    p = pred.reshape(len(pred), -1).astype(np.float64)
    g = gt.reshape(len(gt), -1).astype(np.float64)
    inter = p @ g.T
    union = p.sum(1)[:, None] + g.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / union

# %% exercise 2: union counts the shared pixels once
def mask_iou_matrix(pred, gt):
    p = pred.reshape(len(pred), -1).astype(np.float64)
    g = gt.reshape(len(gt), -1).astype(np.float64)
    inter = p @ g.T
    union = p.sum(1)[:, None] + g.sum(1)[None, :]          # counts the intersection twice
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)

# %% exercise 2: float64\[D, G\]
def mask_iou_matrix(pred, gt):
    g = gt.reshape(len(gt), -1).astype(np.float64)
    p = pred.reshape(len(pred), -1).astype(np.float64)
    inter = g @ p.T                                          # [G, D]: the axes swapped
    union = g.sum(1)[:, None] + p.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
