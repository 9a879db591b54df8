"""Declarations of the optimizers, one file each: hyper-parameters, state slots, docstrings.

The siblings over each declaration are ``gradfast.optim`` (the step in Rust) and
``gradfast.reference.optim`` (the step in NumPy); neither subclasses the other.
"""

from .adadelta import AdadeltaBase
from .adafactor import AdafactorBase
from .adagrad import AdagradBase
from .adam import AdamBase, AdamWBase, adam_hypers
from .adamax import AdamaxBase
from .asgd import ASGDBase
from .lamb import LAMBBase
from .lars import LARSBase
from .layer_adaptive_lr import LayerAdaptiveLRBase
from .lion import LionBase
from .low_precision import LowPrecisionState
from .momentum import MomentumBase
from .muon import MuonBase
from .nadam import NAdamBase
from .radam import RAdamBase
from .rmsprop import RMSpropBase
from .rprop import RpropBase
from .schedule_free import ScheduleFreeAdamWBase
from .sgd import SGDBase

__all__ = [
    "AdafactorBase",
    "AdagradBase",
    "ASGDBase",
    "AdadeltaBase",
    "AdamBase",
    "AdamWBase",
    "AdamaxBase",
    "LAMBBase",
    "LARSBase",
    "LayerAdaptiveLRBase",
    "LionBase",
    "LowPrecisionState",
    "MomentumBase",
    "MuonBase",
    "ScheduleFreeAdamWBase",
    "NAdamBase",
    "RMSpropBase",
    "RAdamBase",
    "RpropBase",
    "SGDBase",
    "adam_hypers",
]
