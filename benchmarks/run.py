"""Run the minimrcnn benchmarks and print one table.

    python benchmarks/run.py            # every suite
    python benchmarks/run.py nn ops     # only some suites
    python benchmarks/run.py --quick    # a fast smoke run (fewer repeats)
    python benchmarks/run.py --markdown # the table as Markdown, for docs/benchmarks.md
    python benchmarks/run.py trained --weights PATH   # trained-weights rows from PATH

Each suite is a module ``benchmarks/bench_<name>.py`` with ``run(ctx) -> list[Row]``.
Ratios are measured in this same process: "x matmul" is the row's GFLOP/s over NumPy's
float32 matmul GFLOP/s; "vs ref" is the reference time over ours (> 1: we are faster).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# torch's OpenMP threads spin-wait after each torch op and would take the cores from the
# minimrcnn code timed right after them in this same process (measured: our conv2d
# fwd+bwd 26 ms beside spinning torch threads, 14 ms with passive waiting). Passive
# waiting makes the in-process comparison fair to both sides.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from common import Context, numpy_matmul_gflops, try_import_torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# Suites in pipeline order; any other bench_*.py found is appended.
ORDER = ["nn_conv", "nn_norm", "ops_boxes", "ops_roi", "model", "trained", "train"]


def discover_suites() -> list[str]:
    found = sorted(f[len("bench_"):-3] for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))
    return [s for s in ORDER if s in found] + [s for s in found if s not in ORDER]


def machine_line() -> str:
    import numba
    import numpy as np
    return (f"{datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}, "
            f"Numba threads {numba.get_num_threads()}")


def format_table(rows, ctx, markdown: bool) -> str:
    header = ["op", "shape", "median ms", "GFLOP/s", "x matmul", "reference", "ref ms", "vs ref", "note"]
    lines = []
    for r in rows:
        lines.append([
            r.op, r.shape, f"{r.ms:.3f}",
            "" if r.gflops is None else f"{r.gflops:.1f}",
            "" if r.gflops is None else f"{r.gflops / ctx.matmul_gflops:.2f}",
            r.ref_name, "" if r.ref_ms is None else f"{r.ref_ms:.3f}",
            "" if r.ratio is None else f"{r.ratio:.2f}x", r.note,
        ])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*line) for line in lines])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suites", nargs="*", help="suites to run (default: every benchmarks/bench_*.py)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--no-torch", action="store_true", help="skip torch references even if installed")
    parser.add_argument("--weights", default=None,
                        help="trained shapes model.npz for the 'trained' suite (default lessons/assets/shapes_model.npz)")
    args = parser.parse_args(argv)
    # The allocator setting the minimrcnn command runs with (freed large blocks are reused
    # instead of returned and page-faulted back); it is process-wide, so torch gets it too.
    from minimrcnn import runtime
    kept = runtime.keep_freed_memory()
    torch, torchvision = (None, None) if args.no_torch else try_import_torch()
    ctx = Context(matmul_gflops=numpy_matmul_gflops(), torch=torch, torchvision=torchvision, quick=args.quick,
                  weights=args.weights)
    print(f"# {machine_line()}; glibc malloc: {'keep_freed_memory() as the minimrcnn command' if kept else 'defaults'}")
    print(f"# NumPy float32 matmul 1024^3: {ctx.matmul_gflops:.1f} GFLOP/s; "
          f"torch: {'%s / torchvision %s' % (torch.__version__, torchvision.__version__) if torch else 'not installed'}")
    rows = []
    for name in args.suites or discover_suites():
        try:
            module = importlib.import_module(f"bench_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench_{name}":
                print(f"# suite {name!r}: not present, skipped")
                continue
            raise
        rows.extend(module.run(ctx))
    print(format_table(rows, ctx, args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
