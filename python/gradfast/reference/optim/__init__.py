"""Reference optimizers in plain NumPy, one file each: the specification of ``gradfast.optim``."""

from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW, adam_optimizer
from .adamax import Adamax
from .asgd import ASGD
from .lamb import LAMB
from .lars import LARS
from .layer_adaptive_lr import LayerAdaptiveLR
from .lion import Lion
from .momentum import MomentumOptimizer
from .muon import Muon
from .nadam import NAdam
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedule_free import ScheduleFreeAdamW
from .sgd import SGD

__all__ = [
    "ASGD",
    "LAMB",
    "LARS",
    "Adafactor",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LayerAdaptiveLR",
    "Lion",
    "MomentumOptimizer",
    "Muon",
    "ScheduleFreeAdamW",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "adam_optimizer",
]
