"""Trainer: determinism, exact resume, non-finite losses. Small batches keep it fast."""

import json

import numpy as np
import pytest

from minimrcnn.train.checkpoint import load_checkpoint
from minimrcnn.train.config import TrainConfig
from minimrcnn.train.trainer import NonFiniteLossError, Trainer


def _config(**overrides):
    base = dict(iters=3, batch_size=1, image_size=64, warmup_iters=2, lr=0.01, log_every=1,
                checkpoint_every=100, num_val_images=2)
    base.update(overrides)
    return TrainConfig(**base)


def _losses(trainer, steps):
    return [trainer.train_step() for _ in range(steps)]


def test_same_seed_same_losses(tmp_path):
    a = _losses(Trainer(_config(), str(tmp_path / "a"), progress=False), 2)
    b = _losses(Trainer(_config(), str(tmp_path / "b"), progress=False), 2)
    assert a == b
    c = _losses(Trainer(_config(seed=1), str(tmp_path / "c"), progress=False), 2)
    assert a != c


def test_resume_equals_uninterrupted_run(tmp_path):
    config = _config(iters=4)
    straight = Trainer(config, str(tmp_path / "straight"), progress=False)
    straight.run()

    interrupted = Trainer(config, str(tmp_path / "resumed"), progress=False)
    _losses(interrupted, 2)
    interrupted.save()                                 # as a periodic checkpoint would
    del interrupted                                    # "crash"
    resumed = Trainer(config, str(tmp_path / "resumed"), progress=False)
    resumed.resume()
    assert resumed.iteration == 2
    resumed.run()

    for (name, p), (_, q) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    log = lambda path: [json.loads(line) for line in open(path)]  # noqa: E731
    straight_losses = {r["iter"]: r["loss"] for r in log(straight.metrics_path)}
    resumed_losses = {r["iter"]: r["loss"] for r in log(resumed.metrics_path)}
    # The resumed run logged iterations 3 and 4 (steps 1-2 ran before the "crash").
    assert sorted(resumed_losses) == [3, 4]
    assert {t: straight_losses[t] for t in resumed_losses} == resumed_losses


def test_resume_refuses_a_different_config(tmp_path):
    trainer = Trainer(_config(), str(tmp_path), progress=False)
    trainer.save()
    other = Trainer(_config(lr=0.5), str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="lr: checkpoint 0.01 vs now 0.5"):
        other.resume()


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path):
    trainer = Trainer(_config(iters=4, checkpoint_every=1), str(tmp_path), progress=False)
    _losses(trainer, 1)
    trainer.save()
    good = load_checkpoint(trainer.checkpoint_path)
    real_forward = trainer.model.forward

    def exploding_forward(images, targets=None, **kw):
        losses, cache = real_forward(images, targets, **kw)
        losses["loss_mask"] = float("nan")
        return losses, cache

    trainer.model.forward = exploding_forward
    with pytest.raises(NonFiniteLossError, match="loss_mask is nan at iteration 1"):
        trainer.run()
    after = load_checkpoint(trainer.checkpoint_path)
    assert after["iteration"] == good["iteration"] == 1
    for key in good["model"]:
        np.testing.assert_array_equal(after["model"][key], good["model"][key])


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    trainer = Trainer(_config(), str(tmp_path), progress=False)
    trainer.model.parameters()[0].data[...] = np.inf
    with pytest.raises(NonFiniteLossError, match="is not finite"):
        trainer.save()
