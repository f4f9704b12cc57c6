"""Typical wrong answers to lesson 04's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: '>' not '>='
def my_nms(boxes, scores, threshold):
    # '>=' suppresses a box whose IoU equals the threshold
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] >= threshold).any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)

# %% exercise 1: stable argsort|order of the visit
def my_nms(boxes, scores, threshold):
    # visits by increasing score
    keep = []
    for i in np.argsort(scores, kind="stable"):
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] > threshold).any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)

# %% exercise 2: map the positions|indices into the full arrays
def my_batched_nms(boxes, scores, classes, threshold):
    # forgets to map positions within a class back to indices into the full arrays
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(nms(boxes[members], scores[members], threshold))
    kept = np.concatenate(kept)
    return kept[np.argsort(-scores[kept], kind="stable")]

# %% exercise 2: sorted by decreasing score
def my_batched_nms(boxes, scores, classes, threshold):
    # right boxes, left in class order
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(members[nms(boxes[members], scores[members], threshold)])
    return np.concatenate(kept)
