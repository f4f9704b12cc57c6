"""Solutions of lesson 09's exercises (each block replaces the exercise cell of the same number)."""

# %% exercise 1
def greedy_match(ious, threshold):
    """ious float[D, G] (detections sorted by score) -> matched bool[D] at this IoU threshold."""
    D, G = ious.shape
    gt_taken = np.zeros(G, dtype=bool)
    matched = np.zeros(D, dtype=bool)
    for d in range(D):                                   # best score first
        best, m = min(threshold, 1 - 1e-10), -1          # COCO caps the threshold just below 1
        for g in range(G):
            if not gt_taken[g] and ious[d, g] >= best:
                best, m = ious[d, g], g                  # the highest IoU above the threshold wins
        if m >= 0:
            gt_taken[m] = matched[d] = True
    return matched

# %% exercise 2
def precision_at_recall_levels(tp, num_gt):
    """tp bool[n] ranked by score, num_gt int -> interpolated precision float[101]."""
    hits = np.cumsum(tp)
    recall = hits / num_gt
    precision = hits / np.arange(1, len(tp) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]       # best precision at any higher recall
    first = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")  # first detection with recall >= r
    return np.where(first < len(tp), envelope[np.minimum(first, len(tp) - 1)], 0.0)
