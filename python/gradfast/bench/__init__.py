"""The engine behind ``gradfast bench``: a registry of kernels, timing, and the result tables.

Each case is timed in the same run as a NumPy expert writes it (the baseline), in gradfast,
and, when PyTorch is importable, in PyTorch's best CPU implementation of the same operation
(same thread count). The machine's memory bandwidth is measured once per run (a copy and a
triad through gradfast's pool, ``memory_bandwidth``); every kernel that declares the bytes it
must move gets the fraction of that bandwidth it reached (its roofline), except cases that fit
in the cache. Every run is kept: a row whose runs disagree is marked noisy, and a roofline
fraction above 105% is reported as noise. A kernel joins with one ``register(Kernel(...))`` in
``cases.py``.
"""

from . import cases as _cases  # noqa: F401  (registers the kernels)
from . import scale, threads
from .numpy import numpy_clip_grad_norm
from .registry import IMPLS, KERNELS, Case, Kernel, register
from .report import format_report
from .timing import (
    NOISY,
    ROOFLINE_NOISE,
    cache_bytes,
    machine_info,
    measure,
    memory_bandwidth,
    run,
    spread,
    timed_runs,
    traffic_bytes,
)

__all__ = [
    "IMPLS",
    "KERNELS",
    "NOISY",
    "ROOFLINE_NOISE",
    "Case",
    "Kernel",
    "format_report",
    "cache_bytes",
    "machine_info",
    "measure",
    "memory_bandwidth",
    "numpy_clip_grad_norm",
    "register",
    "run",
    "scale",
    "spread",
    "threads",
    "timed_runs",
    "traffic_bytes",
]
