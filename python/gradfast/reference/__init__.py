"""Pure-NumPy twins of every gradfast name: the specification the Rust kernels are held to.

One module per kernel family, named as the family is in every layer of gradfast (the Rust
kernel, its binding, the Python API): ``optim``, ``clip``, ``nn``, ``rnn``, ``prune``, ``init``,
``linear``, ``regularization``, ``schedule``, ``distributed``, ``average`` (and ``schedules``,
pure Python, the same module as ``gradfast.schedules``). Nothing here imports the
compiled extension; what both implementations share (the declarations of the classes, the
optimizer base, argument validation) lives in ``gradfast._base`` and ``gradfast._validate``.
"""

from .. import schedules  # pure Python, its own reference: the same module
from .average import EMA, Accumulate
from .clip import (
    AdaptiveClipper,
    adaptive_grad_clip,
    clip_grad_norm,
    clip_grad_value,
    clip_grads_with_norm,
    get_total_norm,
)
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
from .schedule import LRScheduler

__all__ = [
    "Adafactor",
    "Adagrad",
    "ASGD",
    "Adadelta",
    "Adam",
    "AdamW",
    "Adamax",
    "Accumulate",
    "AdaptiveClipper",
    "BatchNorm",
    "DataParallel",
    "DistributedOptimizer",
    "EMA",
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
    "NAdam",
    "RMSprop",
    "RAdam",
    "Rprop",
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
    "get_total_norm",
    "gradient_descent",
    "initialize_weights",
    "magnitude_masks",
    "prune_network",
    "rank",
    "schedules",
    "sgd_optimizer",
    "size",
]
