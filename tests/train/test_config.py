"""TrainConfig is the one source of truth: `minimrcnn train --help` is built from it, every field
declares whether a resume may change it, and the preset samples the recipe's number of RoIs."""

import argparse
import dataclasses

import pytest

from minimrcnn.cli import RUN_FLAGS, build_parser
from minimrcnn.models import maskrcnn_shapes
from minimrcnn.train.config import (EVALUATIONS_ALONG_THE_WAY, MIN_EVAL_INTERVAL, QUICK, RUN_FIELDS, TRAINING_FIELDS,
                                    TrainConfig, training_differences)
from minimrcnn.train.trainer import Trainer


def train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_every_field_is_a_training_field_or_a_run_field():
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    assert not set(TRAINING_FIELDS) & set(RUN_FIELDS)
    assert sorted(TRAINING_FIELDS + RUN_FIELDS) == sorted(fields), \
        "a new TrainConfig field must go into TRAINING_FIELDS or RUN_FIELDS (config.py)"


def test_box_batch_size_per_image_is_a_training_field_and_a_resume_cannot_change_it(tmp_path):
    assert "box_batch_size_per_image" in TRAINING_FIELDS
    base = dict(iters=3, batch_size=1, image_size=64, num_val_images=1)
    Trainer(TrainConfig(**base, box_batch_size_per_image=16), str(tmp_path), progress=False).save()
    other = Trainer(TrainConfig(**base, box_batch_size_per_image=32), str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="box_batch_size_per_image: checkpoint 16 vs now 32"):
        other.resume()


@pytest.mark.parametrize("name", RUN_FIELDS)
def test_a_run_field_may_change_on_resume(name):
    saved = TrainConfig()
    value = {"val_coco": "elsewhere", "eval_every": 7}.get(name)
    if value is None:
        value = getattr(saved, name) + 1
    assert training_differences(saved, dataclasses.replace(saved, **{name: value})) == ""


@pytest.mark.parametrize("name", [n for n in TRAINING_FIELDS if n not in ("absolute_milestones",)])
def test_a_training_field_may_not(name):
    saved = TrainConfig()
    changed = {"preset": "other", "milestones": (0.5,), "coco": "folder"}.get(name)
    if changed is None:
        changed = getattr(saved, name) * 2 + 1
    assert training_differences(saved, dataclasses.replace(saved, **{name: changed})).startswith(f"{name}: ")


def test_help_and_trainconfig_cannot_disagree():
    """Every field with a flag: same name, its one line of help, its default; the flags besides are listed."""
    parser = train_parser()
    actions = {a.dest: a for a in parser._actions}
    fields = [f for f in dataclasses.fields(TrainConfig) if f.metadata["flag"]]
    for f in fields:
        action = actions.pop(f.name)
        assert action.option_strings == ["--" + f.name.replace("_", "-")]
        assert action.default is None, f"{f.name}: the default must come from TrainConfig, not argparse"
        assert action.help.startswith(f.metadata["help"]), f.name
        if f.default is None:
            assert f"(default: {f.metadata['unset']})" in action.help, f.name
        elif isinstance(f.default, tuple):
            assert f"(default: {' '.join(map(str, f.default))})" in action.help, f.name
        else:
            assert f"(default: {f.default})" in action.help, f.name
    others = {a.option_strings[0] for a in actions.values() if a.option_strings and a.dest != "help"}
    assert others == set(RUN_FLAGS)
    assert not [f.name for f in dataclasses.fields(TrainConfig) if not f.metadata["flag"]
                if f.name != "absolute_milestones"], "only the derived absolute_milestones has no flag"


def test_help_reads_the_quick_run_and_the_evaluation_rule_from_the_config():
    help_text = " ".join(train_parser().format_help().split())
    for name, value in QUICK.items():
        assert f"--{name.replace('_', '-')} {value}" in help_text
    assert f"{EVALUATIONS_ALONG_THE_WAY} evaluations along the way, every iters // {EVALUATIONS_ALONG_THE_WAY + 1}" \
        in help_text and f"under {MIN_EVAL_INTERVAL} iterations" in help_text
    assert "300" not in help_text.replace(f"--iters {QUICK['iters']}", "")   # stated once, from QUICK


def test_flags_parse_into_the_config_and_check_its_ranges(capsys):
    args = build_parser().parse_args(["train", "--milestones", "0.5", "0.8", "--flip-prob", "0", "--iters", "40"])
    assert args.milestones == [0.5, 0.8] and args.flip_prob == 0.0 and args.iters == 40
    for argv, message in ((["--flip-prob", "2"], "expected a probability in [0, 1], got 2.0"),
                          (["--momentum", "1"], "expected a number in [0, 1), got 1.0"),
                          (["--warmup-iters", "-1"], "expected an integer >= 0, got -1")):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["train", *argv])
        assert message in capsys.readouterr().err


def test_eval_interval_rule():
    assert TrainConfig(iters=2200).eval_interval() == 550
    assert TrainConfig(iters=300).eval_interval() == 75
    assert TrainConfig(iters=199).eval_interval() == 0            # 49 < 50
    assert TrainConfig(iters=2200, eval_every=0).eval_interval() == 0
    assert TrainConfig(iters=2200, eval_every=10).eval_interval() == 10


def test_one_default_for_the_number_of_sampled_rois():
    """The preset's default and the recipe's are one number (the lesson asset was trained with it)."""
    preset = maskrcnn_shapes().roi_heads.fg_bg_sampler.batch_size_per_image
    assert preset == TrainConfig().box_batch_size_per_image == 64


def test_a_checkpoint_from_before_the_field_resumes_with_what_it_trained_with():
    old = TrainConfig().to_dict()
    del old["box_batch_size_per_image"]
    assert TrainConfig.from_dict(old).box_batch_size_per_image == 128


def test_the_warmup_warning_only_when_a_milestone_falls_inside_the_warmup():
    from minimrcnn.optim import SGD, WarmupMultiStepLR
    from minimrcnn.train.report import warmup_warning

    def warning(config):
        scheduler = WarmupMultiStepLR(SGD([], lr=config.lr), config.milestone_iters(), config.gamma,
                                      config.warmup_iters, config.warmup_factor)
        return warmup_warning(config, scheduler)

    assert warning(TrainConfig()) is None and warning(TrainConfig(iters=300)) is None
    text = warning(TrainConfig(iters=40))
    assert text.startswith("warning: the learning-rate drops at iterations [30, 36] fall inside the "
                           "100-iteration warmup, so the lr never reaches 0.02 (it peaks at 0.0058)")
    assert "\n" not in text and "x0.1 at iterations [30, 36]" in text
