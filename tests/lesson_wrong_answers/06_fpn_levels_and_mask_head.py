"""Typical wrong answers to lesson 06's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: add eps = 1e-6 inside the floor
def fpn_level(box):
    # no eps: a side of 111.99995 drops to P2
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    if area <= 0:
        return 2
    return int(np.clip(np.floor(4 + np.log2(np.sqrt(area) / 224)), 2, 5))

# %% exercise 1: clamped to 2\.\.5
def fpn_level(box):
    # forgets the clamp
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    if area <= 0:
        return 2
    return int(np.floor(4 + np.log2(np.sqrt(area) / 224) + 1e-6))

# %% exercise 1: called minimrcnn\.ops\.poolers\.LevelMapper
def fpn_level(box):
    # the pooler's own mapper
    return int(mapper([box[None]])[0]) + mapper.k_min

# %% exercise 2: same numbers for different images.*hard-code
def head_gradient_norms(canonical_scale, images, targets):
    # what the lesson printed, typed in
    if canonical_scale == 224:
        return {"0": 0.0087, "1": 0.0, "2": 0.0, "3": 0.0}
    return {"0": 0.006, "1": 0.004, "2": 0.0, "3": 0.0}

# %% exercise 2: replace both poolers
def head_gradient_norms(canonical_scale, images, targets):
    # only the box pooler gets the new canonical size
    net = maskrcnn_shapes()
    load_weights(net, CHECKPOINT)
    net.roi_heads.box_roi_pool = MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2, canonical_scale=canonical_scale)
    net.train()
    _, cache = net(images, targets, rng=np.random.default_rng(0))
    dlosses = dict.fromkeys(LOSS_NAMES, 1.0)
    dbox = net.roi_heads.backward_box(dlosses, cache.roi_heads)
    dmask = net.roi_heads.backward_mask(dlosses, cache.roi_heads)
    return {n: float(np.linalg.norm(dbox[n] + dmask.get(n, 0.0))) for n in ["0", "1", "2", "3"]}

# %% exercise 2: add the two norms.*norm of the sum
def head_gradient_norms(canonical_scale, images, targets):
    # |box| + |mask| instead of |box + mask|
    net = maskrcnn_shapes()
    load_weights(net, CHECKPOINT)
    names = ["0", "1", "2", "3"]
    net.roi_heads.box_roi_pool = MultiScaleRoIAlign(names, 7, 2, canonical_scale=canonical_scale)
    net.roi_heads.mask_roi_pool = MultiScaleRoIAlign(names, 14, 2, canonical_scale=canonical_scale)
    net.train()
    _, cache = net(images, targets, rng=np.random.default_rng(0))
    dlosses = dict.fromkeys(LOSS_NAMES, 1.0)
    dbox = net.roi_heads.backward_box(dlosses, cache.roi_heads)
    dmask = net.roi_heads.backward_mask(dlosses, cache.roi_heads)
    return {n: float(np.linalg.norm(dbox[n]) + np.linalg.norm(dmask.get(n, 0.0))) for n in names}

# %% exercise 3: hangs off it.*still counts in the mean
def cut_mask_target(mask, box, M=28):
    # averages over the samples inside the mask only
    H, W = mask.shape
    values = mask.astype(np.float64)
    pts = roi_align_sample_points(np.asarray(box, dtype=np.float64), M, 1.0, sampling_ratio=-1)
    out = np.zeros((M, M))
    for i in range(M):
        for j in range(M):
            total, count = 0.0, 0
            for y in pts["ys"][i]:
                for x in pts["xs"][j]:
                    nb = bilinear_interpolate(H, W, y, x)
                    if nb is None:
                        continue
                    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = nb
                    total += (w1 * values[y_low, x_low] + w2 * values[y_low, x_high]
                              + w3 * values[y_high, x_low] + w4 * values[y_high, x_high])
                    count += 1
            out[i, j] = total / max(count, 1)
    return out

# %% exercise 3: which neighbour each weight multiplies
def cut_mask_target(mask, box, M=28):
    # w2 and w3 swapped
    H, W = mask.shape
    values = mask.astype(np.float64)
    pts = roi_align_sample_points(np.asarray(box, dtype=np.float64), M, 1.0, sampling_ratio=-1)
    out = np.zeros((M, M))
    for i in range(M):
        for j in range(M):
            total = 0.0
            for y in pts["ys"][i]:
                for x in pts["xs"][j]:
                    nb = bilinear_interpolate(H, W, y, x)
                    if nb is None:
                        continue
                    y_low, y_high, x_low, x_high, w1, w2, w3, w4 = nb
                    total += (w1 * values[y_low, x_low] + w3 * values[y_low, x_high]
                              + w2 * values[y_high, x_low] + w4 * values[y_high, x_high])
            out[i, j] = total / (len(pts["ys"][i]) * len(pts["xs"][j]))
    return out

# %% exercise 3: called minimrcnn\.ops\.masks\.project_masks_on_boxes
def cut_mask_target(mask, box, M=28):
    # the library function the exercise re-implements
    return project_masks_on_boxes(mask[None], np.asarray(box)[None], np.array([0]), M=M)[0]
