# Solutions to the exercises of lessons/01_roi_pool_vs_roi_align.ipynb.
# Each block replaces the exercise cell with the same number.

# %% exercise 1
def roi_pool_bins_1d(x1, x2, P, spatial_scale):
    """-> (starts int[P], ends int[P]): RoIPool's bin edges along one axis, in feature cells."""
    def c_round(v):                                   # half away from zero, as C's round()
        return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)

    start, end = c_round(x1 * spatial_scale), c_round(x2 * spatial_scale)
    width = max(end - start + 1, 1)                   # the end cell counts: inclusive
    bin_size = width / P
    starts = np.array([math.floor(p * bin_size) + start for p in range(P)])
    ends = np.array([math.ceil((p + 1) * bin_size) + start for p in range(P)])
    return starts, ends


# %% exercise 2
def roi_pool_mean(feature, roi, P, spatial_scale):
    """float[H, W], float[5] -> float[P, P]: the mean of each quantised RoIPool bin."""
    H, W = feature.shape
    edges = roi_pool_bin_edges(np.asarray(roi), (P, P), spatial_scale, H, W)
    out = np.zeros((P, P), dtype=feature.dtype)
    for ph in range(P):
        for pw in range(P):
            cells = feature[edges["hstart"][ph]:edges["hend"][ph], edges["wstart"][pw]:edges["wend"][pw]]
            if cells.size:                            # an empty bin (outside the map) stays 0
                out[ph, pw] = cells.mean()
    return out
