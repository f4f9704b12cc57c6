"""Solutions of lesson 05's exercises (each block replaces the exercise cell of the same number)."""

# %% exercise 1
def my_cross_entropy(logits, target):
    """logits float[R, K], target int64[R] -> (loss: float, dlogits: float[R, K])."""
    R = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)                 # exp can no longer overflow
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_softmax[np.arange(R), target].mean()
    dlogits = (np.exp(log_softmax) - np.eye(logits.shape[1])[target]) / R
    return loss, dlogits

# %% exercise 2
def softmax_mask_loss_forward(mask_logits, labels, mask_targets):
    """float[P, K, M, M], int64[P], float[P, M, M] -> (loss: float, cache)."""
    P, K, M, _ = mask_logits.shape
    pixel_class = np.where(mask_targets >= 0.5, labels[:, None, None], 0).reshape(-1)   # int64[P*M*M]
    rows = mask_logits.transpose(0, 2, 3, 1).reshape(-1, K)                            # float[P*M*M, K]
    loss, ce_cache = F.cross_entropy_forward(rows, pixel_class)
    return loss, (ce_cache, mask_logits.shape)


def softmax_mask_loss_backward(dloss, cache):
    """dloss: float, cache from the forward -> dmask_logits float[P, K, M, M]."""
    ce_cache, (P, K, M, _) = cache
    drows = F.cross_entropy_backward(dloss, ce_cache)                                  # float[P*M*M, K]
    return drows.reshape(P, M, M, K).transpose(0, 3, 1, 2)
