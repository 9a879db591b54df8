"""The engine behind ``gradfast bench``: NumPy baselines, timing, roofline and the result tables.

Each case is timed twice in the same run: as a NumPy expert writes it (in place, ``out=``,
preallocated scratch, no temporaries) and in gradfast. Large cases are also timed
against ``_core.bandwidth_probe`` moving the same bytes as the fused kernel with no
arithmetic: the fraction ``roofline / gradfast`` says how close gradfast gets to memory speed.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version

import numpy as np

from . import _core, clip, optim

IMPLS = ("numpy", "gradfast")
#: cases with at least this many elements get a roofline
LARGE = 1_000_000


# -- the NumPy baselines ------------------------------------------------------------------


def _scratch(params):
    """One scratch buffer per distinct shape and dtype, shared by the arrays that have it
    (for many small arrays the shared buffer stays in cache)."""
    shared, out = {}, {}
    for key, p in params.items():
        kind = (p.shape, p.dtype)
        if kind not in shared:
            shared[kind] = np.empty_like(p)
        out[key] = shared[kind]
    return out


class NumpyAdam:
    """``gradfast.Adam`` (no weight decay) as a NumPy expert writes it: 12 in-place passes per step.

    The bias corrections are folded into two scalars (Kingma and Ba's "efficient version"):
    ``p -= lr*sqrt(bc2)/bc1 * m / (sqrt(v) + eps*sqrt(bc2))``, one pass fewer than
    PyTorch's ``sqrt(v)/sqrt(bc2) + eps``; same numbers up to rounding.
    """

    weight_decay = 0.0

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8) -> None:
        self.learning_rate, self.beta1, self.beta2, self.epsilon = learning_rate, beta1, beta2, epsilon
        self.step = 0
        self.state: dict = {}

    def update(self, params, gradients):
        if not self.state:
            bufs = _scratch(params)
            self.state = {k: (np.zeros_like(p), np.zeros_like(p), bufs[k]) for k, p in params.items()}
        self.step += 1
        lr, b1, b2 = self.learning_rate, self.beta1, self.beta2
        bc2_sqrt = math.sqrt(1.0 - b2**self.step)
        step_size = lr * bc2_sqrt / (1.0 - b1**self.step)
        eps = self.epsilon * bc2_sqrt
        decay = 1.0 - lr * self.weight_decay
        for key, p in params.items():
            g = gradients[key]
            m, v, buf = self.state[key]
            if self.weight_decay:
                p *= decay
            np.subtract(g, m, out=buf)  # m += (1 - b1) * (g - m)
            buf *= 1.0 - b1
            m += buf
            v *= b2  # v += (1 - b2) * g * g
            np.multiply(g, 1.0 - b2, out=buf)
            buf *= g
            v += buf
            np.sqrt(v, out=buf)  # p -= step_size * m / (sqrt(v) + eps)
            buf += eps
            np.divide(m, buf, out=buf)
            buf *= -step_size
            p += buf
        return params


class NumpyAdamW(NumpyAdam):
    """``gradfast.AdamW``: decoupled weight decay costs one more pass, ``p *= 1 - lr*wd``."""

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=0.01) -> None:
        super().__init__(learning_rate, beta1, beta2, epsilon)
        self.weight_decay = weight_decay


class NumpyMomentum:
    """``gradfast.MomentumOptimizer`` in place: 4 passes per step (classical), 6 (Nesterov)."""

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False) -> None:
        self.learning_rate, self.momentum, self.nesterov = learning_rate, momentum, nesterov
        self.state: dict = {}

    def update(self, params, gradients):
        if not self.state:
            bufs = _scratch(params)
            self.state = {k: (np.zeros_like(p), bufs[k]) for k, p in params.items()}
        lr, mu = self.learning_rate, self.momentum
        for key, p in params.items():
            v, buf = self.state[key]
            np.multiply(gradients[key], lr, out=buf)  # v = mu*v - lr*g
            v *= mu
            v -= buf
            if self.nesterov:  # p += mu*v - lr*g
                p -= buf
                np.multiply(v, mu, out=buf)
                p += buf
            else:
                p += v
        return params


#: elements per BLAS dot in the norm: a single float32 dot over millions of elements drifts
#: by ~1e-4 relative; chunk sums accumulated in float64 stay within ~1e-7
_NORM_CHUNK = 1 << 16


def numpy_clip_grad_norm(gradients, max_norm):
    """``gradfast.clip_grad_norm`` with the 2-norm: one read pass for the norm, then (only if
    it clips) one in-place pass to scale. Returns the norm before clipping."""
    sum_sq = 0.0
    for g in gradients.values():
        flat = g.reshape(-1)
        for i in range(0, flat.size, _NORM_CHUNK):
            chunk = flat[i : i + _NORM_CHUNK]
            sum_sq += float(np.dot(chunk, chunk))
    total = math.sqrt(sum_sq)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in gradients.values():
            g *= coef
    return total


# -- kernels and cases --------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """``arrays`` arrays of ``size`` elements; each timed run makes ``calls`` calls."""

    dtype: str
    arrays: int
    size: int
    calls: int = 1

    @property
    def elements(self) -> int:
        return self.arrays * self.size

    @property
    def label(self) -> str:
        return f"{self.size:,}" if self.arrays == 1 else f"{self.arrays} x {self.size:,}"


def _arrays(case: Case, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"w{i}": rng.standard_normal(case.size, dtype=case.dtype) for i in range(case.arrays)}


def _probe_arrays(count: int, size: int, dtype: str) -> list[np.ndarray]:
    """``count`` float32 arrays holding as many bytes as ``size`` elements of ``dtype``."""
    n = size * np.dtype(dtype).itemsize // 4
    return [np.ones(n, dtype=np.float32) for _ in range(count)]


@dataclass(frozen=True)
class OptimizerKernel:
    """``opt.update(params, grads)``; the roofline reads g and reads and writes p and every
    state slot once, with each role's arrays laid end to end."""

    title: str
    numpy: Callable
    gradfast: Callable
    cases: tuple[Case, ...]
    quick: tuple[Case, ...]
    kwargs: dict = field(default_factory=dict)

    def prepare(self, case: Case, impl: str):
        """The call to time, and the setup to run (untimed) before each timed run, if any."""
        params, grads = _arrays(case, seed=0), _arrays(case, seed=1)
        opt = (self.numpy if impl == "numpy" else self.gradfast)(**self.kwargs)
        return partial(opt.update, params, grads), None

    def probe(self, case: Case):
        roles = len(self.gradfast(**self.kwargs).slots) + 2  # p, the state slots, g
        arrays = _probe_arrays(roles, case.elements, case.dtype)
        return partial(_core.bandwidth_probe, arrays[1:], arrays[:1])


@dataclass(frozen=True)
class ClipKernel:
    """``clip_grad_norm(grads, max_norm)`` with a ``max_norm`` that clips normal grads."""

    title: str
    cases: tuple[Case, ...]
    quick: tuple[Case, ...]
    max_norm: float = 1.0

    def prepare(self, case: Case, impl: str):
        """After one call the norm is ``max_norm`` and the next call would skip its scale pass
        (gradfast does), so the grads are restored before every timed run."""
        grads = _arrays(case, seed=1)
        saved = [g.copy() for g in grads.values()]
        fn = numpy_clip_grad_norm if impl == "numpy" else clip.clip_grad_norm
        return partial(fn, grads, self.max_norm), partial(_restore, grads, saved)

    def probe(self, case: Case):
        arrays = _probe_arrays(case.arrays, case.size, case.dtype)

        def two_passes():
            _core.bandwidth_probe([], arrays)  # every array is read for the norm
            _core.bandwidth_probe(arrays, [])  # before any can be scaled

        return two_passes


def _restore(grads, saved) -> None:
    for g, s in zip(grads.values(), saved):
        np.copyto(g, s)


KERNELS = {
    "adam": OptimizerKernel(
        "Adam.update: p, m, v read and written, g read",
        NumpyAdam,
        optim.Adam,
        cases=(Case("float32", 1, 16_000_000), Case("float32", 400, 2_500), Case("float64", 1, 4_000_000)),
        quick=(Case("float32", 1, 1_000_000), Case("float32", 100, 2_500), Case("float64", 1, 1_000_000)),
    ),
    "adamw": OptimizerKernel(
        "AdamW.update (weight_decay=0.01): Adam's traffic",
        NumpyAdamW,
        optim.AdamW,
        cases=(Case("float32", 1, 16_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
    ),
    "latency": OptimizerKernel(
        "Adam.update on one 10-element array: the cost of a call",
        NumpyAdam,
        optim.Adam,
        cases=(Case("float32", 1, 10, calls=20_000),),
        quick=(Case("float32", 1, 10, calls=2_000),),
    ),
    "nesterov": OptimizerKernel(
        "MomentumOptimizer(nesterov=True).update: p, v read and written, g read",
        NumpyMomentum,
        optim.MomentumOptimizer,
        cases=(Case("float32", 1, 16_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
        kwargs={"nesterov": True},
    ),
    "momentum": OptimizerKernel(
        "MomentumOptimizer.update (classical): p, v read and written, g read",
        NumpyMomentum,
        optim.MomentumOptimizer,
        cases=(Case("float32", 1, 16_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
    ),
    "clip": ClipKernel(
        "clip_grad_norm(grads, max_norm=1.0): every array read for the norm, then scaled in place",
        cases=(Case("float32", 4, 4_000_000),),
        quick=(Case("float32", 4, 250_000),),
    ),
}


# -- timing ------------------------------------------------------------------------------


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


def _time(kernel, case: Case, impl: str, repeat: int) -> float:
    # The arrays die on return: one impl's memory is never held alongside the next one's.
    call, setup = kernel.prepare(case, impl)
    return best_of(call, repeat, case.calls, setup)


def measure(name: str, case: Case, repeat: int) -> dict:
    """One row of the report: both impls, and the roofline for large cases, timed now."""
    kernel = KERNELS[name]
    numpy_s, gradfast_s = (_time(kernel, case, impl, repeat) for impl in IMPLS)
    roofline_s = best_of(kernel.probe(case), repeat) if case.elements >= LARGE else None
    return {
        "kernel": name,
        "dtype": case.dtype,
        "arrays": case.arrays,
        "size": case.size,
        "elements": case.elements,
        "calls": case.calls,
        "numpy_s": numpy_s,
        "gradfast_s": gradfast_s,
        "speedup": numpy_s / gradfast_s,
        "roofline_s": roofline_s,
        "roofline_fraction": None if roofline_s is None else roofline_s / gradfast_s,
    }


def machine_info() -> dict:
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gradfast_threads": _core.get_num_threads(),
        "gradfast": version("gradfast"),
        "numpy": np.__version__,
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


# -- the tables --------------------------------------------------------------------------

_HEADER = ("size", "dtype", "numpy", "gradfast", "speedup", "roofline")
_UNITS = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6))


def _fmt_time(seconds: float) -> str:
    """Three significant digits in the largest unit that keeps the value >= 1."""
    unit, scale = next((u for u in _UNITS if seconds >= u[1]), _UNITS[-1])
    v = seconds / scale
    return f"{v:.{2 if v < 10 else 1 if v < 100 else 0}f} {unit}"


def _cells(row: dict) -> tuple[str, ...]:
    case = Case(row["dtype"], row["arrays"], row["size"])
    fraction = row["roofline_fraction"]
    return (
        case.label,
        row["dtype"],
        _fmt_time(row["numpy_s"]),
        _fmt_time(row["gradfast_s"]),
        f"{row['speedup']:.2f}x",
        "-" if fraction is None else f"{fraction:.0%}",
    )


def format_report(report: dict) -> str:
    """The human-readable report: a header, then one table per kernel."""
    m = report["machine"]
    lines = [
        f"gradfast {m['gradfast']} bench on {m['cpu']}: {m['cpu_count']} CPUs, "
        f"{m['gradfast_threads']} gradfast threads, numpy {m['numpy']}; best of {report['repeat']} runs",
        "speedup = numpy time / gradfast time; roofline = time of bandwidth_probe moving the same bytes",
        f"  / gradfast time (100% = memory speed), for cases of >= {LARGE:,} elements",
    ]
    rows = report["rows"]
    for name in dict.fromkeys(r["kernel"] for r in rows):
        table = [_HEADER] + [_cells(r) for r in rows if r["kernel"] == name]
        widths = [max(len(cells[i]) for cells in table) for i in range(len(_HEADER))]
        lines += ["", f"{name}: {KERNELS[name].title}"]
        for cells in table:
            left = [c.ljust(w) for c, w in zip(cells[:2], widths)]
            right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:])]
            lines.append("  " + "  ".join(left + right))
    return "\n".join(lines) + "\n"
