"""minimrcnn.runtime: the allocator setting of the minimrcnn command (process-wide, so tested in subprocesses)."""

import os
import platform
import subprocess
import sys

import pytest

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="keep_freed_memory acts on glibc's malloc only")

# Allocates, touches and frees a 64 MB array 20 times; prints the minor page faults it took.
_FAULTS = """
import resource, sys
import numpy as np
from minimrcnn import runtime
applied = runtime.keep_freed_memory() if sys.argv[1] == "keep" else False
assert runtime.freed_memory_kept() == applied     # what `minimrcnn info` reports
np.ones(16 << 20, np.float32)                    # first touch is paid either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    np.ones(16 << 20, np.float32)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode, env=None):
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout.split()
    return out[0] == "True", int(out[1])


@glibc_only
def test_keep_freed_memory_reuses_freed_blocks():
    applied_default, faults_default = _faults("default")
    applied, faults_kept = _faults("keep")
    assert not applied_default and applied
    # glibc's default maps each 64 MB block afresh (one fault per page or huge page); kept
    # memory is reused, so the 20 allocations fault (almost) never
    assert faults_default >= 20, faults_default
    assert faults_kept < faults_default / 4, (faults_kept, faults_default)


def test_keep_freed_memory_can_be_switched_off():
    applied, _ = _faults("keep", {"MINIMRCNN_KEEP_FREED_MEMORY": "0"})
    assert not applied


_LAYER = "import numba, minimrcnn.runtime; print(numba.config.THREADING_LAYER)"


def test_import_selects_workqueue_unless_the_environment_chooses():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    run = lambda e: subprocess.run([sys.executable, "-c", _LAYER], capture_output=True, text=True,  # noqa: E731
                                   check=True, env=e).stdout.strip()
    assert run(env) == "workqueue"
    assert run({**env, "NUMBA_THREADING_LAYER": "safe"}) == "safe"
