"""Same seed, same training: three steps against a recorded run, and two runs against each other.

Two different guards, kept apart on purpose:

* **Refactor safety** (``test_three_steps_match_the_recorded_run``): the losses of three
  training steps, every weight's norm and every weight's *update* norm (``||w_3 - w_0||``)
  are compared with ``tests/train/same_seed_golden.json`` to a tolerance. A float32 sum's last
  bit depends on the BLAS kernel the CPU picks, so a recorded value can only be matched to
  within float32 reordering (about 1e-7 relative per step, well under the 1e-5 allowed here).
  A wrong gradient, a changed default or a new data order moves these by far more. The update
  norms matter: after three small warm-up steps the weights themselves barely move, but a
  broken gradient changes how far they move.
* **Determinism** (``test_the_same_seed_gives_the_same_bits``): two runs in this process,
  compared with each other bit for bit. That holds on any machine, since both runs use the
  same BLAS kernels.

A change that is *meant* to alter the arithmetic beyond the tolerance (another data order, a
new default) re-records the JSON in its own commit, with ``python tests/train/test_same_seed_golden.py``,
and says why.
"""

import hashlib
import json
import pathlib

import numpy as np

from minimrcnn.train.config import TrainConfig
from minimrcnn.train.trainer import Trainer

RECORD = pathlib.Path(__file__).with_name("same_seed_golden.json")
LOSS_RTOL = 1e-5
UPDATE_RTOL = 1e-3          # an update is a difference of two float32 weights: fewer exact digits
WEIGHT_ATOL_FRACTION = 1e-6  # of the weight's norm: 16x the float32 rounding of its elements


def _three_steps(tmp_dir) -> tuple[list[dict], dict, dict]:
    """(losses per step, initial state_dict in float64, final state_dict) of the recorded configuration."""
    # box_batch_size_per_image: the value of the recording (the default was 128 then)
    config = TrainConfig(iters=3, batch_size=2, warmup_iters=2, log_every=1, checkpoint_every=100,
                         box_batch_size_per_image=128)
    trainer = Trainer(config, str(tmp_dir), progress=False)
    initial = {k: np.array(v, dtype=np.float64) for k, v in trainer.model.state_dict().items()}
    losses = [{k: float(v) for k, v in trainer.train_step().items()} for _ in range(3)]
    return losses, initial, trainer.model.state_dict()


def _norms(initial: dict, final: dict) -> tuple[dict, dict]:
    """({key: ||w_final||}, {key: ||w_final - w_initial||}) in float64."""
    weights = {k: float(np.linalg.norm(np.asarray(final[k], np.float64))) for k in sorted(final)}
    updates = {k: float(np.linalg.norm(np.asarray(final[k], np.float64) - initial[k])) for k in sorted(final)}
    return weights, updates


def test_three_steps_match_the_recorded_run(tmp_path):
    record = json.loads(RECORD.read_text())
    losses, initial, final = _three_steps(tmp_path)
    for step, (got, recorded) in enumerate(zip(losses, record["losses"])):
        assert got.keys() == recorded.keys(), f"iteration {step}: loss names {sorted(got)}"
        for name in recorded:
            assert np.isclose(got[name], recorded[name], rtol=LOSS_RTOL, atol=0), (
                f"iteration {step}: {name} is {got[name]!r}, the recorded run had {recorded[name]!r} "
                f"(relative difference {abs(got[name] / recorded[name] - 1):.1e} > {LOSS_RTOL})")
    weights, updates = _norms(initial, final)
    assert weights.keys() == record["weight_norms"].keys(), "the state_dict keys changed"
    for key in weights:
        atol = WEIGHT_ATOL_FRACTION * record["weight_norms"][key]
        assert np.isclose(weights[key], record["weight_norms"][key], rtol=LOSS_RTOL, atol=atol), (
            f"{key}: ||w|| is {weights[key]!r} after three steps, the recorded run had {record['weight_norms'][key]!r}")
        assert np.isclose(updates[key], record["update_norms"][key], rtol=UPDATE_RTOL, atol=atol), (
            f"{key}: three steps moved it by {updates[key]!r} (L2), the recorded run by {record['update_norms'][key]!r}")


def _weights_sha256(state: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(state[key]).tobytes())
    return digest.hexdigest()


def test_the_same_seed_gives_the_same_bits(tmp_path):
    losses_a, _, final_a = _three_steps(tmp_path / "a")
    losses_b, _, final_b = _three_steps(tmp_path / "b")
    for step, (a, b) in enumerate(zip(losses_a, losses_b)):
        assert {k: v.hex() for k, v in a.items()} == {k: v.hex() for k, v in b.items()}, f"iteration {step}"
    assert _weights_sha256(final_a) == _weights_sha256(final_b)


if __name__ == "__main__":  # re-record (see the module docstring for when that is right)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        recorded_losses, initial_state, final_state = _three_steps(folder)
    weight_norms, update_norms = _norms(initial_state, final_state)
    RECORD.write_text(json.dumps({"losses": recorded_losses, "weight_norms": weight_norms,
                                  "update_norms": update_norms}, indent=1) + "\n")
    print(f"wrote {RECORD}")
