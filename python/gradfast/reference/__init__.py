"""Pure-NumPy twins of every gradfast name: the specification the Rust kernels are held to.

Nothing here imports the compiled extension.
"""

from .adaptive_clipper import AdaptiveClipper
from .agc import adaptive_grad_clip
from .batchnorm import BatchNorm
from .distributed import DistributedOptimizer
from .dropout import Dropout
from .init import initialize_weights
from .layerwise import LAMB, LARS, LayerAdaptiveLR
from .linear import gradient_descent, sgd_optimizer
from .optim import Adam, AdamW, MomentumOptimizer, adam_optimizer, clip_grad_norm
from .pruning import GradualPruning, prune_network
from .regularization import compute_regularization
from .rnn import bptt
from .schedule import LRScheduler

__all__ = [
    "Adam",
    "AdamW",
    "AdaptiveClipper",
    "BatchNorm",
    "DistributedOptimizer",
    "Dropout",
    "GradualPruning",
    "LAMB",
    "LARS",
    "LRScheduler",
    "LayerAdaptiveLR",
    "MomentumOptimizer",
    "adam_optimizer",
    "adaptive_grad_clip",
    "bptt",
    "clip_grad_norm",
    "compute_regularization",
    "gradient_descent",
    "initialize_weights",
    "prune_network",
    "sgd_optimizer",
]
