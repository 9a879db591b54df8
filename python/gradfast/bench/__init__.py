"""The engine behind ``gradfast bench``: a registry of kernels, timing, and the result tables.

Each case is timed in the same run as a NumPy expert writes it (the baseline), in gradfast,
and, when PyTorch is importable, in PyTorch's best CPU implementation of the same operation
(same thread count). Large cases are also timed against ``_core.bandwidth_probe`` moving the
same bytes as the fused kernel with no arithmetic: the fraction ``roofline / gradfast`` says
how close gradfast gets to memory speed. Every run is kept: a row whose runs disagree is
marked noisy, and a roofline fraction above 105% is reported as noise. A kernel joins with one ``register(Kernel(...))``
in ``cases.py``.
"""

from . import cases as _cases  # noqa: F401  (registers the kernels)
from . import threads
from .numpy import numpy_clip_grad_norm
from .registry import IMPLS, KERNELS, LARGE, Case, Kernel, register
from .report import format_report
from .timing import NOISY, ROOFLINE_NOISE, machine_info, measure, run, spread, timed_runs

__all__ = [
    "IMPLS",
    "KERNELS",
    "LARGE",
    "NOISY",
    "ROOFLINE_NOISE",
    "Case",
    "Kernel",
    "format_report",
    "machine_info",
    "measure",
    "numpy_clip_grad_norm",
    "register",
    "run",
    "spread",
    "threads",
    "timed_runs",
]
