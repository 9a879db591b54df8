"""Timing the cases of the registry, and the machine they ran on."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from .. import _core
from .registry import IMPLS, KERNELS, LARGE, Case, Kernel


def best_of(fn: Callable[[], object], repeat: int, calls: int = 1, setup=None) -> float:
    """Seconds per call: one warm-up run, then the best of ``repeat`` timed runs of ``calls`` calls."""
    best = math.inf
    for run in range(repeat + 1):
        if setup is not None:
            setup()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if run:
            best = min(best, elapsed)
    return best / calls


def _time(kernel: Kernel, case: Case, impl: str, repeat: int) -> float | None:
    # The arrays die on return: one impl's memory is never held alongside the next one's.
    prepared = kernel.prepare(case, impl)
    if prepared is None:
        return None
    call, setup = prepared
    return best_of(call, repeat, case.calls, setup)


def _probe(case: Case, passes: list[tuple[int, int]]) -> Callable[[], None]:
    """The bandwidth probe moving, pass after pass, the bytes of ``passes``."""
    n = case.elements * np.dtype(case.dtype).itemsize // 4
    arrays = [[np.ones(n, np.float32) for _ in range(w + r)] for w, r in passes]

    def run() -> None:
        for (w, _), a in zip(passes, arrays):
            _core.bandwidth_probe(a[:w], a[w:])

    return run


def measure(name: str, case: Case, repeat: int) -> dict:
    """One row of the report: every impl, and the roofline for large cases, timed now."""
    kernel = KERNELS[name]
    times = {impl: _time(kernel, case, impl, repeat) for impl in IMPLS}
    numpy_s, gradfast_s = times["numpy"], times["gradfast"]
    if numpy_s is None or gradfast_s is None:
        raise ValueError(f"bench: kernel {name!r} must have a numpy and a gradfast implementation")
    roofline_s = None
    if case.elements >= LARGE and kernel.traffic is not None:
        roofline_s = best_of(_probe(case, kernel.traffic(case)), repeat)
    return {
        "kernel": name,
        "dtype": case.dtype,
        "arrays": case.arrays,
        "size": case.size,
        "elements": case.elements,
        "calls": case.calls,
        "label": case.label,
        "numpy_s": numpy_s,
        "gradfast_s": gradfast_s,
        "torch_s": times["torch"],
        "speedup": numpy_s / gradfast_s,
        "speedup_vs_torch": None if times["torch"] is None else times["torch"] / gradfast_s,
        "roofline_s": roofline_s,
        "roofline_fraction": None if roofline_s is None else roofline_s / gradfast_s,
    }


def machine_info() -> dict:
    from .peers import torch_version

    try:
        gradfast_version = version("gradfast")
    except PackageNotFoundError:  # run from a source tree
        gradfast_version = "source"
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gradfast_threads": _core.get_num_threads(),
        "gradfast": gradfast_version,
        "numpy": np.__version__,
        "torch": torch_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(names, *, quick: bool = False, repeat: int | None = None, progress=None) -> dict:
    """Measure every case of the kernels ``names``; ``progress(message)`` is told of each case.

    ``repeat`` defaults to 5 runs per timing, 2 with ``quick`` (small cases).
    """
    if repeat is None:
        repeat = 2 if quick else 5
    jobs = [(name, case) for name in names for case in getattr(KERNELS[name], "quick" if quick else "cases")]
    rows = []
    for i, (name, case) in enumerate(jobs, 1):
        if progress is not None:
            progress(f"[{i}/{len(jobs)}] {name} {case.dtype} {case.label} ...")
        rows.append(measure(name, case, repeat))
    return {"machine": machine_info(), "repeat": repeat, "quick": quick, "rows": rows}
