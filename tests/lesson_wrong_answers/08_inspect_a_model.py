"""Typical wrong answers to lesson 08's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: did not divide the deltas by the weights
def my_decode(deltas, rois, weights):
    # the weights are forgotten
    w, h = rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]
    cx, cy = rois[:, 0] + 0.5 * w, rois[:, 1] + 0.5 * h
    pcx, pcy = cx + deltas[:, 0] * w, cy + deltas[:, 1] * h
    pw, ph = w * np.exp(deltas[:, 2]), h * np.exp(deltas[:, 3])
    return np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=1)

# %% exercise 1: no \+ 1
def my_decode(deltas, rois, weights):
    # the old "+ 1" pixel convention for widths
    wx, wy, ww, wh = weights
    w, h = rois[:, 2] - rois[:, 0] + 1, rois[:, 3] - rois[:, 1] + 1
    cx, cy = rois[:, 0] + 0.5 * w, rois[:, 1] + 0.5 * h
    pcx, pcy = cx + deltas[:, 0] / wx * w, cy + deltas[:, 1] / wy * h
    pw, ph = w * np.exp(deltas[:, 2] / ww), h * np.exp(deltas[:, 3] / wh)
    return np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=1)

# %% exercise 1: called minimrcnn\.ops\.box_coder\.BoxCoder\.decode
def my_decode(deltas, rois, weights):
    # the model's own box coder
    return model.roi_heads.box_coder.decode(deltas, rois).reshape(-1, 4)

# %% exercise 2: softmax over the K channels.*sigmoid
def my_mask_probabilities(mask_logits, labels):
    # softmax over classes, then the predicted class's channel
    z = mask_logits - mask_logits.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p[np.arange(len(labels)), labels][:, None]

# %% exercise 2: keep the channel axis
def my_mask_probabilities(mask_logits, labels):
    # drops the channel axis: [D, M, M]
    return 1 / (1 + np.exp(-mask_logits[np.arange(len(labels)), labels]))

# %% exercise 2: Take channel labels\[d\]
def my_mask_probabilities(mask_logits, labels):
    # the first foreground channel for every detection
    return 1 / (1 + np.exp(-mask_logits[:, 1:2]))

# %% exercise 2: called minimrcnn\.models\.mask_head\.maskrcnn_inference
def my_mask_probabilities(mask_logits, labels):
    return maskrcnn_inference(mask_logits, labels)
