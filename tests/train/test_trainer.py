"""Trainer: determinism, exact resume, extension, signals, divergence. Small batches keep it fast."""

import json
import os
import re
import signal

import numpy as np
import pytest

from minimrcnn.train.checkpoint import load_checkpoint
from minimrcnn.train.config import TrainConfig
from minimrcnn.train.diverge import LossWatch
from minimrcnn.data.datasets import Subset
from minimrcnn.train.trainer import NonFiniteLossError, Trainer, TrainingDiverged, TrainingInterrupted


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


def test_trainer_writes_nothing_before_it_runs(tmp_path):
    Trainer(_config(), str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field, value, expected", [
    ("seed", -1, "seed must be an integer >= 0, got -1"),
    ("eval_every", -1, "eval_every must be an integer >= 0"),
    ("iters", 0, "iters must be an integer >= 1"),
    ("checkpoint_every", 0, "checkpoint_every must be an integer >= 1"),
    ("flip_prob", 1.5, "flip_prob must be a probability in [0, 1]"),
    ("clip_grad_norm", -1.0, "clip_grad_norm must be a number >= 0"),
    ("milestones", (0.9, 0.5), "milestones must be increasing fractions"),
    ("box_batch_size_per_image", 2, "box_batch_size_per_image must be an integer >= 4, got 2"),
    ("lr", float("nan"), "lr must be a number > 0, got nan"),
    ("iters", "3", "iters must be an integer >= 1, got '3'"),
    ("batch_size", 2.0, "batch_size must be an integer >= 1, got 2.0"),
    ("preset", "resnet50", "preset must be 'shapes', got 'resnet50'"),
    ("coco", 3, "coco must be a str or None, got 3"),
])
def test_out_of_range_settings_are_refused_by_name(tmp_path, field, value, expected):
    with pytest.raises(ValueError, match=re.escape(f"TrainConfig.{expected}")):
        Trainer(_config(**{field: value}), str(tmp_path), progress=False)


def test_resume_refuses_another_iters_because_milestones_are_fractions(tmp_path):
    trainer = Trainer(_config(iters=4), str(tmp_path), progress=False)
    trainer.save()
    other = Trainer(_config(iters=8), str(tmp_path), progress=False)
    with pytest.raises(ValueError, match=r"iters: checkpoint 4 vs now 8 \(the learning-rate milestones are "
                                         r"fractions of iters, at iterations \[3, 4\]"):
        other.resume()
    with pytest.raises(ValueError, match="is at iteration 0 of 4, not finished"):
        other.resume(extend=True)


def test_extend_keeps_the_finished_runs_milestones_in_iterations(tmp_path):
    finished = Trainer(_config(iters=4), str(tmp_path), progress=False)
    finished.run()
    longer = Trainer(_config(iters=6), str(tmp_path), progress=False)
    longer.resume(extend=True)
    assert longer.config.absolute_milestones == (3, 4) and longer.scheduler.milestones == [3, 4]
    assert longer.config.milestone_iters() == [3, 4]          # not [4, 5] = round([0.75, 0.9] * 6)
    longer.run()
    assert load_checkpoint(longer.checkpoint_path)["config"]["absolute_milestones"] == [3, 4]
    iters = [r["iter"] for r in map(json.loads, open(longer.metrics_path)) if "loss" in r]
    assert iters == [1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="iters must exceed the finished run's 6"):
        Trainer(_config(iters=6), str(tmp_path), progress=False).resume(extend=True)


def test_resuming_a_finished_run_redoes_only_its_final_evaluation(tmp_path):
    trainer = Trainer(_config(iters=2), str(tmp_path), progress=False)
    trainer.run()
    trainer.log({"iter": 2, "eval": {"bbox": {}, "segm": {}}})          # the final evaluation
    again = Trainer(_config(iters=2), str(tmp_path), progress=False)
    again.resume()
    assert [("eval" in r, r["iter"]) for r in map(json.loads, open(again.metrics_path))] == [(False, 1), (False, 2)]


def test_resume_keeps_each_logged_iteration_once(tmp_path):
    trainer = Trainer(_config(iters=4, checkpoint_every=2), str(tmp_path), progress=False)
    real_step = trainer.train_step

    def crash_at_three():
        if trainer.iteration == 3:
            raise RuntimeError("simulated crash after iteration 3 was logged")
        return real_step()

    trainer.train_step = crash_at_three
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.run()                                   # logged 1, 2, 3; checkpoint at 2
    resumed = Trainer(_config(iters=4, checkpoint_every=2), str(tmp_path), progress=False)
    resumed.resume()
    resumed.run()
    iters = [json.loads(line)["iter"] for line in open(resumed.metrics_path)]
    assert iters == [1, 2, 3, 4]


def test_sigterm_finishes_the_step_and_checkpoints(tmp_path):
    trainer = Trainer(_config(iters=4), str(tmp_path), progress=False)

    def terminate_during_step_two(iteration, losses, seconds):
        if iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="SIGTERM received: stopped after iteration 2"):
        trainer.run(on_step=terminate_during_step_two)
    saved = load_checkpoint(trainer.checkpoint_path)
    assert saved["iteration"] == 2
    for name, param in trainer.model.named_parameters():
        np.testing.assert_array_equal(saved["model"][name], param.data)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL   # the handler is gone after run


# -- divergence ----------------------------------------------------------------------------
def test_a_loss_jumping_by_orders_of_magnitude_stops_the_run():
    watch = LossWatch()
    for t in range(6):
        watch.check({"loss_mask": 0.5}, t, "ck.npz")
    with pytest.raises(TrainingDiverged, match=r"loss_mask jumped to 800 at iteration 6.*lower --lr"):
        watch.check({"loss_mask": 800.0}, 6, "ck.npz")
    with pytest.raises(NonFiniteLossError, match=r"loss_box_reg is inf at iteration 7.*--clip-grad-norm"):
        watch.check({"loss_box_reg": float("inf")}, 7, "ck.npz")


def test_weights_past_the_bound_stop_the_run(tmp_path):
    trainer = Trainer(_config(), str(tmp_path), progress=False)
    trainer.model.parameters()[0].data[0] = 1e6
    with pytest.raises(TrainingDiverged, match=r"parameter \S+ reached \|w\| = 1e\+06 after iteration 0.*lower --lr"):
        trainer.train_step()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the message replaces numpy's warnings
def test_evaluation_meeting_non_finite_outputs_says_the_model_diverged(tmp_path):
    from minimrcnn.train.evaluate import predict_dataset

    trainer = Trainer(_config(), str(tmp_path), progress=False)
    for p in trainer.model.roi_heads.parameters():
        p.data[...] = np.inf
    with pytest.raises(TrainingDiverged, match="evaluation met non-finite .* diverged. Try a lower --lr"):
        predict_dataset(trainer.model, Subset(trainer.val_dataset, 1))


def test_box_batch_size_per_image_reaches_the_samplers_and_caps_the_mask_heads_positives(tmp_path):
    trainer = Trainer(_config(box_batch_size_per_image=16), str(tmp_path), progress=False)
    sampler = trainer.model.roi_heads.fg_bg_sampler
    assert (sampler.batch_size_per_image, sampler.positive_fraction) == (16, 0.25)
    # the RPN's sampler is not this setting
    assert trainer.model.rpn.fg_bg_sampler.batch_size_per_image == 256


def test_a_checkpoint_config_without_a_later_field_gets_the_value_it_trained_with():
    from minimrcnn.train.config import LEGACY_VALUES, TrainConfig

    old = TrainConfig().to_dict()
    del old["box_batch_size_per_image"]          # written before the field existed: it trained with 128
    assert TrainConfig.from_dict(old).box_batch_size_per_image == LEGACY_VALUES["box_batch_size_per_image"] == 128
    assert TrainConfig.from_dict({**old, "box_batch_size_per_image": 32}).box_batch_size_per_image == 32
