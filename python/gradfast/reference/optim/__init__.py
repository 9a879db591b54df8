"""Reference optimizers in plain NumPy, one file each: the specification of ``gradfast.optim``."""

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW, adam_optimizer
from .adamax import Adamax
from .asgd import ASGD
from .lamb import LAMB
from .lars import LARS
from .layer_adaptive_lr import LayerAdaptiveLR
from .momentum import MomentumOptimizer
from .nadam import NAdam
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop

__all__ = [
    "ASGD",
    "LAMB",
    "LARS",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LayerAdaptiveLR",
    "MomentumOptimizer",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "adam_optimizer",
]
