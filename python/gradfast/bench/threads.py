"""``gradfast bench --thread-sweep``: the default thread count against one thread over sizes, in
one process. It checks that threads are used only where they pay: below the pool's traffic
threshold both run the same code, so their ratio is the machine's noise."""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import _core, clip, optim
from .timing import machine_info, timed_runs

SIZES = (4096, 16384, 65536, 131072, 262144, 400_000, 524288, 700_000, 1_000_000)
QUICK_SIZES = (4096, 65536)


def _calls(size: int) -> dict:
    p, g = {"w": np.ones(size, np.float32)}, {"w": np.ones(size, np.float32)}
    small = {"w": np.full(size, 1e-3, np.float32)}  # never clipped: the norm pass alone
    return {
        "adam": partial(optim.Adam().update, p, g),
        "nesterov": partial(optim.MomentumOptimizer(nesterov=True).update, p, g),
        "clip": partial(clip.clip_grad_norm, small, 1e9),
    }


def sweep(*, quick: bool = False, repeat: int | None = None) -> dict:
    """Seconds per call of each kernel at each size on one thread and on the default count
    (best of ``repeat`` runs, 9 by default, 2 with ``quick``); the thread count is restored."""
    if repeat is None:
        repeat = 2 if quick else 9
    default = _core.get_num_threads()
    rows = []
    try:
        for size in QUICK_SIZES if quick else SIZES:
            calls = max(3, 2_000_000 // size)
            for name, fn in _calls(size).items():
                times = {}
                for threads in (1, default):
                    _core.set_num_threads(threads)
                    times[threads] = min(timed_runs(fn, repeat, calls))
                rows.append(
                    {"kernel": name, "size": size, "one_s": times[1], "default_s": times[default],
                     "ratio": times[default] / times[1]}
                )  # fmt: skip
    finally:
        _core.set_num_threads(default)
    return {"machine": machine_info(), "threads": default, "repeat": repeat, "quick": quick, "rows": rows}


def format_report(report: dict) -> str:
    """One line per size: each kernel on one thread, on the default count, and their ratio."""
    m, n = report["machine"], report["threads"]
    lines = [
        f"gradfast {m['gradfast']} thread sweep on {m['cpu']}: 1 thread against {n}, best of {report['repeat']} runs",
        f"ratio = time on {n} threads / time on 1 thread (above 1: the threads cost more than they save)",
    ]
    for size in dict.fromkeys(r["size"] for r in report["rows"]):
        cells = [
            f"{r['kernel']} {r['one_s'] * 1e6:8.1f} us {r['default_s'] * 1e6:8.1f} us x{r['ratio']:4.2f}"
            for r in report["rows"]
            if r["size"] == size
        ]
        lines.append(f"{size:>9,}  " + "   ".join(cells))
    lines.append(f"worst ratio: {max(r['ratio'] for r in report['rows']):.2f}")
    return "\n".join(lines) + "\n"
