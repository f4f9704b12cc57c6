"""Typical wrong answers to lesson 09's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: IoU >= threshold, not >
def greedy_match(ious, threshold):
    # '>' leaves a detection at exactly the threshold unmatched
    D, G = ious.shape
    taken, matched = np.zeros(G, dtype=bool), np.zeros(D, dtype=bool)
    for d in range(D):
        best, m = threshold, -1
        for g in range(G):
            if not taken[g] and ious[d, g] > best:
                best, m = ious[d, g], g
        if m >= 0:
            taken[m] = matched[d] = True
    return matched

# %% exercise 1: a GT matched once is taken
def greedy_match(ious, threshold):
    # never marks a GT as taken
    return (ious >= min(threshold, 1 - 1e-10)).any(axis=1) if ious.size else np.zeros(len(ious), dtype=bool)

# %% exercise 1: highest IoU, not the first one above the threshold
def greedy_match(ious, threshold):
    # takes the first free GT above the threshold
    D, G = ious.shape
    taken, matched = np.zeros(G, dtype=bool), np.zeros(D, dtype=bool)
    for d in range(D):
        for g in range(G):
            if not taken[g] and ious[d, g] >= min(threshold, 1 - 1e-10):
                taken[g] = matched[d] = True
                break
    return matched

# %% exercise 1: called minimrcnn\.eval\.coco_eval\.evaluate_image
def greedy_match(ious, threshold):
    D, G = ious.shape
    ev = evaluate_image(ious, [{"area": 1.0, "iscrowd": 0}] * G, [{"area": 1.0, "score": 1.0 - d / (D + 1)} for d in range(D)],
                        AREA_RANGES[0], max_det=100)
    return ev["dt_matched"][int(np.argmin(np.abs(IOU_THRESHOLDS - threshold)))]

# %% exercise 2: the envelope
def precision_at_recall_levels(tp, num_gt):
    # raw precision, never made monotone
    hits = np.cumsum(tp)
    recall, precision = hits / num_gt, hits / np.arange(1, len(tp) + 1)
    first = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    return np.where(first < len(tp), precision[np.minimum(first, len(tp) - 1)], 0.0)

# %% exercise 2: recall is TP / num_gt
def precision_at_recall_levels(tp, num_gt):
    # recall over the detections instead of the GTs
    hits = np.cumsum(tp)
    recall, precision = hits / len(tp), hits / np.arange(1, len(tp) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    first = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    return np.where(first < len(tp), envelope[np.minimum(first, len(tp) - 1)], 0.0)

# %% exercise 2: first detection whose recall is >= r
def precision_at_recall_levels(tp, num_gt):
    # side="right": the first detection whose recall is > r
    hits = np.cumsum(tp)
    recall, precision = hits / num_gt, hits / np.arange(1, len(tp) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    first = np.searchsorted(recall, RECALL_THRESHOLDS, side="right")
    return np.where(first < len(tp), envelope[np.minimum(first, len(tp) - 1)], 0.0)

# %% exercise 2: called minimrcnn\.eval\.coco_eval\.accumulate
def precision_at_recall_levels(tp, num_gt):
    D = len(tp)
    entry = {"dt_scores": -np.arange(D, dtype=float), "dt_matched": np.repeat(np.asarray(tp, bool)[None], 10, 0),
             "dt_ignore": np.zeros((10, D), dtype=bool), "gt_ignore": np.zeros(num_gt, dtype=bool)}
    return accumulate([entry], max_det=100)[0][0]
