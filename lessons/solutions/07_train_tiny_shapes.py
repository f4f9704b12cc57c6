"""Solutions of lesson 07's exercises (each block replaces the exercise cell of the same number)."""

# %% exercise 1
def lr_at(config, t):
    """The learning rate of iteration t (0-based) under config (a TrainConfig)."""
    warmup = 1.0
    if t < config.warmup_iters:
        alpha = t / config.warmup_iters
        warmup = config.warmup_factor * (1 - alpha) + alpha
    steps = sum(1 for m in config.milestone_iters() if m <= t)
    return config.lr * warmup * config.gamma ** steps

# %% exercise 2
def my_hflip(image, target):
    """uint8[H, W, 3] image and its target (boxes float32[G, 4], masks uint8[G, H, W], ...) mirrored."""
    width = image.shape[1]
    out = dict(target)
    boxes = target["boxes"]
    out["boxes"] = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    out["masks"] = target["masks"][:, :, ::-1].copy()
    return image[:, ::-1].copy(), out
