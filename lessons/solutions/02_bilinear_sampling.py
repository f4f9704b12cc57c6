"""Solutions of lesson 02's exercises (each block replaces the exercise cell of the same number)."""

# %% exercise 1
def my_sample_rows(y1, y2, PH, spatial_scale, sampling_ratio):
    """A box's rows y1..y2 in image pixels -> sample y coordinates float[PH, gh] on the feature map."""
    start = y1 * spatial_scale
    roi_h = max((y2 - y1) * spatial_scale, 1.0)          # aligned=False: at least one cell
    bin_h = roi_h / PH
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / PH)
    p, i = np.meshgrid(np.arange(PH), np.arange(gh), indexing="ij")
    return start + p * bin_h + (i + 0.5) * bin_h / gh

# %% exercise 2
def my_bin_gradient(H, W, ys, xs):
    """Samples at ys float[gh] x xs float[gw] of one bin with gradient 1 -> dL/dF float[H, W]."""
    grad = np.zeros((H, W))
    count = len(ys) * len(xs)                            # the bin's value is the mean of its samples
    for sy in ys:
        for sx in xs:
            neighbours = bilinear_interpolate(H, W, sy, sx)
            if neighbours is None:                       # outside the map: contributes nothing
                continue
            yl, yh, xl, xh, w1, w2, w3, w4 = neighbours
            for (py, px), w in zip([(yl, xl), (yl, xh), (yh, xl), (yh, xh)], (w1, w2, w3, w4)):
                grad[py, px] += w / count
    return grad

# %% exercise 3
def my_spread(dinput, g, neighbours, count):
    """Add one sample's g float[C] * w_i / count to its 4 neighbours in dinput float[C, H, W], in place."""
    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = neighbours
    # w2 weighs (y_low, x_high) and w3 (y_high, x_low): spread_buggy had them swapped.
    dinput[:, y_low, x_low] += g * w1 / count
    dinput[:, y_low, x_high] += g * w2 / count
    dinput[:, y_high, x_low] += g * w3 / count
    dinput[:, y_high, x_high] += g * w4 / count
