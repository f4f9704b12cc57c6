"""Project conventions, checked by scanning the op modules (see docs/architecture.md):

* every public ``<op>_forward`` has an ``<op>_backward`` and a plain ``<op>`` beside it;
* a module with Numba kernels ``_<name>_kernel`` has readable ``*_reference`` twins
  (by convention ``<name>_reference``; one twin may witness several kernels).

Modules are discovered from the packages, so ops that are not written yet are simply
not scanned.
"""

import importlib
import pkgutil
import re

import pytest

PACKAGES = ["minimrcnn.nn.functional", "minimrcnn.ops"]
FORWARD = re.compile(r"^([a-z][a-z0-9_]*)_forward$")
KERNEL = re.compile(r"^_([a-z][a-z0-9_]*)_kernel$")


def _module_names():
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names += [f"{package_name}.{info.name}" for info in pkgutil.iter_modules(package.__path__)
                  if not info.name.startswith("_")]
    return names


MODULES = _module_names()


def _callables(module):
    """Functions (and Numba dispatchers) defined in the module itself, not imported into it."""
    return {name: obj for name, obj in vars(module).items()
            if callable(obj) and getattr(obj, "__module__", None) == module.__name__}


@pytest.mark.parametrize("module_name", MODULES)
def test_every_forward_has_backward_and_plain_function(module_name):
    module = importlib.import_module(module_name)
    names = _callables(module)
    problems = []
    for name in names:
        match = FORWARD.match(name)
        if not match:
            continue
        op = match.group(1)
        for needed in (f"{op}_backward", op):
            if needed not in names:
                problems.append(f"{name} has no {needed}")
    assert not problems, f"{module_name}: " + "; ".join(problems)


@pytest.mark.parametrize("module_name", MODULES)
def test_every_kernel_module_has_reference_twins(module_name):
    """A module with Numba kernels also holds readable ``*_reference`` twins. One twin may
    witness several kernels (e.g. one twin for all interpolation modes), so this asks for
    twins in the module; the one-to-one naming is checked for the foundation ops below."""
    module = importlib.import_module(module_name)
    names = _callables(module)
    kernels = [name for name in names if KERNEL.match(name)]
    references = [name for name in names if name.endswith("_reference") and not name.startswith("_")]
    if kernels:
        assert references, f"{module_name} has kernels {kernels} but no public *_reference twin"


def test_norm_kernels_pair_with_twins_by_name():
    module = importlib.import_module("minimrcnn.nn.functional.norm")
    kernels = [name for name in _callables(module) if KERNEL.match(name)]
    assert kernels
    for name in kernels:
        assert hasattr(module, KERNEL.match(name).group(1) + "_reference"), name


def test_scan_found_the_foundation_modules():
    # Guards against the scan silently finding nothing.
    for name in ("activation", "norm", "loss", "tensor"):
        assert f"minimrcnn.nn.functional.{name}" in MODULES


# Layers import one way at run time too: nn below ops below models below train/cli.
_LOADED = "import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('minimrcnn.')))"


@pytest.mark.parametrize("module, forbidden", [
    ("minimrcnn", ("ops", "models", "train", "eval", "data", "cli", "nn")),
    ("minimrcnn.nn.functional", ("ops", "models", "train", "eval", "data", "cli")),
    ("minimrcnn.ops", ("models", "train", "eval", "data", "cli")),
])
def test_importing_a_layer_loads_nothing_above_it(module, forbidden):
    import subprocess
    import sys
    loaded = subprocess.run([sys.executable, "-c", _LOADED.format(module=module)], capture_output=True,
                            text=True, check=True).stdout.split()
    above = [m for m in loaded if m.split(".")[1] in forbidden]
    assert not above, f"import {module} loaded {above}"


def test_top_level_weights_functions_load_lazily():
    import minimrcnn
    from minimrcnn.models.weights import load_weights, save_weights
    assert minimrcnn.load_weights is load_weights and minimrcnn.save_weights is save_weights
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        minimrcnn.nope  # noqa: B018
