"""PyTorch as a peer: imported only if installed, run on gradfast's thread count."""

from __future__ import annotations

import functools
from types import ModuleType

from .. import _core


@functools.cache
def _import() -> ModuleType | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch() -> ModuleType | None:
    """The ``torch`` module with gradfast's thread count, or None when it is not installed."""
    t = _import()
    if t is not None:
        t.set_num_threads(_core.get_num_threads())
    return t


def torch_version() -> str | None:
    t = _import()
    return None if t is None else t.__version__
