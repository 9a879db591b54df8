"""Timing the cases of the registry, and the machine they ran on."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from .. import _core
from .registry import IMPLS, KERNELS, LARGE, Case, Kernel

#: a row whose runs of one implementation differ by more than this factor (slowest over
#: fastest) is marked noisy: something else took the cores or the memory bus meanwhile
NOISY = 1.25
#: a roofline fraction above this is noise (gradfast cannot beat the probe moving the same bytes)
ROOFLINE_NOISE = 1.05


def timed_runs(fn: Callable[[], object], repeat: int, calls: int = 1, setup=None) -> list[float]:
    """Seconds per call of each of ``repeat`` timed runs of ``calls`` calls, after one warm-up
    run; ``setup()`` (untimed) before every run."""
    runs = []
    for run in range(repeat + 1):
        if setup is not None:
            setup()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if run:
            runs.append(elapsed / calls)
    return runs


def _time(kernel: Kernel, case: Case, impl: str, repeat: int) -> list[float] | None:
    # The arrays die on return: one impl's memory is never held alongside the next one's.
    prepared = kernel.prepare(case, impl)
    if prepared is None:
        return None
    call, setup = prepared
    return timed_runs(call, repeat, case.calls, setup)


def _probe(case: Case, passes: list[tuple[int, int]]) -> Callable[[], None]:
    """The bandwidth probe moving, pass after pass, the bytes of ``passes``."""
    n = case.elements * np.dtype(case.dtype).itemsize // 4
    arrays = [[np.ones(n, np.float32) for _ in range(w + r)] for w, r in passes]

    def run() -> None:
        for (w, _), a in zip(passes, arrays):
            _core.bandwidth_probe(a[:w], a[w:])

    return run


def spread(runs: list[float]) -> float:
    """The slowest run over the fastest: 1.0 when the runs agree."""
    return max(runs) / min(runs)


def measure(name: str, case: Case, repeat: int) -> dict:
    """One row of the report: every impl, and the roofline for large cases, timed now.

    Times (``*_s``) and ratios use each impl's fastest run; ``*_runs`` keep every run, and
    ``spread`` is the largest slowest-over-fastest of the row's implementations.
    """
    kernel = KERNELS[name]
    timed = {impl: _time(kernel, case, impl, repeat) for impl in IMPLS}
    runs = {impl: r for impl, r in timed.items() if r is not None}
    if "numpy" not in runs or "gradfast" not in runs:
        raise ValueError(f"bench: kernel {name!r} must have a numpy and a gradfast implementation")
    if case.elements >= LARGE and kernel.traffic is not None:
        runs["roofline"] = timed_runs(_probe(case, kernel.traffic(case)), repeat)
    best = {impl: min(r) for impl, r in runs.items()}
    numpy_s, gradfast_s = best["numpy"], best["gradfast"]
    torch_s, roofline_s = best.get("torch"), best.get("roofline")
    fraction = None if roofline_s is None else roofline_s / gradfast_s
    worst = max(map(spread, runs.values()))
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
        "torch_s": torch_s,
        "speedup": numpy_s / gradfast_s,
        "speedup_vs_torch": None if torch_s is None else torch_s / gradfast_s,
        "roofline_s": roofline_s,
        "roofline_fraction": fraction,
        "roofline_noise": fraction is not None and fraction > ROOFLINE_NOISE,
        "runs": runs,
        "spread": worst,
        "noisy": worst > NOISY,
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

    ``repeat`` defaults to 5 runs per timing, 2 with ``quick`` (small cases); the report says
    which factors mark a row noisy.
    """
    if repeat is None:
        repeat = 2 if quick else 5
    jobs = [(name, case) for name in names for case in getattr(KERNELS[name], "quick" if quick else "cases")]
    rows = []
    for i, (name, case) in enumerate(jobs, 1):
        if progress is not None:
            progress(f"[{i}/{len(jobs)}] {name} {case.dtype} {case.label} ...")
        rows.append(measure(name, case, repeat))
    return {
        "machine": machine_info(),
        "repeat": repeat,
        "quick": quick,
        "noisy_factor": NOISY,
        "roofline_noise_above": ROOFLINE_NOISE,
        "rows": rows,
    }
