"""Typical wrong answers to lesson 05's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: not finite.*Subtract each row's max
def my_cross_entropy(logits, target):
    # no max shift: exp(1000) overflows
    R = logits.shape[0]
    e = np.exp(logits)
    softmax = e / e.sum(axis=1, keepdims=True)
    loss = -np.log(softmax[np.arange(R), target]).mean()
    return loss, (softmax - np.eye(logits.shape[1])[target]) / R

# %% exercise 1: R times too large.*mean over the rows
def my_cross_entropy(logits, target):
    # the sum over rows instead of the mean
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_softmax[np.arange(logits.shape[0]), target].sum()
    return loss, np.exp(log_softmax) - np.eye(logits.shape[1])[target]

# %% exercise 1: R times too large.*divide \(softmax - onehot\) by R
def my_cross_entropy(logits, target):
    # right loss, gradient of the sum
    R = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_softmax[np.arange(R), target].mean(), np.exp(log_softmax) - np.eye(logits.shape[1])[target]

# %% exercise 1: called minimrcnn.nn.functional.*cross_entropy
def my_cross_entropy(logits, target):
    # the library function the exercise asks to write
    loss, cache = F.cross_entropy_forward(logits, target)
    return loss, F.cross_entropy_backward(1.0, cache)

# %% exercise 2: without moving the channel axis last
def softmax_mask_loss_forward(mask_logits, labels, mask_targets):
    # forgets the transpose: rows of K neighbouring pixels of one channel
    P, K, M, _ = mask_logits.shape
    pixel_class = np.where(mask_targets >= 0.5, labels[:, None, None], 0).reshape(-1)
    loss, ce_cache = F.cross_entropy_forward(mask_logits.reshape(-1, K), pixel_class)
    return loss, (ce_cache, mask_logits.shape)


def softmax_mask_loss_backward(dloss, cache):
    ce_cache, shape = cache
    return F.cross_entropy_backward(dloss, ce_cache).reshape(shape)

# %% exercise 2: pixel class labels\[p\]
def softmax_mask_loss_forward(mask_logits, labels, mask_targets):
    # every foreground pixel gets class 1, whatever the RoI's class
    P, K, M, _ = mask_logits.shape
    pixel_class = (mask_targets >= 0.5).astype(np.int64).reshape(-1)
    rows = mask_logits.transpose(0, 2, 3, 1).reshape(-1, K)
    loss, ce_cache = F.cross_entropy_forward(rows, pixel_class)
    return loss, (ce_cache, mask_logits.shape)


def softmax_mask_loss_backward(dloss, cache):
    ce_cache, (P, K, M, _) = cache
    return F.cross_entropy_backward(dloss, ce_cache).reshape(P, M, M, K).transpose(0, 3, 1, 2)

# %% exercise 2: ignores dloss
def softmax_mask_loss_forward(mask_logits, labels, mask_targets):
    P, K, M, _ = mask_logits.shape
    pixel_class = np.where(mask_targets >= 0.5, labels[:, None, None], 0).reshape(-1)
    rows = mask_logits.transpose(0, 2, 3, 1).reshape(-1, K)
    loss, ce_cache = F.cross_entropy_forward(rows, pixel_class)
    return loss, (ce_cache, mask_logits.shape)


def softmax_mask_loss_backward(dloss, cache):
    # the upstream gradient is dropped
    ce_cache, (P, K, M, _) = cache
    return F.cross_entropy_backward(1.0, ce_cache).reshape(P, M, M, K).transpose(0, 3, 1, 2)

# %% exercise 2: reshape to \[P, M, M, K\], then transpose
def softmax_mask_loss_forward(mask_logits, labels, mask_targets):
    P, K, M, _ = mask_logits.shape
    pixel_class = np.where(mask_targets >= 0.5, labels[:, None, None], 0).reshape(-1)
    rows = mask_logits.transpose(0, 2, 3, 1).reshape(-1, K)
    loss, ce_cache = F.cross_entropy_forward(rows, pixel_class)
    return loss, (ce_cache, mask_logits.shape)


def softmax_mask_loss_backward(dloss, cache):
    # the rows are reshaped straight back to [P, K, M, M]
    ce_cache, shape = cache
    return F.cross_entropy_backward(dloss, ce_cache).reshape(shape)
