"""Typical wrong answers to lesson 02's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: half a cell up: that is aligned=True
def my_sample_rows(y1, y2, PH, spatial_scale, sampling_ratio):
    start = y1 * spatial_scale - 0.5                     # the aligned=True shift
    roi_h = max((y2 - y1) * spatial_scale, 1.0)
    bin_h = roi_h / PH
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / PH)
    p, i = np.meshgrid(np.arange(PH), np.arange(gh), indexing="ij")
    return start + p * bin_h + (i + 0.5) * bin_h / gh

# %% exercise 1: at least 1 cell tall
def my_sample_rows(y1, y2, PH, spatial_scale, sampling_ratio):
    start = y1 * spatial_scale
    roi_h = (y2 - y1) * spatial_scale                   # no minimum size
    bin_h = roi_h / PH
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / PH)
    p, i = np.meshgrid(np.arange(PH), np.arange(gh), indexing="ij")
    return start + p * bin_h + (i + 0.5) * bin_h / gh

# %% exercise 1: centres of gh equal parts
def my_sample_rows(y1, y2, PH, spatial_scale, sampling_ratio):
    start = y1 * spatial_scale
    roi_h = max((y2 - y1) * spatial_scale, 1.0)
    bin_h = roi_h / PH
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / PH)
    p, i = np.meshgrid(np.arange(PH), np.arange(gh), indexing="ij")
    return start + p * bin_h + i * bin_h / gh          # samples at the parts' starts

# %% exercise 1: \(PH, gh\).*sampling_ratio = 0
def my_sample_rows(y1, y2, PH, spatial_scale, sampling_ratio):
    start = y1 * spatial_scale
    roi_h = max((y2 - y1) * spatial_scale, 1.0)
    bin_h = roi_h / PH
    gh = sampling_ratio if sampling_ratio >= 0 else math.ceil(roi_h / PH)   # 0 is adaptive too
    gh = max(gh, 1)
    p, i = np.meshgrid(np.arange(PH), np.arange(gh), indexing="ij")
    return start + p * bin_h + (i + 0.5) * bin_h / gh

# %% exercise 1: your code called minimrcnn\.ops\.roi_align\.roi_align_sample_points
def my_sample_rows(y1, y2, PH, spatial_scale, sampling_ratio):
    return roi_align_sample_points((0.0, y1, 1.0, y2), PH, spatial_scale, sampling_ratio=sampling_ratio)["ys"]

# %% exercise 2: accumulate with \+=
def my_bin_gradient(H, W, ys, xs):
    grad = np.zeros((H, W))
    count = len(ys) * len(xs)
    for sy in ys:
        for sx in xs:
            n = bilinear_interpolate(H, W, sy, sx)
            if n is None:
                continue
            yl, yh, xl, xh, w1, w2, w3, w4 = n
            for (py, px), w in zip([(yl, xl), (yl, xh), (yh, xl), (yh, xh)], (w1, w2, w3, w4)):
                grad[py, px] = w / count                  # '=' loses the other samples' shares
    return grad

# %% exercise 2: still counts
def my_bin_gradient(H, W, ys, xs):
    grad = np.zeros((H, W))
    inside = [bilinear_interpolate(H, W, sy, sx) for sy in ys for sx in xs]
    inside = [n for n in inside if n is not None]
    for yl, yh, xl, xh, w1, w2, w3, w4 in inside:
        for (py, px), w in zip([(yl, xl), (yl, xh), (yh, xl), (yh, xh)], (w1, w2, w3, w4)):
            grad[py, px] += w / len(inside)            # divides by the samples on the map only
    return grad

# %% exercise 2: returns None for a sample outside
def my_bin_gradient(H, W, ys, xs):
    grad = np.zeros((H, W))
    for sy in ys:
        for sx in xs:
            yl, yh, xl, xh, w1, w2, w3, w4 = bilinear_interpolate(H, W, sy, sx)   # None off the map
            for (py, px), w in zip([(yl, xl), (yl, xh), (yh, xl), (yh, xh)], (w1, w2, w3, w4)):
                grad[py, px] += w / (len(ys) * len(xs))
    return grad

# %% exercise 2: your code called minimrcnn\.ops\.roi_align\.roi_align_backward
def my_bin_gradient(H, W, ys, xs):
    # a one-sample RoI per sample, differentiated by the library
    grad = np.zeros((H, W))
    for sy in ys:
        for sx in xs:
            _, c = roi_align_forward(np.zeros((1, 1, H, W)), np.array([[0, sx - 0.5, sy - 0.5, sx + 0.5, sy + 0.5]]), 1, 1.0, 1)
            grad += roi_align_backward(np.ones((1, 1, 1, 1)), c)[0, 0] / (len(ys) * len(xs))
    return grad

# %% exercise 3: the bug is still there
my_spread = bug_hunt.spread_buggy

# %% exercise 3: divide each share by count
def my_spread(dinput, g, neighbours, count):
    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = neighbours
    dinput[:, y_low, x_low] += g * w1
    dinput[:, y_low, x_high] += g * w2
    dinput[:, y_high, x_low] += g * w3
    dinput[:, y_high, x_high] += g * w4

# %% exercise 3: gradient check still fails
def my_spread(dinput, g, neighbours, count):
    # swaps the other pair
    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = neighbours
    dinput[:, y_low, x_low] += g * w4 / count
    dinput[:, y_low, x_high] += g * w2 / count
    dinput[:, y_high, x_low] += g * w3 / count
    dinput[:, y_high, x_high] += g * w1 / count
