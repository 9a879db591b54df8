"""Reference optimizers in plain NumPy, one file each."""

from .adagrad import Adagrad
from .adam import Adam, AdamW, adam_optimizer
from .adamax import Adamax
from .lamb import LAMB
from .lars import LARS
from .layer_adaptive_lr import LayerAdaptiveLR
from .momentum import MomentumOptimizer
from .nadam import NAdam
from .rmsprop import RMSprop

__all__ = [
    "LAMB",
    "LARS",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LayerAdaptiveLR",
    "MomentumOptimizer",
    "NAdam",
    "RMSprop",
    "adam_optimizer",
]
