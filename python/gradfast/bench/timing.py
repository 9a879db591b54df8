"""Timing the cases of the registry, and the machine they ran on."""

from __future__ import annotations

import glob
import os
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from .. import _core
from .registry import IMPLS, KERNELS, Case, Kernel

#: a row whose runs of one implementation differ by more than this factor (slowest over
#: fastest) is marked noisy: something else took the cores or the memory bus meanwhile
NOISY = 1.25
#: a roofline fraction above this is noise: the machine's load changed between the bandwidth
#: measure and the row (a kernel declaring the bytes it must move cannot move them faster)
ROOFLINE_NOISE = 1.05
#: the last-level cache assumed when the system does not say
DEFAULT_CACHE_BYTES = 32 << 20
#: seconds of rest before each implementation's runs: the idle threads of the one before
#: still spin for a while (OpenBLAS's for about 0.1 s after a call) and would take a core from
#: it (gradfast's BPTT measured up to 1.7x slower right after the NumPy reference's GEMMs)
SETTLE_S = 0.25


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


def _time(kernel: Kernel, case: Case, impl: str, repeat: int, settle: float) -> list[float] | None:
    # The arrays die on return: one impl's memory is never held alongside the next one's.
    prepared = kernel.prepare(case, impl)
    if prepared is None:
        return None
    call, setup = prepared
    time.sleep(settle)
    return timed_runs(call, repeat, case.calls, setup)


def cache_bytes() -> int:
    """The largest CPU cache the system reports (the last level), else ``DEFAULT_CACHE_BYTES``."""
    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * scale)
    return max(sizes, default=DEFAULT_CACHE_BYTES)


def memory_bandwidth(repeat: int, cache: int) -> dict:
    """The machine's memory bandwidth, measured now: the best of ``repeat`` copies and triads
    over three float64 arrays of 4x the cache each (at least 64 MiB), through gradfast's pool.
    Rates in bytes per second, write-allocate counted; ``limit`` is the faster of the two."""
    array_bytes = max(4 * cache, 64 << 20)
    copy, triad = _core._memory_bandwidth(array_bytes // 8, repeat)
    return {"copy": copy, "triad": triad, "limit": max(copy, triad), "array_bytes": array_bytes}


def traffic_bytes(case: Case, passes: list[tuple[int, int]]) -> tuple[int, int]:
    """The bytes one call moves through memory (a read-write array counts twice) and the
    largest pass's footprint (every array of it counted once)."""
    array = case.elements * np.dtype(case.dtype).itemsize
    moved = sum(2 * w + r for w, r in passes) * array
    footprint = max((w + r for w, r in passes), default=0) * array
    return moved, footprint


def spread(runs: list[float]) -> float:
    """The slowest run over the fastest: 1.0 when the runs agree."""
    return max(runs) / min(runs)


def measure(
    name: str,
    case: Case,
    repeat: int,
    bandwidth: float | None = None,
    cache: int | None = None,
    settle: float = SETTLE_S,
) -> dict:
    """One row of the report: every impl timed now, and the roofline of kernels that declare
    their traffic, against ``bandwidth`` (bytes per second, see ``memory_bandwidth``). Each
    impl's runs start after ``settle`` seconds of rest (see ``SETTLE_S``).

    Times (``*_s``) and ratios use each impl's fastest run; ``*_runs`` keep every run, and
    ``spread`` is the largest slowest-over-fastest of the row's implementations. The roofline
    (``roofline_s``: the declared bytes at ``bandwidth``; ``roofline_fraction``: that over
    gradfast's time) is left out of cases whose largest pass fits in ``cache`` bytes
    (``in_cache``): they run from the cache, not from memory.
    """
    kernel = KERNELS[name]
    repeat = min(repeat, kernel.most_runs or repeat)
    timed = {impl: _time(kernel, case, impl, repeat, settle) for impl in IMPLS}
    runs = {impl: r for impl, r in timed.items() if r is not None}
    if "numpy" not in runs or "gradfast" not in runs:
        raise ValueError(f"bench: kernel {name!r} must have a numpy and a gradfast implementation")
    best = {impl: min(r) for impl, r in runs.items()}
    numpy_s, gradfast_s = best["numpy"], best["gradfast"]
    torch_s = best.get("torch")
    moved, footprint = (None, None) if kernel.traffic is None else traffic_bytes(case, kernel.traffic(case))
    in_cache = footprint is not None and footprint <= (DEFAULT_CACHE_BYTES if cache is None else cache)
    roofline_s = None if moved is None or bandwidth is None or in_cache else moved / bandwidth
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
        "traffic_bytes": moved,
        "gradfast_bytes_per_s": None if moved is None else moved / gradfast_s,
        "in_cache": in_cache,
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

    ``repeat`` defaults to 5 runs per timing, 2 with ``quick`` (small cases, and no rest
    between implementations); the report says which factors mark a row noisy.
    """
    if repeat is None:
        repeat = 2 if quick else 5
    jobs = [(name, case) for name in names for case in getattr(KERNELS[name], "quick" if quick else "cases")]
    cache = cache_bytes()
    bandwidth = None
    if any(KERNELS[name].traffic is not None for name, _ in jobs):
        if progress is not None:
            progress("memory bandwidth (copy and triad) ...")
        bandwidth = memory_bandwidth(repeat, cache)
    rows = []
    for i, (name, case) in enumerate(jobs, 1):
        if progress is not None:
            progress(f"[{i}/{len(jobs)}] {name} {case.dtype} {case.label} ...")
        limit = None if bandwidth is None else bandwidth["limit"]
        rows.append(measure(name, case, repeat, limit, cache, settle=0.0 if quick else SETTLE_S))
    return {
        "machine": {**machine_info(), "cache_bytes": cache},
        "bandwidth": bandwidth,
        "repeat": repeat,
        "quick": quick,
        "noisy_factor": NOISY,
        "roofline_noise_above": ROOFLINE_NOISE,
        "rows": rows,
    }
