"""Data-parallel training over MPI: ``rank``, ``size``, ``broadcast_parameters``,
``allreduce_gradients`` and ``DataParallel``, with buckets packed by Rust kernels.

Needs the ``mpi`` extra (``pip install "gradfast[mpi]"``: mpi4py and MPICH from PyPI) or
mpi4py built against the cluster's MPI; ``import gradfast`` works without it, and the first
call here says how to install it. Run one process per rank: ``mpiexec -n 4 python train.py``.
Every call except ``rank`` and ``size`` is collective (all ranks make it, in the same order);
arguments that differ between ranks raise the same ``ValueError`` on every rank, naming the key.
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import _core
from ._base import distributed as _base
from .average import accumulate

__all__ = ["DataParallel", "allreduce_gradients", "broadcast_parameters", "rank", "size"]

rank = _base.rank
size = _base.size


def allreduce_gradients(gradients, *, op="mean", compression=None, comm=None):
    return _base.allreduce_gradients(_core, gradients, op=op, compression=compression, comm=comm)


def broadcast_parameters(params, root=0, *, comm=None):
    return _base.broadcast_parameters(_core, params, root, comm=comm)


class DataParallel(_base.DataParallelBase):
    __doc__ = _base.DataParallelBase.__doc__
    _accumulate = staticmethod(accumulate)
    _kernels: ClassVar[Any] = _core


allreduce_gradients.__doc__ = _base.allreduce_gradients.__doc__
broadcast_parameters.__doc__ = _base.broadcast_parameters.__doc__
