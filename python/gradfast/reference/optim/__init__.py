"""Reference optimizers in plain NumPy, one file each."""

from .adadelta import Adadelta
from .adam import Adam, AdamW, adam_optimizer
from .asgd import ASGD
from .lamb import LAMB
from .lars import LARS
from .layer_adaptive_lr import LayerAdaptiveLR
from .momentum import MomentumOptimizer
from .radam import RAdam
from .rprop import Rprop

__all__ = [
    "ASGD",
    "LAMB",
    "LARS",
    "Adadelta",
    "Adam",
    "AdamW",
    "LayerAdaptiveLR",
    "MomentumOptimizer",
    "RAdam",
    "Rprop",
    "adam_optimizer",
]
