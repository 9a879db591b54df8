"""Reference data parallelism: the original design's ``DistributedOptimizer`` (local accumulation, no
MPI), and the MPI functions of ``gradfast.distributed`` with buckets packed by NumPy.

The bfloat16 conversions here are the specification of the Rust ones: round to nearest,
ties to even, NaN kept (quiet); float64 is rounded once, not through a rounded float32.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import _validate
from .._base import distributed as _base
from .average import accumulate


def to_bfloat16(x: np.ndarray) -> np.ndarray:
    """The bfloat16 bits (uint16) of a float32 or float64 array, rounded to nearest even."""
    x = np.asarray(x)
    if x.dtype == np.float64:
        # Round to odd into float32 (truncate towards zero, set the lowest bit if inexact):
        # with 16 bits to spare, the rounding to bfloat16 below is then the correct one.
        with np.errstate(over="ignore"):
            y = x.astype(np.float32)
        back = y.astype(np.float64)
        bits = y.view(np.uint32) - (np.abs(back) > np.abs(x)).astype(np.uint32)
        x = (bits | (back != x).astype(np.uint32)).view(np.float32)
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    quiet_nan = ((bits >> 16) | 0x40).astype(np.uint16)
    return np.where(np.isnan(x), quiet_nan, rounded)


def from_bfloat16(bits: np.ndarray, dtype=np.float32) -> np.ndarray:
    """The values of bfloat16 bits (exact in float32 and float64)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32).astype(dtype)


class kernels:
    """The bucket kernels of ``gradfast.distributed`` in NumPy (``_core``'s signatures)."""

    @staticmethod
    def pack(fn, tensors, bucket):
        flat = np.concatenate([t.reshape(-1) for t in tensors]) if tensors else bucket[:0]
        bucket[...] = to_bfloat16(flat) if bucket.dtype == np.uint16 else flat

    @staticmethod
    def unpack(fn, bucket, tensors, divisor=None):
        start = 0
        for t in tensors:
            piece = bucket[start : start + t.size].reshape(t.shape)
            start += t.size
            values = from_bfloat16(piece, t.dtype) if bucket.dtype == np.uint16 else piece
            if divisor is None:
                t[...] = values
            else:
                np.divide(values, t.dtype.type(divisor), out=t)

    @staticmethod
    def divide(fn, tensors, divisor):
        for t in tensors:
            t /= t.dtype.type(divisor)

    @staticmethod
    def sum_bf16(src, acc):
        with np.errstate(all="ignore"):
            acc[...] = to_bfloat16(from_bfloat16(src) + from_bfloat16(acc))


rank = _base.rank
size = _base.size


def allreduce_gradients(gradients, *, op="mean", compression=None, comm=None):
    return _base.allreduce_gradients(kernels, gradients, op=op, compression=compression, comm=comm)


def broadcast_parameters(params, root=0, *, comm=None):
    return _base.broadcast_parameters(kernels, params, root, comm=comm)


allreduce_gradients.__doc__ = _base.allreduce_gradients.__doc__
broadcast_parameters.__doc__ = _base.broadcast_parameters.__doc__


class DataParallel(_base.DataParallelBase):
    __doc__ = _base.DataParallelBase.__doc__
    _accumulate = staticmethod(accumulate)
    _kernels: ClassVar[Any] = kernels


class DistributedOptimizer:
    """Sum gradient contributions and hand back their average every ``update_frequency`` calls.

    ``accumulate_gradients(g)`` adds one contribution (one micro-batch or one worker's
    gradients) to float arrays of ``g``'s dtype owned by the optimizer: the first call copies
    (the caller's arrays are never aliased or written), later calls must have the same keys,
    shapes and dtype. It returns ``step_count >= update_frequency``.
    ``compute_updates()`` returns ``{key: sum / step_count}`` (the accumulator arrays
    themselves, divided in place and handed over) and resets, or ``None`` before any
    contribution. The original code divided by ``step_count * num_workers`` although each call is one
    contribution; ``num_workers`` is kept as the MPI world-size hint and is not used here.
    """

    def __init__(self, num_workers=4, update_frequency=16) -> None:
        fn = "DistributedOptimizer"
        self.num_workers = _validate.integer(fn, "num_workers", num_workers, lo=1)
        self.update_frequency = _validate.integer(fn, "update_frequency", update_frequency, lo=1)
        self.accumulated_gradients: dict[str, np.ndarray] | None = None
        self.step_count = 0

    def accumulate_gradients(self, worker_gradients) -> bool:
        """Add one contribution; True once ``update_frequency`` of them are accumulated."""
        fn = "DistributedOptimizer.accumulate_gradients"
        grads, dtype = _validate.float_dict(fn, "worker_gradients", worker_gradients)
        acc = self.accumulated_gradients
        if acc is None:
            self.accumulated_gradients = {k: np.array(g, order="C", copy=True) for k, g in grads.items()}
        else:
            _validate.matching_keys(fn, "worker_gradients", grads, "the accumulated gradients", acc)
            for key, g in grads.items():
                a = acc[key]
                if g.shape != a.shape or g.dtype != a.dtype:
                    raise ValueError(
                        f"{fn}: worker_gradients[{key!r}] must have shape {a.shape} and dtype {a.dtype} "
                        f"as the accumulated gradients, got shape {g.shape} and dtype {g.dtype}"
                    )
            with np.errstate(all="ignore"):
                for key, g in grads.items():
                    acc[key] += g
        self.step_count += 1
        return self.step_count >= self.update_frequency

    def compute_updates(self) -> dict[str, np.ndarray] | None:
        """The average of the accumulated contributions (then reset), or None if there are none."""
        acc = self.accumulated_gradients
        if acc is None:
            return None
        with np.errstate(all="ignore"):
            for a in acc.values():
                a /= a.dtype.type(self.step_count)
        self.accumulated_gradients = None
        self.step_count = 0
        return acc
