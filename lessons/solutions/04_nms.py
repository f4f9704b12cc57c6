"""Solutions of lesson 04's exercises (each block replaces the exercise cell of the same number)."""

# %% exercise 1
def my_nms(boxes, scores, threshold):
    """boxes float[N, 4] (x1, y1, x2, y2), scores float[N] -> int64[k] kept indices, best first."""
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        # keep i unless a kept box overlaps it by strictly more than the threshold
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] > threshold).any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)

# %% exercise 2
def my_batched_nms(boxes, scores, classes, threshold):
    """boxes float[N, 4], scores float[N], classes int64[N] -> int64[k] kept indices, best first."""
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)                 # indices into the full arrays
        kept.append(members[nms(boxes[members], scores[members], threshold)])
    kept = np.sort(np.concatenate(kept))                       # index order, so that ties ...
    return kept[np.argsort(-scores[kept], kind="stable")]      # ... keep the lower index first
