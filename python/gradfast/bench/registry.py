"""The kernels ``gradfast bench`` knows: one ``Kernel`` entry each, registered by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

import numpy as np

#: the implementations timed side by side; ``torch`` only when PyTorch is importable
IMPLS = ("numpy", "gradfast", "torch")


@dataclass(frozen=True)
class Case:
    """``arrays`` arrays of ``size`` elements; each timed run makes ``calls`` calls."""

    dtype: str
    arrays: int
    size: int
    calls: int = 1
    #: the arrays' shapes when they differ (a model's layers); ``arrays`` and ``size`` then
    #: give their count and total
    shapes: tuple[tuple[int, ...], ...] | None = None
    #: how the table names the case instead of its size
    name: str | None = None

    @property
    def elements(self) -> int:
        return self.size if self.shapes else self.arrays * self.size

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.size:,}" if self.arrays == 1 else f"{self.arrays} x {self.size:,}"

    def arrays_of(self, seed: int) -> dict[str, np.ndarray]:
        """The case's arrays, random normal, named ``w0``, ``w1``, ..."""
        rng = np.random.default_rng(seed)
        shapes = self.shapes or [(self.size,)] * self.arrays
        return {f"w{i}": rng.standard_normal(s).astype(self.dtype) for i, s in enumerate(shapes)}


def layers(name: str, dtype: str, shapes: tuple[tuple[int, ...], ...], calls: int = 1) -> Case:
    """A case of differently shaped arrays (a model's parameters)."""
    return Case(dtype, len(shapes), sum(int(np.prod(s)) for s in shapes), calls, shapes, name)


#: ``prepare(case, impl)``: the call to time and the setup to run (untimed) before each timed
#: run, or None when ``impl`` has no such operation
Prepare = Callable[[Case, str], Optional[tuple[Callable[[], object], Optional[Callable[[], object]]]]]


@dataclass(frozen=True)
class Kernel:
    """One entry of the bench.

    ``traffic(case)`` lists the passes over memory the fused kernel cannot avoid, each as
    ``(written, read)``: how many arrays of ``case.elements`` elements it reads and writes
    (``written``) or only reads (``read``); the roofline is those bytes at the machine's memory
    bandwidth (a written array counts as read and written: ordinary stores read it first).
    """

    name: str
    title: str
    cases: tuple[Case, ...]
    quick: tuple[Case, ...]
    prepare: Prepare
    traffic: Callable[[Case], list[tuple[int, int]]] | None = None
    #: at most this many timed runs per implementation, whatever the bench's ``repeat`` (a
    #: kernel whose peer takes minutes a call), or None
    most_runs: int | None = None


KERNELS: dict[str, Kernel] = {}


def register(kernel: Kernel) -> Kernel:
    """Adds ``kernel`` to ``gradfast bench`` (and to ``benches/``)."""
    if kernel.name in KERNELS:
        raise ValueError(f"register: kernel {kernel.name!r} is registered already")
    KERNELS[kernel.name] = kernel
    return kernel
