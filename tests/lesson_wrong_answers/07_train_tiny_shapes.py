"""Typical wrong answers to lesson 07's exercises; each block's mark line gives the regex its rejection must match."""

# %% exercise 1: during the warmup
def lr_at(config, t):
    # the warmup runs one iteration ahead
    warmup = 1.0
    if t < config.warmup_iters:
        alpha = (t + 1) / config.warmup_iters
        warmup = config.warmup_factor * (1 - alpha) + alpha
    steps = sum(1 for m in config.milestone_iters() if m <= t)
    return config.lr * warmup * config.gamma ** steps

# %% exercise 1: a milestone m applies from iteration m on
def lr_at(config, t):
    # '<' instead of '<=': each step comes one iteration late
    warmup = 1.0
    if t < config.warmup_iters:
        alpha = t / config.warmup_iters
        warmup = config.warmup_factor * (1 - alpha) + alpha
    steps = sum(1 for m in config.milestone_iters() if m < t)
    return config.lr * warmup * config.gamma ** steps

# %% exercise 1: called minimrcnn\.optim\.WarmupMultiStepLR
def lr_at(config, t):
    # the trainer's own scheduler
    scheduler = WarmupMultiStepLR(SGD([], lr=config.lr), config.milestone_iters(), config.gamma,
                                  config.warmup_iters, config.warmup_factor)
    return scheduler.get_lr(t)

# %% exercise 2: x1 must stay <= x2
def my_hflip(image, target):
    # each x is mirrored in place: x1 and x2 swap roles
    width = image.shape[1]
    out = dict(target)
    boxes = target["boxes"]
    out["boxes"] = np.stack([width - boxes[:, 0], boxes[:, 1], width - boxes[:, 2], boxes[:, 3]], axis=1)
    out["masks"] = target["masks"][:, :, ::-1].copy()
    return image[:, ::-1].copy(), out

# %% exercise 2: pixel edges 0 \.\. W, not pixel indices
def my_hflip(image, target):
    # W - 1 - x: pixel indices instead of pixel edges
    width = image.shape[1]
    out = dict(target)
    boxes = target["boxes"]
    out["boxes"] = np.stack([width - 1 - boxes[:, 2], boxes[:, 1], width - 1 - boxes[:, 0], boxes[:, 3]], axis=1)
    out["masks"] = target["masks"][:, :, ::-1].copy()
    return image[:, ::-1].copy(), out

# %% exercise 2: mirror their last axis
def my_hflip(image, target):
    # the masks are left as they were
    width = image.shape[1]
    out = dict(target)
    boxes = target["boxes"]
    out["boxes"] = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    return image[:, ::-1].copy(), out

# %% exercise 2: modified its input
def my_hflip(image, target):
    # flips the caller's arrays in place
    width = image.shape[1]
    boxes = target["boxes"]
    boxes[:] = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    image[:] = image[:, ::-1].copy()
    target["masks"][:] = target["masks"][:, :, ::-1].copy()
    return image, target

# %% exercise 2: called minimrcnn\.data\.loader\.hflip
def my_hflip(image, target):
    return hflip(image, target)
