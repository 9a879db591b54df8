"""gradfast: Rust-accelerated, in-place NumPy kernels for training neural-network weights.

Every name of the API is importable from here. The Rust-backed ones (``Adam``, ``AdamW``,
``MomentumOptimizer``, ``LAMB``, ``LARS``, ``LayerAdaptiveLR``, ``adam_optimizer``,
``clip_grad_norm``, ``adaptive_grad_clip``, ``AdaptiveClipper``, ``BatchNorm``, ``Dropout``,
``initialize_weights``, ``compute_regularization``, ``prune_network``, ``magnitude_masks``,
``apply_masks``, ``GradualPruning``, ``bptt``, ``gradient_descent``, ``sgd_optimizer``) have a
pure-NumPy twin with the same signature in ``gradfast.reference``; the others are, for now,
served by that reference implementation itself (``gradfast.LRScheduler is
gradfast.reference.LRScheduler``) until their kernels land.
"""

from ._core import get_num_threads, set_num_threads
from ._threads import apply_env_threads
from .clip import AdaptiveClipper, adaptive_grad_clip, clip_grad_norm
from .distributed import DataParallel, allreduce_gradients, broadcast_parameters, rank, size
from .init import initialize_weights
from .linear import gradient_descent, sgd_optimizer
from .nn import BatchNorm, Dropout
from .optim import LAMB, LARS, Adam, AdamW, LayerAdaptiveLR, Lion, MomentumOptimizer, adam_optimizer
from .prune import GradualPruning, apply_masks, magnitude_masks, prune_network
from .reference import (
    DistributedOptimizer,
    LRScheduler,
)
from .regularization import compute_regularization
from .rnn import bptt

apply_env_threads()

__all__ = [
    "LAMB",
    "LARS",
    "Adam",
    "AdamW",
    "AdaptiveClipper",
    "DataParallel",
    "BatchNorm",
    "DistributedOptimizer",
    "Dropout",
    "GradualPruning",
    "LRScheduler",
    "LayerAdaptiveLR",
    "Lion",
    "MomentumOptimizer",
    "adam_optimizer",
    "adaptive_grad_clip",
    "allreduce_gradients",
    "apply_masks",
    "bptt",
    "broadcast_parameters",
    "clip_grad_norm",
    "compute_regularization",
    "get_num_threads",
    "gradient_descent",
    "initialize_weights",
    "magnitude_masks",
    "prune_network",
    "rank",
    "set_num_threads",
    "sgd_optimizer",
    "size",
]
