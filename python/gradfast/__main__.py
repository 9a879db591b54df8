"""The ``gradfast`` command (also ``python -m gradfast``): one subcommand per job."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

import gradfast

from . import bench, demo, set_num_threads


class _Version(argparse.Action):
    """``--version``: the package metadata is read only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(f"gradfast {gradfast.__version__}\n")
        parser.exit()


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return int(text)


def _kernel_list(text: str) -> list[str]:
    names = list(dict.fromkeys(n.strip() for n in text.split(",")))
    for name in names:
        if name not in bench.KERNELS:
            choices = ", ".join(bench.KERNELS)
            raise argparse.ArgumentTypeError(f"unknown kernel {name!r}; choose from {choices}")
    return names


def _kernel_help() -> str:
    """One kernel a line: its name, then its description in a column of its own (wrapped)."""
    width = max(map(len, bench.KERNELS)) + 4
    indent = " " * width
    return "\n".join(
        textwrap.fill(
            k.title, 100, initial_indent=f"  {name}".ljust(width), subsequent_indent=indent, break_on_hyphens=False
        )
        for name, k in bench.KERNELS.items()
    )


def _add_bench(subparsers) -> None:
    kernels = _kernel_help()
    p = subparsers.add_parser(
        "bench",
        help="time gradfast against well-written NumPy, and against memory bandwidth",
        description="Time each kernel in NumPy (in place, preallocated scratch) and in gradfast in the\n"
        "same run; for large arrays also the fraction of a same-traffic memory roofline.",
        epilog=f"kernels:\n{kernels}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--kernels",
        type=_kernel_list,
        default=list(bench.KERNELS),
        metavar="NAME,...",
        help=f"comma-separated kernels to run (default: all): {','.join(bench.KERNELS)}",
    )
    p.add_argument("--quick", action="store_true", help="small sizes and 2 runs: a smoke test for CI")
    p.add_argument(
        "--repeat",
        type=_positive_int,
        metavar="N",
        help="timed runs per measurement, best kept (default 5, 2 with --quick)",
    )
    p.add_argument("--threads", type=_positive_int, metavar="N", help="gradfast threads (gf.set_num_threads)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p.add_argument(
        "--mpi",
        action="store_true",
        help="under mpiexec -n N: time allreduce_gradients against one raw MPI Allreduce of the same bytes",
    )
    p.add_argument(
        "--thread-sweep",
        action="store_true",
        help="time Adam, Nesterov and clip_grad_norm on one thread and on the default count, over sizes",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="time Adam (float32 and bfloat16 state) at 1e6 to 1e9 parameters (1e9 when memory allows)",
    )
    p.set_defaults(run=_bench)


def _bench(args) -> int:
    if args.threads is not None:
        set_num_threads(args.threads)
    if args.mpi:
        from .bench import mpi

        try:
            mpi.distributed._base.mpi()
        except ImportError:
            sys.stderr.write('gradfast bench --mpi needs mpi4py and an MPI library: pip install "gradfast[mpi]"\n')
            return 2
        report = mpi.run(quick=args.quick, repeat=args.repeat)
        if mpi.distributed.rank() == 0:
            sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else mpi.format_report(report))
        return 0

    if args.thread_sweep:
        from .bench import threads

        report = threads.sweep(quick=args.quick, repeat=args.repeat)
        sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else threads.format_report(report))
        return 0

    if args.scale:
        from .bench import scale

        report = scale.sweep(quick=args.quick, repeat=args.repeat)
        sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else scale.format_report(report))
        return 0

    def progress(message: str) -> None:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    report = bench.run(args.kernels, quick=args.quick, repeat=args.repeat, progress=progress)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else bench.format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gradfast",
        description="Rust-accelerated, in-place NumPy kernels for training neural-network weights.",
    )
    parser.add_argument("--version", action=_Version, help="print gradfast's version and exit")
    subparsers = parser.add_subparsers(title="commands", dest="command", required=True)
    _add_bench(subparsers)
    demo.add_parser(subparsers)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
