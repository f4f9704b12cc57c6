"""Typical wrong answers to lesson 04's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: '>' not '>='
def my_nms(boxes, scores, threshold):
    # '>=' suppresses a box whose IoU equals the threshold
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] >= threshold).any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)

# %% exercise 1: increasing score.*order of the visit
def my_nms(boxes, scores, threshold):
    # visits by increasing score
    keep = []
    for i in np.argsort(scores, kind="stable"):
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] > threshold).any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)

# %% exercise 1: default sort is not stable
def my_nms(boxes, scores, threshold):
    # np.argsort's default (quicksort) scrambles tied scores in large arrays
    keep = []
    for i in np.argsort(-scores):
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] > threshold).any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)

# %% exercise 1: highest index first
def my_nms(boxes, scores, threshold):
    # decreasing score by reversing an increasing sort: ties come highest index first
    keep = []
    for i in np.argsort(scores, kind="stable")[::-1]:
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] > threshold).any():
            keep.append(i)
    return np.array(keep, dtype=np.int64)

# %% exercise 1: in the order you kept them
def my_nms(boxes, scores, threshold):
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if not keep or not (box_iou(boxes[[i]], boxes[keep])[0] > threshold).any():
            keep.append(i)
    return np.sort(np.array(keep, dtype=np.int64))

# %% exercise 1: your code called minimrcnn\.ops\.nms\.nms
def my_nms(boxes, scores, threshold):
    return nms(boxes, scores, threshold)

# %% exercise 2: map the positions inside each class back to indices into the full arrays
def my_batched_nms(boxes, scores, classes, threshold):
    # forgets to map positions within a class back to indices into the full arrays
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(nms(boxes[members], scores[members], threshold))
    kept = np.concatenate(kept)
    return kept[np.argsort(-scores[kept], kind="stable")]

# %% exercise 2: not sorted by decreasing score
def my_batched_nms(boxes, scores, classes, threshold):
    # right boxes, left in class order
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(members[nms(boxes[members], scores[members], threshold)])
    return np.concatenate(kept)

# %% exercise 2: lower index first \(a stable sort\)
def my_batched_nms(boxes, scores, classes, threshold):
    # sorted by score, but tied scores stay in class order instead of index order
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        kept.append(members[nms(boxes[members], scores[members], threshold)])
    kept = np.concatenate(kept)
    return kept[np.argsort(-scores[kept], kind="stable")]

# %% exercise 2: your code called minimrcnn\.ops\.nms\.batched_nms
def my_batched_nms(boxes, scores, classes, threshold):
    return batched_nms(boxes, scores, classes, threshold)
