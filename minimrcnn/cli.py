"""The ``minimrcnn`` command line: ``minimrcnn --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import os
import sys

import minimrcnn


def cmd_info(args) -> int:
    """Print versions, Numba's threading set-up, the JIT switch and the cache location."""
    import numba
    import numpy as np

    from minimrcnn import config

    try:
        numba.njit(lambda: 0)()  # initialise the threading layer so it can be reported
        threading_layer = numba.threading_layer()
    except Exception as exc:  # pragma: no cover - depends on the install
        threading_layer = f"unavailable ({exc})"
    cache_dir = os.environ.get("NUMBA_CACHE_DIR") or "beside each module, in __pycache__ (NUMBA_CACHE_DIR unset)"
    print(f"minimrcnn {minimrcnn.__version__}")
    print(f"python {sys.version.split()[0]}")
    print(f"numpy {np.__version__}")
    print(f"numba {numba.__version__}")
    print(f"numba threading layer: {threading_layer}, threads: {numba.get_num_threads()}")
    print(f"numba JIT disabled (NUMBA_DISABLE_JIT): {config.jit_disabled()}")
    print(f"kernels: {'reference twins' if config.reference_kernels_enabled() else 'numba'} (MINIMRCNN_KERNELS)")
    print(f"numba cache: {cache_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minimrcnn",
        description="Mask R-CNN from scratch in NumPy + Numba: train, evaluate and predict on a CPU.",
    )
    parser.add_argument("--version", action="version", version=f"minimrcnn {minimrcnn.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="versions, Numba threading and cache set-up")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
