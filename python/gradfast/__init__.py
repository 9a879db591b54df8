"""gradfast: Rust-accelerated, in-place NumPy kernels for training neural-network weights.

Every name of the API is importable from here. The Rust-backed ones (``Adam``, ``AdamW``,
``MomentumOptimizer``, ``LAMB``, ``LARS``, ``LayerAdaptiveLR``, ``adam_optimizer``,
``clip_grad_norm``, ``get_total_norm``, ``clip_grads_with_norm``, ``clip_grad_value``,
``adaptive_grad_clip``, ``AdaptiveClipper``, ``BatchNorm``, ``Dropout``,
``initialize_weights``, ``compute_regularization``, ``prune_network``, ``magnitude_masks``,
``apply_masks``, ``GradualPruning``, ``bptt``, ``gradient_descent``, ``sgd_optimizer``) have a
pure-NumPy twin with the same signature in ``gradfast.reference``; the others are, for now,
served by that reference implementation itself (``gradfast.LRScheduler is
gradfast.reference.LRScheduler``) until their kernels land. ``gradfast.schedules`` (schedulers
that drive an optimizer) is pure Python, its own reference.

``gradfast.__version__`` is the installed distribution's version (its metadata, from the
version of the Cargo workspace).
"""

from typing import TYPE_CHECKING

from ._core import get_num_threads, set_num_threads
from ._threads import apply_env_threads
from .average import EMA, Accumulate
from .clip import (
    AdaptiveClipper,
    adaptive_grad_clip,
    clip_grad_norm,
    clip_grad_value,
    clip_grads_with_norm,
    get_total_norm,
)
from .distributed import DataParallel, allreduce_gradients, broadcast_parameters, rank, size
from .init import initialize_weights
from .linear import gradient_descent, sgd_optimizer
from .nn import BatchNorm, Dropout
from .optim import (
    ASGD,
    LAMB,
    LARS,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    LayerAdaptiveLR,
    Lion,
    MomentumOptimizer,
    Muon,
    NAdam,
    RAdam,
    RMSprop,
    Rprop,
    ScheduleFreeAdamW,
    adam_optimizer,
)
from .prune import GradualPruning, apply_masks, magnitude_masks, prune_network
from .regularization import compute_regularization
from .rnn import bptt

apply_env_threads()

if TYPE_CHECKING:
    from . import schedules
    from .reference import DistributedOptimizer, LRScheduler

    __version__: str
else:
    # Loaded on first use, to keep `import gradfast` quick: the two names the reference serves
    # (importing it imports every twin), the schedulers, and the version (importlib.metadata
    # costs as much as the rest of gradfast's own modules).
    _LAZY = {"DistributedOptimizer": "reference", "LRScheduler": "reference", "schedules": None}

    def __getattr__(name: str):
        if name in _LAZY:
            from importlib import import_module

            module = import_module(f".{_LAZY[name] or name}", __name__)
            value = module if _LAZY[name] is None else getattr(module, name)
            globals()[name] = value
            return value
        if name == "__version__":
            from importlib.metadata import version

            globals()["__version__"] = v = version("gradfast")
            return v
        raise AttributeError(f"module 'gradfast' has no attribute {name!r}")


__all__ = [
    "ASGD",
    "LAMB",
    "LARS",
    "Adagrad",
    "Adam",
    "Adadelta",
    "Adafactor",
    "AdamW",
    "Adamax",
    "Accumulate",
    "AdaptiveClipper",
    "DataParallel",
    "BatchNorm",
    "DistributedOptimizer",
    "EMA",
    "Dropout",
    "GradualPruning",
    "LRScheduler",
    "LayerAdaptiveLR",
    "Lion",
    "MomentumOptimizer",
    "Muon",
    "NAdam",
    "RMSprop",
    "RAdam",
    "Rprop",
    "ScheduleFreeAdamW",
    "adam_optimizer",
    "adaptive_grad_clip",
    "allreduce_gradients",
    "apply_masks",
    "bptt",
    "broadcast_parameters",
    "clip_grad_norm",
    "clip_grad_value",
    "clip_grads_with_norm",
    "compute_regularization",
    "get_num_threads",
    "get_total_norm",
    "gradient_descent",
    "initialize_weights",
    "magnitude_masks",
    "prune_network",
    "rank",
    "schedules",
    "set_num_threads",
    "sgd_optimizer",
    "size",
]
