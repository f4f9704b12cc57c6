"""Training: ``train(config, out_dir)`` is the one entry (``minimrcnn train`` calls it).

``from minimrcnn.train import TrainConfig, train``; ``Trainer`` (train/trainer.py) is the loop
underneath, for a lesson or a notebook that wants to step it by hand. ``train`` and
``config_for_resume`` are looked up on first use, so that reading ``TrainConfig`` (as
``minimrcnn --help`` does) does not load the models.
"""

from minimrcnn.train.config import TrainConfig

_LAZY = {"train": "minimrcnn.train.run", "config_for_resume": "minimrcnn.train.run"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'minimrcnn.train' has no attribute {name!r}")


__all__ = ["TrainConfig", "config_for_resume", "train"]
