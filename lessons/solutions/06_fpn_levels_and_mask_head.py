# Solutions to the exercises of lessons/06_fpn_levels_and_mask_head.ipynb.
# Each block replaces the exercise cell with the same number.

# %% exercise 1
def fpn_level(box):
    """float64[4] (x1, y1, x2, y2) -> int k in 2..5, the FPN level that pools this box."""
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    if area <= 0:                                     # log2(0) = -inf: the finest level
        return 2
    k = np.floor(4 + np.log2(np.sqrt(area) / 224) + 1e-6)
    return int(np.clip(k, 2, 5))


# %% exercise 2
def head_gradient_norms(canonical_scale, images, targets):
    """-> {'0': float, '1': float, '2': float, '3': float}: |d(box + mask losses) / d P_l|."""
    net = maskrcnn_shapes()
    load_weights(net, CHECKPOINT)
    names = ["0", "1", "2", "3"]
    net.roi_heads.box_roi_pool = MultiScaleRoIAlign(names, 7, 2, canonical_scale=canonical_scale)
    net.roi_heads.mask_roi_pool = MultiScaleRoIAlign(names, 14, 2, canonical_scale=canonical_scale)
    net.train()
    _, cache = net(images, targets, rng=np.random.default_rng(0))
    dlosses = dict.fromkeys(LOSS_NAMES, 1.0)
    dbox = net.roi_heads.backward_box(dlosses, cache.roi_heads)
    dmask = net.roi_heads.backward_mask(dlosses, cache.roi_heads)   # {} without positive RoIs
    return {name: float(np.linalg.norm(dbox[name] + dmask.get(name, 0.0))) for name in names}


# %% exercise 3
def cut_mask_target(mask, box, M=28):
    """uint8[H, W], float64[4] -> float64[M, M]: the RoIAligned (aligned=False) mask target."""
    H, W = mask.shape
    values = mask.astype(np.float64)
    pts = roi_align_sample_points(np.asarray(box, dtype=np.float64), M, 1.0, sampling_ratio=-1)
    ys, xs = pts["ys"], pts["xs"]                     # float[M, gh], float[M, gw]
    out = np.zeros((M, M))
    for i in range(M):
        for j in range(M):
            total = 0.0
            for y in ys[i]:
                for x in xs[j]:
                    nb = bilinear_interpolate(H, W, y, x)
                    if nb is None:                    # outside the mask: adds 0, still counted
                        continue
                    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = nb
                    total += (w1 * values[y_low, x_low] + w2 * values[y_low, x_high]
                              + w3 * values[y_high, x_low] + w4 * values[y_high, x_high])
            out[i, j] = total / (len(ys[i]) * len(xs[j]))
    return out
