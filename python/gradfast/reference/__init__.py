"""Pure-NumPy twins of every gradfast name: the specification the Rust kernels are held to.

One module per kernel family, named as the family is in every layer of gradfast (the Rust
kernel, its binding, the Python API): ``optim``, ``clip``, ``nn``, ``rnn``, ``prune``, ``init``,
``linear``, ``regularization``, ``schedule``, ``distributed``. Nothing here imports the
compiled extension; the shared runtime (the optimizer base and argument validation) lives in
``gradfast._optimizer`` and ``gradfast._validate``.
"""

from .clip import AdaptiveClipper, adaptive_grad_clip, clip_grad_norm
from .distributed import (
    DataParallel,
    DistributedOptimizer,
    allreduce_gradients,
    broadcast_parameters,
    rank,
    size,
)
from .init import initialize_weights
from .linear import gradient_descent, sgd_optimizer
from .nn import BatchNorm, Dropout
from .optim import (
    LAMB,
    LARS,
    Adafactor,
    Adam,
    AdamW,
    LayerAdaptiveLR,
    Lion,
    MomentumOptimizer,
    Muon,
    ScheduleFreeAdamW,
    adam_optimizer,
)
from .prune import GradualPruning, apply_masks, magnitude_masks, prune_network
from .regularization import compute_regularization
from .rnn import bptt
from .schedule import LRScheduler

__all__ = [
    "Adafactor",
    "Adam",
    "AdamW",
    "AdaptiveClipper",
    "BatchNorm",
    "DataParallel",
    "DistributedOptimizer",
    "Dropout",
    "GradualPruning",
    "LAMB",
    "LARS",
    "LRScheduler",
    "LayerAdaptiveLR",
    "Lion",
    "MomentumOptimizer",
    "Muon",
    "ScheduleFreeAdamW",
    "adam_optimizer",
    "adaptive_grad_clip",
    "allreduce_gradients",
    "apply_masks",
    "bptt",
    "broadcast_parameters",
    "clip_grad_norm",
    "compute_regularization",
    "gradient_descent",
    "initialize_weights",
    "magnitude_masks",
    "prune_network",
    "rank",
    "sgd_optimizer",
    "size",
]
