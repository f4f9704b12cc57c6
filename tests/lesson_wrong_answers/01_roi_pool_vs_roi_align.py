"""Typical wrong answers to lesson 01's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: np\.round rounds half to even
def roi_pool_bins_1d(x1, x2, P, spatial_scale):
    start, end = int(np.round(x1 * spatial_scale)), int(np.round(x2 * spatial_scale))
    width = max(end - start + 1, 1)
    return (np.array([math.floor(p * width / P) + start for p in range(P)]),
            np.array([math.ceil((p + 1) * width / P) + start for p in range(P)]))

# %% exercise 1: inclusive end
def roi_pool_bins_1d(x1, x2, P, spatial_scale):
    c_round = lambda v: int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)
    start, end = c_round(x1 * spatial_scale), c_round(x2 * spatial_scale)
    width = max(end - start, 1)                       # forgets the +1
    return (np.array([math.floor(p * width / P) + start for p in range(P)]),
            np.array([math.ceil((p + 1) * width / P) + start for p in range(P)]))

# %% exercise 1: not floored
def roi_pool_bins_1d(x1, x2, P, spatial_scale):
    # the textbook "floor twice" account
    start, end = math.floor(x1 * spatial_scale), math.floor(x2 * spatial_scale)
    width = max(end - start + 1, 1)
    return (np.array([math.floor(p * width / P) + start for p in range(P)]),
            np.array([math.ceil((p + 1) * width / P) + start for p in range(P)]))

# %% exercise 1: your code called minimrcnn\.ops\.roi_pool\.roi_pool_bin_edges
def roi_pool_bins_1d(x1, x2, P, spatial_scale):
    edges = roi_pool_bin_edges(np.array([0.0, x1, 0.0, x2, 0.0]), (1, P), spatial_scale)
    return edges["wstart"], edges["wend"]

# %% exercise 2: RoIPool's max
def roi_pool_mean(feature, roi, P, spatial_scale):
    H, W = feature.shape
    e = roi_pool_bin_edges(np.asarray(roi), (P, P), spatial_scale, H, W)
    out = np.zeros((P, P))
    for i in range(P):
        for j in range(P):
            cells = feature[e["hstart"][i]:e["hend"][i], e["wstart"][j]:e["wend"][j]]
            out[i, j] = cells.max() if cells.size else 0.0
    return out

# %% exercise 2: not the NaN of an empty mean
def roi_pool_mean(feature, roi, P, spatial_scale):
    H, W = feature.shape
    e = roi_pool_bin_edges(np.asarray(roi), (P, P), spatial_scale, H, W)
    with np.errstate(invalid="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.array([[feature[e["hstart"][i]:e["hend"][i], e["wstart"][j]:e["wend"][j]].mean()
                              for j in range(P)] for i in range(P)])

# %% exercise 2: rows and columns are swapped
def roi_pool_mean(feature, roi, P, spatial_scale):
    H, W = feature.shape
    e = roi_pool_bin_edges(np.asarray(roi), (P, P), spatial_scale, H, W)
    out = np.zeros((P, P))
    for i in range(P):
        for j in range(P):
            cells = feature[e["wstart"][j]:e["wend"][j], e["hstart"][i]:e["hend"][i]].T
            out[i, j] = cells.mean() if cells.size else 0.0
    return out

# %% exercise 2: your code called minimrcnn\.ops\.roi_pool\.roi_pool
def roi_pool_mean(feature, roi, P, spatial_scale):
    return roi_pool(feature[None, None], np.asarray(roi)[None], P, spatial_scale)[0, 0]
