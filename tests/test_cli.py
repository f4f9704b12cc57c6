import subprocess
import sys

import pytest

import minimrcnn
from minimrcnn.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"minimrcnn {minimrcnn.__version__}"


def test_info_reports_setup(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for field in ("numpy", "numba", "threading layer", "JIT disabled", "numba cache"):
        assert field in out


@pytest.mark.parametrize("command", [[], ["train"], ["eval"], ["predict"], ["shapes", "export"], ["convert"], ["info"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    assert "usage: minimrcnn" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--iters", "0"], "expected a positive integer"),
    (["train", "--lr", "abc"], "expected a positive number"),
    (["eval"], "--weights"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["eval", "--weights", str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"minimrcnn eval: error: weights file not found: {tmp_path / 'missing.npz'}"
    assert main(["train", "--coco", str(tmp_path)]) == 2
    assert "not a COCO-format folder" in capsys.readouterr().err


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "minimrcnn.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "minimrcnn" in out.stdout
